"""A crowd of real clients against poise, and a real backend that counts how many
connections it holds at once: what the attacks of the reliability issue measure.

The backend holds each answer a moment (`hold`) so that the connections the balancer
lets through overlap, and records the most it ever held open (`peak`). It speaks just
enough HTTP/1.1 (a head in, `200 ok` out) or, in TCP mode, a line in and `ok` out, and
closes the connection once it has answered (`Connection: close`), so that `open` is the
connections with a request under way: a connection kept alive would stay counted until
the backend notices its end, after the balancer has already let the next one in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
REQUEST = b"GET / HTTP/1.1\r\nHost: crowd\r\nConnection: close\r\n\r\n"


@dataclass
class PeakBackend:
    http: bool
    hold: float = 0.02  # seconds each answer waits
    port: int = 0
    open: int = 0
    peak: int = 0
    answered: int = 0
    server: asyncio.AbstractServer | None = field(default=None, repr=False)

    async def start(self) -> PeakBackend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: PeakConnection(self), "127.0.0.1", 0, backlog=2048
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class PeakConnection(asyncio.Protocol):
    def __init__(self, backend: PeakBackend) -> None:
        self.backend = backend
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        backend = self.backend
        backend.open += 1
        backend.peak = max(backend.peak, backend.open)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        mark = b"\r\n\r\n" if self.backend.http else b"\n"
        while mark in self.buffer:
            _, self.buffer = self.buffer.split(mark, 1)
            asyncio.get_running_loop().call_later(self.backend.hold, self.answer)

    def answer(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(ANSWER if self.backend.http else b"ok\n")
            self.backend.answered += 1
            self.gone()
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone()

    def gone(self) -> None:
        if self.transport is not None:
            self.transport = None
            self.backend.open -= 1


async def one_client(port: int, http: bool, timeout: float) -> bool:
    """One client: connect, ask, read the whole answer; True when it was served."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (TimeoutError, OSError):
        return False
    try:
        writer.write(REQUEST if http else b"hello\n")
        if http:
            data = await asyncio.wait_for(reader.read(), timeout)
            return data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nok")
        return await asyncio.wait_for(reader.readline(), timeout) == b"ok\n"
    except (TimeoutError, OSError):
        return False
    finally:
        writer.close()


async def crowd(port: int, http: bool, clients: int = 1000, timeout: float = 30.0) -> int:
    """`clients` clients at once; how many were served."""
    served = await asyncio.gather(*(one_client(port, http, timeout) for _ in range(clients)))
    return sum(served)
