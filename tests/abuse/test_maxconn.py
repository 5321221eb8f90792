"""Issue 11, finding 1: `maxconn` must hold in HTTP mode as in TCP mode.

The attack: 1,000 clients at once against `global maxconn 100`. HAProxy 2.6, the
reference, stops accepting at the limit (the listener is paused and the connections wait
in the kernel's backlog), so its server sees at most 101 connections at once and every
client is served. Before the fix poise accepted them all and, in HTTP mode, forwarded
the requests it meant to hold: the server saw 1,000 at once. Frontend `maxconn`, `set
maxconn frontend` and `disable frontend` (runtime API) are the same limit by other roads.

Real sockets and a real poise in the test's loop; the backend (tests/abuse/crowd.py)
holds each answer 20 ms so that what the balancer lets through overlaps.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from poise.net.admin_socket import open_admin_sockets
from tests.abuse.crowd import PeakBackend, crowd, one_client
from tests.io.harness import Poise
from tests.support import free_port, run

CLIENTS = 1000
# HAProxy's server sees maxconn connections, and one more while a closed one is still
# being torn down on its side.
MARGIN = 1

CONFIG = """
global
    {global_maxconn}
    stats socket {sock} level admin
defaults
    mode {mode}
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend fe
    bind 127.0.0.1:{port}
    {frontend_maxconn}
    default_backend be
backend be
    server s 127.0.0.1:{backend}
"""


@asynccontextmanager
async def balancer(
    mode: str, global_maxconn: str = "", frontend_maxconn: str = ""
) -> AsyncIterator[tuple[Poise, PeakBackend, Path]]:
    backend = await PeakBackend(http=mode == "http").start()
    with tempfile.TemporaryDirectory(prefix="pa", dir="/tmp") as name:
        sock = Path(name) / "admin.sock"
        text = CONFIG.format(
            global_maxconn=global_maxconn,
            frontend_maxconn=frontend_maxconn,
            sock=sock,
            mode=mode,
            port=free_port(),  # a fixed port: a disabled frontend listens again on it
            backend=backend.port,
        )
        poise = Poise(text)
        poise.runtime.admin_socks = open_admin_sockets(poise.config.global_.stats_sockets)
        await poise.__aenter__()
        try:
            yield poise, backend, sock
        finally:
            await poise.__aexit__(None, None, None)
            await backend.stop()


async def cli(sock: Path, line: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(line.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_global_maxconn_holds_against_a_thousand_clients(loop_kind: str, mode: str) -> None:
    """HAProxy 2.6: `global maxconn 100`, 1,000 clients at once: at most 101 at the
    server, 1,000 of 1,000 served; `show info` says Maxconn 100."""

    async def main() -> None:
        async with balancer(mode, global_maxconn="maxconn 100") as (poise, backend, sock):
            served = await crowd(poise.port("fe"), mode == "http", CLIENTS)
            assert served == CLIENTS
            assert backend.peak <= 100 + MARGIN, backend.peak
            assert poise.ctx.frontends["fe"].max_conn_seen <= 100
            assert "\nMaxconn: 100\n" in await cli(sock, "show info")

    run(loop_kind, main, timeout=60)


def test_frontend_maxconn_holds_against_a_thousand_clients(loop_kind: str) -> None:
    """HAProxy 2.6: a frontend's `maxconn 50` pauses its listener at 50 sessions."""

    async def main() -> None:
        async with balancer("http", frontend_maxconn="maxconn 50") as (poise, backend, _):
            assert await crowd(poise.port("fe"), True, CLIENTS) == CLIENTS
            assert backend.peak <= 50 + MARGIN, backend.peak
            assert poise.ctx.frontends["fe"].max_conn_seen == 50

    run(loop_kind, main, timeout=60)


def test_set_maxconn_frontend_holds_against_a_thousand_clients(loop_kind: str) -> None:
    """`set maxconn frontend fe 20` on the stats socket limits at once, as in HAProxy."""

    async def main() -> None:
        async with balancer("http") as (poise, backend, sock):
            assert await cli(sock, "set maxconn frontend fe 20") == "\n"
            assert await crowd(poise.port("fe"), True, CLIENTS) == CLIENTS
            assert backend.peak <= 20 + MARGIN, backend.peak
            assert poise.ctx.frontends["fe"].max_conn_seen == 20

    run(loop_kind, main, timeout=60)


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_a_disabled_frontend_serves_nobody(loop_kind: str, mode: str) -> None:
    """HAProxy 2.6: `disable frontend` stops listening, so new connections are refused
    (before the fix poise served 3 of 3 requests); `enable frontend` listens again on
    the same port."""

    async def main() -> None:
        async with balancer(mode) as (poise, backend, sock):
            port = poise.port("fe")
            assert await cli(sock, "disable frontend fe") == "\n"
            for _ in range(3):
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection("127.0.0.1", port)
            assert backend.answered == 0 and backend.peak == 0
            assert await cli(sock, "enable frontend fe") == "\n"
            assert await one_client(port, mode == "http", 5)
            assert backend.answered == 1

    run(loop_kind, main)
