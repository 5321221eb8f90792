"""What the sessions of one running poise share: the loop, the global connection count and
limit, the frontends and backends at run time, and the listeners stopped at a limit.

Connections are counted in when they are accepted (net/accept.py). A frontend or the
process at its `maxconn` stops accepting, as HAProxy's listeners do: new connections wait
in the kernel's backlog, and the listeners resume as sessions end (release) or when the
runtime API raises a limit or enables a frontend (wake).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from poise.config import model
from poise.core.backend import Backend
from poise.core.logformat import compile_http, compile_tcp

if TYPE_CHECKING:
    from poise.net.logsink import LogSink
    from poise.net.tls_server import ServerTls
    from poise.net.upstream import Pool


class Listening(Protocol):
    """A listener's accept loop (net/accept.py)."""

    def resume(self) -> None: ...

    def pause(self) -> None: ...


class Session(Protocol):
    def kill(self, code: str) -> None: ...


class BackendRuntime:
    """The shell's side of a backend: the pure Backend plus timeouts in seconds and the
    log sink, computed once so the per-connection path reads plain attributes."""

    __slots__ = (
        "backend",
        "check_tls",
        "closes_server",
        "connect_timeout",
        "forwardfor",
        "hashes_request",
        "hashes_source",
        "log",
        "plain_responses",
        "pools",
        "proxy",
        "queue_timeout",
        "request_rules",
        "retries",
        "server_fin_timeout",
        "server_timeout",
        "server_tls",
        "tunnel_timeout",
    )

    def __init__(self, backend: Backend, log: LogSink | None) -> None:
        proxy = backend.proxy
        timeouts = proxy.timeouts
        self.backend = backend
        self.proxy = proxy
        self.log = log
        self.retries = proxy.retries
        self.connect_timeout = seconds(timeouts.connect)
        # HAProxy: "If unset, the connect timeout is used" for the queue.
        self.queue_timeout = seconds(
            timeouts.queue if timeouts.queue is not None else timeouts.connect
        )
        self.server_timeout = seconds(timeouts.server)
        self.server_fin_timeout = seconds(timeouts.server_fin)
        self.tunnel_timeout = seconds(timeouts.tunnel)
        self.hashes_source = proxy.balance.algorithm is model.Algorithm.SOURCE
        self.hashes_request = proxy.balance.algorithm in (
            model.Algorithm.URI,
            model.Algorithm.URL_PARAM,
            model.Algorithm.HDR,
            model.Algorithm.RDP_COOKIE,
        )
        # `option http-server-close` or `httpclose` here: server connections are not kept.
        options = proxy.options
        self.closes_server = (
            model.Option.HTTP_SERVER_CLOSE in options or model.Option.HTTPCLOSE in options
        )
        # HTTP: no http-response rule and no persistence cookie here, so a plain response
        # goes through with its head unread beyond its framing (net/http.py).
        self.plain_responses = proxy.cookie is None and not proxy.http_response_rules
        # Read per request: plain flags rather than set lookups of an Enum (whose hash is
        # a Python function).
        self.forwardfor = model.Option.FORWARDFOR in options
        self.request_rules = bool(proxy.http_request_rules or proxy.redirects)
        # HTTP: idle keep-alive connections per server id (net/upstream.py).
        self.pools: dict[int, Pool] = {}
        # `server ... ssl`: per server id, its TLS context and the name to send as SNI and
        # to verify (net/tls.py fills it); a server absent here is spoken to in clear.
        self.server_tls: dict[int, ServerTls] = {}
        # `check-ssl` (or `ssl` with checks on the server's own address): per server id,
        # the TLS of its checks and the name they send (net/tls.py fills it).
        self.check_tls: dict[int, tuple[ServerTls, str | None]] = {}


class FrontendRuntime:
    __slots__ = (
        "backend",
        "bytes_in",
        "bytes_out",
        "client_fin_timeout",
        "client_timeout",
        "closes_client",
        "closes_server",
        "cum_conn",
        "cur_conn",
        "dontlognull",
        "first_head_timeout",
        "forwardfor",
        "hrsp",
        "http_format",
        "listeners",
        "log",
        "logasap",
        "max_conn_seen",
        "maxconn",
        "name",
        "next_head_timeout",
        "pages",
        "paused",
        "plain_responses",
        "proxy",
        "request_rules",
        "tcp_format",
        "tcplog",
        "unanswered",
    )

    def __init__(
        self,
        proxy: model.Proxy,
        backend: BackendRuntime | None,
        log: LogSink | None,
        global_maxconn: int,
    ) -> None:
        self.proxy = proxy
        self.name = proxy.name
        self.backend = backend
        self.log = log
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
        # HTTP: `option httpclose` closes client connections after each response;
        # `http-server-close` or `httpclose` closes server connections.
        self.closes_client = model.Option.HTTPCLOSE in options
        self.closes_server = self.closes_client or model.Option.HTTP_SERVER_CLOSE in options
        self.logasap = model.Option.LOGASAP in options
        # No http-response rule, no response capture: see BackendRuntime.plain_responses.
        self.plain_responses = not (proxy.http_response_rules or proxy.capture_response_headers)
        self.pages: bool | None = None  # a stats page may answer here (net/services.py)
        self.forwardfor = model.Option.FORWARDFOR in options
        self.request_rules = bool(proxy.http_request_rules or proxy.redirects)
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
        self.listeners: list[Listening] = []
        # `disable frontend`: its listeners stop listening until `enable frontend`.
        self.paused = False

    @property
    def req_tot(self) -> int:
        """HTTP requests received: the answered ones are counted by class in `hrsp`."""
        return sum(self.hrsp) + self.unanswered


class Context:
    __slots__ = (
        "actconn",
        "backends",
        "cum_conns",
        "drained",
        "failed_accepts",
        "frontends",
        "hard_maxconn",
        "idle_conns",
        "limited",
        "loop",
        "maxconn",
        "maxsock",
        "pool_high",
        "pool_low",
        "reserved_fds",
        "sessions",
        "stopping",
        "waking",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, maxconn: int, maxsock: int = 0) -> None:
        self.loop = loop
        self.maxconn = maxconn
        self.hard_maxconn = maxconn  # `set maxconn global` may lower maxconn, never pass this
        # The descriptors maxconn needs (core/limits.py), of which those held whatever
        # the connections (listeners, the loop...); unknown: two per connection.
        self.maxsock = maxsock or 2 * maxconn
        self.reserved_fds = self.maxsock - 2 * maxconn
        # HAProxy's tune.pool-high-fd-ratio (25) and pool-low-fd-ratio (20) of maxsock:
        # beyond them idle server connections are not kept (net/upstream.py).
        self.pool_high = (self.maxsock * 25 + 99) // 100
        self.pool_low = (self.maxsock * 20 + 99) // 100
        self.idle_conns = 0  # idle server connections kept for reuse
        self.actconn = 0
        self.cum_conns = 0  # connections ever accepted (`show info` CumConns)
        self.failed_accepts = 0  # accept() failures: out of descriptors (net/accept.py)
        # Listeners that stopped accepting at a limit (HAProxy's listener queues), and
        # whether their wake-up is scheduled.
        self.limited: list[Listening] = []
        self.waking = False
        self.frontends: dict[str, FrontendRuntime] = {}
        self.backends: dict[str, BackendRuntime] = {}
        self.sessions: set[Session] = set()
        self.stopping = False
        # Set when the process is stopping and the last session has ended.
        self.drained = asyncio.Event()

    def wall(self) -> float:
        """Wall-clock time (epoch seconds): cookie dates and log dates."""
        return time.time()

    def used_fds(self) -> int:
        """The descriptors in use, as counted: the reserved ones, two per connection,
        and the idle server connections."""
        return self.reserved_fds + 2 * self.actconn + self.idle_conns

    def forget(self, session: Session) -> None:
        """A session is over (or was refused)."""
        self.sessions.discard(session)
        if self.stopping and not self.sessions:
            self.drained.set()

    def admit(self, frontend: FrontendRuntime) -> None:
        """Count a connection in: it was just accepted, the limits allowing it."""
        self.actconn += 1
        self.cum_conns += 1
        frontend.cur_conn += 1
        frontend.cum_conn += 1
        frontend.max_conn_seen = max(frontend.max_conn_seen, frontend.cur_conn)

    def release(self, frontend: FrontendRuntime) -> None:
        """A connection ended: count it out, and resume the listeners waiting for room,
        once the loop has closed its sockets (the transports close them in callbacks
        scheduled before this one): a listener at the limit accepts no more connections
        than there are descriptors free."""
        self.actconn -= 1
        frontend.cur_conn -= 1
        if self.limited and not self.waking:
            self.waking = True
            self.loop.call_soon(self.wake)

    def pause(self, frontend: FrontendRuntime, paused: bool) -> None:
        """`disable frontend` (its listeners stop listening) or `enable frontend`."""
        frontend.paused = paused
        for listener in frontend.listeners:
            if paused:
                listener.pause()
            else:
                listener.resume()

    def wake(self) -> None:
        """There may be room (a session ended, a limit was raised, a frontend enabled):
        the limited listeners resume, or wait again where there still is none."""
        self.waking = False
        waiting, self.limited = self.limited, []
        for listener in waiting:
            listener.resume()


def seconds(ms: int | None) -> float | None:
    return None if ms is None or ms == 0 else ms / 1000.0
