"""A TCP-mode session: one client connection relayed to one server connection.

accept (net/accept.py, which stops at maxconn) -> pick a server (or queue, or fail) ->
connect (connect timeout, retries with a turn-around delay, redispatch: the session's
Dispatch, net/dispatch.py, as for HTTP) -> relay bytes both ways -> log.

The relay is two asyncio Protocols writing into each other's transport. Back-pressure: when
one transport's write buffer passes its high-water mark, reading stops on the other side
until it drains, so a slow reader never makes poise buffer without bound. Half-close is
passed through (an EOF from one side becomes a FIN to the other). Inactivity is tracked by a
single lazily re-armed timer: the data path only stores the time of last activity.
"""

from __future__ import annotations

import asyncio
from typing import cast

from poise.core.backend import Backend, start
from poise.core.connect import CON, QUE
from poise.core.counters import account
from poise.core.frontend import Frontend
from poise.core.http.hashkey import source_key
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.server import ServerState
from poise.core.termination import NORMAL, Failure
from poise.core.txn import Conn, Txn
from poise.net.context import Context
from poise.net.dispatch import PENDING_LIMIT, Dispatch
from poise.net.sessionlog import log_tcp_session
from poise.net.tls import client_sni


class ServerSide(asyncio.Protocol):
    __slots__ = ("session", "transport")

    def __init__(self, session: TcpSession) -> None:
        self.session = session
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        session = self.session
        session.txn.bytes_out += len(data)
        session.last_active = session.loop.time()
        session.client.write(data)

    def eof_received(self) -> bool:
        session = self.session
        session.server_eof = True
        if session.client_eof or session.client_gone:
            return False
        if session.client.can_write_eof():
            session.client.write_eof()
        else:
            session.client.close()  # TLS has no half-close: close_notify after the data
        session.arm_idle()
        return True

    def pause_writing(self) -> None:
        self.session.client.pause_reading()

    def resume_writing(self) -> None:
        self.session.client.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.server_lost(exc)


class TcpSession(asyncio.Protocol):
    """The client side of a TCP-mode session; owns the whole session."""

    __slots__ = (
        "accept_time",
        "backend",
        "client",
        "client_eof",
        "client_gone",
        "conn",
        "ctx",
        "dispatch",
        "finished",
        "frontend",
        "idle",
        "idle_code",
        "last_active",
        "loop",
        "pending",
        "server",
        "server_eof",
        "server_gone",
        "server_transport",
        "timer",
        "txn",
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
        else:
            self.conn.client_ip, self.conn.client_port = "unix", 0
        self.ctx.sessions.add(self)
        self.begin()  # counted in when it was accepted (net/accept.py)

    def begin(self) -> None:
        self.accept_time = self.txn.start = self.loop.time()
        backend = self.frontend.backend
        if backend is None:  # a frontend without backend: HAProxy's <NOSRV>, SC
            self.fail(Failure.NO_SERVER)
            return
        self.backend = backend
        backend.enter()
        self.dispatch.assign(None)

    def data_received(self, data: bytes) -> None:
        self.txn.bytes_in += len(data)
        transport = self.server_transport
        if transport is not None:
            self.last_active = self.loop.time()
            transport.write(data)
            return
        self.pending.append(data)
        if sum(map(len, self.pending)) >= PENDING_LIMIT:
            self.client.pause_reading()

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.server_gone:
            return False
        transport = self.server_transport
        if transport is not None:
            if self.server_eof:
                return False
            # A TLS connection cannot be half-closed (asyncio has no close_notify-only
            # shutdown): the server's side stays open until it ends or times out.
            if transport.can_write_eof():
                transport.write_eof()
            self.arm_idle()
        return True

    def pause_writing(self) -> None:
        if self.server_transport is not None:
            self.server_transport.pause_reading()

    def resume_writing(self) -> None:
        if self.server_transport is not None:
            self.server_transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        transport = self.server_transport
        if transport is not None:
            if not self.txn.term and exc is not None:
                self.txn.term = Failure.CLIENT_ABORT_DATA.code
            if self.server_gone:
                self.finish()
            else:
                transport.close()
            return
        # Left before a server connection was up.
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
            # `balance rdp-cookie` without `tcp-request inspect-delay` (not in poise yet):
            # no payload is read before the choice, so, as HAProxy then, round robin.
            return None
        return b""

    def server_protocol(self) -> asyncio.Protocol:
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
        client = self.client
        sock = client.get_extra_info("sockname")
        dst, dst_port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("", 0)
        if self.conn.dst_ip:  # from a PROXY header
            dst, dst_port = self.conn.dst_ip, self.conn.dst_port
        tls = client.get_extra_info("ssl_object")
        sni = client_sni(tls) if tls is not None else None
        return Request(
            "", "", "1.1", Headers(), self.conn.client_ip, self.conn.client_port, dst, dst_port,
            tls is not None, sni, conn=self.conn,
        )  # fmt: skip

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        server_transport = self.server_transport = cast(asyncio.Transport, transport)
        self.txn.t_connect = connect_ms
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

    # -- the relay ----------------------------------------------------------------------

    def arm_idle(self) -> None:
        """Tunnel timeout if set, else the shorter of the client and server timeouts;
        once either direction is shut, `timeout client-fin`/`server-fin` where set."""
        backend = self.backend
        assert backend is not None
        frontend = self.frontend
        half_closed = self.client_eof or self.server_eof
        client = backend.tunnel_timeout or frontend.client_timeout
        server = backend.tunnel_timeout or backend.server_timeout
        if half_closed:
            client = frontend.client_fin_timeout or client
            server = backend.server_fin_timeout or server
        if client is None and server is None:
            return
        if server is None or (client is not None and client <= server):
            self.idle, self.idle_code = client or 0.0, Failure.CLIENT_TIMEOUT.code
        else:
            self.idle, self.idle_code = server, Failure.SERVER_TIMEOUT.code
        self.cancel_timer()
        self.timer = self.loop.call_at(self.last_active + self.idle, self.idle_check)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def idle_check(self) -> None:
        deadline = self.last_active + self.idle
        if self.loop.time() < deadline:
            self.timer = self.loop.call_at(deadline, self.idle_check)
            return
        self.timer = None
        self.kill(self.idle_code)

    def server_lost(self, exc: Exception | None) -> None:
        self.server_gone = True
        if not self.txn.term and exc is not None:
            self.txn.term = Failure.SERVER_ABORT_DATA.code
        if self.client_gone:
            self.finish()
        else:
            self.client.close()

    def kill(self, code: str) -> None:
        """End the session at once (timeout, shutdown): both sides are aborted."""
        if not self.txn.term:
            self.txn.term = code
        if self.server_transport is not None and not self.server_gone:
            self.server_transport.abort()
        if not self.client_gone:
            self.client.abort()

    def fail(self, failure: Failure) -> None:
        """The session cannot be served: close the client and log why."""
        self.txn.term = failure.code
        if self.client_gone:
            self.finish()
        else:
            self.client.close()

    # -- the end ------------------------------------------------------------------------

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.cancel_timer()
        self.dispatch.close()
        txn = self.record()
        if not txn.term:
            txn.term = NORMAL
        if txn.backend is not None and txn.server is not None:
            start(txn.backend.release(txn.server))
        account(txn, self.frontend, False)
        log_tcp_session(self, final=True)
        self.ctx.forget(self)
        self.ctx.release(self.frontend)

    def record(self) -> Txn:
        """The session's record, with where it went, for its log line and the counters."""
        txn = self.txn
        txn.server = self.server
        txn.backend = self.backend
        return txn
