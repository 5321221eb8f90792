"""The protocol check probe (`option tcp-check`, `redis-check`, `mysql-check`, ...): runs
the steps core/tcpcheck.py made, connecting, writing and reading, and asks the program
for the verdict after every read. Time is kept as for HTTP checks (checks/http.py): the
connections may take min(`timeout connect`, `inter`) with `timeout check` set, else
`inter`; once connected, the check may go on until `timeout check` after that.

A connection is closed with a reset (SO_LINGER 0), as HAProxy does, unless its step says
`linger` (mysql-check, pgsql-check and smtpchk close cleanly, as HAProxy's do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace

from poise.checks.probe import LINGER_RESET, send
from poise.config.model import Source
from poise.core import health
from poise.core.tcpcheck import CHECK_BUFFER_BYTES, NEXT, Connect, Expect, Program, Send, Step
from poise.net.proxied import check_header
from poise.net.source import check_connection
from poise.net.tls_server import ServerTls, check_handshake

V1 = frozenset({"v1"})  # what a server without send-proxy* options is sent


class TcpCheckProbe:
    """One backend's protocol check, its steps made once."""

    __slots__ = ("program",)

    def __init__(self, program: Program) -> None:
        self.program = program

    async def run(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        check_timeout: float | None,
        tls: tuple[ServerTls, str | None] | None = None,
        *,
        proxy: frozenset[str] = frozenset(),
        server_proxy: frozenset[str] = frozenset(),
        source: Source | None = None,
        unix: bool = False,
        socks4: tuple[str, int] | None = None,
    ) -> health.CheckResult:
        """`proxy`: the PROXY flags of the server's checks (its default connection);
        `server_proxy`: the server's own, for `tcp-check connect send-proxy`."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + connect_timeout
        program = self.program

        def elapsed() -> int:
            return int((loop.time() - started) * 1000)

        transport: asyncio.Transport | None = None
        reader = _Reader()
        linger = False
        secure = False
        last: Step | None = None
        try:
            for step in program.steps:
                if isinstance(step, Connect):
                    if transport is not None:
                        _close(transport, linger)
                    reader = _Reader()
                    target = (step.addr or host, step.port or port)
                    left = deadline - loop.time()
                    try:
                        via = socks4 if step.default else None  # `check-via-socks4`
                        transport = await _connect(
                            reader, target, left, source, unix and not step.addr, via
                        )
                    except TimeoutError:
                        transport = None
                        return program.connect_timeout(step, elapsed())
                    except OSError as exc:
                        transport = None
                        return program.connect_failed(step, _strerror(exc), elapsed())
                    linger = step.linger
                    secure = False
                    if step.send_proxy or (step.default and proxy):  # before TLS
                        flags = (server_proxy or V1) if step.send_proxy else proxy
                        send(transport, check_header(flags, transport))
                    if step.default and tls is not None:
                        left = deadline - loop.time()
                        wrapped, failure, _ = await check_handshake(transport, reader, *tls, left)
                        if wrapped is None:
                            assert failure is not None
                            return replace(failure, duration_ms=elapsed())
                        transport, secure = wrapped, True
                    if check_timeout:
                        deadline = max(deadline, loop.time() + check_timeout)
                elif isinstance(step, Send):
                    assert transport is not None
                    # HAProxy empties its buffer before sending: what the expects read
                    # goes; what came since stays (HAProxy had not read it yet).
                    del reader.buffer[: reader.judged]
                    reader.judged = 0
                    if reader.error is not None:
                        return program.io_failed(step, reader.error, elapsed())
                    send(transport, step.data(time.time()))
                else:
                    verdict = await self.judge(step, reader, deadline, elapsed)
                    if verdict is not NEXT:
                        assert isinstance(verdict, health.CheckResult)
                        return verdict
                last = step
            return program.finish(last, bytes(reader.buffer), secure, elapsed())
        finally:
            if transport is not None:
                _close(transport, linger)

    async def judge(
        self, step: Expect, reader: _Reader, deadline: float, elapsed: Callable[[], int]
    ) -> health.CheckResult | str:
        """Read until the expect step has its verdict (NEXT: go on)."""
        program = self.program
        loop = asyncio.get_running_loop()
        while True:
            if reader.error is not None and not reader.buffer:
                return program.io_failed(step, reader.error, elapsed())
            reader.judged = len(reader.buffer)
            verdict = program.expect(step, bytes(reader.buffer), reader.over, elapsed())
            if verdict is not None:
                return verdict
            reader.arrived.clear()
            try:
                await asyncio.wait_for(reader.arrived.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return program.timed_out(step, elapsed())


class _Reader(asyncio.Protocol):
    """Keeps what the server sent (up to the check buffer) and whether it is over."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.judged = 0  # the bytes an expect step has looked at
        self.closed = False
        self.error: str | None = None
        self.arrived = asyncio.Event()

    @property
    def over(self) -> bool:
        """Nothing more will come: the server closed, or the check buffer is full."""
        return self.closed or len(self.buffer) >= CHECK_BUFFER_BYTES

    def data_received(self, data: bytes) -> None:
        room = CHECK_BUFFER_BYTES - len(self.buffer)
        self.buffer += data[:room]
        self.arrived.set()

    def eof_received(self) -> bool | None:
        self.closed = True
        self.arrived.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if isinstance(exc, OSError):
            self.error = _strerror(exc)
        self.arrived.set()


async def _connect(  # noqa: PLR0917 (the step's facts)
    reader: _Reader,
    target: tuple[str, int],
    timeout: float,
    source: Source | None,
    unix: bool,
    socks4: tuple[str, int] | None,
) -> asyncio.Transport:
    transport, _ = await asyncio.wait_for(
        check_connection(lambda: reader, target, source, unix, socks4), max(0.0, timeout)
    )
    return transport


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _close(transport: asyncio.Transport, linger: bool) -> None:
    if transport.is_closing():
        return
    if linger:
        transport.close()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()
