"""Accepting connections as HAProxy's listeners do (src/listener.c: listener_accept,
limit_listener, dequeue_all_listeners; src/proto_tcp.c: tcp_suspend_receiver).

poise accepts with its own loop rather than the event loop's server, because it must
decide before each accept(), and libuv (uvloop) accepts on its own and, out of
descriptors, accepts and closes every waiting connection.

- A connection is counted in (the process's and the frontend's) the moment it is
  accepted. At a limit (`maxconn` global or of the frontend) the listener stops
  accepting (LIMITED): new connections wait in the kernel's backlog, unread, and the
  listener resumes as soon as a session ends or the runtime API raises the limit. A
  stats socket is limited likewise to its 10 connections, outside the global maxconn
  (HAProxy's CLI listeners: `maxconn 10`, LI_O_UNLIMITED).
- Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener stops for
  100 ms (or until a session ends) and tries again; the connections wait in the backlog.
  HAProxy's emergency line is logged once per burst (a burst ends after a second with no
  failure), and every failed accept is counted
  (`show info` FailedAccepts, poise's name: HAProxy has no counter for it).
- `disable frontend` stops listening (PAUSED): the socket is shut down, so new
  connections are refused as HAProxy refuses them, and `enable frontend` listens again.
  A unix socket cannot be shut down that way, and a socket shared with other processes
  (a master's, in master-worker mode) must not be: those just stop accepting, as in
  HAProxy (tcp_suspend_receiver leaves an inherited socket alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import socket
from collections.abc import Callable
from typing import Protocol

from poise.core.backend import Log
from poise.core.frontend import Frontend
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.sockstats import SocketCounters
from poise.core.tcprules import TcpRuleSets, expects_proxy
from poise.core.txn import Conn
from poise.net import keepalive
from poise.net.context import Context
from poise.net.listener import Listener
from poise.net.logsink import console
from poise.net.proxied import ProxyReader

RETRY_DELAY = 0.1  # seconds a listener out of descriptors waits (HAProxy: up to 100 ms)
BURST_GAP = 1.0  # seconds without a failed accept that end a burst (logged once)

# HAProxy's emergency lines (src/sock.c: sock_accept_conn), by errno.
EXHAUSTED = {
    errno.EMFILE: "Proxy {} reached process FD limit (maxsock={}). Please check 'ulimit-n' "
    "and restart.",
    errno.ENFILE: "Proxy {} reached system FD limit (maxsock={}). Please check system tunables.",
    errno.ENOBUFS: "Proxy {} reached system memory limit (maxsock={}). Please check system "
    "tunables.",
    errno.ENOMEM: "Proxy {} reached system memory limit (maxsock={}). Please check system "
    "tunables.",
}


class Gate(Protocol):
    """What a listener counts its connections against."""

    name: str  # the proxy the emergency line names

    @property
    def log(self) -> Log | None: ...

    def room(self) -> bool: ...

    def admit(self) -> None: ...

    def release(self) -> None: ...


class FrontendGate:
    """A frontend's listeners: the process's maxconn and the frontend's."""

    __slots__ = ("ctx", "frontend", "log", "name", "sock")

    def __init__(
        self, ctx: Context, frontend: Frontend, sock: SocketCounters | None = None
    ) -> None:
        self.ctx = ctx
        self.frontend = frontend
        self.name = frontend.name
        self.log = frontend.log
        self.sock = sock  # `option socket-stats`: this listener's counters

    def room(self) -> bool:
        ctx = self.ctx
        return ctx.actconn < ctx.maxconn and self.frontend.room()

    def admit(self) -> None:
        self.ctx.admit(self.frontend)
        if self.sock is not None:
            self.sock.admit()

    def release(self) -> None:
        self.ctx.release(self.frontend, self.sock)


def frontend_acceptor(
    ctx: Context,
    frontend: Frontend,
    listener: Listener,
    factory: Callable[[], asyncio.Protocol],
    sock: SocketCounters | None = None,
) -> Acceptor:
    """A frontend's listener: paused and resumed with its frontend (`sock`: its
    counters, with `option socket-stats`)."""
    # A pause stops listening, but not on a unix socket, nor on one shared with other
    # processes.
    unlistens = listener.sock.family != socket.AF_UNIX and not listener.inherited
    acceptor = Acceptor(ctx, FrontendGate(ctx, frontend, sock), listener.sock, factory)
    acceptor.backlog = listener.backlog if unlistens else 0
    if listener.bind.accept_proxy:
        acceptor.proxy = ProxyReader(ctx.loop, frontend, listener)
    elif frontend.tcp is not None and frontend.tcp.expect_proxy:
        acceptor.proxy = ProxyReader(ctx.loop, frontend, listener)
        acceptor.expect = frontend.tcp
    # `option clitcpka`: accepted connections inherit it from the listener (net/keepalive.py)
    keepalive.apply(listener.sock, keepalive.keepalive_options(frontend.proxy, "cli"))
    frontend.listeners.append(acceptor)
    if sock is not None:
        sock.listener = acceptor
    if frontend.paused:
        acceptor.pause()
    else:
        acceptor.resume()
    return acceptor


class State(enum.Enum):
    READY = "ready"  # accepting
    LIMITED = "limited"  # at a limit or out of descriptors: waiting for room
    PAUSED = "paused"  # `disable frontend`: not listening
    CLOSED = "closed"


class Acceptor:
    """One listening socket's accept loop."""

    __slots__ = (
        "backlog",
        "ctx",
        "expect",
        "factory",
        "failed_at",
        "fd",
        "gate",
        "loop",
        "proxy",
        "retry",
        "sock",
        "state",
    )

    def __init__(
        self,
        ctx: Context,
        gate: Gate,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
    ) -> None:
        """A listener that waits to be started: resume() (or pause())."""
        self.ctx = ctx
        self.loop = ctx.loop
        self.gate = gate
        self.sock = sock
        self.fd = sock.fileno()
        self.backlog = 0  # listen() again with it after a pause (0: a pause only stops accepting)
        self.factory = factory
        self.state = State.LIMITED
        self.failed_at = -BURST_GAP  # the loop's time of the last failed accept
        self.retry: asyncio.TimerHandle | None = None
        self.proxy: ProxyReader | None = None  # `accept-proxy`: the header comes first
        # `tcp-request connection expect-proxy layer4 if COND`: only when a rule says so.
        self.expect: TcpRuleSets | None = None

    # -- accepting ----------------------------------------------------------------------

    def accept_ready(self) -> None:
        gate = self.gate
        accept = self.sock.accept
        for _ in range(self.ctx.maxaccept):
            if not gate.room():
                self.limit()
                return
            try:
                conn, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client left before it was accepted
            except OSError as exc:
                self.failed(exc)
                return
            gate.admit()
            conn.setblocking(False)
            self.loop.create_task(self.open(conn, peer))

    async def open(self, conn: socket.socket, peer: object = None) -> None:
        """The session of an accepted (and counted) connection; it counts itself out
        when it ends. `peer`: the client's address as accept() gave it."""
        factory = with_peer(self.factory, peer)
        try:
            expect = self.expect
            if self.proxy is not None and (
                expect is None or expects_proxy(expect.connection, socket_request(conn))
            ):
                proxied = await self.proxy.receive(conn, factory)
                if proxied is None:  # refused and logged
                    conn.close()
                    self.gate.release()
                    return
                factory = proxied
            await self.loop.connect_accepted_socket(factory, conn)
        except (OSError, RuntimeError):  # RuntimeError: the loop is closing
            conn.close()  # no session was made: the connection is counted out here
            self.gate.release()

    def failed(self, exc: OSError) -> None:
        """accept() failed: out of descriptors or memory (HAProxy pauses the listener
        and tries again within 100 ms), or something unexpected (tried again likewise)."""
        ctx = self.ctx
        ctx.failed_accepts += 1
        now = self.loop.time()
        first = now - self.failed_at >= BURST_GAP
        self.failed_at = now
        if first:
            text = EXHAUSTED.get(exc.errno or 0)
            name = self.gate.name
            line = (
                text.format(name, ctx.maxsock)
                if text is not None
                else f"Proxy {name} failed to accept a connection: {exc.strerror or exc}."
            )
            console("ALERT", line)
            if self.gate.log is not None:
                self.gate.log.send("emerg", line)
        self.limit()
        self.retry = self.loop.call_later(RETRY_DELAY, self.try_again)

    def try_again(self) -> None:
        self.retry = None
        if self.state is State.LIMITED and self in self.ctx.limited:
            self.ctx.limited.remove(self)
            self.resume()

    # -- states -------------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Stopped at a limit, waiting for room (`option socket-stats`' WAITING)."""
        return self.state is State.LIMITED

    def limit(self) -> None:
        """Stop accepting until there is room (Context.release and wake resume it)."""
        if self.state is State.READY:
            self.loop.remove_reader(self.fd)
        self.state = State.LIMITED
        self.ctx.limited.append(self)

    def resume(self) -> None:
        """Accept again if the limits allow (else wait, limited); from PAUSED, listen
        again first."""
        if self.state is State.PAUSED:
            if self.backlog:
                self.sock.listen(self.backlog)
            self.state = State.LIMITED
        elif self.state is not State.LIMITED:
            return
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        ctx = self.ctx
        if not self.gate.room():
            if self not in ctx.limited:
                ctx.limited.append(self)
            return
        self.state = State.READY
        self.loop.add_reader(self.fd, self.accept_ready)

    def pause(self) -> None:
        """`disable frontend`: stop listening; the connections waiting are refused."""
        self.stop()
        if self.backlog:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RD)
        self.state = State.PAUSED

    def close(self) -> None:
        self.stop()
        self.state = State.CLOSED

    def stop(self) -> None:
        if self.state is State.READY:
            self.loop.remove_reader(self.fd)
        elif self.state is State.LIMITED and self in self.ctx.limited:
            self.ctx.limited.remove(self)
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None


def with_peer(
    factory: Callable[[], asyncio.Protocol], peer: object
) -> Callable[[], asyncio.Protocol]:
    """The session knows the client's address from accept(), as HAProxy's does: a client
    that resets the connection before the session starts has no peer name any more, but
    its log line still names it."""
    if not isinstance(peer, tuple):
        return factory

    def make() -> asyncio.Protocol:
        protocol = factory()
        conn = getattr(protocol, "conn", None)
        if isinstance(conn, Conn):
            conn.client_ip, conn.client_port = str(peer[0]), int(peer[1])
        return protocol

    return make


def socket_request(conn: socket.socket) -> Request:
    """An accepted connection's addresses, as its `tcp-request connection` rules read them
    before any byte (a PROXY header's among them) is read."""
    facts = Conn()
    try:
        peer, local = conn.getpeername(), conn.getsockname()
    except OSError:
        peer = local = None
    src, sport = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("unix", 0)
    dst, dport = (str(local[0]), int(local[1])) if isinstance(local, tuple) else ("", 0)
    facts.client_ip, facts.client_port = src, sport
    return Request("", "", "1.1", Headers(), src, sport, dst, dport, conn=facts)
