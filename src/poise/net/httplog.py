"""The `option httplog` line of an HTTP transaction (core/httplog.py formats it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.core.httplog import HttpLogRecord, format_httplog
from poise.core.logline import NOSRV
from poise.net.sessionlog import wall_clock

if TYPE_CHECKING:
    from poise.net.http import HttpSession


def log_transaction(session: HttpSession, bad_request: bool) -> None:
    frontend = session.frontend
    sink = frontend.log
    if sink is None or not frontend.tcplog:
        return
    now = session.loop.time()
    backend = session.backend
    server = session.server
    req = session.req
    connected = session.t_connect >= 0 and server is not None
    record = HttpLogRecord(
        client_ip=session.client_ip,
        client_port=session.client_port,
        request_date=wall_clock(session.req_start, now),
        frontend_name=frontend.name,
        backend_name=backend.proxy.name if backend is not None else frontend.name,
        server_name=server.name if connected and server is not None else NOSRV,
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
        beconn=backend.backend.cur_sess if backend is not None else 0,
        srv_conn=server.cur_sess if server is not None else 0,
        retries=session.retries,
        redispatched=session.redispatched,
        backend_queue=backend.backend.queued if backend is not None else 0,
        request_line=req.request_line if req is not None and not bad_request else "<BADREQ>",
    )
    sink.send("info", format_httplog(record))
