"""Turn a finished session into its log line and send it to the frontend's log targets.

Traffic lines go out at level `info`, as HAProxy's do. With `option dontlognull` a
connection on which the client sent nothing is not logged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from poise.core.httplog import HttpLogRecord, format_httplog
from poise.core.logline import NOSRV, TcpLogRecord, format_tcplog

if TYPE_CHECKING:
    from poise.net.context import FrontendRuntime
    from poise.net.tcp import TcpSession


def wall_clock(loop_time: float, loop_now: float) -> float:
    """Convert a reading of the loop's monotonic clock into epoch seconds."""
    return time.time() - (loop_now - loop_time)


def log_tcp_session(session: TcpSession, final: bool) -> None:
    frontend = session.frontend
    sink = frontend.log
    if sink is None or not frontend.tcplog:
        return
    if final and frontend.dontlognull and session.bytes_in == 0 and session.term == "--":
        return
    backend = session.backend
    server = session.server
    now = session.loop.time()
    record = TcpLogRecord(
        client_ip=session.client_ip,
        client_port=session.client_port,
        accept_date=wall_clock(session.accept_time, now),
        frontend_name=frontend.name,
        backend_name=backend.proxy.name if backend is not None else frontend.name,
        server_name=server.name if server is not None and session.t_connect >= 0 else NOSRV,
        tw=session.t_queue,
        tc=session.t_connect,
        tt=int((now - session.accept_time) * 1000),
        bytes_read=session.bytes_out,
        termination_state=session.term or "--",
        actconn=session.ctx.actconn,
        feconn=frontend.cur_conn,
        beconn=backend.backend.cur_sess if backend is not None else 0,
        srv_conn=server.cur_sess if server is not None else 0,
        retries=session.retries,
        redispatched=session.redispatched,
        srv_queue=0,
        backend_queue=backend.backend.queued if backend is not None else 0,
        logasap=not final,
    )
    sink.send("info", format_tcplog(record))


def log_http(frontend: FrontendRuntime, record: HttpLogRecord) -> None:
    sink = frontend.log
    if sink is None:
        return
    sink.send("info", format_httplog(record))
