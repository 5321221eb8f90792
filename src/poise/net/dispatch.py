"""Getting a server connection for a session: pick a server (or wait in the queue, or
fail), connect within `timeout connect`, retry after HAProxy's turn-around delay, and
redispatch to another server when `option redispatch` says so.

Shared by the TCP and HTTP sessions: a session class mixes this in, keeps the attributes
listed in `Dispatcher.__annotations__`, and supplies the hooks at the bottom.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine
from typing import Any

from poise.core.backend import Backend, Outcome, start
from poise.core.counters import count_retry
from poise.core.http.message import Request
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import Txn
from poise.net.context import Context
from poise.net.inherited import connect_sockpair
from poise.net.tls_server import ServerTls, report

# Request bytes buffered while the server connection opens (HTTP and TCP alike); beyond
# that, reading from the client pauses.
PENDING_LIMIT = 64 * 1024
# HAProxy waits min(timeout connect, 1s) before retrying a server that failed at once.
TURNAROUND = 1.0


def should_redispatch(retry: int, retries: int, interval: int | None) -> bool:
    """HAProxy's `option redispatch <interval>`: P > 0 redispatches on every P-th retry,
    N < 0 on the N-th retry before the last (-1: the last retry)."""
    if interval is None or interval == 0:
        return False
    if interval > 0:
        return retry % interval == 0
    return retry == retries + 1 + interval


def backend_tls(ctx: Context, backend: Backend | None, server: ServerState) -> ServerTls | None:
    """How to speak TLS to `server` (net/tls.py), or None (clear)."""
    return ctx.io[backend].server_tls.get(server.id) if backend is not None else None


class Dispatcher:
    # No __slots__ here: mypy cannot type a slotted mixin's attributes, so the sessions
    # that mix this in carry a __dict__ as well as their slots.
    loop: asyncio.AbstractEventLoop
    ctx: Context
    backend: Backend | None
    server: ServerState | None
    timer: asyncio.TimerHandle | None
    queued: bool
    waiting_on: ServerState | None
    t_queued_at: float
    connecting: bool
    client_gone: bool
    tls_name: str | None  # the SNI of the last server connection, when it varies
    txn: Txn  # the record the log line reads: Tw, Tc, retries, why the last connect failed

    def assign(self, avoid: ServerState | None) -> None:
        """Pick a server and connect, or queue, or fail (no server)."""
        backend = self.backend
        assert backend is not None
        key = self.balance_key() if backend.hashes_source or backend.hashes_request else b""
        take = backend.take(self, key, avoid)
        if take.outcome is Outcome.ASSIGNED:
            assert take.server is not None
            self.txn.t_queue = max(self.txn.t_queue, 0)
            self.connect(take.server)
        elif take.outcome is Outcome.QUEUED:
            self.queued = True
            self.waiting_on = take.server
            self.t_queued_at = self.loop.time()
            timeout = backend.queue_timeout
            if timeout is not None:
                self.timer = self.loop.call_later(timeout, self.queue_timed_out)
        else:
            self.fail(Failure.NO_SERVER)

    def assign_to(self, server: ServerState) -> None:
        """Use this server (persistence): its slot is taken, or the session waits for it."""
        backend = self.backend
        assert backend is not None
        if server.full:
            self.queued = True
            self.waiting_on = server
            self.t_queued_at = self.loop.time()
            backend.wait_for(self, server)
            if backend.queue_timeout is not None:
                self.timer = self.loop.call_later(backend.queue_timeout, self.queue_timed_out)
            return
        backend.occupy(server)
        self.txn.t_queue = max(self.txn.t_queue, 0)
        self.connect(server)

    def dequeued(self, server: ServerState) -> None:
        """The backend gave this waiting session a server slot."""
        self.queued = False
        self.waiting_on = None
        self.cancel_timer()
        self.txn.t_queue = int((self.loop.time() - self.t_queued_at) * 1000)
        if self.client_gone:
            self.server = server
            self.finish()
            return
        self.connect(server)

    def leave_queue(self) -> None:
        """The client left while waiting in a queue."""
        if self.queued:
            assert self.backend is not None
            self.backend.cancel(self, self.waiting_on)
            self.queued = False
            self.waiting_on = None

    def queue_timed_out(self) -> None:
        self.timer = None
        self.leave_queue()
        self.txn.t_queue = int((self.loop.time() - self.t_queued_at) * 1000)
        self.fail(Failure.QUEUE_TIMEOUT)

    def connect(self, server: ServerState) -> None:
        self.server = server
        if self.reuse(server):
            return
        fd = server.sockpair_fd
        if server.port is not None:
            port = server.port
        else:  # the port the client connected to (none for a socketpair)
            port = 0 if fd is not None else self.destination_port()
        started = self.loop.time()
        self.connecting = True
        tls = backend_tls(self.ctx, self.backend, server)
        name: str | None = None
        connecting: Coroutine[Any, Any, tuple[asyncio.Transport, asyncio.Protocol]]
        if fd is not None:  # `server sockpair@N` (net/inherited.py)
            connecting = connect_sockpair(self.loop, fd, self.server_protocol)
        elif tls is None:
            connecting = self.loop.create_connection(self.server_protocol, server.addr, port)
        else:
            name = tls.server_name(self.sni_request() if tls.dynamic is not None else None)
            connecting = self.loop.create_connection(
                self.server_protocol,
                server.addr,
                port,
                ssl=tls.context,
                server_hostname=name or "",  # "": no SNI
            )
        task = self.loop.create_task(connecting)
        task.add_done_callback(lambda done: self.connected(done, server, started, tls, name))
        backend = self.backend
        assert backend is not None
        if backend.connect_timeout is not None:
            self.timer = self.loop.call_later(backend.connect_timeout, task.cancel)

    def connected(
        self,
        task: asyncio.Task[Any],
        server: ServerState,
        started: float,
        tls: ServerTls | None = None,
        name: str | None = None,
    ) -> None:
        self.cancel_timer()
        self.connecting = False
        # Why an attempt failed (refused, unreachable, TLS), for the failure log line.
        self.txn.connect_error = None if task.cancelled() else task.exception()
        if task.cancelled():
            self.connect_failed(server, Failure.CONNECT_TIMEOUT)
            return
        exc = task.exception()
        if exc is not None:
            if tls is not None and isinstance(exc, ssl.SSLError):
                self.tls_failed(server, tls, tls.failure(exc))
            self.connect_failed(server, Failure.NO_SERVER)
            return
        transport, protocol = task.result()
        if tls is not None:
            # The certificate verified; is it for the name poise asked for? Checked before
            # a byte is sent: a server that fails is never used.
            problem = tls.name_problem(transport, name)
            if problem is not None:
                transport.abort()
                self.tls_failed(server, tls, problem)
                self.connect_failed(server, Failure.NO_SERVER)
                return
            tls.failing = None
        # A server whose SNI varies (`sni req.hdr(host)`): its connections are only reused
        # for the same name.
        self.tls_name = (name or "") if tls is not None and tls.dynamic is not None else None
        if self.client_gone:
            transport.close()
            self.finish()
            return
        self.server_connected(transport, protocol, int((self.loop.time() - started) * 1000))

    def connect_failed(self, server: ServerState, failure: Failure) -> None:
        backend = self.backend
        assert backend is not None
        server.failed_conns += 1
        if self.client_gone:
            self.finish()
            return
        if self.txn.retries < backend.max_retries:
            self.txn.retries += 1
            if should_redispatch(self.txn.retries, backend.max_retries, backend.proxy.redispatch):
                self.txn.redispatched = True
                self.on_redispatch()
                self.server = None
                start(backend.release(server))
                self.assign(server)
                # HAProxy counts a redispatch that lands on the same server as a retry.
                count_retry(backend, server, redispatched=self.server is not server)
                return
            count_retry(backend, server, redispatched=False)
            delay = TURNAROUND
            if backend.connect_timeout is not None:
                delay = min(delay, backend.connect_timeout)
            self.timer = self.loop.call_later(delay, self.retry, server)
            return
        self.fail(failure)

    def tls_failed(self, server: ServerState, tls: ServerTls, reason: str) -> None:
        """A TLS handshake to `server` failed: log why (once per episode)."""
        backend = self.backend
        assert backend is not None
        report(backend, f"{backend.proxy.name}/{server.name}", tls, reason)

    def retry(self, server: ServerState) -> None:
        self.timer = None
        if self.client_gone:
            self.finish()
            return
        self.connect(server)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- hooks --------------------------------------------------------------------------

    def balance_key(self) -> bytes | None:
        """What a hashing balancer hashes (the client address for `source`); None when
        the request has nothing to hash."""
        raise NotImplementedError

    def server_protocol(self) -> asyncio.Protocol:
        raise NotImplementedError

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        raise NotImplementedError

    def destination_port(self) -> int:
        """The port the client connected to (for a server written without a port)."""
        raise NotImplementedError

    def sni_request(self) -> Request | None:
        """What a server's `sni` expression is evaluated on: the request (HTTP), or the
        connection's facts (TCP)."""
        return None

    def reuse(self, server: ServerState) -> bool:
        """Use an idle connection to `server` instead of connecting (HTTP keep-alive)."""
        return False

    def on_redispatch(self) -> None:
        """The session leaves its server for another (a persistence cookie no longer
        applies)."""

    def fail(self, failure: Failure) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError
