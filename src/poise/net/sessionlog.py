"""Turn a finished session into its log line and send it to the frontend's log targets:
the frontend's `log-format` (core/logformat.py) or the fixed `option tcplog` line.

Traffic lines go out at level `info`, as HAProxy's do. With `option dontlognull` a
connection on which the client sent nothing is not logged.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from typing import TYPE_CHECKING

from poise.core.httplog import HttpLogRecord, format_httplog
from poise.core.logline import NOSRV, LogExtras, TcpLogRecord, format_tcplog

if TYPE_CHECKING:
    import asyncio

    from poise.net.context import FrontendRuntime
    from poise.net.tcp import TcpSession

HOSTNAME = socket.gethostname()  # %H: HAProxy reads it once at start-up too
# %rt: HAProxy numbers every stream of the process from 0; poise numbers the sessions and
# transactions it logs. %lc: the lines each frontend logged before.
_streams = itertools.count()
_log_counts: dict[str, int] = {}


def wall_clock(loop_time: float, loop_now: float) -> float:
    """Convert a reading of the loop's monotonic clock into epoch seconds."""
    return time.time() - (loop_now - loop_time)


def socket_address(
    transport: asyncio.BaseTransport | None, which: str
) -> tuple[str | None, int | None]:
    """A transport's "sockname" or "peername" as (ip, port); (None, None) when unknown."""
    if transport is None:
        return None, None
    address = transport.get_extra_info(which)
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None, None


def fill_extras(
    record: LogExtras, frontend: str, uses: frozenset[str], client: asyncio.BaseTransport
) -> None:
    """The values of a `log-format` line that are the same for TCP and HTTP."""
    if "sslv" in uses or "sslc" in uses:
        tls = client.get_extra_info("ssl_object")
        if tls is not None:  # an ssl.SSLObject: the names OpenSSL gives, as HAProxy's
            record.ssl_version = tls.version()
            cipher = tls.cipher()
            record.ssl_cipher = cipher[0] if cipher else None
    record.request_counter = next(_streams)
    record.log_counter = count = _log_counts.get(frontend, 0)
    _log_counts[frontend] = count + 1
    if "pid" in uses:
        record.pid = os.getpid()
    if "H" in uses:
        record.hostname = HOSTNAME


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
    connected = server is not None and session.t_connect >= 0
    record = TcpLogRecord(
        client_ip=session.client_ip,
        client_port=session.client_port,
        accept_date=wall_clock(session.accept_time, now),
        frontend_name=frontend.name,
        backend_name=backend.proxy.name if backend is not None else frontend.name,
        server_name=server.name if connected and server is not None else NOSRV,
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
    formatter = frontend.tcp_format
    if formatter is None:
        sink.send("info", format_tcplog(record))
        return
    proxy = frontend.proxy
    # A TCP session reads no header: a capture is there, and empty (HAProxy prints `{}`).
    if proxy.capture_request_headers:
        record.request_captures = (None,) * len(proxy.capture_request_headers)
    if proxy.capture_response_headers:
        record.response_captures = (None,) * len(proxy.capture_response_headers)
    uses = formatter.uses
    extras = record.extras = LogExtras(bytes_uploaded=session.bytes_in)
    if "fi" in uses or "fp" in uses or "[]" in uses:
        extras.frontend_ip, extras.frontend_port = socket_address(session.client, "sockname")
    transport = session.server_transport
    if "bi" in uses or "bp" in uses:
        extras.backend_ip, extras.backend_port = socket_address(transport, "sockname")
    if connected and server is not None and ("si" in uses or "sp" in uses):
        extras.server_ip, extras.server_port = socket_address(transport, "peername")
        if extras.server_ip is None:
            extras.server_ip = server.addr
            extras.server_port = server.port if server.port is not None else 0
    fill_extras(extras, frontend.name, uses, session.client)
    sink.send("info", formatter.render(record))


def log_http(frontend: FrontendRuntime, record: HttpLogRecord) -> None:
    sink = frontend.log
    if sink is None:
        return
    sink.send("info", format_httplog(record))
