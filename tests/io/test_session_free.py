"""A closed HTTP or TCP session is freed as soon as its connections are lost, without the
garbage collector: it holds no reference cycle once it is over (net/http.py `forget_self`,
net/tcp.py's `finish`; issue 16: the collector walking each closed session cost ~14 us per
connection)."""

from __future__ import annotations

import asyncio
import gc

from poise.net.http import HttpSession
from poise.net.tcp import TcpSession
from tests.io.harness import Stage
from tests.support import eventually, run

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server a 127.0.0.1:{app}
"""


def sessions() -> int:
    """HttpSession objects still in memory (gc.get_objects() lists the ones a cycle keeps
    too, until a collection frees them)."""
    return sum(1 for thing in gc.get_objects() if type(thing) is HttpSession)


def test_a_closed_session_is_freed_without_the_garbage_collector(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(CONFIG.format(app=app.port))
            port = poise.port("fe")
            gc.collect()
            gc.disable()
            try:
                # `Connection: close` (poise closes), a kept connection the client closes,
                # and a client that leaves before its head is whole.
                for request in (
                    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                    b"GET / HT",
                ):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    if request.endswith(b"\r\n\r\n"):
                        await reader.readuntil(b"\r\n\r\n")
                    else:
                        await eventually(lambda: bool(poise.ctx.sessions))
                    writer.close()
                    await writer.wait_closed()
                    await eventually(lambda: not poise.ctx.sessions)
                    await eventually(lambda: sessions() == 0, what=f"{request!r} freed")
            finally:
                gc.enable()

    run(loop_kind, main)


TCP_CONFIG = CONFIG.replace("mode http", "mode tcp")


def tcp_sessions() -> int:
    return sum(1 for thing in gc.get_objects() if type(thing) is TcpSession)


def test_a_closed_tcp_session_is_freed_without_the_garbage_collector(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(TCP_CONFIG.format(app=app.port))
            port = poise.port("fe")
            gc.collect()
            gc.disable()
            try:
                # The server closes (`Connection: close`), and the client closes first.
                for request in (
                    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                ):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    await reader.readuntil(b"\r\n\r\n")
                    writer.close()
                    await writer.wait_closed()
                    await eventually(lambda: not poise.ctx.sessions)
                    await eventually(lambda: tcp_sessions() == 0, what=f"{request!r} freed")
            finally:
                gc.enable()

    run(loop_kind, main)
