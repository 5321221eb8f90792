"""Health checks connect from the server's `source` address, as HAProxy binds its check
connections like its traffic ones: a plain TCP check, `option httpchk` and `option
tcp-check`, with `source` on the server or on the backend, read by the server as the peer
address (127.0.0.5, a loopback address this node owns). A `usesrc` (transparent) source is
not used by checks (there is no client): they come from its plain address. And a unix
server (`abns@`) is checked over its socket."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest

from tests.io.harness import Stage
from tests.support import eventually, run

HEAD = """defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
"""


class Recorder:
    """Answers every connection with an HTTP 200 and closes it, noting the peer address
    (with `reads`, after the request's head: closing on an unread request resets it)."""

    def __init__(
        self, reads: bool, family: socket.AddressFamily = socket.AF_INET, where: str | None = None
    ) -> None:
        self.reads = reads
        self.peers: list[str] = []
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(where if where is not None else ("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def __aenter__(self) -> Recorder:
        self.task = asyncio.get_running_loop().create_task(self.serve())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        self.sock.close()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, peer = await loop.sock_accept(self.sock)
            self.peers.append(peer[0] if isinstance(peer, tuple) else "unix")
            with conn:
                request = b""
                while self.reads and b"\r\n\r\n" not in request:
                    chunk = await loop.sock_recv(conn, 4096)
                    if not chunk:
                        break
                    request += chunk
                await loop.sock_sendall(conn, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")


CHECKS = {
    "tcp": "",
    "httpchk": "    option httpchk GET /\n",
    "tcp-check": "    option tcp-check\n    tcp-check connect\n    tcp-check expect string 200\n",
}


@pytest.mark.parametrize("kind", sorted(CHECKS))
@pytest.mark.parametrize("where", ["server", "backend"])
def test_checks_come_from_the_source_address(loop_kind: str, kind: str, where: str) -> None:
    async def main() -> None:
        async with Stage() as stage, Recorder(kind == "httpchk") as recorder:
            backend = CHECKS[kind]
            line = f"    server s 127.0.0.1:{recorder.port} check inter 50ms"
            if where == "server":
                line += " source 127.0.0.5"
            else:
                backend += "    source 127.0.0.5\n"
            poise = await stage.poise(HEAD + "backend be\n" + backend + line + "\n")
            await eventually(lambda: len(recorder.peers) >= 3, what="three checks")
            assert set(recorder.peers) == {"127.0.0.5"}, recorder.peers
            server = poise.ctx.backends["be"].server("s")
            assert server is not None and server.up

    run(loop_kind, main)


def test_checks_of_a_transparent_source_use_its_address(loop_kind: str) -> None:
    """`source 127.0.0.6 usesrc clientip`: traffic would be the client's (it needs
    CAP_NET_ADMIN), checks are from 127.0.0.6."""

    async def main() -> None:
        async with Stage() as stage, Recorder(False) as recorder:
            await stage.poise(
                HEAD
                + "backend be\n"
                + f"    server s 127.0.0.1:{recorder.port} check inter 50ms"
                + " source 127.0.0.6 usesrc clientip\n"
            )
            await eventually(lambda: len(recorder.peers) >= 2, what="two checks")
            assert set(recorder.peers) == {"127.0.0.6"}, recorder.peers

    run(loop_kind, main)


def test_a_unix_server_is_checked_over_its_socket(loop_kind: str) -> None:
    name = f"poise-test-{secrets.token_hex(6)}"

    async def main() -> None:
        where = ("\0" + name).ljust(108, "\0")
        async with Stage() as stage, Recorder(True, socket.AF_UNIX, where) as recorder:
            poise = await stage.poise(
                HEAD
                + "backend be\n    option httpchk GET /\n"
                + f"    server s abns@{name} check inter 50ms fall 1\n"
            )
            await eventually(lambda: len(recorder.peers) >= 2, what="two checks")
            server = poise.ctx.backends["be"].server("s")
            assert server is not None and server.up
            recorder.sock.close()  # nothing listens any more: the check fails
            await eventually(lambda: not server.up, what="s marked down")

    run(loop_kind, main)
