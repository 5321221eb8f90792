"""A TCP-mode session: one client connection relayed to one server connection.

accept (net/accept.py, which stops at maxconn) -> the frontend's `tcp-request connection`
and `session` rules -> its `tcp-request content` rules, which may hold the client's first
bytes up to `tcp-request inspect-delay` (net/inspect.py) -> the switching rules
(`use_backend`) -> the backend's content rules -> pick a server (or queue, or fail) ->
connect (connect timeout, retries with a turn-around delay, redispatch: the session's
Dispatch, net/dispatch.py, as for HTTP) -> relay bytes both ways -> log.

The relay (back-pressure, half-close, the idle timeouts) is net/relay.py's, which HTTP
mode's tunnels use too: a TcpSession is a Relay that first gets its server connection.
"""

from __future__ import annotations

import asyncio
from typing import cast

from poise.core import stickrules, sticktrack
from poise.core.backend import Backend
from poise.core.connect import CON, PENDING_LIMIT, QUE, abort_on_close
from poise.core.counters import settle
from poise.core.frontend import Frontend
from poise.core.http.hashkey import source_key
from poise.core.http.message import Request
from poise.core.http.rules import select_backend
from poise.core.layer4 import HELD_LIMIT
from poise.core.payload import Held
from poise.core.rdp_cookie import rdp_cookie
from poise.core.server import ServerState
from poise.core.tcp_http import read_head
from poise.core.tcprules import Decision, TcpRuleSets, run_rules
from poise.core.termination import NORMAL, Cause, Failure, Phase, code
from poise.core.txn import DENIED_FRONTEND, DENIED_REQUEST, DENIED_RESPONSE, Conn, Txn
from poise.net.context import Context
from poise.net.dispatch import Dispatch
from poise.net.inspect import connection_request, refused
from poise.net.relay import Relay, ServerSide
from poise.net.sessionlog import log_tcp_session
from poise.net.upgrade import upgrade


class InspectedServerSide(ServerSide):
    """The server side of a session whose backend has `tcp-response content` rules: the
    response's first bytes are held until a rule decides or `tcp-response inspect-delay`
    ends (then the contents are final). accept forwards them; close forwards them and
    closes the server connection; reject ends the session (PD), nothing forwarded: what
    haproxy 2.6.12 does on the same config, which also counts the held bytes in %B. (One
    difference: haproxy 2.6.12 forwards a response whose rules waited only at the next
    event, here `timeout client`; poise forwards it when the delay ends, as documented.)"""

    __slots__ = ("held", "rule", "rules", "timer")
    session: TcpSession

    def __init__(self, session: TcpSession, rules: TcpRuleSets) -> None:
        super().__init__(session)
        self.rules = rules
        self.rule = 0
        self.held: Held | None = Held()
        self.timer: asyncio.TimerHandle | None = None
        if rules.response_inspect:
            self.timer = session.loop.call_later(rules.response_inspect, self.expired)
        else:
            self.held.final = True  # no delay: the rules decide on the first bytes

    def data_received(self, data: bytes) -> None:
        held = self.held
        if held is None:
            super().data_received(data)
            return
        session = self.session
        session.txn.bytes_out += len(data)
        session.last_active = session.loop.time()
        held.res += data
        if len(held.res) >= HELD_LIMIT:
            held.final = True
        self.decide()

    def eof_received(self) -> bool:
        if self.held is not None:
            self.held.final = True
            self.decide()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held is not None:
            self.held.final = True
            self.decide()
        super().connection_lost(exc)

    def expired(self) -> None:
        self.timer = None
        if self.held is not None:
            self.held.final = True
            self.decide()

    def decide(self) -> None:
        held, session = self.held, self.session
        if held is None or (not held.res and not held.final):
            return
        conn = session.conn
        req = session.req
        if req is None:  # kept: a `set-log-level` of these rules is read by the log line
            req = session.req = connection_request(conn, session.client)
        conn.held = held  # what res.len and res.payload read
        decision, self.rule = run_rules(self.rules.response, req, self.rule)
        conn.held = None
        if decision is Decision.WAIT:
            return
        self.held = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if decision is Decision.REJECT:  # dresp (core/counters.py)
            session.txn.denied = DENIED_RESPONSE
            session.kill(code(Cause.PROXY, Phase.DATA))
            return
        if held.res and not session.client_gone:
            session.client.write(held.res)
        if decision is Decision.CLOSE and self.transport is not None:
            self.transport.abort()


class TcpSession(Relay):
    """The client side of a TCP-mode session; owns the whole session. The relay's part
    (net/relay.py) starts when the server connection is up."""

    __slots__ = (
        "accept_time",
        "chosen",
        "conn",
        "ctx",
        "dispatch",
        "held",
        "inspecting",
        "pending",
        "req",
        "rule",
        "server",
    )

    def __init__(self, ctx: Context, frontend: Frontend) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.frontend = frontend
        self.backend: Backend | None = None
        self.server: ServerState | None = None
        self.server_transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.client_eof = self.server_eof = False
        self.client_gone = self.server_gone = False
        self.finished = False
        # The whole session is one transaction; its state is set when something ends it.
        self.txn = Txn(0.0)
        self.txn.term = ""
        self.timer: asyncio.TimerHandle | None = None  # the relay's idle timeout
        self.dispatch = Dispatch(self, ctx)  # the server side (net/dispatch.py)
        self.idle = 0.0
        self.idle_code = Failure.CLIENT_TIMEOUT.code
        self.conn = Conn()
        self.held: Held | None = None  # the bytes content rules are looking at
        self.req: Request | None = None  # the connection as layer-4 rules see it
        self.inspecting: TcpRuleSets | None = None  # whose content rules wait for bytes
        self.rule = 0  # the content rule to evaluate again when more bytes come
        self.chosen: Backend | None = None  # the switching rules' choice, while inspecting

    # -- client side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.client = cast(asyncio.Transport, transport)
        self.last_active = self.loop.time()
        self.accept_time = self.loop.time()
        peer = transport.get_extra_info("peername")
        if self.conn.proxied is not None:
            self.conn.use_proxied()  # `accept-proxy`: the header's (net/proxied.py)
        elif isinstance(peer, tuple):
            self.conn.client_ip, self.conn.client_port = peer[0], peer[1]
        elif not self.conn.client_ip:  # (an address from accept() stays: net/accept.py)
            self.conn.client_ip, self.conn.client_port = "unix", 0
        self.ctx.sessions.add(self)
        if self.frontend.inspects:  # layer-4 rules or use_backend to run first
            self.layer4()
        else:
            self.begin()  # counted in when it was accepted (net/accept.py)

    def begin(self) -> None:
        self.accept_time = self.txn.start = self.loop.time()
        backend = self.frontend.backend
        if backend is None:  # a frontend without backend: HAProxy's <NOSRV>, SC
            self.fail(Failure.NO_SERVER)
            return
        if backend.http:  # HAProxy's implicit upgrade (net/upgrade.py)
            upgrade(self, backend)
            return
        self.backend = backend
        backend.enter()
        if backend.persist_rules:
            self.txn.persist = backend.persistence(self.sni_request())
        self.dispatch.assign(None)

    # -- layer-4 rules (core/tcprules.py), before a server is chosen ----------------------

    def layer4(self) -> None:
        """The frontend's connection and session rules, then its content rules, the
        switching rules and the backend's content rules (content_done)."""
        self.accept_time = self.txn.start = self.loop.time()
        req = self.req = connection_request(self.conn, self.client)
        rules = self.frontend.tcp
        if refused(self.ctx, self.frontend, self.conn, self.client, req):
            self.finished = True  # neither logged nor accounted, as in HAProxy
            self.ctx.forget(self)
            return
        self.start_content(rules)

    def start_content(self, rules: TcpRuleSets | None) -> None:
        """Run a proxy's content rules on the bytes held, waiting for more up to its
        inspect-delay while a condition cannot tell yet."""
        if rules is None or not rules.content:
            self.content_done()
            return
        held = self.held
        if held is None:
            held = self.held = self.conn.held = Held()
            held.req = b"".join(self.pending)
        held.final = not rules.inspect or self.client_eof or len(held.req) >= HELD_LIMIT
        self.inspecting = rules
        self.rule = 0
        if not held.final:
            self.arm_inspect(rules.inspect)
        self.inspect()

    def inspect(self) -> None:
        rules, req = self.inspecting, self.req
        if rules is None or req is None:
            return
        if self.held is not None:
            read_head(req, self.held.req)  # HTTP fetches on the bytes (core/tcp_http.py)
        decision, self.rule = run_rules(rules.content, req, self.rule)
        if decision is Decision.WAIT:
            return
        self.inspecting = None
        self.cancel_timer()
        if decision is Decision.ACCEPT:
            self.content_done()
            return
        self.end_inspection()
        self.txn.denied = DENIED_REQUEST if self.chosen is None else DENIED_FRONTEND
        self.fail(Failure.REJECTED)

    def arm_inspect(self, delay: float) -> None:
        """The inspect-delay, unless `timeout client` is shorter (then it ends the session
        first, as HAProxy warns it does)."""
        self.cancel_timer()
        client = self.frontend.client_timeout
        if client is not None and client < delay:
            self.timer = self.loop.call_later(client, self.kill, Failure.REQUEST_TIMEOUT.code)
        else:
            self.timer = self.loop.call_later(delay, self.inspect_expired)

    def inspect_expired(self) -> None:
        self.timer = None
        if self.held is not None:
            self.held.final = True
            self.inspect()

    def content_done(self) -> None:
        """After the frontend's content rules, the switching rules, then the chosen
        backend's content rules (a second inspect-delay); after those, a server."""
        backend = self.chosen
        if backend is None:
            backend = self.chosen = self.route()
            if backend is None:
                self.end_inspection()
                self.fail(Failure.REJECTED)
                return
            if backend.http:
                # HAProxy's implicit upgrade (net/upgrade.py): the backend's content rules
                # run on each request, as an HTTP backend's do.
                self.end_inspection()
                upgrade(self, backend)
                return
            rules = backend.tcp
            if backend.proxy is not self.frontend.proxy and rules is not None and rules.content:
                self.start_content(rules)
                return
        self.end_inspection()
        self.backend = backend
        backend.enter()
        if backend.persist_rules:  # `force-persist` lets `use-server` take a down server
            self.txn.persist = backend.persistence(self.sni_request())
        self.dispatch.assign(None)

    def route(self) -> Backend | None:
        """The switching rules (`use_backend`), on the contents as they are now (HAProxy
        evaluates them once, the samples final)."""
        frontend = self.frontend
        if not frontend.proxy.use_backends or self.req is None:
            return frontend.backend
        if self.held is not None:
            self.held.final = True
            read_head(self.req, self.held.req)
        name = select_backend(frontend.rules, self.req)
        return self.ctx.backends.get(name) if name is not None else None

    def end_inspection(self) -> None:
        self.held = self.conn.held = None
        self.inspecting = None
        self.cancel_timer()

    def before_server(self, data: bytes) -> None:
        self.pending.append(data)
        if sum(map(len, self.pending)) >= PENDING_LIMIT:
            self.client.pause_reading()
        held = self.held
        if held is not None:
            held.req += data
            if len(held.req) >= HELD_LIMIT:
                held.final = True  # the buffer is full: the contents cannot change
            self.inspect()

    def eof_before_server(self) -> bool:
        backend = self.backend
        if backend is not None and backend.abortonclose:
            gives_up = abort_on_close(self.dispatch.state)  # `option abortonclose`
            if gives_up is not None:
                # Closed here: lost_before_server leaves the queue, or lets the attempt
                # under way end the session (net/dispatch.py), nothing sent.
                self.txn.term = gives_up.code
                return False
        if self.held is not None:
            self.held.final = True  # the client closed: the contents cannot change
            self.inspect()
        return not self.server_gone

    def lost_before_server(self) -> None:
        if self.held is not None:  # while content rules waited for its bytes
            self.txn.term = self.txn.term or Failure.CLIENT_ABORT_REQUEST.code
            self.held = self.conn.held = None
        dispatch = self.dispatch
        if dispatch.state is QUE:
            dispatch.leave_queue()
            self.txn.term = self.txn.term or Failure.CLIENT_ABORT_QUEUE.code
        elif self.server is not None:
            self.txn.term = self.txn.term or Failure.CLIENT_ABORT_CONNECT.code
            if dispatch.state is CON:
                return  # the attempt under way ends the session when it completes
        self.finish()

    # -- the server connection (net/dispatch.py does the choosing and connecting) --------

    def balance_key(self) -> bytes | None:
        backend = self.backend
        if backend is not None and backend.hashes_source:
            return source_key(self.conn.client_ip)
        if backend is not None and backend.hashes_request:
            # `balance rdp-cookie`: the cookie in the bytes content rules held (none held,
            # or none in them: round robin, as HAProxy).
            found = rdp_cookie(b"".join(self.pending), backend.proxy.balance.argument)
            return found if isinstance(found, bytes) else None
        return b""

    def server_protocol(self) -> asyncio.Protocol:
        backend = self.backend
        rules = backend.tcp if backend is not None else None
        if rules is not None and rules.response:
            return InspectedServerSide(self, rules)
        return ServerSide(self)

    def reuse(self, server: ServerState) -> bool:
        return False  # a TCP session's connection is its own

    def on_redispatch(self) -> None:
        pass

    def destination_port(self) -> int:
        if self.conn.dst_ip:  # from a PROXY header
            return self.conn.dst_port
        sockname = self.client.get_extra_info("sockname")
        return sockname[1] if isinstance(sockname, tuple) else 0

    def sni_request(self) -> Request | None:
        """A TCP session has no request: the connection's facts stand for one, for a
        server's `sni` expression (ssl_fc_sni, src, dst)."""
        return self.req or connection_request(self.conn, self.client)

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        server_transport = self.server_transport = cast(asyncio.Transport, transport)
        self.txn.t_connect = connect_ms
        if self.txn.stick_stores and self.server is not None:  # `stick on|store-request`
            stickrules.commit(self.txn.stick_stores, self.server)
            self.txn.stick_stores = None
        # A server that already closed (a socketpair peer can, before this runs) is
        # reported by connection_lost: nothing more is written to it.
        closing = transport.is_closing()
        if self.pending and not closing:
            data = b"".join(self.pending)
            self.pending = []
            server_transport.write(data)
            self.client.resume_reading()
        if self.client_eof and server_transport.can_write_eof() and not closing:
            server_transport.write_eof()
        self.last_active = self.loop.time()
        self.arm_idle()
        if self.frontend.logasap:
            log_tcp_session(self, final=False)

    # -- the end ------------------------------------------------------------------------

    def fail(self, failure: Failure) -> None:
        """The session cannot be served: close the client and log why."""
        self.txn.term = failure.code
        if self.client_gone:
            self.finish()
        else:
            self.client.close()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.cancel_timer()
        self.dispatch.close()
        txn = self.txn
        if not txn.term:
            txn.term = NORMAL
        if self.conn.track is not None:
            sticktrack.connection_ended(self.conn, txn.bytes_in, txn.bytes_out)
        frontend = self.frontend
        logger = self if frontend.log is not None else None
        settle(txn, frontend, self.backend, self.server, True, False, logger, self.loop.time)
        if self.conn.sock is not None:
            self.conn.sock.account(txn)
        self.ctx.forget(self)
        self.ctx.release(self.frontend, self.conn.sock)
        if not self.dispatch.connecting:
            # Nothing calls the session again: its Dispatch, which holds it as its owner,
            # goes, so that it is freed now rather than by the garbage collector (issue 16,
            # as net/http.py's forget_self).
            del self.dispatch

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None:
        """The session's log lines, at its end (core/counters.py's settle)."""
        log_tcp_session(self, final=True)

    def record(self) -> Txn:
        """The session's record, with where it went, for its log line and the counters."""
        txn = self.txn
        txn.server = self.server
        txn.backend = self.backend
        return txn
