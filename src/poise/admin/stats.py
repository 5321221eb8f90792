"""HAProxy's statistics formats, computed from poise's run-time model: the `show stat` CSV
columns and the fields of each row (admin/stats_report.py assembles the rows, once for
every format), the `show info` lines, the `show servers state` dump (format version 1)
and what `show sess` needs to know of a session.

Tools that people point at HAProxy (exporters, `hatop`, scripts reading the CSV by column
position) must work against poise, so the column list is HAProxy 2.6's, byte for byte,
including the `-` marker that ends the static fields and the columns of the modules
HAProxy builds in (SSL, HTTP/2, HTTP/1). A field poise does not track yet is left empty,
as HAProxy leaves empty the fields it has no value for; a value poise derives from the
configuration (limits, `fullconn`) is computed the way HAProxy computes it.

Pure: reads a View that the shell builds from the running Context, changes nothing. Time
comes in as `View.now`, a reading of the loop's clock (the clock of
`ServerState.last_change`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from poise.admin.stats_server import check_fields, server_status, traffic_fields
from poise.config import model
from poise.core import slowstart, traffic
from poise.core.backend import Backend
from poise.core.balancer import eligible
from poise.core.health import INITIALIZING
from poise.core.http import cache as http_cache
from poise.core.server import AdminState, ServerState
from poise.core.sockstats import SocketCounters

# management.txt 9.1 "CSV format"; HAProxy only ever appends, never reorders.
COLUMNS: tuple[str, ...] = (
    "pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
    "dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act",
    "bck", "chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid",
    "throttle", "lbtot", "tracked", "type", "rate", "rate_lim", "rate_max", "check_status",
    "check_code", "check_duration", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx",
    "hrsp_5xx", "hrsp_other", "hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt",
    "srv_abrt", "comp_in", "comp_out", "comp_byp", "comp_rsp", "lastsess", "last_chk",
    "last_agt", "qtime", "ctime", "rtime", "ttime", "agent_status", "agent_code",
    "agent_duration", "check_desc", "agent_desc", "check_rise", "check_fall", "check_health",
    "agent_rise", "agent_fall", "agent_health", "addr", "cookie", "mode", "algo", "conn_rate",
    "conn_rate_max", "conn_tot", "intercepted", "dcon", "dses", "wrew", "connect", "reuse",
    "cache_lookups", "cache_hits", "srv_icur", "src_ilim", "qtime_max", "ctime_max",
    "rtime_max", "ttime_max", "eint", "idle_conn_cur", "safe_conn_cur", "used_conn_cur",
    "need_conn_est", "uweight", "agg_server_status", "agg_server_check_status",
    "agg_check_status",
)  # fmt: skip
# The statistics of the modules HAProxy 2.6 builds in, after the `-` marker.
MODULE_COLUMNS: tuple[str, ...] = (
    "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake", "h2_headers_rcvd", "h2_data_rcvd",
    "h2_settings_rcvd", "h2_rst_stream_rcvd", "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp", "h2_goaway_resp", "h2_open_connections", "h2_backend_open_streams",
    "h2_total_connections", "h2_backend_total_streams", "h1_open_connections",
    "h1_open_streams", "h1_total_connections", "h1_total_streams", "h1_bytes_in",
    "h1_bytes_out", "h1_spliced_bytes_in", "h1_spliced_bytes_out",
)  # fmt: skip

HEADER = "# " + "".join(f"{c}," for c in COLUMNS) + "-," + "".join(f"{c}," for c in MODULE_COLUMNS)

# `show stat` row types (the <type> filter is a bit mask of 1 << type).
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER, TYPE_SOCKET = 0, 1, 2, 3

SERVERS_STATE_VERSION = "1"
SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)
# HAProxy's server admin flags (server-t.h): forced maintenance, configured `disabled`,
# forced drain; and check state flags (check-t.h).
ADMF_FMAINT, ADMF_CMAINT, ADMF_FDRAIN = 0x01, 0x04, 0x08
ADMF_RMAINT = 0x20  # no address: the name did not resolve (`resolvers`, `init-addr none`)
CHK_ST_CONFIGURED, CHK_ST_ENABLED, CHK_ST_PAUSED = 0x02, 0x04, 0x08
SRV_ST_STOPPED, SRV_ST_STARTING, SRV_ST_RUNNING, SRV_ST_STOPPING = 0, 1, 2, 3
# A check's status (enum healthcheck_status, check-t.h) and result (enum chk_result).
HCHK_STATUS = {
    "UNK": 0, "INI": 1, "SOCKERR": 5, "L4OK": 6, "L4TOUT": 7, "L4CON": 8, "L6OK": 9,
    "L6TOUT": 10, "L6RSP": 11, "L7TOUT": 12, "L7RSP": 13, "L7OK": 15, "L7OKC": 16, "L7STS": 17,
}  # fmt: skip
HCHK_STATUS_INI = 1  # no check has run yet (every server starts so, checked or not)
CHK_RES_UNKNOWN, CHK_RES_FAILED, CHK_RES_PASSED, CHK_RES_CONDPASS = 0, 2, 3, 4


class FrontendView(Protocol):
    """What the stats read of a frontend at run time (core/frontend.py)."""

    @property
    def name(self) -> str: ...
    @property
    def proxy(self) -> model.Proxy: ...
    @property
    def cur_conn(self) -> int: ...
    @property
    def cum_conn(self) -> int: ...
    @property
    def max_conn_seen(self) -> int: ...
    @property
    def maxconn(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def hrsp(self) -> Sequence[int]: ...
    @property
    def req_tot(self) -> int: ...
    @property
    def intercepted(self) -> int: ...
    @property
    def denied_req(self) -> int: ...
    @property
    def denied_resp(self) -> int: ...
    @property
    def failed_req(self) -> int: ...
    @property
    def denied_conn(self) -> int: ...
    @property
    def denied_sess(self) -> int: ...
    @property
    def paused(self) -> bool: ...
    @property
    def sockets(self) -> Sequence[SocketCounters]: ...
    @property
    def sess_rate(self) -> traffic.Rate: ...
    @property
    def conn_rate(self) -> traffic.Rate: ...
    @property
    def req_rate(self) -> traffic.Rate: ...


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One client connection, as `show sess` shows it (the shell describes its sessions,
    and its own stats socket connections, with these)."""

    id: int  # what `show sess <id>` and `shutdown session <id>` take
    proto: str  # "tcpv4", "tcpv6", "unix_stream"
    source: str  # "127.0.0.1:40868", or "unix:1" (a unix socket, by listener number)
    frontend: str  # "GLOBAL" for a stats socket connection, as in HAProxy
    backend: str | None = None
    server: str | None = None
    age: float = 0.0  # seconds since the connection was accepted
    expires: float | None = None  # seconds before its current timeout; None: none
    client_fd: int = -1
    server_fd: int = -1


def no_sessions() -> Sequence[SessionInfo]:
    return ()


@dataclass(frozen=True, slots=True)
class AdminInfo:
    """Facts about the process for `show info`, fixed when poise starts."""

    pid: int
    started: float  # the loop's clock when poise started: uptimes count from here
    start_time: float  # the wall clock (Unix seconds) at the same moment
    version: str
    release_date: str
    node: str  # `node`, or the host name as in HAProxy
    description: str | None = None
    nbthread: int = 1  # `nbthread`: the workers of the balancer (HAProxy's threads)


@dataclass(frozen=True, slots=True)
class View:
    """The running process as the runtime commands see it, built per command."""

    info: AdminInfo
    frontends: Mapping[str, FrontendView]
    backends: Mapping[str, Backend]
    maxconn: int
    actconn: int
    cum_conns: int
    stopping: bool
    now: float  # the loop's clock
    # `set maxconn global` may not go above this (the configured maxconn); 0: `maxconn`.
    hard_maxconn: int = 0
    tasks: int = 0  # `show info` Tasks: the shell's running tasks
    listeners: int = 0  # listening sockets, stats sockets included
    ulimit_n: int = 0  # the process's open-file limit (0: unknown)
    maxsock: int = 0  # the descriptors maxconn needs (core/limits.py; 0: unknown)
    failed_accepts: int = 0  # accept() failures, out of descriptors (net/accept.py)
    # The current sessions, computed only for `show sess` (the shell's sessions).
    sessions: Callable[[], Sequence[SessionInfo]] = field(default=no_sessions)
    # With several workers (`nbthread`): the other workers' rows, by type, proxy and
    # name (admin/stats_merge.py), which the report adds to this worker's.
    others: Mapping[tuple[object, object, object], Sequence[Row]] = field(default_factory=dict)

    def proxies(self) -> list[model.Proxy]:
        """Every proxy once, in declaration order (a `listen` is one proxy)."""
        seen: dict[str, model.Proxy] = {}
        for fe in self.frontends.values():
            seen.setdefault(fe.proxy.name, fe.proxy)
        for be in self.backends.values():
            seen.setdefault(be.proxy.name, be.proxy)
        return sorted(seen.values(), key=lambda p: (p.order, p.id))

    def backend(self, name: str) -> Backend | None:
        """A backend by name or by `#<id>`, as HAProxy's CLI finds them."""
        if name.startswith("#"):
            for be in self.backends.values():
                if str(be.proxy.id) == name[1:]:
                    return be
            return None
        return self.backends.get(name)

    def seconds_since(self, clock: float) -> int:
        return max(0, int(self.now - max(clock, self.info.started)))


# -- show stat ----------------------------------------------------------------------------


Row = dict[str, str | int]


def csv_line(row: Row) -> str:
    static = "".join(f"{csv_field(row.get(c, ''))}," for c in COLUMNS)
    return static + "-," + "," * len(MODULE_COLUMNS)


def csv_field(value: str | int) -> str:
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def frontend_row(view: View, fe: FrontendView) -> Row:
    proxy = fe.proxy
    row: Row = {
        "pxname": proxy.name,
        "svname": "FRONTEND",
        "scur": fe.cur_conn,
        "smax": fe.max_conn_seen,
        "slim": fe.maxconn,
        "stot": fe.cum_conn,
        "bin": fe.bytes_in,
        "bout": fe.bytes_out,
        "status": frontend_status(view, fe),
        "pid": 1,
        "iid": proxy.id,
        "sid": 0,
        "type": TYPE_FRONTEND,
        "mode": proxy.mode.value,
        "conn_tot": fe.cum_conn,
        "rate": fe.sess_rate.read(fe.cum_conn, view.now),
        "rate_lim": 0,  # no `rate-limit sessions`
        "rate_max": fe.sess_rate.highest(fe.cum_conn, view.now),
        "conn_rate": fe.conn_rate.read(fe.cum_conn + fe.denied_conn, view.now),
        "conn_rate_max": fe.conn_rate.highest(fe.cum_conn + fe.denied_conn, view.now),
        "req_rate": fe.req_rate.read(fe.req_tot, view.now),
        "req_rate_max": fe.req_rate.highest(fe.req_tot, view.now),
        "req_tot": fe.req_tot,  # 0 in TCP mode, as HAProxy shows it
    }
    refusal_fields(row, fe)
    if proxy.mode is model.Mode.HTTP:
        http_fields(row, fe.hrsp, fe.req_tot)
        row["intercepted"] = fe.intercepted
        row["cache_lookups"], row["cache_hits"] = http_cache.counts("fe", proxy.name)
    return row


def refusal_fields(row: Row, counted: FrontendView | SocketCounters) -> None:
    """What a frontend and a listener refused (core/counters.py, core/layer4.py)."""
    row["dreq"] = counted.denied_req
    row["dresp"] = counted.denied_resp
    no_failures(row)
    row["ereq"] = counted.failed_req
    row["dcon"] = counted.denied_conn
    row["dses"] = counted.denied_sess
    no_failures(row)


def no_failures(row: Row) -> None:
    """`wrew` and `eint`: poise never fails a header rewrite (no tune.maxrewrite reserve
    to run out of) nor meets an internal error HAProxy would count, so these are 0, as
    HAProxy shows them when none happened."""
    row["wrew"] = row["eint"] = 0


HRSP_COLUMNS = ("hrsp_other", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx")


def http_fields(row: Row, hrsp: Sequence[int], req_tot: int) -> None:
    """The HTTP responses by class and the requests, which HAProxy shows for HTTP
    proxies only (core/counters.py says what each counts)."""
    for column, count in zip(HRSP_COLUMNS, hrsp, strict=True):
        row[column] = count
    row["req_tot"] = req_tot


def request_fields(row: Row, counted: Backend | ServerState, http: bool) -> None:
    """The per-request counters a backend and a server share."""
    row["bin"] = counted.bytes_in
    row["bout"] = counted.bytes_out
    row["eresp"] = counted.failed_resp
    row["dresp"] = counted.denied_resp
    no_failures(row)
    row["wretr"] = counted.retries
    row["wredis"] = counted.redispatches
    row["cli_abrt"] = counted.cli_abrt
    row["srv_abrt"] = counted.srv_abrt
    if http:
        http_fields(row, counted.hrsp, counted.req_tot)


def socket_row(view: View, fe: FrontendView, sock: SocketCounters) -> Row:
    """`option socket-stats`: one listener's row, with the fields HAProxy 2.6 fills for
    a listener."""
    row: Row = {
        "pxname": fe.name,
        "svname": sock.name,
        "scur": sock.cur_conn,
        "smax": sock.max_conn_seen,
        "slim": 0,  # no `bind ... maxconn`: the frontend's limit applies
        "stot": sock.cum_conn,
        "bin": sock.bytes_in,
        "bout": sock.bytes_out,
        "status": "STOP" if view.stopping else sock.status,
        "pid": 1,
        "iid": fe.proxy.id,
        "sid": sock.sid,
        "type": TYPE_SOCKET,
        "addr": sock.addr,
        "mode": fe.proxy.mode.value,
    }
    refusal_fields(row, sock)
    return row


def frontend_status(view: View, fe: FrontendView) -> str:
    """OPEN, PAUSED (`disable frontend`) or STOP (the process is stopping)."""
    if view.stopping:
        return "STOP"
    return "PAUSED" if fe.paused else "OPEN"


def server_row(view: View, be: Backend, server: ServerState) -> Row:
    config = server.config
    row: Row = {
        "pxname": be.name,
        "svname": server.name,
        "qcur": server.queued,
        "scur": server.cur_sess,
        "smax": server.max_sess,
        "stot": server.total_sess,
        "econ": server.failed_conns,
        "status": server_status(server),
        "weight": slowstart.shown_weight(server, be.balancer.dynamic_weights),
        "act": 0 if server.backup else 1,
        "bck": 1 if server.backup else 0,
        "lastchg": view.seconds_since(server.last_change),
        "pid": 1,
        "iid": be.proxy.id,
        "sid": server.id,
        "type": TYPE_SERVER,
        "addr": server_addr(server),
        "mode": be.proxy.mode.value,
        "uweight": server.weight,
    }
    http = be.proxy.mode is model.Mode.HTTP
    request_fields(row, server, http)
    samples = server.req_tot if http else server.traffic.lbconn
    traffic_fields(view, row, server.traffic, server.total_sess, samples)
    row["qmax"] = server.max_queued
    if server.cookie is not None:
        row["cookie"] = server.cookie
    if server.maxconn:
        row["slim"] = server.maxconn
    if (throttle := slowstart.throttle(server)) is not None:
        row["throttle"] = throttle
    if config.maxqueue:
        row["qlimit"] = config.maxqueue
    if server.check_enabled:
        row["chkfail"] = server.failed_checks
        row["check_rise"] = config.rise
        row["check_fall"] = config.fall
        row["chkdown"] = server.traffic.down_trans
        row["downtime"] = traffic.downtime(server.traffic, server.up, server.last_change, view.now)
        check_fields(row, server)
    return row


def backend_row(view: View, be: Backend) -> Row:
    proxy = be.proxy
    weight, active, backup = lb_weights(be)
    row: Row = {
        "pxname": be.name,
        "svname": "BACKEND",
        "qcur": be.queued,
        "qmax": be.max_queued,
        "scur": be.cur_sess,
        "smax": be.max_sess,
        "slim": proxy.fullconn or fullconn(proxy, view.frontends.values()),
        "stot": be.cum_sess,
        "econ": sum(s.failed_conns for s in be.servers) + be.traffic.nosrv,
        "status": "UP" if weight > 0 or not be.servers else "DOWN",
        "weight": weight,
        "act": active,
        "bck": backup,
        "pid": 1,
        "iid": proxy.id,
        "sid": 0,
        "type": TYPE_BACKEND,
        "mode": proxy.mode.value,
        "algo": proxy.balance.algorithm.value,
        "uweight": weight,
    }
    http = proxy.mode is model.Mode.HTTP
    request_fields(row, be, http)
    samples = be.req_tot if http else be.traffic.lbconn
    traffic_fields(view, row, be.traffic, be.cum_sess, samples)
    row["chkdown"] = be.traffic.down_trans
    row["lastchg"] = view.seconds_since(be.traffic.last_change)
    if be.servers:
        row["downtime"] = traffic.downtime(
            be.traffic, be.traffic.up, be.traffic.last_change, view.now
        )
    row["dreq"] = be.denied_req
    if proxy.mode is model.Mode.HTTP:
        row["cache_lookups"], row["cache_hits"] = http_cache.counts("be", be.name)
    if proxy.cookie is not None:
        row["cookie"] = proxy.cookie.name
    return row


def server_addr(server: ServerState) -> str:
    """`IP:PORT`; "unix"; empty for a server added by name, which HAProxy does not
    resolve."""
    if server.config.address.family == "unix":
        return "unix"
    if server.config.address.family == "sockpair":
        return str(server.config.address)  # HAProxy's sa2str(): "sockpair@N"
    if not is_ip(server.addr):
        return ""
    port = server.port or 0
    return f"[{server.addr}]:{port}" if ":" in server.addr else f"{server.addr}:{port}"


def op_state(server: ServerState) -> int:
    """A running server's srv_op_state: stopping (NOLB), starting (`slowstart` ramping
    it up), else running."""
    if server.stopping:
        return SRV_ST_STOPPING
    return SRV_ST_STARTING if server.warm_since is not None else SRV_ST_RUNNING


def lb_weights(be: Backend) -> tuple[int, int, int]:
    """(total weight of the servers taking part, usable active, usable backup), as
    HAProxy's recount_servers and update_backend_weight compute them."""
    servers = eligible(be.servers, be.balancer.allbackups)
    if be.balancer.dynamic_weights:  # the effective weights (core/slowstart.py), rounded up
        weight = -(-sum(s.weight * s.ramp for s in servers) // slowstart.WEIGHT_SCALE)
    else:
        weight = sum(s.weight for s in servers)
    active = sum(1 for s in be.servers if s.usable and not s.backup)
    backup = sum(1 for s in be.servers if s.usable and s.backup)
    return weight, active, backup


def fullconn(backend: model.Proxy, frontends: Iterable[FrontendView]) -> int:
    """HAProxy's default `fullconn`: a tenth of the maxconn of the enabled frontends that
    may route to the backend, rounded up, at least 1."""
    total = 0
    for fe in frontends:
        proxy = fe.proxy
        if proxy.disabled:
            continue
        targets = {proxy.default_backend, *(u.backend for u in proxy.use_backends)}
        if proxy.is_backend:
            targets.add(proxy.name)
        if backend.name in targets:
            total += fe.maxconn
    return max((total + 9) // 10, 1)


# -- show servers state -------------------------------------------------------------------


def show_servers_state(view: View, backends: Iterable[Backend]) -> str:
    lines = [SERVERS_STATE_VERSION, SERVERS_STATE_HEADER]
    for be in backends:
        lines.extend(server_state_line(view, be, s) for s in be.servers)
    return "".join(f"{line}\n" for line in lines)


def server_state_line(view: View, be: Backend, server: ServerState) -> str:
    config = server.config
    maint = server.in_maint
    running = server.up and not maint
    admin = (ADMF_FMAINT if server.admin is AdminState.MAINT else 0) | (
        ADMF_FDRAIN if server.admin is AdminState.DRAIN else 0
    )
    if config.disabled:
        admin |= ADMF_CMAINT
    if server.resolution_maint:
        admin |= ADMF_RMAINT
    check_state = CHK_ST_CONFIGURED if config.check else 0
    if server.check_enabled:
        check_state |= CHK_ST_ENABLED
    # `disabled` pauses the checks at start; leaving maintenance resumes only running
    # checks, so an unchecked server written `disabled` stays paused (HAProxy 2.6).
    if (maint or not server.check_enabled) and (server.check_enabled or config.disabled):
        check_state |= CHK_ST_PAUSED
    # The rise/fall counter: `rise` before any check (HAProxy starts it there, checked or
    # not), 0 in maintenance.
    checker = server.health
    if maint or not (running or checker is not None):
        health = 0
    else:
        health = checker.health if checker is not None else config.rise
    status, result = HCHK_STATUS_INI, CHK_RES_UNKNOWN
    if checker is not None and checker.last is not INITIALIZING:
        status = HCHK_STATUS.get(checker.last.status, 0)
        result = CHK_RES_PASSED if checker.last.passed else CHK_RES_FAILED
        result = CHK_RES_CONDPASS if checker.last.conditional else result
    host = config.address.host
    fields: tuple[str | int, ...] = (
        be.proxy.id,
        be.name,
        server.id,
        server.name,
        server.addr if is_ip(server.addr) else "-",
        op_state(server) if running else SRV_ST_STOPPED,
        admin,
        server.weight,
        server.initial_weight,
        view.seconds_since(server.last_change),
        status,
        result,
        health,
        check_state,
        0,  # agent state: poise has no agent checks
        int(be.proxy.forced_id),
        int(config.forced_id),
        host if config.address.family not in ("unix", "sockpair") and not is_ip(host) else "-",
        server.port or 0,
        host if host.startswith("_") else "-",  # the SRV record it comes from
        config.use_ssl,
        config.check_port or 0,
        config.check_addr or "-",
        # HAProxy's `addr` and `port` set the agent's address and port with the check's.
        config.check_addr or "-",
        config.check_port or 0,
    )
    return " ".join(str(f) for f in fields)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
