"""A WebSocket tunnel after `101 Switching Protocols` is the byte relay TCP mode uses
(net/relay.py): half-closed as HAProxy 2.6 does it in HTTP mode (the client's FIN is passed
on and the server still answers; the server's FIN ends the tunnel), checked against
Debian's haproxy on the same configuration; ended by `timeout tunnel`; and logged once,
with its status, bytes and termination state, when it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from poise.net.admin_socket import describe, kill_code
from tests.io.harness import Poise, Stage
from tests.io.test_server_options import haproxy
from tests.support import free_port, run

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tunnel {tunnel}
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server ws 127.0.0.1:{server}
"""
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)
WAIT = 5.0

Side = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Script = Callable[[Side, Side], Awaitable[list[bytes]]]


class WsServer:
    """A server that answers the upgrade with a 101, then hands its side of the tunnel
    to the test."""

    def __init__(self) -> None:
        self.sides: asyncio.Queue[Side] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> WsServer:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(SWITCHING)
        await self.sides.put((reader, writer))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def through(port: int, server: WsServer, script: Script) -> list[bytes]:
    """Open a tunnel through the balancer on `port` and run `script` on its two ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101 "), head
        far = await asyncio.wait_for(server.sides.get(), WAIT)
        try:
            return await asyncio.wait_for(script((reader, writer), far), WAIT)
        finally:
            far[1].close()
    finally:
        writer.close()


async def client_shuts_first(client: Side, server: Side) -> list[bytes]:
    """The client sends and shuts its side; the server still answers, then closes."""
    client[1].write(b"ping")
    client[1].write_eof()
    seen = [await server[0].read()]  # everything up to the client's FIN
    server[1].write(b"pong")
    server[1].close()
    seen.append(await client[0].read())  # the answer after the client's FIN, then EOF
    return seen


async def server_shuts_first(client: Side, server: Side) -> list[bytes]:
    """The server sends and shuts its side: the client gets the bytes and the FIN, and
    the tunnel is over (HAProxy 2.6 closes the server connection: what the client would
    send after is not passed on, unlike TCP mode's half-close)."""
    server[1].write(b"bye")
    server[1].write_eof()
    seen = [await client[0].read()]  # up to the server's FIN
    with contextlib.suppress(OSError):  # the client's socket may be closed already
        client[1].write(b"late")
        client[1].write_eof()
    seen.append(await server[0].read())  # nothing: the connection was closed
    return seen


def test_a_tunnel_is_half_closed_each_way_as_haproxy(loop_kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with Stage() as stage:
            server = await WsServer().start()
            try:
                text = CONFIG.format(log="{log}", port=0, tunnel="10s", server=server.port)
                poise = await stage.poise(text)
                ours = [
                    await through(poise.port("fe"), server, client_shuts_first),
                    await through(poise.port("fe"), server, server_shuts_first),
                ]
                lines = await stage.logs.wait_for(r" fe be/ws ", count=2)
                port = free_port()
                text = CONFIG.format(log=free_port(), port=port, tunnel="10s", server=server.port)
                async with haproxy(text, tmp_path, port):
                    theirs = [
                        await through(port, server, client_shuts_first),
                        await through(port, server, server_shuts_first),
                    ]
            finally:
                server.close()
            assert ours == theirs == [[b"ping", b"pong"], [b"bye", b""]]
            for line, sent in zip(lines, (b"pong", b"bye"), strict=True):
                fields = line.split()
                # status, bytes to the client (the 101's head and the tunnel's), state
                assert fields[5:7] == ["101", str(len(SWITCHING) + len(sent))], line
                assert fields[9] == "----", line

    run(loop_kind, main)


def test_timeout_tunnel_ends_an_idle_tunnel_with_cd(loop_kind: str) -> None:
    async def idle(client: Side, server: Side) -> list[bytes]:
        client[1].write(b"ping")
        got = await server[0].readexactly(4)
        return [got, await client[0].read(), await server[0].read()]  # both closed

    async def main() -> None:
        async with Stage() as stage:
            server = await WsServer().start()
            try:
                text = CONFIG.format(log="{log}", port=0, tunnel="300ms", server=server.port)
                poise = await stage.poise(text)
                loop = asyncio.get_running_loop()
                started = loop.time()
                seen = await through(poise.port("fe"), server, idle)
                took = loop.time() - started
            finally:
                server.close()
            assert seen == [b"ping", b"", b""]
            assert 0.3 <= took < 3.0, took
            line = (await stage.logs.wait_for(r" fe be/ws "))[0]
            fields = line.split()
            assert fields[5] == "101" and fields[9] == "cD--", line

    run(loop_kind, main)


def test_a_tunnel_is_shown_and_shut_down_by_the_runtime_api(loop_kind: str) -> None:
    """`show sess` describes an HTTP session in its tunnel (the relay's timer), and
    `shutdown session` ends it through the relay: both connections, one line, KD."""

    async def shut(poise: Poise, client: Side, server: Side) -> list[bytes]:
        now = asyncio.get_running_loop().time()
        (session,) = [s for s in poise.ctx.sessions if s.frontend.name == "fe"]
        info = describe(session, now)
        assert (info.backend, info.server) == ("be", "ws")
        assert info.expires is not None and 9.0 < info.expires < 10.001  # timeout tunnel
        session.kill(kill_code(session))
        return [await client[0].read(), await server[0].read()]

    async def main() -> None:
        async with Stage() as stage:
            server = await WsServer().start()
            try:
                text = CONFIG.format(log="{log}", port=0, tunnel="10s", server=server.port)
                poise = await stage.poise(text)
                seen = await through(poise.port("fe"), server, partial(shut, poise))
            finally:
                server.close()
            assert seen == [b"", b""]
            line = (await stage.logs.wait_for(r" fe be/ws "))[0]
            assert line.split()[5] == "101" and line.split()[9] == "KD--", line

    run(loop_kind, main)
