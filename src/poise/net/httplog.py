"""The log line of an HTTP transaction: the frontend's `log-format` (core/logformat.py) or
the fixed `option httplog` line (core/httplog.py), with its header captures.

Captures cost nothing to a frontend without `capture ... header` lines. They are read from
the request and response heads when the line is written; HAProxy takes them when each
head arrives, before any rule runs, so a header that poise's rules or `option forwardfor`
changed shows here as changed (see core/httplog.py).

A failed transaction (an error state, a 5xx, a WebSocket upgrade the server did not
accept) is followed by its failure line (net/sessionlog.py, core/explain.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.core.explain import Facts, client_address
from poise.core.httplog import HttpLogRecord, capture_headers, format_httplog
from poise.core.logline import NOSRV, LogExtras
from poise.net.sessionlog import (
    common_timeout,
    connect_words,
    fill_extras,
    log_failure,
    ms,
    server_address,
    server_counts,
    socket_address,
    tls_reason,
    wall_clock,
)

if TYPE_CHECKING:
    from poise.net.http import HttpSession


def log_transaction(session: HttpSession, bad_request: bool) -> None:
    frontend = session.frontend
    if frontend.log is None:
        return
    traffic_line(session, bad_request)
    if failed(session):
        log_failure(frontend, http_facts(session))


def traffic_line(session: HttpSession, bad_request: bool) -> None:
    frontend = session.frontend
    sink = frontend.log
    if sink is None or not frontend.tcplog:
        return
    now = session.loop.time()
    backend = session.backend
    server = session.server
    req = session.req
    resp = session.resp
    connected = session.t_connect >= 0 and server is not None
    record = HttpLogRecord(
        client_ip=session.client_ip,
        client_port=session.client_port,
        request_date=wall_clock(session.req_start, now),
        frontend_name=frontend.name,
        backend_name=backend.proxy.name if backend is not None else frontend.name,
        server_name=server.name if server is not None else NOSRV,  # the last one tried
        tr=-1 if bad_request else session.t_head,
        tw=session.t_queue,
        tc=session.t_connect if connected else -1,
        tr_server=session.t_response,
        ta=int((now - session.req_start) * 1000),
        status=session.status,
        bytes_read=session.bytes_out,
        termination_state=session.term + session.cookie_status,
        actconn=session.ctx.actconn,
        feconn=frontend.cur_conn,
        # HAProxy counts the transaction out of its backend before it logs it.
        beconn=max(backend.backend.cur_sess - 1, 0) if backend is not None else 0,
        srv_conn=server.cur_sess if server is not None else 0,
        retries=session.retries,
        redispatched=session.redispatched,
        backend_queue=backend.backend.queued if backend is not None else 0,
        request_line=req.request_line if req is not None and not bad_request else "<BADREQ>",
    )
    proxy = frontend.proxy
    if not bad_request:  # HAProxy prints no capture block for a <BADREQ>
        # Captured by the session when each head arrived (before any rule touched them).
        if proxy.capture_request_headers:
            record.request_captures = session.req_captures or capture_headers(
                proxy.capture_request_headers, None
            )
        if proxy.capture_response_headers:
            record.response_captures = session.resp_captures or capture_headers(
                proxy.capture_response_headers, None
            )
    formatter = frontend.http_format
    if formatter is None:
        sink.send("info", format_httplog(record))
        return
    uses = formatter.uses
    extras = record.extras = LogExtras(
        request=req if not bad_request else None,
        response_version=resp.version if resp is not None else None,
    )
    if "fi" in uses or "fp" in uses or "[]" in uses:
        extras.frontend_ip, extras.frontend_port = session.dst_ip or None, session.dst_port
    upstream = session.upstream
    transport = upstream.transport if upstream is not None else None
    if "bi" in uses or "bp" in uses:
        extras.backend_ip, extras.backend_port = socket_address(transport, "sockname")
    if connected and server is not None and ("si" in uses or "sp" in uses):
        extras.server_ip, extras.server_port = socket_address(transport, "peername")
        if extras.server_ip is None:
            extras.server_ip = server.addr
            extras.server_port = server.port if server.port is not None else session.dst_port
    fill_extras(extras, frontend.name, uses, session.client)
    sink.send("info", formatter.render(record))


# -- the failure line -----------------------------------------------------------------------


def failed(session: HttpSession) -> bool:
    """A quick test before explain(): most transactions end `--` with a status below 500."""
    term = session.term
    status = session.status
    if term == "--":
        return status >= 500 or (session.websocket and status != 101)
    return term[:1] != "L" or status >= 500


def http_facts(session: HttpSession) -> Facts:
    backend = session.backend
    server = session.server
    # Kept by net/http.py where it has them (see the report of issue 7): why the last
    # connection attempt failed, the rule that answered, why poise refused the message.
    exc: BaseException | None = getattr(session, "connect_error", None)
    rule: str | None = getattr(session, "rule_reason", None)
    refusal: str | None = getattr(session, "refusal", None)
    no_server = session.term == "SC" and server is None
    return Facts(
        term=session.term + session.cookie_status,
        frontend=session.frontend.name,
        client=client_address(session.client_ip, session.client_port),
        backend=backend.proxy.name if backend is not None else None,
        server=server.name if server is not None else None,
        server_address=server_address(server, session.dst_port),
        http=True,
        status=session.status,
        websocket=session.websocket,
        tunnel=session.websocket and session.status == 101,
        retries=session.retries,
        redispatched=session.redispatched,
        connect_error=connect_words(exc),
        tls_error=tls_reason(backend, server, exc) if session.term == "SC" else None,
        timeout=http_timeout(session),
        rule=rule or None,
        reason=refusal or None,
        servers=server_counts(backend) if no_server else None,
    )


def http_timeout(session: HttpSession) -> tuple[str, int] | None:
    """The timeout that struck, as net/http.py arms them: (name, ms)."""
    term = session.term
    frontend = session.frontend
    backend = session.backend
    timeouts = frontend.proxy.timeouts
    if term == "cR":
        if timeouts.http_request:
            return "http-request", timeouts.http_request
        value = ms(frontend.client_timeout)
        return ("client", value) if value is not None else None
    if term[:1] not in ("c", "s") or term[1:2] not in ("H", "D"):
        return common_timeout(term, frontend, backend)
    if session.websocket and session.status == 101:  # the tunnel's idle timeout
        candidates = [
            ("tunnel", backend.tunnel_timeout if backend is not None else None),
            ("client", frontend.client_timeout),
            ("server", backend.server_timeout if backend is not None else None),
        ]
        for which, delay in candidates:
            if delay:
                return which, int(delay * 1000)
        return None
    if term[0] == "c":
        name, value = "client", ms(frontend.client_timeout)
    else:
        name, value = "server", ms(backend.server_timeout) if backend is not None else None
    return (name, value) if value is not None else None
