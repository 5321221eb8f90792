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

`server_header` is what a server with `send-proxy`, `send-proxy-v2` or `proxy-v2-options`
is sent first (before TLS on an `ssl` server): the client's addresses as this side knows
them (a header it received included), and the v2 TLVs the options ask for, as HAProxy
2.6's make_proxy_line_v2 fills them: ALPN when the client negotiated one, AUTHORITY from a
received header or the client's SNI, UNIQUE_ID (empty: poise has no `unique-id-format`,
and HAProxy then sends an empty one), SSL with the client's TLS version, its certificate's
CN and the cipher.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography import x509

from poise.certs.inspect import common_name
from poise.core import explain
from poise.core import proxyproto as pp
from poise.core.proxyproto import ProxyHeader, Refusal, parse
from poise.core.txn import Conn
from poise.net.tls import TlsAccept, bind_number, client_sni

if TYPE_CHECKING:
    from poise.config.model import Server
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
        try:
            result = await receive_header(self.loop, conn, self.timeout)
        except asyncio.CancelledError:  # the process stops: the connection is closed
            return None
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
        sink.send(frontend.error_level, line)  # an error (HAProxy's sess_log)


def server_header(
    flags: frozenset[str],
    conn: Conn,
    dst: tuple[str, int] | None,
    tls: ssl.SSLObject | None,
    *,
    check: bool = False,
) -> bytes:
    """The header a server is sent: for a client connection (`conn`, `dst` the address it
    reached, `tls` its TLS), or for a health check (`check`: `conn` holds the check's own
    connection, and v2 sends a LOCAL command as HAProxy does for a connection it opened)."""
    src = (conn.client_ip, conn.client_port) if conn.client_ip else None
    if "v2" not in flags:
        return pp.v1_line(src, dst)
    if check:
        src = dst = None
    tlvs: list[tuple[int, bytes]] = []
    if tls is not None:
        alpn = tls.selected_alpn_protocol()
        if alpn:
            tlvs.append((pp.ALPN, alpn.encode()))
    if "authority" in flags:
        proxied = conn.proxied
        authority = proxied.authority if proxied is not None else None
        if authority is None and tls is not None:
            authority = client_sni(tls)  # the name the client asked for
        if authority:
            tlvs.append((pp.AUTHORITY, authority.encode()))
    if "unique-id" in flags and not check:
        tlvs.append((pp.UNIQUE_ID, b""))
    if "ssl" in flags:
        tlvs.append((pp.SSL, _ssl_value(flags, tls)))
    return pp.v2_header(src, dst, tlvs, with_crc32c="crc32c" in flags)


def _ssl_value(flags: frozenset[str], tls: ssl.SSLObject | None) -> bytes:
    if tls is None:
        return pp.ssl_tlv(0, 0)
    client = pp.CLIENT_SSL
    subs: list[tuple[int, bytes]] = []
    version = tls.version()
    if version:
        subs.append((pp.SSL_VERSION, version.encode()))
    der = tls.getpeercert(True)
    if der is not None:
        client |= pp.CLIENT_CERT_CONN | pp.CLIENT_CERT_SESS
        if "cert-cn" in flags:
            try:
                name = common_name(x509.load_der_x509_certificate(der))
            except ValueError:
                name = None
            if name:
                subs.append((pp.SSL_CN, name.encode()))
    # The bind's own certificate (HAProxy's SSL_get_certificate), kept on its context.
    sig, key = getattr(tls.context, "poise_cert", (None, None))
    if "cert-key" in flags and key:
        subs.append((pp.SSL_KEY_ALG, key.encode()))
    if "cert-sig" in flags and sig:
        subs.append((pp.SSL_SIG_ALG, sig.encode()))
    if "ssl-cipher" in flags:
        cipher = tls.cipher()
        if cipher is not None:
            subs.append((pp.SSL_CIPHER, cipher[0].encode()))
    # A certificate that did not verify ended the handshake: the result is always 0 (OK).
    return pp.ssl_tlv(client, 0, subs)


def destination_of(transport: asyncio.BaseTransport | None, conn: Conn) -> tuple[str, int] | None:
    """The address the client connected to: a received header's, else the socket's."""
    if conn.dst_ip:
        return conn.dst_ip, conn.dst_port
    sock = transport.get_extra_info("sockname") if transport is not None else None
    return (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None


def take_addresses(conn: Conn, transport: asyncio.BaseTransport) -> None:
    """The client's address and the one it reached: a PROXY header's (`accept-proxy`),
    else the socket's."""
    if conn.proxied is not None:
        conn.use_proxied()
        return
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple):
        conn.client_ip, conn.client_port = peer[0], peer[1]
    sock = transport.get_extra_info("sockname")
    if isinstance(sock, tuple):
        conn.dst_ip, conn.dst_port = sock[0], sock[1]


def check_header(flags: frozenset[str], transport: asyncio.BaseTransport) -> bytes:
    """What a health check sends first (`check-send-proxy`, or a `send-proxy*` server
    checked on its own address): v1 names the check's own connection, v2 is a LOCAL
    command, as HAProxy 2.6 sends them."""
    conn = Conn()
    local = transport.get_extra_info("sockname")
    if isinstance(local, tuple):
        conn.client_ip, conn.client_port = str(local[0]), int(local[1])
    peer = transport.get_extra_info("peername")
    dst = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
    return server_header(flags, conn, dst, None, check=True)


def check_flags(server: Server) -> frozenset[str]:
    """The PROXY flags a server's health checks use (empty: none): HAProxy sends the
    header on checks with `check-send-proxy`, or when the server sends it and is checked
    on its own address (no `port`, no `addr`)."""
    if server.check_send_proxy:
        return server.proxy_protocol or frozenset({"v1"})
    if server.proxy_protocol and server.check_port is None and server.check_addr is None:
        return server.proxy_protocol
    return frozenset()
