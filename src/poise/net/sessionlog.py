"""Turn a finished session into its log line and send it to the frontend's log targets:
the frontend's `log-format` (core/logformat.py) or the fixed `option tcplog` line.

Traffic lines go out at level `info`, as HAProxy's do (`err` for a failed session with
`option log-separate-errors`). With `option dontlognull` a connection on which the client
sent nothing is not logged; with `option dontlog-normal` only failed sessions are.

A session that failed gets a second line, which says where and why in words
(core/explain.py): `fe/be/srv 127.0.0.1:40000: failed while connecting: connection
refused by server be/srv (127.0.0.1:8443) (SC)`. It goes out at `notice`, and only to the
frontend's targets that take no traffic lines (`log ... notice`): the tools that read
HAProxy's lines count any other line as garbage. It is written whenever the frontend has
such a target, with or without `option tcplog`/`httplog`.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from poise.core.explain import Facts, ServerCounts, client_address, explain, failure_line
from poise.core.httplog import HttpLogRecord
from poise.core.logline import LogExtras, TcpLogRecord, format_tcplog
from poise.core.server import AdminState, ServerState
from poise.core.termination import NORMAL, Failure
from poise.core.txn import Conn, Txn
from poise.core.txnlog import tcp_captures, tcp_record, traffic_error

if TYPE_CHECKING:
    import asyncio

    from poise.core.backend import Backend
    from poise.core.frontend import Frontend
    from poise.net.context import Context
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
    address = extra_info(transport, which)
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None, None


def extra_info(transport: asyncio.BaseTransport, name: str) -> Any:
    """transport.get_extra_info(name), or None where asyncio's TLS transport, once closed,
    raises AttributeError (uvloop's still answers)."""
    try:
        return transport.get_extra_info(name)
    except AttributeError:
        return None


def fill_extras(
    record: LogExtras, frontend: str, uses: frozenset[str], client: asyncio.BaseTransport
) -> None:
    """The values of a `log-format` line that are the same for TCP and HTTP."""
    if "sslv" in uses or "sslc" in uses or "[]" in uses:
        tls = extra_info(client, "ssl_object")
        if tls is not None:  # an ssl.SSLObject: the names OpenSSL gives, as HAProxy's
            record.ssl_version = tls.version()
            cipher = tls.cipher()
            record.ssl_cipher = cipher[0] if cipher else None
            record.ssl_resumed = tls.session_reused
    record.request_counter = next(_streams)
    record.log_counter = count = _log_counts.get(frontend, 0)
    _log_counts[frontend] = count + 1
    if "pid" in uses:
        record.pid = os.getpid()
    if "H" in uses:
        record.hostname = HOSTNAME


def log_tcp_session(session: TcpSession, final: bool) -> None:
    frontend = session.frontend
    if frontend.log is None:
        return
    txn = session.record()
    tcp_traffic_line(session, txn, final)
    if final and txn.term != NORMAL:
        log_failure(frontend, tcp_facts(session, txn))


def tcp_traffic_line(session: TcpSession, txn: Txn, final: bool) -> None:
    frontend = session.frontend
    if frontend.log is None or not frontend.tcplog:
        return
    if final and frontend.dontlognull and txn.bytes_in == 0 and txn.term == NORMAL:
        return
    req = session.req  # its layer-4 rules' `set-log-level`
    tcp_line(
        frontend, txn, session.conn, session.client, session.server_transport,
        session.accept_time, session.loop.time(), session.ctx.actconn, final,
        log_level=req.log_level if req is not None else "",
    )  # fmt: skip


def tcp_line(  # noqa: PLR0917 (the shell's facts, each a plain value)
    frontend: Frontend,
    txn: Txn,
    conn: Conn,
    client: asyncio.BaseTransport,
    server_side: asyncio.BaseTransport | None,
    start: float,
    now: float,
    actconn: int,
    final: bool,
    *,
    log_level: str = "",
) -> None:
    """The `option tcplog` (or `log-format`) line of `txn`, which began at `start` (loop
    time): a TCP session's, or a request of a TCP frontend's connection turned HTTP
    (net/upgrade.py), which HAProxy logs in its frontend's format."""
    sink = frontend.log
    if sink is None:
        return
    level = frontend.traffic_level(
        traffic_error(txn.term, txn.retries, txn.redispatched, txn.status)
    )
    if level is None:
        return
    if log_level:  # `tcp-request|tcp-response content set-log-level`
        if log_level == "silent":
            return
        level = log_level
    proxy = frontend.proxy
    date = wall_clock(start, now)
    tt = int((now - start) * 1000)
    record = tcp_record(
        txn, conn, proxy, date=date, tt=tt, actconn=actconn, feconn=frontend.cur_conn,
        final=final,
    )  # fmt: skip
    formatter = frontend.tcp_format
    if formatter is None:
        sink.send(level, format_tcplog(record), sd=structured_data(frontend, record))
        return
    tcp_captures(record, proxy)
    uses = formatter.uses
    extras = record.extras = LogExtras(bytes_uploaded=txn.bytes_in)
    if "fi" in uses or "fp" in uses or "[]" in uses:
        if conn.dst_ip:  # from a PROXY header, or a transparent server's destination
            extras.frontend_ip, extras.frontend_port = conn.dst_ip, conn.dst_port
        else:
            extras.frontend_ip, extras.frontend_port = socket_address(client, "sockname")
    if "bi" in uses or "bp" in uses:
        extras.backend_ip, extras.backend_port = socket_address(server_side, "sockname")
    server = txn.server
    if server is not None and txn.t_connect >= 0 and ("si" in uses or "sp" in uses):
        extras.server_ip, extras.server_port = socket_address(server_side, "peername")
        if extras.server_ip is None:
            extras.server_ip = server.addr
            extras.server_port = server.port if server.port is not None else 0
    fill_extras(extras, frontend.name, uses, client)
    sink.send(level, formatter.render(record), sd=structured_data(frontend, record))


def structured_data(frontend: Frontend, record: TcpLogRecord | HttpLogRecord) -> str | None:
    """The `log-format-sd` of the frontend for this line's record, None without one."""
    sd = frontend.sd_format
    return sd.render(record) if sd is not None else None  # type: ignore[arg-type]


# -- the failure line -----------------------------------------------------------------------


def log_failure(frontend: Frontend, facts: Facts) -> None:
    """The failure line of a session, when it failed (explain() says None otherwise)."""
    sink = frontend.log
    if sink is None:
        return
    failure = explain(facts)
    if failure is not None:
        sink.explain(failure_line(facts, failure))


def server_address(server: ServerState | None, dst_ip: str, dst_port: int) -> str | None:
    """`127.0.0.1:8443`, `[::1]:8443`; a server without a port, or with `+N`, adds N to
    the port the client connected to (`dst_port`), a transparent one (0.0.0.0) goes to the
    address it connected to (`dst_ip`)."""
    if server is None:
        return None
    if server.config.address.family == "unix":  # `unix@PATH`, `abns@NAME`
        return str(server.config.address)
    port = server.port if server.port is not None else dst_port + server.port_offset
    addr = dst_ip if server.transparent and dst_ip else server.addr
    host = f"[{addr}]" if ":" in addr else addr
    return f"{host}:{port}"


def connect_words(exc: BaseException | None) -> str | None:
    """Why a connection attempt failed, in the system's words: `connection refused`,
    `no route to host`..."""
    if exc is None or isinstance(exc, ssl.SSLError):
        return None  # a TLS failure: its reason is the ServerTls's (tls_reason)
    if isinstance(exc, OSError) and exc.errno:
        if exc.errno == errno.ECONNREFUSED:
            return "connection refused"
        return os.strerror(exc.errno).lower()
    text = str(exc) or type(exc).__name__
    return text.lower()


def tls_reason(
    ctx: Context, backend: Backend | None, server: ServerState | None, exc: BaseException | None
) -> str | None:
    """Why the TLS handshake with `server` failed: the reason net/tls.py logged for it
    (kept until a handshake succeeds), unless the last attempt failed before TLS."""
    if backend is None or server is None:
        return None
    tls = ctx.io[backend].server_tls.get(server.id)
    if tls is None or tls.failing is None:
        return None
    if exc is not None and not isinstance(exc, ssl.SSLError):
        return None  # refused, unreachable...: TLS never started
    return tls.failing


def server_counts(backend: Backend | None) -> ServerCounts | None:
    if backend is None:
        return None
    servers = backend.servers
    return ServerCounts(
        total=len(servers),
        down=sum(1 for s in servers if not s.up and s.admin is not AdminState.MAINT),
        maint=sum(1 for s in servers if s.admin is AdminState.MAINT),
        drain=sum(1 for s in servers if s.up and s.admin is AdminState.DRAIN),
        no_weight=sum(1 for s in servers if s.up and s.admin is AdminState.READY and not s.weight),
    )


def ms(value: float | None) -> int | None:
    return None if value is None else int(value * 1000)


def common_timeout(
    term: str, frontend: Frontend, backend: Backend | None
) -> tuple[str, int] | None:
    """The timeout that struck for the `sC` and `sQ` states, TCP and HTTP alike."""
    connect = Failure.CONNECT_TIMEOUT.code
    if backend is None or term[:2] not in (connect, Failure.QUEUE_TIMEOUT.code):
        return None
    if term[:2] == connect:
        value = ms(backend.connect_timeout)
        return ("connect", value) if value is not None else None
    queue = backend.proxy.timeouts.queue
    name = "queue" if queue is not None else "connect"
    value = ms(backend.queue_timeout)
    return (name, value) if value is not None else None


def tcp_timeout(session: TcpSession, term: str) -> tuple[str, int] | None:
    backend = session.backend
    client_side, server_side = Failure.CLIENT_TIMEOUT.code, Failure.SERVER_TIMEOUT.code
    if term not in (client_side, server_side) or backend is None:
        return common_timeout(term, session.frontend, backend)
    name = "client" if term == client_side else "server"
    if backend.tunnel_timeout:
        name = "tunnel"
    elif session.client_eof or session.server_eof:
        fin = (
            session.frontend.client_fin_timeout
            if term == client_side
            else backend.server_fin_timeout
        )
        name = f"{name}-fin" if fin else name
    return name, int(session.idle * 1000)


def tcp_facts(session: TcpSession, txn: Txn) -> Facts:
    backend = session.backend
    server = txn.server
    exc = txn.connect_error
    no_server = txn.term == Failure.NO_SERVER.code and server is None
    conn = session.conn
    return Facts(
        term=txn.term,
        frontend=session.frontend.name,
        client=client_address(conn.client_ip, conn.client_port),
        backend=backend.proxy.name if backend is not None else None,
        server=server.name if server is not None else None,
        server_address=server_address(
            server,
            conn.dst_ip,
            (conn.dst_port or session.destination_port())
            if server is not None and server.port is None
            else 0,
        ),
        retries=txn.retries,
        redispatched=txn.redispatched,
        connect_error=connect_words(exc),
        tls_error=tls_reason(session.ctx, backend, server, exc),
        timeout=tcp_timeout(session, txn.term),
        servers=server_counts(backend) if no_server else None,
    )
