"""A raw HTTP/1.1 backend for the tests that need a server to misbehave on cue or to take
what httptools would refuse (any method token): it cuts requests at CRLFCRLF plus their
Content-Length, records the bytes of each one as they came, and answers each with what
`answer(connection, number, head)` returns (bytes), or closes the connection unanswered
(None); with `close_after`, it closes each connection after its first answer. Counts
start at 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

Answer = Callable[[int, int, bytes], bytes | None]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def always_ok(connection: int, number: int, head: bytes) -> bytes | None:
    return OK


@dataclass
class RawServer:
    answer: Answer = always_ok
    close_after: bool = False
    port: int = 0
    connections: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # (connection, bytes)
    server: asyncio.AbstractServer | None = None

    async def start(self) -> RawServer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> RawServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        number = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                number += 1
                self.requests.append((connection, head + body))
                reply = self.answer(connection, number, head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
