"""HAProxy 2.6's Prometheus metrics (addons/promex) as poise exports them: for each stats
column its metric name after `haproxy_<scope>_`, its type and HAProxy's help text; the
columns each scope exports, in HAProxy's order; the process metrics; and the state labels.
A table, read by admin/prometheus.py.

Pure.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Stats column -> (metric name after `haproxy_<scope>_`, type, HAProxy's help text).
FIELDS: dict[str, tuple[str, str, str]] = {
    "scur": (
        "current_sessions",
        "gauge",
        "Number of current sessions on the frontend, backend or server",
    ),
    "smax": (
        "max_sessions",
        "gauge",
        "Highest value of current sessions encountered since process started",
    ),
    "slim": ("limit_sessions", "gauge", "Frontend/listener/server's maxconn, backend's fullconn"),
    "stot": ("sessions_total", "counter", "Total number of sessions since process started"),
    "bin": ("bytes_in_total", "counter", "Total number of request bytes since process started"),
    "bout": ("bytes_out_total", "counter", "Total number of response bytes since process started"),
    "dreq": (
        "requests_denied_total",
        "counter",
        "Total number of denied requests since process started",
    ),
    "dresp": (
        "responses_denied_total",
        "counter",
        "Total number of denied responses since process started",
    ),
    "ereq": (
        "request_errors_total",
        "counter",
        "Total number of invalid requests since process started",
    ),
    "status": ("status", "gauge", "Current status of the service, per state label value."),
    "rate_lim": (
        "limit_session_rate",
        "gauge",
        "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit "
        "sessions' setting)",
    ),
    "rate_max": (
        "max_session_rate",
        "gauge",
        "Highest value of sessions per second observed since the worker process started",
    ),
    "hrsp": (
        "http_responses_total",
        "counter",
        "Total number of HTTP responses with status 100-199 returned by this object since "
        "the worker process started",
    ),
    "req_rate_max": (
        "http_requests_rate_max",
        "gauge",
        "Highest value of http requests observed since the worker process started",
    ),
    "req_tot": (
        "http_requests_total",
        "counter",
        "Total number of HTTP requests processed by this object since the worker process started",
    ),
    "comp_in": (
        "http_comp_bytes_in_total",
        "counter",
        "Total number of bytes submitted to the HTTP compressor for this object since the "
        "worker process started",
    ),
    "comp_out": (
        "http_comp_bytes_out_total",
        "counter",
        "Total number of bytes emitted by the HTTP compressor for this object since the "
        "worker process started",
    ),
    "comp_byp": (
        "http_comp_bytes_bypassed_total",
        "counter",
        "Total number of bytes that bypassed HTTP compression for this object since the "
        "worker process started (CPU/memory/bandwidth limitation)",
    ),
    "comp_rsp": (
        "http_comp_responses_total",
        "counter",
        "Total number of HTTP responses that were compressed for this object since the "
        "worker process started",
    ),
    "conn_rate_max": (
        "connections_rate_max",
        "gauge",
        "Highest value of connections per second observed since the worker process started",
    ),
    "conn_tot": (
        "connections_total",
        "counter",
        "Total number of new connections accepted on this frontend since the worker process "
        "started",
    ),
    "intercepted": (
        "intercepted_requests_total",
        "counter",
        "Total number of HTTP requests intercepted on the frontend "
        "(redirects/stats/services) since the worker process started",
    ),
    "dcon": (
        "denied_connections_total",
        "counter",
        "Total number of incoming connections blocked on a listener/frontend by a "
        "tcp-request connection rule since the worker process started",
    ),
    "dses": (
        "denied_sessions_total",
        "counter",
        "Total number of incoming sessions blocked on a listener/frontend by a tcp-request "
        "connection rule since the worker process started",
    ),
    "wrew": (
        "failed_header_rewriting_total",
        "counter",
        "Total number of failed HTTP header rewrites since the worker process started",
    ),
    "cache_lookups": (
        "http_cache_lookups_total",
        "counter",
        "Total number of HTTP requests looked up in the cache on this frontend/backend since "
        "the worker process started",
    ),
    "cache_hits": (
        "http_cache_hits_total",
        "counter",
        "Total number of HTTP requests not found in the cache on this frontend/backend since "
        "the worker process started",
    ),
    "eint": (
        "internal_errors_total",
        "counter",
        "Total number of internal errors since process started",
    ),
    "qcur": ("current_queue", "gauge", "Number of current queued connections"),
    "qmax": (
        "max_queue",
        "gauge",
        "Highest value of queued connections encountered since process started",
    ),
    "econ": (
        "connection_errors_total",
        "counter",
        "Total number of failed connections to server since the worker process started",
    ),
    "eresp": (
        "response_errors_total",
        "counter",
        "Total number of invalid responses since the worker process started",
    ),
    "wretr": (
        "retry_warnings_total",
        "counter",
        "Total number of server connection retries since the worker process started",
    ),
    "wredis": (
        "redispatch_warnings_total",
        "counter",
        "Total number of server redispatches due to connection failures since the worker "
        "process started",
    ),
    "weight": (
        "weight",
        "gauge",
        "Server's effective weight, or sum of active servers' effective weights for a backend",
    ),
    "act": ("active_servers", "gauge", "Total number of active UP servers with a non-zero weight"),
    "bck": ("backup_servers", "gauge", "Total number of backup UP servers with a non-zero weight"),
    "chkdown": (
        "check_up_down_total",
        "counter",
        "Total number of failed checks causing UP to DOWN server transitions, per "
        "server/backend, since the worker process started",
    ),
    "lastchg": (
        "check_last_change_seconds",
        "gauge",
        "How long ago the last server state changed, in seconds",
    ),
    "downtime": (
        "downtime_seconds_total",
        "counter",
        "Total time spent in DOWN state, for server or backend",
    ),
    "lbtot": (
        "loadbalanced_total",
        "counter",
        "Total number of requests routed by load balancing since the worker process started "
        "(ignores queue pop and stickiness)",
    ),
    "cli_abrt": (
        "client_aborts_total",
        "counter",
        "Total number of requests or connections aborted by the client since the worker "
        "process started",
    ),
    "srv_abrt": (
        "server_aborts_total",
        "counter",
        "Total number of requests or connections aborted by the server since the worker "
        "process started",
    ),
    "lastsess": (
        "last_session_seconds",
        "gauge",
        "How long ago some traffic was seen on this object on this worker process, in seconds",
    ),
    "qtime": (
        "queue_time_average_seconds",
        "gauge",
        "Avg. queue time for last 1024 successful connections.",
    ),
    "ctime": (
        "connect_time_average_seconds",
        "gauge",
        "Avg. connect time for last 1024 successful connections.",
    ),
    "rtime": (
        "response_time_average_seconds",
        "gauge",
        "Avg. response time for last 1024 successful connections.",
    ),
    "ttime": (
        "total_time_average_seconds",
        "gauge",
        "Avg. total time for last 1024 successful connections.",
    ),
    "connect": (
        "connection_attempts_total",
        "counter",
        "Total number of outgoing connection attempts on this backend/server since the "
        "worker process started",
    ),
    "reuse": (
        "connection_reuses_total",
        "counter",
        "Total number of reused connection on this backend/server since the worker process started",
    ),
    "qtime_max": ("max_queue_time_seconds", "gauge", "Maximum observed time spent in the queue"),
    "ctime_max": (
        "max_connect_time_seconds",
        "gauge",
        "Maximum observed time spent waiting for a connection to complete",
    ),
    "rtime_max": (
        "max_response_time_seconds",
        "gauge",
        "Maximum observed time spent waiting for a server response",
    ),
    "ttime_max": (
        "max_total_time_seconds",
        "gauge",
        "Maximum observed total request+response time (request+queue+connect+response+processing)",
    ),
    "uweight": (
        "uweight",
        "gauge",
        "Server's user weight, or sum of active servers' user weights for a backend",
    ),
    "agg_server_status": (
        "agg_server_status",
        "gauge",
        "Backend's aggregated gauge of servers' status",
    ),
    "agg_server_check_status": (
        "agg_server_check_status",
        "gauge",
        "Backend's aggregated gauge of servers' state check status",
    ),
    "agg_check_status": (
        "agg_check_status",
        "gauge",
        "Backend's aggregated gauge of servers' state check status",
    ),
    "chkfail": (
        "check_failures_total",
        "counter",
        "Total number of failed individual health checks per server/backend, since the "
        "worker process started",
    ),
    "qlimit": (
        "queue_limit",
        "gauge",
        "Limit on the number of connections in queue, for servers only (maxqueue argument)",
    ),
    "throttle": (
        "current_throttle",
        "gauge",
        "Throttling ratio applied to a server's maxconn and weight during the slowstart "
        "period (0 to 100%)",
    ),
    "check_status": (
        "check_status",
        "gauge",
        "Status of last health check, per state label value.",
    ),
    "check_code": ("check_code", "gauge", "layer5-7 code, if available of the last health check."),
    "check_duration": (
        "check_duration_seconds",
        "gauge",
        "Total duration of the latest server health check, in seconds.",
    ),
    "srv_icur": (
        "idle_connections_current",
        "gauge",
        "Current number of idle connections available for reuse on this server",
    ),
    "src_ilim": (
        "idle_connections_limit",
        "gauge",
        "Limit on the number of available idle connections on this server (server "
        "'pool_max_conn' directive)",
    ),
    "idle_conn_cur": (
        "unsafe_idle_connections_current",
        "gauge",
        "Current number of unsafe idle connections",
    ),
    "safe_conn_cur": (
        "safe_idle_connections_current",
        "gauge",
        "Current number of safe idle connections",
    ),
    "used_conn_cur": ("used_connections_current", "gauge", "Current number of connections in use"),
    "need_conn_est": (
        "need_connections_current",
        "gauge",
        "Estimated needed number of connections",
    ),
}
# The columns each scope exports, in HAProxy 2.6's order ("hrsp" is the five response
# code counters as one metric with a `code` label).
FRONTEND_METRICS = _words(
    "scur smax slim stot bin bout dreq dresp ereq status rate_lim rate_max hrsp req_rate_max "
    "req_tot comp_in comp_out comp_byp comp_rsp conn_rate_max conn_tot intercepted dcon dses "
    "wrew cache_lookups cache_hits eint"
)
# `option socket-stats`: haproxy_listener_*, labelled by proxy and listener.
LISTENER_METRICS = _words("scur smax slim stot bin bout dreq dresp ereq status dcon dses wrew eint")
LISTENER_STATES = ("WAITING", "OPEN", "FULL")
BACKEND_METRICS = _words(
    "qcur qmax scur smax slim stot bin bout dreq dresp econ eresp wretr wredis status weight "
    "act bck chkdown lastchg downtime lbtot rate_max hrsp req_tot cli_abrt srv_abrt comp_in "
    "comp_out comp_byp comp_rsp lastsess qtime ctime rtime ttime wrew connect reuse "
    "cache_lookups cache_hits qtime_max ctime_max rtime_max ttime_max eint uweight "
    "agg_server_status agg_server_check_status agg_check_status"
)
SERVER_METRICS = _words(
    "qcur qmax scur smax slim stot bin bout dresp econ eresp wretr wredis status weight "
    "chkfail chkdown lastchg downtime qlimit throttle lbtot rate_max check_status check_code "
    "check_duration hrsp cli_abrt srv_abrt lastsess qtime ctime rtime ttime wrew connect "
    "reuse srv_icur src_ilim qtime_max ctime_max rtime_max ttime_max eint idle_conn_cur "
    "safe_conn_cur used_conn_cur need_conn_est uweight"
)
# Columns in milliseconds, exported in seconds.
MILLISECONDS = frozenset(
    {"qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max", "ttime_max"}
    | {"check_duration"}
)
# Server columns HAProxy exports as NaN when the server has no value (no maxconn, no
# maxqueue, no check, no slowstart, no idle pool limit).
SERVER_NAN = frozenset({"slim", "qlimit", "chkfail", "throttle", "src_ilim"})
RESPONSE_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
PROXY_STATES = ("DOWN", "UP")
SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
CHECK_STATES = _words(
    "HANA SOCKERR L4OK L4TOUT L4CON L6OK L6TOUT L6RSP L7TOUT L7RSP L7OK L7OKC L7STS "
    "PROCERR PROCTOUT PROCOK"
)
PROCESS_METRICS: tuple[tuple[str, str, str], ...] = (
    ("nbthread", "gauge", "Number of started threads (global.nbthread)"),
    ("nbproc", "gauge", "Number of started worker processes (historical, always 1)"),
    ("relative_process_id", "gauge", "Relative worker process number (1)"),
    ("uptime_seconds", "gauge", "How long ago this worker process was started (seconds)"),
    ("max_sockets", "gauge", "Hard limit on the number of per-process sockets"),
    (
        "max_connections",
        "gauge",
        "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)",
    ),
    (
        "hard_max_connections",
        "gauge",
        "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)",
    ),
    ("current_connections", "gauge", "Current number of connections on this worker process"),
    (
        "connections_total",
        "counter",
        "Total number of connections on this worker process since started",
    ),
    (
        "requests_total",
        "counter",
        "Total number of requests on this worker process since started",
    ),
    ("max_pipes", "gauge", "Hard limit on the number of pipes for splicing, 0=unlimited"),
    ("pipes_used_total", "counter", "Current number of pipes in use in this worker process"),
    (
        "pipes_free_total",
        "counter",
        "Current number of allocated and available pipes in this worker process",
    ),
    (
        "current_connection_rate",
        "gauge",
        "Number of front connections created on this worker process over the last second",
    ),
    ("limit_connection_rate", "gauge", "Hard limit for ConnRate (global.maxconnrate)"),
    (
        "max_connection_rate",
        "gauge",
        "Highest ConnRate reached on this worker process since started (in connections per second)",
    ),
    (
        "current_session_rate",
        "gauge",
        "Number of sessions created on this worker process over the last second",
    ),
    ("limit_session_rate", "gauge", "Hard limit for SessRate (global.maxsessrate)"),
    (
        "max_session_rate",
        "gauge",
        "Highest SessRate reached on this worker process since started (in sessions per second)",
    ),
    ("stopping", "gauge", "1 if the worker process is currently stopping, otherwise zero"),
    (
        "active_peers",
        "gauge",
        "Current number of verified active peers connections on the current worker process",
    ),
    (
        "connected_peers",
        "gauge",
        "Current number of peers having passed the connection step on the current worker process",
    ),
    (
        "busy_polling_enabled",
        "gauge",
        "1 if busy-polling is currently in use on the worker process, otherwise zero "
        "(config.busy-polling)",
    ),
    (
        "bytes_out_total",
        "counter",
        "Total number of bytes emitted by current worker process since started",
    ),
    (
        "spliced_bytes_out_total",
        "counter",
        "Total number of bytes emitted by current worker process through a kernel pipe since "
        "started",
    ),
    # poise's own (HAProxy has no such counter): `show info` FailedAccepts.
    (
        "failed_accepts_total",
        "counter",
        "Total number of connections that could not be accepted yet for lack of file "
        "descriptors or memory (they waited in the backlog) since started",
    ),
    ("build_info", "gauge", "Build info"),
    (
        "max_memory_bytes",
        "gauge",
        "Worker process's hard limit on memory usage in byes (-m on command line)",
    ),
    ("start_time_seconds", "gauge", "Start time in seconds"),
)
