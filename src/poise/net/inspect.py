"""The I/O around the layer-4 rules (their decisions are core/layer4.py's): the
connection's facts read from its transport, and a connection the `tcp-request
connection` or `session` rules refuse closed as HAProxy closes it (a reset for the
first, a close for the second; neither logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from poise.core import sticktrack
from poise.core.frontend import Frontend
from poise.core.http.message import Request
from poise.core.layer4 import connection_decision, connection_facts, count_refused
from poise.core.tcprules import Decision
from poise.core.txn import Conn
from poise.net.context import Context
from poise.net.tls import client_sni

_LINGER_RESET = struct.pack("ii", 1, 0)


def connection_request(conn: Conn, client: asyncio.BaseTransport) -> Request:
    """The connection as layer-4 rules' fetches see it (core/layer4.connection_facts),
    from the client transport's socket and TLS."""
    tls = client.get_extra_info("ssl_object")
    sni = client_sni(tls) if tls is not None else None
    return connection_facts(conn, client.get_extra_info("sockname"), tls is not None, sni)


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
    decision = connection_decision(rules, req or connection_request(conn, client))
    if decision is Decision.ACCEPT:
        if conn.track is not None:
            sticktrack.session_started(conn)
        return False
    if conn.track is not None:
        sticktrack.connection_ended(conn)
    count_refused(decision, frontend, conn.sock)
    ctx.release(frontend, conn.sock)
    refuse(client, reset=decision is Decision.CLOSE)
    return True


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
