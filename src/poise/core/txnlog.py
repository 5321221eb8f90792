"""A finished transaction's log record, made from its `Txn` and its connection's `Conn`
(core/txn.py): the fields of `option httplog` and `option tcplog` (core/httplog.py,
core/logline.py) and of a `log-format` line, with the captures. Pure.

The shell (net/httplog.py, net/sessionlog.py) adds what only a socket knows (the server
connection's addresses, the TLS version) when the frontend's `log-format` shows it, and
sends the line; the failure line follows (core/explain.py) when `failed()` says so.
"""

from __future__ import annotations

from poise.config import model
from poise.core.http.message import Request
from poise.core.httplog import HttpLogRecord, capture_headers
from poise.core.logline import BADREQ, NOSRV, SERVICE_SERVERS, LogExtras, TcpLogRecord
from poise.core.termination import NORMAL, Cause
from poise.core.txn import Conn, Txn


def http_record(
    txn: Txn,
    conn: Conn,
    proxy: model.Proxy,
    *,
    date: float,
    ta: int,
    actconn: int,
    feconn: int,
) -> HttpLogRecord:
    """The `option httplog` fields of `txn`, which ended `ta` ms after it began at
    `date` (epoch seconds), with `actconn` and `feconn` sessions open then."""
    backend = txn.backend
    server = txn.server
    bad_request = txn.bad_request
    req = txn.req
    record = HttpLogRecord(
        client_ip=conn.client_ip,
        client_port=req.src_port if req is not None else conn.client_port,  # set-src-port
        request_date=date,
        frontend_name=proxy.name,
        backend_name=backend.name if backend is not None else proxy.name,
        # the last one tried, or what answered instead (<CACHE>, <STATS>, <PROMEX>)
        server_name=server.name if server is not None else _nosrv(txn, req),
        tr=-1 if bad_request else txn.t_head,
        tw=txn.t_queue,
        tc=txn.t_connect if txn.t_connect >= 0 and server is not None else -1,
        tr_server=txn.t_response,
        ta=ta,
        status=txn.status,
        bytes_read=txn.bytes_out,
        termination_state=txn.term + txn.cookie_status,
        actconn=actconn,
        feconn=feconn,
        # HAProxy counts the transaction out of its backend before it logs it.
        beconn=max(backend.cur_sess - 1, 0) if backend is not None else 0,
        srv_conn=server.cur_sess if server is not None else 0,
        retries=txn.retries,
        redispatched=txn.redispatched,
        backend_queue=backend.queued if backend is not None else 0,
        request_line=(req.received_line or req.request_line)
        if req is not None and not bad_request
        else BADREQ,
        frontend_tls=conn.ssl,  # %ft's "~"
    )
    if not bad_request:  # HAProxy prints no capture block for a <BADREQ>
        # Captured when each head arrived (before any rule touched them).
        if proxy.capture_request_headers:
            record.request_captures = tuple(txn.req_captures or ()) or capture_headers(
                proxy.capture_request_headers, None
            )
        if proxy.capture_response_headers:
            record.response_captures = tuple(txn.resp_captures or ()) or capture_headers(
                proxy.capture_response_headers, None
            )
    return record


def _nosrv(txn: Txn, req: Request | None) -> str:
    """No server: `<CACHE>` for an answer from the cache, `<STATS>` and `<PROMEX>` for the
    stats page's and the Prometheus exporter's, as HAProxy logs them."""
    if req is not None and req.cache is not None and req.cache.hit:
        return "<CACHE>"
    return SERVICE_SERVERS.get(txn.rule, NOSRV)


def http_extras(txn: Txn, conn: Conn, uses: frozenset[str]) -> LogExtras:
    """What a `log-format` line shows beyond `option httplog`, as far as the records know
    it (the shell adds the server connection's addresses and the TLS details)."""
    resp = txn.resp
    extras = LogExtras(
        request=txn.req if not txn.bad_request else None,
        response_version=resp.version if resp is not None else None,
    )
    if "fi" in uses or "fp" in uses or "[]" in uses:
        req = txn.req  # `set-dst`, `set-dst-port` change the request's, not the connection's
        if req is not None and req.dst_set:
            extras.frontend_ip, extras.frontend_port = req.dst, req.dst_port
        else:
            extras.frontend_ip, extras.frontend_port = conn.dst_ip or None, conn.dst_port
    return extras


def tcp_record(
    txn: Txn,
    conn: Conn,
    proxy: model.Proxy,
    *,
    date: float,
    tt: int,
    actconn: int,
    feconn: int,
    final: bool,
) -> TcpLogRecord:
    """The `option tcplog` fields of a TCP session (`final`: it ended; else `logasap`)."""
    backend = txn.backend
    server = txn.server
    record = TcpLogRecord(
        client_ip=conn.client_ip,
        client_port=conn.client_port,
        accept_date=date,
        frontend_name=proxy.name,
        backend_name=backend.name if backend is not None else proxy.name,
        server_name=server.name if server is not None else NOSRV,  # the last one tried
        tw=txn.t_queue,
        tc=txn.t_connect,
        tt=tt,
        bytes_read=txn.bytes_out,
        termination_state=txn.term or NORMAL,
        actconn=actconn,
        feconn=feconn,
        beconn=backend.cur_sess if backend is not None else 0,
        srv_conn=server.cur_sess if server is not None else 0,
        retries=txn.retries,
        redispatched=txn.redispatched,
        srv_queue=0,
        backend_queue=backend.queued if backend is not None else 0,
        logasap=not final,
    )
    return record


def tcp_captures(record: TcpLogRecord, proxy: model.Proxy) -> None:
    """A TCP session reads no header: a capture is there, and empty (HAProxy prints `{}`)."""
    if proxy.capture_request_headers:
        record.request_captures = (None,) * len(proxy.capture_request_headers)
    if proxy.capture_response_headers:
        record.response_captures = (None,) * len(proxy.capture_response_headers)


def failed(txn: Txn) -> bool:
    """Whether an HTTP transaction gets a failure line: a quick test before explain();
    most transactions end `--` with a status below 500."""
    term = txn.term
    status = txn.status
    if term == NORMAL:
        return status >= 500 or (txn.websocket and status != 101)
    return term[:1] != Cause.LOCAL.value or status >= 500


def traffic_error(term: str, retries: int, redispatched: bool, status: int = 0) -> bool:
    """Whether HAProxy counts a session's traffic line as an error (log.c `strm_log`),
    which `option dontlog-normal` keeps and `option log-separate-errors` sends at level
    err: an end other than a normal one or a local answer, a retry of a connection that
    then ended normally, a redispatch, or (HTTP) a status of 500 or more."""
    cause = term[:1]
    if cause == Cause.NONE.value:
        return retries > 0 or redispatched or status >= 500
    return cause != Cause.LOCAL.value or redispatched or status >= 500
