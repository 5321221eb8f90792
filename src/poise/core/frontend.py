"""The running frontend: one object per `frontend` (or `listen`) section holding its
settings derived once from the configuration (timeouts in seconds, log format, flags the
per-request path reads as plain attributes), its compiled rules, its connection limit and
its counters. Its admission is here (room, admit, leave); the process's limit and the
listeners stopped at a limit are Context's (net/context.py).

Pure: the listeners and the log sink are the shell's, reached through small interfaces.
"""

from __future__ import annotations

from typing import Protocol

from poise.config import model
from poise.core.acl import compile_condition
from poise.core.backend import Backend, Log, seconds
from poise.core.http.rules import Rules
from poise.core.logformat import compile_http, compile_tcp
from poise.core.sockstats import SocketCounters
from poise.core.tcprules import compile_rules
from poise.core.traffic import Rate


class Listening(Protocol):
    """A listener's accept loop (net/accept.py)."""

    def resume(self) -> None: ...

    def pause(self) -> None: ...


class Frontend:
    __slots__ = (
        "backend",
        "buffers_body",
        "bytes_in",
        "bytes_out",
        "capture_lengths",
        "client_fin_timeout",
        "client_timeout",
        "closes_client",
        "closes_server",
        "compression",
        "conn_rate",
        "cum_conn",
        "cur_conn",
        "denied_conn",
        "denied_req",
        "denied_resp",
        "denied_sess",
        "dontlog_normal",
        "dontlognull",
        "error_level",
        "failed_req",
        "first_head_timeout",
        "forwardfor",
        "hrsp",
        "http_format",
        "ignore_probes",
        "inspects",
        "intercepted",
        "listeners",
        "log",
        "logasap",
        "max_conn_seen",
        "maxconn",
        "monitor_fail",
        "monitor_uri",
        "name",
        "next_head_timeout",
        "original_dst",
        "pages",
        "paused",
        "plain_responses",
        "proxy",
        "req_rate",
        "request_rules",
        "rules",
        "sd_format",
        "sess_rate",
        "sockets",
        "tcp",
        "tcp_format",
        "tcplog",
        "unanswered",
    )

    def __init__(
        self,
        proxy: model.Proxy,
        backend: Backend | None,
        log: Log | None,
        global_maxconn: int,
    ) -> None:
        self.proxy = proxy
        self.name = proxy.name
        self.backend = backend  # default_backend (a `listen`: itself), as routed
        self.log = log
        # A `listen` section is one proxy: its backend's compiled rules serve both sides.
        listen = backend is not None and backend.proxy is proxy
        self.rules = backend.rules if listen and backend is not None else Rules(proxy)
        # Layer-4 rules (core/tcprules.py), None without any: a `listen` shares its backend's.
        self.tcp = backend.tcp if listen and backend is not None else compile_rules(proxy)
        # A TCP session runs rules before choosing its server (net/tcp.py): its own, the
        # switching rules, or its default backend's content rules.
        self.inspects = (
            self.tcp is not None
            or bool(proxy.use_backends)
            or (backend is not None and backend.tcp is not None)
        )
        self.maxconn = proxy.maxconn if proxy.maxconn is not None else global_maxconn
        self.client_timeout = seconds(proxy.timeouts.client)
        self.client_fin_timeout = seconds(proxy.timeouts.client_fin)
        options = proxy.options
        # `log-format` (compiled once, for the session kind of the frontend's mode), or
        # the fixed line of `option httplog` / `option tcplog`.
        text = proxy.log_format
        http = proxy.mode is model.Mode.HTTP
        self.http_format = compile_http(text) if text is not None and http else None
        self.tcp_format = compile_tcp(text) if text is not None and not http else None
        self.tcplog = (
            text is not None or model.Option.TCPLOG in options or model.Option.HTTPLOG in options
        )
        self.dontlognull = model.Option.DONTLOGNULL in options
        # `log-format-sd`: the structured data of its RFC 5424 messages, from the same record.
        sd = proxy.log.format_sd
        self.sd_format = (compile_http(sd) if http else compile_tcp(sd)) if sd else None
        # `option dontlog-normal`: only the lines of failed sessions (txnlog.traffic_error);
        # `option log-separate-errors`: those at level err instead of info.
        self.dontlog_normal = model.Option.DONTLOG_NORMAL in options
        self.error_level = "err" if model.Option.LOG_SEPARATE_ERRORS in options else "info"
        # `option http-ignore-probes`: a connection that sent nothing before its request
        # timeout closes without a 408, a log line or an error count (a browser's
        # pre-connect), as in HAProxy.
        self.ignore_probes = model.Option.HTTP_IGNORE_PROBES in options
        # HTTP: `option httpclose` closes client connections after each response;
        # `http-server-close` or `httpclose` closes server connections. HAProxy 2.6,
        # configuration.txt 4.2 `option httpclose`: "Only the frontend is considered for
        # client connections while the frontend and the backend are considered for server
        # ones" (net/http.py: closes_server here or in the backend, Backend.closes_server).
        self.closes_client = model.Option.HTTPCLOSE in options
        self.closes_server = self.closes_client or model.Option.HTTP_SERVER_CLOSE in options
        self.logasap = model.Option.LOGASAP in options
        self.buffers_body = model.Option.HTTP_BUFFER_REQUEST in options  # core/http/body_wait
        self.capture_lengths = (  # the capture slots' (core/http/txn_rules.py)
            tuple(c.length for c in proxy.capture_request_headers),
            tuple(c.length for c in proxy.capture_response_headers),
        )
        # No http-response rule, no response capture, no compression: see
        # Backend.plain_responses.
        self.plain_responses = not (
            proxy.http_response_rules
            or proxy.http_after_response_rules  # they edit every response, plain or not
            or proxy.capture_response_headers
            or proxy.compression
        )
        self.compression = proxy.compression  # core/http/compression.py
        self.pages: bool | None = None  # a stats page may answer here (net/services.py)
        self.forwardfor = model.Option.FORWARDFOR in options
        # `option originalto` here or in a backend: each connection's destination is read
        # before NAT (SO_ORIGINAL_DST), as HAProxy reads it (process/runtime.py sets it).
        self.original_dst = proxy.originalto is not None
        self.request_rules = bool(proxy.http_request_rules or proxy.redirects)
        # `monitor-uri` (HTTP only): answered before any rule (request_analysers.monitor).
        monitor = proxy.monitor
        self.monitor_uri = monitor.uri if monitor is not None else None
        self.monitor_fail = (
            [compile_condition(cond, "req") for cond in monitor.fail] if monitor else []
        )
        # HTTP: `timeout http-request` for a request head (else `timeout client`), and for
        # the next one on a kept connection `timeout http-keep-alive` when it is set.
        timeouts = proxy.timeouts
        self.first_head_timeout = seconds(timeouts.http_request) or self.client_timeout
        self.next_head_timeout = (
            seconds(timeouts.http_keep_alive) or self.client_timeout
            if timeouts.http_keep_alive is not None
            else self.first_head_timeout
        )
        self.cur_conn = 0
        self.cum_conn = 0
        self.max_conn_seen = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.hrsp = [0] * 6  # HTTP responses sent, by class: [other, 1xx, ..., 5xx]
        self.unanswered = 0  # HTTP requests that got no response (the client left)
        self.intercepted = 0  # requests poise answered itself (`monitor-uri`)
        # Refusals and request errors (core/counters.py, core/layer4.py say which).
        self.denied_req = self.denied_resp = self.failed_req = 0
        self.denied_conn = self.denied_sess = 0
        self.listeners: list[Listening] = []
        # `disable frontend`: its listeners stop listening until `enable frontend`.
        self.paused = False
        # `option socket-stats`: each listener's counters, in `bind` order (the shell's).
        self.sockets: list[SocketCounters] = []
        # Sessions, HTTP requests and connections per second (core/traffic.py's tick).
        self.sess_rate = Rate()
        self.req_rate = Rate()
        self.conn_rate = Rate()

    @property
    def req_tot(self) -> int:
        """HTTP requests received: the answered ones are counted by class in `hrsp`."""
        return sum(self.hrsp) + self.unanswered

    def clear(self, every: bool) -> None:
        """`clear counters` (the highest values) or `clear counters all` (every counter),
        its listeners' too, as HAProxy 2.6 clears them."""
        self.max_conn_seen = 0
        self.sess_rate.max = self.req_rate.max = self.conn_rate.max = 0
        if every:
            self.cum_conn = self.bytes_in = self.bytes_out = self.unanswered = 0
            self.denied_req = self.denied_resp = self.failed_req = 0
            self.denied_conn = self.denied_sess = 0
            self.hrsp[:] = [0] * 6
        for sock in self.sockets:
            sock.clear(every)

    def traffic_level(self, error: bool) -> str | None:
        """The syslog level of a traffic line, None when it is not logged (`error`: what
        txnlog.traffic_error says of the session)."""
        if error:
            return self.error_level
        return None if self.dontlog_normal else "info"

    def room(self) -> bool:
        """Whether the frontend's `maxconn` lets one more connection in (the process's
        own is Context's)."""
        return self.cur_conn < self.maxconn

    def admit(self) -> None:
        """Count a connection in: it was accepted, the limits allowing it."""
        self.cur_conn += 1
        self.cum_conn += 1
        self.max_conn_seen = max(self.max_conn_seen, self.cur_conn)

    def leave(self) -> None:
        """A connection ended."""
        self.cur_conn -= 1
