"""An HTTP-mode session's shell: the asyncio Protocol of one client connection, built on
the pure HttpStream (core/http/stream.py), which decides everything about its requests.

HttpSession is the stream (a subclass: one object per connection, no second object to
make and walk) plus the shell. It hands the stream its events with the time (client
bytes, EOF, the connection lost; the server connection's, through net/upstream.py; the
timer) and is the stream's Port (core/http/stream_port.py): the transports, the one
timer, the server connection (an Upstream, kept for the next request or from its
server's pool: `http-reuse`), the log sink (net/httplog.py), the services
(net/services.py). For speed the stream writes through the transports' own bound
`write` methods, which the session hands it.

httptools parses heads only; framing is pure code (core/http/framing.py: a RequestFramer
and a ResponseFramer per session hold the buffers, the phases and the body counts).
"""

from __future__ import annotations

import asyncio
from typing import cast

from poise.core.backend import Backend
from poise.core.frontend import Frontend
from poise.core.http.framing import CLOSED, RequestFramer, ResponseFramer
from poise.core.http.message import Request
from poise.core.http.rules import Verdict
from poise.core.http.stream import INFINITE, HttpStream
from poise.core.server import ServerState
from poise.core.txn import Txn
from poise.net import services
from poise.net.context import Context
from poise.net.dispatch import Dispatch, backend_tls
from poise.net.httplog import log_transaction
from poise.net.inspect import refused
from poise.net.proxied import take_addresses
from poise.net.relay import HttpTunnel
from poise.net.source import client_destination
from poise.net.tls import client_sni
from poise.net.upstream import Pool, Upstream


def _over() -> None:
    """The idle callback of a session that is over (forget_self)."""


class HttpSession(HttpStream, asyncio.Protocol):
    """The stream with its shell: one object per client connection, which is its own
    Port (the stream's calls to its port are plain method calls) and its Dispatch's
    owner and connector. asyncio.Protocol adds no state (its __slots__ is empty)."""

    __slots__ = ("client", "counted", "ctx", "idle_timer", "loop", "relay", "upstream")

    def __init__(self, ctx: Context, frontend: Frontend) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        HttpStream.__init__(self, self, ctx, frontend, ctx.loop.time, RequestFramer(),
                            ResponseFramer())  # fmt: skip
        self.dispatch = Dispatch(self, ctx)  # the server side (net/dispatch.py)
        self.idle_timer: asyncio.TimerHandle | None = None  # the stream's one deadline
        self.upstream: Upstream | None = None
        self.relay: HttpTunnel | None = None  # after a 101 (net/relay.py)
        self.counted = False

    # -- the client connection ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        client = self.client = cast(asyncio.Transport, transport)
        conn = self.conn
        take_addresses(conn, transport)  # the socket's, or a PROXY header's
        if self.frontend.original_dst and conn.proxied is None:  # `option originalto`
            conn.dst_ip, conn.dst_port = client_destination(transport.get_extra_info("socket"))
        tls = client.get_extra_info("ssl_object")
        if tls is not None:
            conn.ssl = True
            conn.sni = client_sni(tls)  # the name the client asked for (SNI)
            conn.client_cert = tls.getpeercert(True) is not None
        frontend = self.frontend  # tcp-request connection and session rules (net/inspect.py)
        # (A connection a TCP session hands over, net/upgrade.py, passed them already.)
        tcp = frontend.tcp
        if tcp is not None and self.routed is None and refused(self.ctx, frontend, conn, client):
            return
        self.write_client = client.write
        # Counted in when it was accepted (net/accept.py).
        self.counted = True
        self.ctx.sessions.add(self)
        self.begin(self.loop.time())

    def data_received(self, data: bytes) -> None:
        self.client_data(data, self.loop.time())

    def eof_received(self) -> bool:
        return self.client_eof()

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.client_lost()
        else:
            self.client_gone = True
        if self.rq.phase is CLOSED and not cast(Dispatch, self.dispatch).connecting:
            self.forget_self()

    def forget_self(self) -> None:
        """The session is over and nothing will call it again (its client connection is
        lost, no connect is under way, its timer is cancelled): its references to itself
        (its own port, its Dispatch's owner, the bound idle callback) are dropped, so
        that it is freed now rather than by the garbage collector, which would walk each
        closed session and everything it holds (issue 16: ~14 us per connection)."""
        self.idle_callback = _over
        self.relay = None
        del self.port, self.dispatch

    # -- the server connection ----------------------------------------------------------

    def upstream_lost(self, upstream: Upstream) -> None:
        if upstream is not self.upstream:
            return
        self.upstream = None
        self.server_lost()

    def server_protocol(self) -> asyncio.Protocol:
        server = self.server
        assert server is not None
        return Upstream(self, self.pool(server))

    def pool(self, server: ServerState) -> Pool:
        backend = self.backend
        assert backend is not None
        pools = self.ctx.io[backend].pools
        pool = pools.get(server.id)
        if pool is None:
            pool = pools[server.id] = Pool(self.ctx, server)
        return pool

    def reuse(self, server: ServerState) -> bool:
        """Keep-alive: this session's last connection to `server`, or an idle one."""
        if self.no_reuse:
            return False
        now = self.loop.time()
        home = self.pool(server)
        upstream = self.upstream
        io = self.ctx.io[self.backend] if self.backend is not None else None
        sni = self.varying_sni(server) if io is not None and io.server_tls else None
        if server.config.proxy_protocol:  # only this client's connections (net/dispatch.py)
            sni = cast(Dispatch, self.dispatch).private_key(sni)
        if upstream is not None and (
            upstream.closed or upstream.home is not home or upstream.sni != sni
        ):
            upstream.release(now)  # kept for its own server (or dropped when closed)
            upstream = self.upstream = None
        if upstream is None and self.reuse_allowed():
            upstream = home.take(now, sni)
        if upstream is None:
            return False
        self.upstream = upstream
        upstream.session = self
        self.write_server = upstream.write
        self.send_request(True)
        return True

    def varying_sni(self, server: ServerState) -> str | None:
        """The SNI a new connection to `server` would send, when it depends on the request
        (`sni req.hdr(host)`); None when it does not (a constant, or no TLS)."""
        tls = backend_tls(self.ctx, self.backend, server)
        if tls is None or tls.dynamic is None:
            return None
        return tls.server_name(self.txn.req) or ""

    # -- the stream's Port (core/http/stream_port.py) -----------------------------------

    def pause_reading(self) -> None:
        self.client.pause_reading()

    def resume_reading(self) -> None:
        self.client.resume_reading()

    def set_deadline(self, when: float) -> None:
        timer = self.idle_timer
        if timer is not None:
            timer.cancel()
        self.idle_timer = self.loop.call_at(when, self.timer_fired)

    def timer_fired(self) -> None:
        self.idle_timer = None
        self.timer(self.loop.time())

    def attach(self, upstream: object) -> None:
        new = cast(Upstream, upstream)
        new.sni = self.dispatch.tls_name
        previous = self.upstream
        if previous is not None and previous is not new:
            previous.release(self.loop.time())
        self.upstream = new
        new.session = self
        self.write_server = new.write

    def discard(self, upstream: object) -> None:
        cast(Upstream, upstream).close()

    def close_server(self) -> None:
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.close()

    def release_server(self, keep: bool) -> None:
        upstream = self.upstream
        if upstream is not None:
            if keep and not upstream.closed:
                upstream.session = None  # kept attached: the next request may reuse it
            else:
                self.upstream = None
                upstream.close()

    def tunnel(self, data: bytes) -> None:
        timer = self.idle_timer
        if timer is not None:
            self.idle_timer = None
            timer.cancel()
        self.deadline = INFINITE
        upstream = self.upstream
        assert upstream is not None and upstream.transport is not None
        upstream.session = None  # its transport's events are the relay's now
        if data:
            upstream.transport.write(data)
        self.relay = HttpTunnel(self, upstream.transport, self.loop.time())

    def tunnel_ended(self) -> None:
        """Both connections of the tunnel are closed: the transaction's end."""
        self.client_gone = True
        self.close_session()

    def kill(self, code: str) -> None:
        if self.relay is not None:
            self.relay.kill(code)  # the relay ends the session when both are closed
        else:
            HttpStream.kill(self, code)

    def close(self, abort: bool, tunnel: bool, reusable: bool) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            if abort or tunnel:
                upstream.abort()
            elif reusable:
                upstream.release(self.loop.time())  # idle and reusable: back to its pool
            else:
                upstream.close()
        if not self.client_gone:
            if abort:
                self.client.abort()
            else:
                self.client.close()
        if self.counted:
            self.counted = False
            self.ctx.forget(self)
            self.ctx.release(self.frontend, self.conn.sock)

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None:
        upstream = self.upstream
        server_side = upstream.transport if upstream is not None else None
        log_transaction(
            txn, self.conn, self.frontend, backend, self.ctx, now, self.client, server_side
        )

    def has_pages(self, frontend: Frontend) -> bool:
        return services.has_pages(self.ctx, frontend)

    def serve(
        self, frontend: Frontend, req: Request, verdict: Verdict, close: bool, body: bytes | None
    ) -> Verdict | None:
        served = services.serve(self.ctx, frontend, req, verdict, close=close, body=body)
        return None if served is services.NEEDS_BODY else served
