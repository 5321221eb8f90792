"""A client's PROXY protocol header, read before anything else on the connection
(`bind ... accept-proxy`; `tcp-request connection expect-proxy layer4` reads it the same
way: `receive_header`).

As HAProxy 2.6 does (src/connection.c conn_recv_proxy): once the connection is readable,
its bytes are peeked once (MSG_PEEK) and the header is parsed from them (core/proxyproto.py);
a header not whole in that first read is refused as truncated; the header's bytes, and only
they, are then read off the socket, so what follows (a TLS ClientHello, a request) is left
for the session. The wait is bounded by `timeout client`. A refused header closes the
connection with a reset and is logged with HAProxy's line
(`127.0.0.1:40000 [date] fe/1: Received an invalid PROXY protocol header`); a connection
that sent nothing is not logged under `option dontlognull`.

The addresses of the header (a LOCAL command or `PROXY UNKNOWN` keeps the connection's
own) are given to the session before its connection_made (`deliver`), so that everything
that reads the client's address (logs, `src`, `forwardfor`, `balance source`, stickiness,
`show sess`) reads the header's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from poise.core import explain
from poise.core.proxyproto import ProxyHeader, Refusal, parse
from poise.core.txn import Conn
from poise.net.tls import TlsAccept, bind_number

if TYPE_CHECKING:
    from poise.core.frontend import Frontend
    from poise.net.listener import Listener

PEEK = 4096  # more than any header HAProxy sends (v2 with every TLV fits)
_LINGER_0 = struct.pack("ii", 1, 0)


async def receive_header(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float | None
) -> ProxyHeader | Refusal:
    """Wait for the PROXY header of a non-blocking accepted socket and take it off the
    socket, or say why not (the caller closes the connection)."""
    deadline = loop.time() + timeout if timeout else None
    fd = sock.fileno()
    while True:
        ready: asyncio.Future[bool] = loop.create_future()
        loop.add_reader(fd, _set, ready, True)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, _set, ready, False)
        try:
            readable = await ready
        finally:
            loop.remove_reader(fd)
            if timer is not None:
                timer.cancel()
        if not readable:
            return Refusal.TIMEOUT
        try:
            data = sock.recv(PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue  # woken for nothing
        except OSError:
            return Refusal.ABORT
        break
    if not data:
        return Refusal.EMPTY
    parsed = parse(data)
    if parsed is None:
        return Refusal.TRUNCATED  # HAProxy reads once: a header comes in one segment
    if isinstance(parsed, Refusal):
        return parsed
    header, used = parsed
    try:
        taken = sock.recv(used)
    except OSError:
        return Refusal.ABORT
    return header if len(taken) == used else Refusal.ABORT


def _set(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def deliver(protocol: asyncio.Protocol, header: ProxyHeader) -> asyncio.Protocol:
    """Give a session (or the TLS handshake that will make one) the header's addresses
    before its connection_made."""
    if header.src is None:
        return protocol  # LOCAL / UNKNOWN: the connection's own addresses
    if isinstance(protocol, TlsAccept):
        protocol.proxied = header
        return protocol
    conn = getattr(protocol, "conn", None)
    if isinstance(conn, Conn):
        conn.proxied = header
    return protocol


class ProxyReader:
    """What the connections of one `accept-proxy` bind share."""

    __slots__ = ("bind", "frontend", "loop", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, frontend: Frontend, listener: Listener
    ) -> None:
        self.loop = loop
        self.frontend = frontend
        self.timeout = frontend.client_timeout  # HAProxy: the embryonic session's timeout
        self.bind = listener.bind.name or str(bind_number(frontend.proxy.binds, listener.bind))

    async def receive(
        self, conn: socket.socket, factory: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol] | None:
        """The factory of this connection's session, or None: refused (and logged)."""
        accepted = time.time()
        result = await receive_header(self.loop, conn, self.timeout)
        if isinstance(result, ProxyHeader):
            header = result
            return lambda: deliver(factory(), header)
        self.refused(conn, accepted, result)
        return None

    def refused(self, conn: socket.socket, accepted: float, refusal: Refusal) -> None:
        with contextlib.suppress(OSError):  # HAProxy resets the connection
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
        frontend = self.frontend
        sink = frontend.log
        if sink is None or (refusal.empty and frontend.dontlognull):
            return
        try:
            peer = conn.getpeername()
        except OSError:
            peer = None
        ip, port = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("unix", 0)
        line = explain.handshake_line(
            ip, port, accepted, frontend.name, bind=self.bind, message=refusal.value
        )
        sink.send("info", line)
