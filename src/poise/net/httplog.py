"""The log line of an HTTP transaction: the frontend's `log-format` (core/logformat.py) or
the fixed `option httplog` line (core/httplog.py), with its header captures.

Captures cost nothing to a frontend without `capture ... header` lines. They are read from
the request and response heads when the line is written; HAProxy takes them when each
head arrives, before any rule runs, so a header that poise's rules or `option forwardfor`
changed shows here as changed (see core/httplog.py).

A failed transaction (an error state, a 5xx, a WebSocket upgrade the server did not
accept) is explained on the targets that take explanations (net/sessionlog.py,
core/explain.py). `option dontlog-normal` and `option log-separate-errors` choose
whether and at which level the traffic line goes (core/txnlog.py `traffic_error`).
"""

from __future__ import annotations

import asyncio

from poise.core.backend import Backend
from poise.core.explain import Facts, client_address
from poise.core.frontend import Frontend
from poise.core.httplog import format_httplog
from poise.core.termination import Cause, Failure
from poise.core.txn import Conn, Txn
from poise.core.txnlog import failed, http_extras, http_record, traffic_error
from poise.net.context import Context
from poise.net.sessionlog import (
    common_timeout,
    connect_words,
    fill_extras,
    log_failure,
    ms,
    server_address,
    server_counts,
    socket_address,
    structured_data,
    tls_reason,
    wall_clock,
)

TIMEOUTS = (Cause.CLIENT_TIMEOUT.value, Cause.SERVER_TIMEOUT.value)


def log_transaction(  # noqa: PLR0917 (the shell's facts, each a plain value)
    txn: Txn,
    conn: Conn,
    frontend: Frontend,
    backend: Backend | None,
    ctx: Context,
    now: float,
    client: asyncio.BaseTransport,
    server_side: asyncio.BaseTransport | None,
) -> None:
    """The lines of `txn`, ended `now` (loop time): its traffic line, then its failure
    line if it failed. `client` and `server_side`: the transports, for what a `log-format`
    may show of their sockets."""
    sink = frontend.log
    if sink is None:
        return
    level = frontend.traffic_level(
        traffic_error(txn.term, txn.retries, txn.redispatched, txn.status)
    )
    if level is not None and (req := txn.req) is not None and req.log_level:
        level = req.log_level  # set-log-level
        if level == "silent":
            return
    if frontend.tcplog and level is not None:
        proxy = frontend.proxy
        date = wall_clock(txn.start, now)
        ta = int((now - txn.start) * 1000)
        record = http_record(
            txn, conn, proxy, date=date, ta=ta, actconn=ctx.actconn, feconn=frontend.cur_conn
        )
        formatter = frontend.http_format
        if formatter is None:
            sink.send(level, format_httplog(record), sd=structured_data(frontend, record))
        else:
            uses = formatter.uses
            extras = record.extras = http_extras(txn, conn, uses)
            if "bi" in uses or "bp" in uses:
                extras.backend_ip, extras.backend_port = socket_address(server_side, "sockname")
            server = txn.server
            if txn.t_connect >= 0 and server is not None and ("si" in uses or "sp" in uses):
                extras.server_ip, extras.server_port = socket_address(server_side, "peername")
                if extras.server_ip is None:
                    extras.server_ip = server.addr
                    extras.server_port = server.port if server.port is not None else conn.dst_port
            fill_extras(extras, frontend.name, uses, client)
            sink.send(level, formatter.render(record), sd=structured_data(frontend, record))
    if failed(txn):
        log_failure(frontend, http_facts(txn, conn, frontend, backend, ctx))


# -- the failure line -----------------------------------------------------------------------


def http_facts(
    txn: Txn, conn: Conn, frontend: Frontend, backend: Backend | None, ctx: Context
) -> Facts:
    server = txn.server
    # Kept by net/http.py where it has them (see the report of issue 7): why the last
    # connection attempt failed, the rule that answered, why poise refused the message.
    exc = txn.connect_error
    no_server = txn.term == Failure.NO_SERVER.code and server is None
    return Facts(
        term=txn.term + txn.cookie_status,
        frontend=frontend.name,
        client=client_address(conn.client_ip, conn.client_port),
        backend=backend.proxy.name if backend is not None else None,
        server=server.name if server is not None else None,
        server_address=server_address(server, conn.dst_ip, conn.dst_port),
        http=True,
        status=txn.status,
        websocket=txn.websocket,
        tunnel=txn.websocket and txn.status == 101,
        retries=txn.retries,
        redispatched=txn.redispatched,
        connect_error=connect_words(exc),
        tls_error=tls_reason(ctx, backend, server, exc)
        if txn.term == Failure.NO_SERVER.code
        else None,
        timeout=http_timeout(txn, frontend, backend),
        rule=txn.rule or None,
        reason=txn.refusal or None,
        servers=server_counts(backend) if no_server else None,
    )


def http_timeout(txn: Txn, frontend: Frontend, backend: Backend | None) -> tuple[str, int] | None:
    """The timeout that struck, as net/http.py arms them: (name, ms)."""
    term = txn.term
    timeouts = frontend.proxy.timeouts
    if term == Failure.REQUEST_TIMEOUT.code:
        if timeouts.http_request:
            return "http-request", timeouts.http_request
        value = ms(frontend.client_timeout)
        return ("client", value) if value is not None else None
    if term[:1] not in TIMEOUTS or term[1:2] not in ("H", "D"):
        return common_timeout(term, frontend, backend)
    if txn.websocket and txn.status == 101:  # the tunnel's idle timeout
        candidates = [
            ("tunnel", backend.tunnel_timeout if backend is not None else None),
            ("client", frontend.client_timeout),
            ("server", backend.server_timeout if backend is not None else None),
        ]
        for which, delay in candidates:
            if delay:
                return which, int(delay * 1000)
        return None
    if term[0] == Cause.CLIENT_TIMEOUT.value:
        name, value = "client", ms(frontend.client_timeout)
    else:
        name, value = "server", ms(backend.server_timeout) if backend is not None else None
    return (name, value) if value is not None else None
