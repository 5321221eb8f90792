"""Turn a finished session into its log line and send it to the frontend's log targets:
the frontend's `log-format` (core/logformat.py) or the fixed `option tcplog` line.

Traffic lines go out at level `info`, as HAProxy's do. With `option dontlognull` a
connection on which the client sent nothing is not logged.

A session that failed gets a second line right after its traffic line, which says where
and why in words (core/explain.py): `fe/be/srv 127.0.0.1:40000: failed while connecting:
connection refused by server be/srv (127.0.0.1:8443) (SC)`. It goes out at `notice`, one
level above the traffic lines, so that a target with `log ... notice` receives the
failures alone; at `err` under `option log-separate-errors`, which raises the traffic line
of a failed session to `err` in HAProxy: a target that gets the traffic line gets its
explanation too. It is written whenever the frontend has a `log` target, with or without
`option tcplog`/`httplog` (a failure is worth a line even where traffic is not logged).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING

from poise.core.explain import Facts, ServerCounts, client_address, explain, failure_line
from poise.core.httplog import HttpLogRecord, format_httplog
from poise.core.logline import NOSRV, LogExtras, TcpLogRecord, format_tcplog
from poise.core.server import AdminState, ServerState

if TYPE_CHECKING:
    import asyncio

    from poise.net.context import BackendRuntime, FrontendRuntime
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
    if sink is None:
        return
    tcp_traffic_line(session, final)
    if final and session.term != "--":
        log_failure(frontend, tcp_facts(session))


def tcp_traffic_line(session: TcpSession, final: bool) -> None:
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
        server_name=server.name if server is not None else NOSRV,  # the last one tried
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


# -- the failure line -----------------------------------------------------------------------


def failure_level(frontend: FrontendRuntime) -> str:
    """`notice`; `err` under `option log-separate-errors` (see the top of this file)."""
    if any(option.value == "log-separate-errors" for option in frontend.proxy.options):
        return "err"
    return "notice"


def log_failure(frontend: FrontendRuntime, facts: Facts) -> None:
    """The failure line of a session, when it failed (explain() says None otherwise)."""
    sink = frontend.log
    if sink is None:
        return
    failure = explain(facts)
    if failure is not None:
        sink.send(failure_level(frontend), failure_line(facts, failure))


def server_address(server: ServerState | None, default_port: int) -> str | None:
    """`127.0.0.1:8443`, `[::1]:8443` (a server without a port: the client's port)."""
    if server is None:
        return None
    port = server.port if server.port is not None else default_port
    host = f"[{server.addr}]" if ":" in server.addr else server.addr
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
    backend: BackendRuntime | None, server: ServerState | None, exc: BaseException | None
) -> str | None:
    """Why the TLS handshake with `server` failed: the reason net/tls.py logged for it
    (kept until a handshake succeeds), unless the last attempt failed before TLS."""
    if backend is None or server is None:
        return None
    tls = backend.server_tls.get(server.id)
    if tls is None or tls.failing is None:
        return None
    if exc is not None and not isinstance(exc, ssl.SSLError):
        return None  # refused, unreachable...: TLS never started
    return tls.failing


def server_counts(backend: BackendRuntime | None) -> ServerCounts | None:
    if backend is None:
        return None
    servers = backend.backend.servers
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
    term: str, frontend: FrontendRuntime, backend: BackendRuntime | None
) -> tuple[str, int] | None:
    """The timeout that struck for the `sC` and `sQ` states, TCP and HTTP alike."""
    if backend is None or term[:2] not in ("sC", "sQ"):
        return None
    if term[:2] == "sC":
        value = ms(backend.connect_timeout)
        return ("connect", value) if value is not None else None
    queue = backend.proxy.timeouts.queue
    name = "queue" if queue is not None else "connect"
    value = ms(backend.queue_timeout)
    return (name, value) if value is not None else None


def tcp_timeout(session: TcpSession) -> tuple[str, int] | None:
    term = session.term
    backend = session.backend
    if term not in ("cD", "sD") or backend is None:
        return common_timeout(term, session.frontend, backend)
    name = "client" if term == "cD" else "server"
    if backend.tunnel_timeout:
        name = "tunnel"
    elif session.client_eof or session.server_eof:
        fin = session.frontend.client_fin_timeout if term == "cD" else backend.server_fin_timeout
        name = f"{name}-fin" if fin else name
    return name, int(session.idle * 1000)


def tcp_facts(session: TcpSession) -> Facts:
    backend = session.backend
    server = session.server
    exc = session.connect_error
    no_server = session.term == "SC" and server is None
    return Facts(
        term=session.term,
        frontend=session.frontend.name,
        client=client_address(session.client_ip, session.client_port),
        backend=backend.proxy.name if backend is not None else None,
        server=server.name if server is not None else None,
        server_address=server_address(
            server, session.destination_port() if server is not None and server.port is None else 0
        ),
        retries=session.retries,
        redispatched=session.redispatched,
        connect_error=connect_words(exc),
        tls_error=tls_reason(backend, server, exc),
        timeout=tcp_timeout(session),
        servers=server_counts(backend) if no_server else None,
    )
