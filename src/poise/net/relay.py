"""The byte relay: a client connection and a server connection writing into each other,
as TCP mode relays a session and as HTTP mode relays a tunnel after `101 Switching
Protocols` (HAProxy's tunnel: the HTTP analysers are done, bytes pass both ways).
HAProxy 2.6 ends the two differently, and so does poise (tests/io/test_tunnel.py runs
both): in TCP mode a FIN from either side is passed on and the other direction stays open
(`timeout client-fin`/`server-fin`); in an HTTP tunnel the server's FIN ends the whole
connection, the client's is passed on.

Relay is the client side's Protocol and the relay's state; ServerSide the server
side's. Back-pressure: when one transport's write buffer passes its high-water mark,
reading stops on the other side until it drains, so a slow reader never makes poise
buffer without bound. Half-close is passed through (an EOF from one side becomes a FIN to
the other), but not to a side whose proxy has `option nolinger`: HAProxy shuts that one
silently, and poise closes it (a reset). Inactivity is tracked by a single lazily re-armed
timer: the data path only stores the time of last activity; `timeout tunnel` supersedes
the client and server timeouts, `timeout client-fin`/`server-fin` apply once a side is
shut.

TcpSession (net/tcp.py) is a Relay that first runs the layer-4 rules and gets a server
connection; HttpTunnel is one an HTTP session (net/http.py) hands its two transports to,
and which hands the session back its end (the log line, the counters).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from poise.config.model import Option
from poise.core.backend import Backend
from poise.core.frontend import Frontend
from poise.core.termination import NORMAL, Failure
from poise.core.txn import Txn

if TYPE_CHECKING:
    from poise.net.http import HttpSession


class Relay(asyncio.Protocol):
    """The client side of a relay; owns it. Subclasses say what happens before the server
    connection is there (before_server, eof_before_server, lost_before_server) and at the
    end (finish)."""

    __slots__ = (
        "backend",
        "client",
        "client_eof",
        "client_gone",
        "finished",
        "frontend",
        "idle",
        "idle_code",
        "last_active",
        "loop",
        "server_eof",
        "server_gone",
        "server_transport",
        "timer",
        "txn",
    )

    client: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    frontend: Frontend
    backend: Backend | None
    server_transport: asyncio.Transport | None
    txn: Txn  # bytes_in, bytes_out and the termination state are the relay's to set
    last_active: float
    client_eof: bool
    server_eof: bool
    client_gone: bool
    server_gone: bool
    finished: bool
    timer: asyncio.TimerHandle | None
    idle: float
    idle_code: str
    # The termination state of a session that a side left with an error (a reset).
    client_abort = Failure.CLIENT_ABORT_DATA.code
    server_abort = Failure.SERVER_ABORT_DATA.code

    # -- client side --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.txn.bytes_in += len(data)
        transport = self.server_transport
        if transport is not None:
            self.last_active = self.loop.time()
            transport.write(data)
            return
        self.before_server(data)

    def eof_received(self) -> bool:
        self.client_eof = True
        transport = self.server_transport
        if transport is None:
            return self.eof_before_server()
        if self.server_gone or self.server_eof:
            return False
        if self.backend is not None and Option.NOLINGER in self.backend.proxy.options:
            # `option nolinger`: HAProxy shuts such a side silently, no FIN: the
            # connection is closed, and its SO_LINGER (net/keepalive.py) makes it a reset.
            transport.close()
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
        if transport is None:
            self.lost_before_server()
            return
        if not self.txn.term and exc is not None:
            self.txn.term = self.client_abort
        if self.server_gone:
            self.finish()
        else:
            transport.close()

    def before_server(self, data: bytes) -> None:
        """Client bytes before the server connection is up."""
        raise NotImplementedError

    def eof_before_server(self) -> bool:
        """The client closed its side before the server connection is up."""
        raise NotImplementedError

    def lost_before_server(self) -> None:
        """The client left before the server connection is up."""
        raise NotImplementedError

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
            self.txn.term = self.server_abort
        if self.client_gone:
            self.finish()
        else:
            self.client.close()

    def kill(self, code: str) -> None:
        """End the relay at once (timeout, shutdown): both sides are aborted."""
        if not self.txn.term:
            self.txn.term = code
        if self.server_transport is not None and not self.server_gone:
            self.server_transport.abort()
        if not self.client_gone:
            self.client.abort()

    def finish(self) -> None:
        """Both connections are closed: log and count the session."""
        raise NotImplementedError


class ServerSide(asyncio.Protocol):
    """The server side of a relay."""

    __slots__ = ("session", "transport")

    def __init__(self, session: Relay) -> None:
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
        if Option.NOLINGER in session.frontend.proxy.options:
            session.client.close()  # `option nolinger`: no FIN, a reset (as above)
        elif session.client.can_write_eof():
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


class HttpServerSide(ServerSide):
    """The server side of an HTTP tunnel: the server's FIN is passed to the client, then
    both connections close, as HAProxy 2.6 ends a tunnel (its client can send no more)."""

    __slots__ = ()

    def eof_received(self) -> bool:
        session = self.session
        session.server_eof = True
        if not session.client_gone:
            client = session.client
            if client.can_write_eof():
                client.write_eof()
            else:
                client.close()  # TLS has no half-close: close_notify after the data
        return False  # the server connection closes: server_lost closes the client's


class HttpTunnel(Relay):
    """The relay an HTTP session becomes after a `101 Switching Protocols`: it takes over
    both transports (their protocols become it and its ServerSide) and shares the
    session's transaction, so the tunnel's bytes and termination state go into the
    session's one log line, written when both connections are closed."""

    __slots__ = ("session",)
    # As the HTTP session logged a tunnel before it was the relay's: a side's reset ends
    # it without a state of its own.
    client_abort = server_abort = ""

    def __init__(self, session: HttpSession, server: asyncio.Transport, now: float) -> None:
        self.session = session
        self.loop = session.loop
        self.frontend = session.frontend
        self.backend = session.backend
        self.txn = txn = session.txn
        txn.term = ""  # set by what ends the relay, else NORMAL when it ends
        self.client = session.client
        self.server_transport = server
        self.last_active = now
        self.client_eof = session.half_closed  # the client shut its side before the 101
        self.server_eof = self.client_gone = self.server_gone = self.finished = False
        self.timer = None
        self.idle = 0.0
        self.idle_code = Failure.CLIENT_TIMEOUT.code
        self.client.set_protocol(self)
        server.set_protocol(HttpServerSide(self))
        if self.client_eof and server.can_write_eof():
            server.write_eof()
        self.arm_idle()

    def eof_received(self) -> bool:
        """The client's FIN goes to the server; a TLS server connection, which cannot be
        half-closed, is closed, and the tunnel with it."""
        self.client_eof = True
        transport = self.server_transport
        assert transport is not None
        if self.server_gone or self.server_eof:
            return False
        if transport.can_write_eof():
            transport.write_eof()
            return True
        transport.close()
        return False

    def arm_idle(self) -> None:
        """`timeout tunnel`, else `timeout client`, else `timeout server`, from the last
        byte either way; when it strikes the state is cD."""
        backend = self.backend
        assert backend is not None
        tunnel = backend.tunnel_timeout
        if (req := self.txn.req) is not None and req.tunnel_timeout is not None:
            tunnel = req.tunnel_timeout  # http-request set-timeout tunnel
        idle = tunnel or self.frontend.client_timeout or backend.server_timeout
        if idle is None:
            return
        self.idle = idle
        self.cancel_timer()
        self.timer = self.loop.call_at(self.last_active + idle, self.idle_check)

    def before_server(self, data: bytes) -> None:
        raise AssertionError("a tunnel starts with its server connection")

    def eof_before_server(self) -> bool:
        raise AssertionError("a tunnel starts with its server connection")

    def lost_before_server(self) -> None:
        raise AssertionError("a tunnel starts with its server connection")

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.cancel_timer()
        if not self.txn.term:
            self.txn.term = NORMAL
        self.session.tunnel_ended()
