"""A client that resets its connection while it waits in the listener's backlog: poise
takes its address from accept(), as HAProxy does, and logs it (`CR-- 400 "<BADREQ>"`
with the client's address and port); the socket has no peer name any more by then."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.io.harness import LogReceiver, Poise
from tests.support import run

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout client 5s
    timeout connect 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    maxconn 1
    http-request return status 200
"""


def test_a_reset_client_in_the_backlog_is_logged_with_its_address(loop_kind: str) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        async with Poise(CONFIG.format(log=logs.port)) as poise:
            port = poise.port("fe")
            # The first connection takes the frontend's one slot: the next one waits.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            waiting = socket.create_connection(("127.0.0.1", port))
            address = waiting.getsockname()
            waiting.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            waiting.close()  # a reset, before poise accepts it
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 200")
            writer.close()
            line = (await logs.wait_for(r'"<BADREQ>"'))[0]
            assert line.startswith(f"{address[0]}:{address[1]} ["), line
            assert " CR-- " in line, line
        logs.close()

    run(loop_kind, main)
