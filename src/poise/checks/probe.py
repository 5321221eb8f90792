"""Health-check probes. A TCP check connects and closes: the server is alive if the
connection is accepted within the timeout.

The probe closes with a reset (SO_LINGER 0), as HAProxy does, so that frequent checks do
not leave thousands of sockets in TIME_WAIT on the balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct

from poise.core import health

LINGER_RESET = struct.pack("ii", 1, 0)


async def tcp_check(host: str, port: int, timeout: float) -> health.CheckResult:
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> int:
        return int((loop.time() - started) * 1000)

    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(asyncio.Protocol, host, port), timeout
        )
    except TimeoutError:
        return health.l4_timeout(elapsed())
    except OSError as exc:
        info = os.strerror(exc.errno) if exc.errno else str(exc)
        return health.l4_failed(info, elapsed())
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()
    return health.l4_passed(elapsed())
