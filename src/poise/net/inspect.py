"""What the TCP and HTTP sessions share to run layer-4 rules (core/tcprules.py): the
connection as a Request the rules' fetches read, the connection and session rules run at
accept, and a refusal as HAProxy makes it.

HAProxy 2.6, observed on the same configuration: a connection refused by a `tcp-request
connection reject` rule is reset (RST) and not logged; one refused by a `tcp-request
session reject` rule is closed (FIN) and not logged; a `tcp-request content reject` is
logged, with PR as its termination state (the session's own log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from poise.config.model import Proxy
from poise.config.tune import BUFSIZE, MAXREWRITE
from poise.core.backend import Backend
from poise.core.frontend import Frontend
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.tcprules import Decision, TcpRuleSets, run_rules
from poise.core.termination import Failure
from poise.core.txn import Conn, Txn
from poise.net.context import Context
from poise.net.tls import client_sni

# Content rules see at most a buffer's worth of bytes: once that much is held, the
# contents are final (HAProxy: channel_full, the buffer less its reserve).
HELD_LIMIT = BUFSIZE - MAXREWRITE
_LINGER_RESET = struct.pack("ii", 1, 0)


def connection_request(conn: Conn, client: asyncio.BaseTransport) -> Request:
    """The connection's facts as a request for fetches: addresses, ports, TLS and its
    server name; no method, URI or header (an HTTP fetch finds nothing there)."""
    sock = client.get_extra_info("sockname")
    dst, dst_port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("", 0)
    if conn.dst_ip:  # from a PROXY header
        dst, dst_port = conn.dst_ip, conn.dst_port
    tls = client.get_extra_info("ssl_object")
    sni = client_sni(tls) if tls is not None else None
    return Request(
        "", "", "1.1", Headers(), conn.client_ip, conn.client_port, dst, dst_port,
        tls is not None, sni, conn=conn,
    )  # fmt: skip


def run_connection_rules(rules: TcpRuleSets, req: Request) -> Decision:
    """The `tcp-request connection` rules then the `session` ones (ACCEPT or REJECT:
    nothing waits there). A REJECT of the connection rules comes back as CLOSE, to tell
    the two apart (the first is a reset)."""
    if rules.connection:
        decision, _ = run_rules(rules.connection, req)
        if decision is Decision.REJECT:
            return Decision.CLOSE
    if rules.session:
        decision, _ = run_rules(rules.session, req)
        if decision is Decision.REJECT:
            return Decision.REJECT
    return Decision.ACCEPT


def refused(
    ctx: Context,
    frontend: Frontend,
    conn: Conn,
    client: asyncio.Transport,
    req: Request | None = None,
) -> bool:
    """Whether the frontend's connection and session rules refuse a connection just
    accepted; if so it is closed and counted out here (no session begun, nothing logged)."""
    rules = frontend.tcp
    if rules is None or (not rules.connection and not rules.session):
        return False
    decision = run_connection_rules(rules, req or connection_request(conn, client))
    if decision is Decision.ACCEPT:
        return False
    ctx.release(frontend)
    refuse(client, reset=decision is Decision.CLOSE)
    return True


def content_rejects(rules: TcpRuleSets, req: Request) -> bool:
    """An HTTP request's `tcp-request content` rules (HAProxy runs them on each request,
    its head parsed: nothing to wait for there)."""
    return run_rules(rules.content, req)[0] is Decision.REJECT


def backend_rejects(backend: Backend, frontend: Proxy, req: Request) -> bool:
    """The content rules of the backend an HTTP request was routed to (a `listen`
    section's ran as the frontend's)."""
    rules = backend.tcp
    if rules is None or not rules.content or backend.proxy is frontend:
        return False
    return content_rejects(rules, req)


def reject_content(txn: Txn, frontend_rule: bool) -> None:
    """An HTTP request refused by `tcp-request content reject`, as HAProxy 2.6 logs it:
    PR--, no request time, no status, no bytes; refused by the frontend's rules, before
    HAProxy's HTTP analysers, the request shows as <BADREQ>."""
    txn.term = Failure.REJECTED.code
    txn.t_head = -1
    txn.bad_request = frontend_rule
    txn.bytes_out = 0


def refuse(client: asyncio.Transport, reset: bool) -> None:
    """Close a refused connection: a reset (SO_LINGER 0) or a plain close."""
    if reset:
        sock = client.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        client.abort()
    else:
        client.close()
