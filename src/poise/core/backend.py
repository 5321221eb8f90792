"""The running backend: one object per `backend` (or `listen`) section holding its servers,
its balancer, the connections waiting for a server slot (HAProxy's pending connections,
`maxconn` + `timeout queue`), its settings derived once from the configuration, its
compiled http-request/http-response rules, and its counters. The shell keeps only its
I/O (idle connection pools, TLS contexts) apart, keyed by this object (net/context.py).

Pure: the session shell asks `take()` for a server and gives it back with `release()`;
both return the waiting connections that may now go ahead, and the shell starts them.
Queue order is the order of arrival across the backend queue and the servers' own queues
(a connection bound to a full server by hashing waits in that server's queue).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from poise.config import model
from poise.core import proc
from poise.core.acl import compile_condition
from poise.core.balancer import Balancer, eligible
from poise.core.http.message import Request
from poise.core.http.rules import Rules
from poise.core.server import ServerState
from poise.core.stickrules import StickRules
from poise.core.tcprules import compile_rules
from poise.core.traffic import Traffic


class Log(Protocol):
    """Where a proxy's log lines go (the shell's net/logsink.LogSink)."""

    def send(
        self, level: str, message: str, facility: str | None = None, sd: str | None = None
    ) -> None: ...

    def explain(self, message: str) -> None:
        """Send a line that explains a failure, to the targets that take no traffic
        lines (core/logline.py `explanation_target`)."""


def seconds(ms: int | None) -> float | None:
    """A configured time (milliseconds, 0 or unset: none) in seconds."""
    return None if ms is None or ms == 0 else ms / 1000.0


class Waiter(Protocol):
    """A connection waiting in a queue (the shell's session object)."""

    def dequeued(self, server: ServerState) -> None:
        """Called by the shell when a Go gives this waiter a server slot."""


class Outcome(Enum):
    ASSIGNED = "assigned"
    QUEUED = "queued"
    NO_SERVER = "no server"  # nothing usable: the connection fails at once


@dataclass(frozen=True, slots=True)
class Take:
    outcome: Outcome
    server: ServerState | None = None


@dataclass(frozen=True, slots=True)
class Go:
    """A waiting connection that now has a server slot."""

    waiter: Waiter
    server: ServerState


NO_GOES: list[Go] = []  # shared and never appended to


def start(goes: list[Go]) -> None:
    """Let the waiters that got a slot go ahead (called by the shell)."""
    for go in goes:
        go.waiter.dequeued(go.server)


BalancerFactory = Callable[[Sequence[ServerState]], Balancer]


def no_clock() -> float:
    """A backend without the shell's clock (tests of the core): time stands still."""
    return 0.0


class Backend:
    __slots__ = (
        "_assigned",
        "abortonclose",
        "balancer",
        "buffers_body",
        "cli_abrt",
        "clock",
        "closes_server",
        "compression",
        "connect_timeout",
        "cum_sess",
        "cur_sess",
        "denied_req",
        "denied_resp",
        "dyncookie",
        "dyncookie_key",
        "failed_resp",
        "forwardfor",
        "fullconn",
        "hashes_request",
        "hashes_source",
        "hrsp",
        "http",
        "log",
        "max_queued",
        "max_retries",
        "max_sess",
        "name",
        "persist_rules",
        "plain_responses",
        "prefers_last",
        "pretends_keepalive",
        "proxy",
        "queue",
        "queue_timeout",
        "redispatches",
        "request_rules",
        "requeued",
        "retries",
        "rules",
        "seq",
        "server_fin_timeout",
        "server_queues",
        "server_timeout",
        "servers",
        "srv_abrt",
        "stick",
        "tcp",
        "traffic",
        "tunnel_timeout",
        "unserved_bytes_in",
        "unserved_bytes_out",
        "use_servers",
    )

    def __init__(
        self,
        proxy: model.Proxy,
        servers: list[ServerState],
        make_balancer: BalancerFactory,
        log: Log | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.proxy = proxy
        # The shell's clock (the loop's): when the backend went DOWN or UP again.
        self.clock = clock if clock is not None else no_clock
        self.name = proxy.name
        proc.BACKENDS[self.name] = self  # for nbsrv(NAME), be_conn(NAME) ... (core/proc.py)
        self.servers = servers
        self.balancer = make_balancer(servers)
        self.log = log
        self.rules = Rules(proxy)  # compiled once: http-request, redirect, http-response
        # `cookie ... dynamic` and its key, as `enable|disable dynamic-cookie backend` and
        # `set dynamic-cookie-key backend` leave them (core/dyncookie.py).
        cookie = proxy.cookie
        self.dyncookie = cookie is not None and cookie.dynamic
        self.dyncookie_key = cookie.dynamic_key if cookie is not None else None
        for server in servers:
            server.use_dynamic_cookie(self.dyncookie_key if self.dyncookie else None)
        # `use-server NAME if|unless COND`, compiled once, with the server each one names.
        by_name = {server.name: server for server in servers}
        self.use_servers = [
            (compile_condition(use.condition, "req"), by_name[use.server])
            for use in proxy.use_servers
        ]
        # `force-persist` (True) and `ignore-persist` (False) rules, compiled once.
        self.persist_rules = [
            (compile_condition(rule.condition, "req"), rule.force) for rule in proxy.persist_rules
        ]
        self.tcp = compile_rules(proxy)  # tcp-request content, tcp-response (None: none)
        # `stick on|match|store-*` (core/stickrules.py; None: none).
        self.stick = StickRules(proxy, servers) if proxy.stick_rules else None
        self.http = proxy.mode is model.Mode.HTTP
        # `option http-buffer-request`, asked once (an enum's hash is a Python call).
        self.buffers_body = model.Option.HTTP_BUFFER_REQUEST in proxy.options
        self._derive(proxy)
        self.queue: deque[tuple[int, Waiter]] = deque()
        self.server_queues: dict[int, deque[tuple[int, Waiter]]] = {s.id: deque() for s in servers}
        self.seq = 0
        # `fullconn`: the load at which servers reach their `maxconn` (with `minconn`);
        # without it the runtime sets HAProxy's default (admin/stats.fullconn).
        self.fullconn = proxy.fullconn or 0
        for server in servers:
            if 0 < server.minconn < server.maxconn:
                server.load = self
        self.cur_sess = 0  # connections handled by this backend now (HAProxy's beconn)
        self.cum_sess = 0
        self.max_sess = 0  # the most connections handled at once (HAProxy's smax)
        self.max_queued = 0
        self.requeued = 0
        # Per-request counters (core/counters.py says when each one counts). The bytes
        # of sessions that had a server are counted on the server only (one addition
        # less per request): these are the others' (503s, the backend's own answers),
        # and those of servers deleted since.
        self.unserved_bytes_in = 0
        self.unserved_bytes_out = 0
        self.hrsp = [0] * 6  # responses by class: [other, 1xx, ..., 5xx]
        # lbtot, connect/reuse, the times, rates, chkdown, downtime (core/traffic.py).
        self.traffic = Traffic()
        self.traffic.last_change = self.clock()
        self.cli_abrt = 0
        self.srv_abrt = 0
        self.denied_req = 0  # dreq
        self.denied_resp = 0  # dresp
        self.failed_resp = 0  # eresp
        self.retries = 0  # wretr
        self.redispatches = 0  # wredis
        self._assigned: dict[ServerState, Take] = {}  # one Take per server, made once

    def _derive(self, proxy: model.Proxy) -> None:
        """The settings the per-connection path reads, as plain attributes: timeouts in
        seconds, and flags rather than set lookups of an Enum (whose hash is a Python
        function)."""
        timeouts = proxy.timeouts
        self.max_retries = proxy.retries  # `retries` (the counter `retries` is wretr)
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
        # `option prefer-last-server` (HTTP): a request goes to the server whose connection
        # its session keeps, while that server is usable; not with a hashing algorithm
        # (HAProxy's BE_LB_KIND_HI), whose choice depends on the request alone. HAProxy 2.6
        # keeps a connection with its session only when it is private (`http-reuse
        # never`); else it goes back to the server's idle pool after each response and the
        # option changes nothing (measured).
        self.prefers_last = (
            model.Option.PREFER_LAST_SERVER in options
            and proxy.http_reuse == "never"
            and not (self.hashes_source or self.hashes_request)
        )
        self.closes_server = (
            model.Option.HTTP_SERVER_CLOSE in options or model.Option.HTTPCLOSE in options
        )
        # `option http-pretend-keepalive`: a server connection poise closes after the
        # response is not announced as closing (the server may then answer chunked).
        self.pretends_keepalive = model.Option.HTTP_PRETEND_KEEPALIVE in options
        # HTTP: no http-response rule, no persistence cookie and no compression here, so a
        # plain response goes through with its head unread beyond its framing (net/http.py).
        self.plain_responses = (  # http-after-response edits every response, plain or not
            proxy.cookie is None
            and not proxy.http_response_rules
            and not proxy.http_after_response_rules
            and proxy.compression is None
        )
        self.compression = proxy.compression  # core/http/compression.py
        self.forwardfor = model.Option.FORWARDFOR in options
        self.abortonclose = model.Option.ABORTONCLOSE in options  # core/connect.py
        self.request_rules = bool(proxy.http_request_rules or proxy.redirects)

    # -- what the balancer sees -------------------------------------------------------

    def persistence(self, req: Request | None) -> bool | None:
        """What the first `force-persist` (True) or `ignore-persist` (False) rule whose
        condition holds on `req` says, as HAProxy asks once the backend is known (before
        the backend's own rules); None: no rule holds."""
        if req is not None:
            for test, force in self.persist_rules:
                if test(req, None):
                    return force
        return None

    def rule_server(self, req: Request | None, force: bool = False) -> ServerState | None:
        """The server of the first `use-server` rule whose condition holds on `req` and
        whose server is usable (or any, under `option persist` or `force-persist`); None:
        the balancer chooses (HAProxy's process_server_rules goes on past an unusable
        server)."""
        if req is None:
            return None
        persist = force or model.Option.PERSIST in self.proxy.options
        for test, server in self.use_servers:
            if test(req, None) and (persist or server.usable):
                return server
        return None

    def server(self, name: str) -> ServerState | None:
        for server in self.servers:
            if server.name == name:
                return server
        return None

    @property
    def has_server(self) -> bool:
        return bool(eligible(self.servers, self.balancer.allbackups))

    @property
    def queued(self) -> int:
        return len(self.queue)

    @property
    def bytes_in(self) -> int:
        return self.unserved_bytes_in + sum(s.bytes_in for s in self.servers)

    @property
    def bytes_out(self) -> int:
        return self.unserved_bytes_out + sum(s.bytes_out for s in self.servers)

    @property
    def req_tot(self) -> int:
        """The requests routed here that got a response (counted with `hrsp`)."""
        return sum(self.hrsp)

    # -- a connection asks for a server and gives it back ---------------------------

    def enter(self) -> None:
        """A connection was routed to this backend."""
        self.cur_sess += 1
        self.cum_sess += 1
        self.max_sess = max(self.max_sess, self.cur_sess)

    def leave(self) -> None:
        self.cur_sess -= 1

    def take(
        self, waiter: Waiter, key: bytes | None = b"", avoid: ServerState | None = None
    ) -> Take:
        """Choose a server for `waiter`, or queue it, or say there is none. A None key is
        a request without the part a hashing balancer hashes."""
        balancer = self.balancer
        server = balancer.pick(key, avoid) if key is not None else balancer.pick_without_key(avoid)
        if server is None:
            if balancer.refuses_unchosen or not self.has_server:
                self.traffic.nosrv += 1  # HAProxy's SRV_STATUS_NOSRV: a failed connection
                return Take(Outcome.NO_SERVER)
            self._enqueue(self.queue, waiter)
            return Take(Outcome.QUEUED)
        if server.full:  # a deterministic balancer keeps its choice: wait for that server
            maxqueue = server.config.maxqueue
            if maxqueue and server.queued >= maxqueue:
                # HAProxy: past `maxqueue`, go to another server rather than wait forever.
                self._enqueue(self.queue, waiter)
                return Take(Outcome.QUEUED)
            self._enqueue(self.server_queues[server.id], waiter)
            server.queued += 1
            server.max_queued = max(server.max_queued, server.queued)
            return Take(Outcome.QUEUED, server)
        self._assign(server)
        server.traffic.lbconn += 1
        self.traffic.lbconn += 1
        take = self._assigned.get(server)
        if take is None:
            take = self._assigned[server] = Take(Outcome.ASSIGNED, server)
        return take

    def occupy(self, server: ServerState) -> None:
        """Take a slot on a server chosen without the balancer (persistence)."""
        self._assign(server)

    def wait_for(self, waiter: Waiter, server: ServerState) -> None:
        """Wait in `server`'s own queue (a persistent client whose server is full)."""
        self._enqueue(self.server_queues[server.id], waiter)
        server.queued += 1
        server.max_queued = max(server.max_queued, server.queued)

    def release(self, server: ServerState) -> list[Go]:
        """`server` has one more free slot: give it to the oldest connection that may use it."""
        server.cur_sess -= 1
        if not self.queue and not server.queued:
            return NO_GOES  # the common case: nobody waits
        return self._dispatch(server)

    def cancel(self, waiter: Waiter, server: ServerState | None = None) -> None:
        """A waiting connection gave up (queue timeout, client left)."""
        queue = self.queue if server is None else self.server_queues.get(server.id, deque())
        for i, (_, queued) in enumerate(queue):
            if queued is waiter:
                del queue[i]
                if server is not None:
                    server.queued -= 1
                return

    def add(self, server: ServerState) -> list[Go]:
        """A server joins the backend at run time (`add server`), after the others."""
        self.servers.append(server)
        self.server_queues[server.id] = deque()
        server.use_dynamic_cookie(self.dyncookie_key if self.dyncookie else None)
        return self.changed()

    def set_dynamic_cookies(self, on: bool, key: str | None) -> None:
        """Dynamic cookies turned on or off, or given a new key, at run time: every
        server without a `cookie VALUE` of its own gets its value again (or none)."""
        self.dyncookie, self.dyncookie_key = on, key
        for server in self.servers:
            server.use_dynamic_cookie(key if on else None)

    def remove(self, server: ServerState) -> list[Go]:
        """A server leaves the backend at run time (`del server`); the caller has checked
        that nothing uses it or waits for it."""
        assert server.cur_sess == 0 and server.queued == 0, server
        self.servers.remove(server)
        self.unserved_bytes_in += server.bytes_in  # the backend's totals stay
        self.unserved_bytes_out += server.bytes_out
        del self.server_queues[server.id]
        self._assigned.pop(server, None)
        return self.changed()

    def changed(self) -> list[Go]:
        """A server's state, weight or membership changed: rebalance, requeue, dispatch."""
        self.balancer.update()
        for server in self.servers:
            waiting = self.server_queues.setdefault(server.id, deque())
            if waiting and not server.serves_persistent:
                # Its own queue goes back to the backend's, in order of arrival.
                self.requeued += len(waiting)
                server.queued = 0
                merged = sorted([*self.queue, *waiting], key=lambda item: item[0])
                self.queue = deque(merged)
                waiting.clear()
        goes: list[Go] = []
        for server in eligible(self.servers, self.balancer.allbackups):
            goes.extend(self._dispatch(server))
        self.traffic.backend_state(self.has_server, self.clock())
        return goes

    # -- inside -------------------------------------------------------------------------

    def _enqueue(self, queue: deque[tuple[int, Waiter]], waiter: Waiter) -> None:
        self.seq += 1
        queue.append((self.seq, waiter))
        self.max_queued = max(self.max_queued, len(self.queue))

    def _assign(self, server: ServerState) -> None:
        server.cur_sess += 1
        server.total_sess += 1
        server.max_sess = max(server.max_sess, server.cur_sess)

    def _dispatch(self, server: ServerState) -> list[Go]:
        goes: list[Go] = []
        own = self.server_queues.setdefault(server.id, deque())
        while not server.full and server.serves_persistent:
            if own and (not self.queue or own[0][0] < self.queue[0][0]):
                _, waiter = own.popleft()
                server.queued -= 1
            elif self.queue and server.usable:
                _, waiter = self.queue.popleft()
            else:
                break
            self._assign(server)
            goes.append(Go(waiter, server))
        return goes
