"""Server and backend options, through real sockets and side by side with HAProxy 2.6 where
the outcome is observable: `option prefer-last-server` (which server each request of one
keep-alive connection reaches).

HAProxy runs as a process in front of the same real backends (tests/webapp.py) as poise.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.support import accepting, eventually, free_port, run
from tests.webapp import Client

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing")

PREFER_LAST = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance {balance}
    {option}
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


@asynccontextmanager
async def haproxy(text: str, tmp: Path, port: int) -> AsyncIterator[None]:
    """HAProxy 2.6 running `text` until the block ends."""
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        "haproxy", "-db", "-f", str(cfg), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await accepting(port)
        yield
    finally:
        proc.terminate()
        await proc.wait()


async def servers_reached(port: int, count: int) -> list[str]:
    """The backend that answered each of `count` requests on one keep-alive connection."""
    client = await Client.connect(port)
    try:
        names = []
        for _ in range(count):
            status, _, body = await client.get("/")
            assert status == 200
            names.append(body.decode().split()[0])
        return names
    finally:
        client.writer.close()


@needs_haproxy
@pytest.mark.parametrize(
    ("balance", "option", "expected"),
    [
        # HAProxy 2.6 keeps a session's server connection to itself (and so prefers its
        # server) only when it is private: `http-reuse never`. Otherwise the connection
        # goes back to the server's idle pool after each response.
        ("roundrobin", "option prefer-last-server\n    http-reuse never", ["a", "a", "a", "a"]),
        ("leastconn", "option prefer-last-server\n    http-reuse never", ["a", "a", "a", "a"]),
        ("roundrobin", "no option prefer-last-server\n    http-reuse never", ["a", "b", "a", "b"]),
        ("roundrobin", "option prefer-last-server", ["a", "b", "a", "b"]),
        ("roundrobin", "option prefer-last-server\n    http-reuse always", ["a", "b", "a", "b"]),
        ("source", "option prefer-last-server\n    http-reuse never", ["b", "b", "b", "b"]),
    ],
)
def test_prefer_last_server_keeps_a_connection_on_its_server_as_haproxy(
    loop_kind: str, tmp_path: Path, balance: str, option: str, expected: list[str]
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            text = PREFER_LAST.format(balance=balance, option=option, a=a.port, b=b.port, port=0)
            poise = await stage.poise(text)
            ours = await servers_reached(poise.port("fe"), 4)
            port = free_port()
            text = PREFER_LAST.format(balance=balance, option=option, a=a.port, b=b.port, port=port)
            async with haproxy(text, tmp_path, port):
                theirs = await servers_reached(port, 4)
            assert (ours, theirs) == (expected, expected)

    run(loop_kind, main)


def test_prefer_last_server_leaves_a_server_that_went_down(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            text = PREFER_LAST.format(
                balance="roundrobin", option="option prefer-last-server\n    http-reuse never",
                a=a.port, b=b.port, port=0,
            )  # fmt: skip
            poise = await stage.poise(text)
            client = await Client.connect(poise.port("fe"))
            try:
                assert (await client.get("/"))[2].startswith(b"a ")
                ctx = poise.runtime.ctx
                assert ctx is not None
                backend = ctx.backends["be"]
                server_a = backend.servers[0]
                server_a.up = False  # as a failed check leaves it
                backend.changed()
                assert (await client.get("/"))[2].startswith(b"b ")
                assert (await client.get("/"))[2].startswith(b"b ")
            finally:
                client.writer.close()

    run(loop_kind, main)


MINCONN = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout queue 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    fullconn 100
    server a 127.0.0.1:{a} minconn 1 maxconn 10
"""


def test_minconn_limits_a_server_while_the_backend_is_quiet(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(MINCONN.format(a=a.port))
            ctx = poise.runtime.ctx
            assert ctx is not None
            backend = ctx.backends["be"]
            server = backend.servers[0]
            first = await Client.connect(poise.port("fe"))
            second = await Client.connect(poise.port("fe"))
            try:
                slow = asyncio.ensure_future(first.get("/slow/400"))
                await eventually(lambda: server.cur_sess == 1, what="the first at the server")
                # Two connections in the backend, fullconn 100: a limit of
                # max(minconn 1, 2 * 10 // 100) = 1, so the second one waits.
                waiting = asyncio.ensure_future(second.get("/"))
                await eventually(lambda: backend.queued == 1, what="the second queued")
                assert server.cur_sess == 1
                assert (await slow)[0] == 200
                assert (await waiting)[0] == 200  # served once the first one left
            finally:
                first.writer.close()
                second.writer.close()

    run(loop_kind, main)
