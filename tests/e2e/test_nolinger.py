"""`option nolinger` through `poise run` and `haproxy` on the same configuration: with the
option, a frontend's connections end in a TCP reset towards the client and a backend's in
a reset towards the server once the exchange is over (in mode tcp a FIN is not passed on
to such a side: it is reset); without it, they end with a FIN. The client and the test's
server each say how their side ended ('reset' or 'eof'); poise must end them as HAProxy
does, in `mode http` and `mode tcp`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running
from tests.support import run

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode {mode}
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    {option}
    default_backend be
backend be
    {option}
    server s 127.0.0.1:{server}
"""
REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def ending(reader: asyncio.StreamReader) -> tuple[bytes, str]:
    """What was read until the connection ended, and how it ended."""
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            got += chunk
    except ConnectionResetError:
        return got, "reset"
    return got, "eof"


class Server:
    """Answers one request, then waits for the balancer to end the connection (it never
    closes first), and records how it ended."""

    def __init__(self) -> None:
        self.endings: asyncio.Queue[str] = asyncio.Queue()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError):
            writer.close()  # in mode tcp, the connection of the check that it listens
            return
        writer.write(RESPONSE)
        await writer.drain()
        _, how = await ending(reader)
        await self.endings.put(how)
        writer.close()


async def endings(
    command: list[str], tmp: Path, mode: str, option: str, server: Server
) -> tuple[str, str]:
    config = CONFIG.format(mode=mode, option=option, server=server.port)
    async with running(command, tmp, config) as balancer:
        reader, writer = await asyncio.open_connection("127.0.0.1", balancer.port)
        writer.write(REQUEST)
        if mode == "tcp":  # the balancer closes both sides when the client has
            await asyncio.wait_for(reader.readexactly(len(RESPONSE)), 5)
            writer.write_eof()
        got, client = await ending(reader)
        writer.close()
        assert mode == "tcp" or got.startswith(b"HTTP/1.1 200 OK"), got
        return client, await asyncio.wait_for(server.endings.get(), 5)


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_nolinger_as_haproxy(loop_kind: str, mode: str) -> None:
    async def main() -> None:
        server = Server()
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        try:
            plain = await both(endings, mode, "", server)
            nolinger = await both(endings, mode, "option nolinger", server)
        finally:
            listening.close()
        # Without the option the client's side ends with a FIN from both (haproxy 2.6
        # also resets a server connection it ends in mode http, poise does not: the
        # server's side is compared in mode tcp only).
        assert plain[0][0] == plain[1][0] == "eof"
        if mode == "tcp":
            assert plain[0] == plain[1] == ("eof", "eof")
        # The server's side is reset by both. (The client's: it reads the FIN of the
        # shut side or the reset, whichever comes first, with haproxy as with poise.)
        assert nolinger[0][1] == nolinger[1][1] == "reset"

    run(loop_kind, main, timeout=60)
