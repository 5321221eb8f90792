"""Health-check probes. A TCP check connects and closes: the server is alive if the
connection is accepted within the timeout. With `check-ssl` it also completes a TLS
handshake (verifying the certificate as the traffic does): "Layer6 check passed", or
"Layer6 invalid response" with the reason (net/tls.py).

The probe closes with a reset (SO_LINGER 0), as HAProxy does, so that frequent checks do
not leave thousands of sockets in TIME_WAIT on the balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from dataclasses import replace
from typing import cast

from poise.config.model import Source
from poise.core import health
from poise.net.proxied import check_header
from poise.net.source import check_connection
from poise.net.tls_server import ServerTls, check_handshake, l6_passed

LINGER_RESET = struct.pack("ii", 1, 0)


def send(transport: asyncio.BaseTransport, data: bytes) -> None:
    """Write to a check's connection unless the server already closed it (a reset right
    after the connect): uvloop raises then, where asyncio drops the bytes; either way the
    protocol's connection_lost has the verdict."""
    if not transport.is_closing():
        cast(asyncio.WriteTransport, transport).write(data)


async def tcp_check(
    host: str,
    port: int,
    timeout: float,
    tls: tuple[ServerTls, str | None] | None = None,
    proxy: frozenset[str] = frozenset(),
    *,
    source: Source | None = None,
    unix: bool = False,
    socks4: tuple[str, int] | None = None,
) -> health.CheckResult:
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> int:
        return int((loop.time() - started) * 1000)

    try:
        transport, protocol = await asyncio.wait_for(
            check_connection(asyncio.Protocol, (host, port), source, unix, socks4), timeout
        )
    except TimeoutError:
        return health.l4_timeout(elapsed())
    except OSError as exc:
        info = os.strerror(exc.errno) if exc.errno else str(exc)
        return health.l4_failed(info, elapsed())
    if proxy:  # the PROXY header, before TLS (net/proxied.py)
        send(transport, check_header(proxy, transport))
    if tls is not None:
        left = timeout - (loop.time() - started)
        secure, failure, _ = await check_handshake(transport, protocol, *tls, left)
        if secure is None:
            assert failure is not None
            return replace(failure, duration_ms=elapsed())
        transport = secure
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()
    return l6_passed(elapsed()) if tls is not None else health.l4_passed(elapsed())
