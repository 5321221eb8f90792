"""Getting a server connection for a session: pick a server (or wait in the queue, or
fail), connect within `timeout connect`, retry after HAProxy's turn-around delay, and
redispatch to another server when `option redispatch` says so.

Each session (net/tcp.py, net/http.py) holds one Dispatch, its server side: the state as
HAProxy names it (core/connect.py: REQ, QUE, TAR, ASS, CON, EST, CLO), the queue and
connect timers, and the asyncio connect itself. The Dispatch is what waits in a backend's
queue; it asks its session (an `Owner`) what only the session knows: the balancing key,
an idle connection to reuse, the protocol of a new server connection; and tells it the
outcome: connected, failed, or the client left meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from poise.config.model import Source
from poise.core.backend import Backend, Outcome, start
from poise.core.connect import ASS, CLO, CON, EST, INI, QUE, REQ, TAR, After, after_failure
from poise.core.connect import turnaround as turnaround_delay
from poise.core.counters import count_retry
from poise.core.http.message import Request
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import Conn, Txn
from poise.net import keepalive, socks4
from poise.net.context import Context
from poise.net.inherited import connect_sockpair
from poise.net.listener import sun_path
from poise.net.logsink import console
from poise.net.proxied import destination_of, server_header
from poise.net.source import SourceError, bound_socket, client_destination
from poise.net.tls_server import ServerTls, report

if TYPE_CHECKING:
    from poise.net.upstream import Upstream


def backend_tls(ctx: Context, backend: Backend | None, server: ServerState) -> ServerTls | None:
    """How to speak TLS to `server` (net/tls.py), or None (clear)."""
    return ctx.io[backend].server_tls.get(server.id) if backend is not None else None


# Where a virtual server (`fallback`) connects from the node's address instead.
FALLBACK_ERRORS = (errno.EPERM, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
_warned: set[str] = set()
_PRIVATE = itertools.count(1)  # numbers the sessions whose server connections are private


def warn_once(message: str) -> None:
    """A source that cannot be bound: said once per cause (each connection fails alike)."""
    if message not in _warned:
        _warned.add(message)
        console("WARNING", message)


async def connect_unix(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], asyncio.Protocol],
    path: str,
    tls: ServerTls | None,
    name: str | None,
    *,
    header: bytes = b"",
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """A `server unix@PATH` or `abns@NAME` connection (`header`: a PROXY header to send
    before TLS). The socket is connected here rather
    than by the loop, which may not know abstract names (libuv cuts sun_path at a NUL)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, sun_path(path))
        if header:
            await loop.sock_sendall(sock, header)
    except BaseException:
        sock.close()
        raise
    if tls is None:
        return await loop.create_unix_connection(factory, sock=sock)
    return await loop.create_unix_connection(
        factory, sock=sock, ssl=tls.context, server_hostname=name or ""
    )


class Owner(Protocol):
    """The session a Dispatch works for."""

    backend: Backend | None
    server: ServerState | None  # the server chosen (the log line's, the counters')
    txn: Txn  # the record the log line reads: Tw, Tc, retries, why the last connect failed
    conn: Conn  # the client connection (its address, for `source ... usesrc`)
    client: asyncio.Transport  # its transport (where it connected to, for 0.0.0.0 servers)
    client_gone: bool

    def balance_key(self) -> bytes | None:
        """What a hashing balancer hashes (the client address for `source`); None when
        the request has nothing to hash."""

    def reuse(self, server: ServerState) -> bool:
        """Use an idle connection to `server` instead of connecting (HTTP keep-alive)."""

    def server_protocol(self) -> asyncio.Protocol:
        """The protocol of a new connection to the server."""

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        """The connection is up (EST)."""

    def sni_request(self) -> Request | None:
        """What a server's `sni` expression is evaluated on: the request (HTTP), or the
        connection's facts (TCP)."""

    def on_redispatch(self) -> None:
        """The session leaves its server for another (a persistence cookie no longer
        applies)."""

    def fail(self, failure: Failure) -> None:
        """No server could be had: the session's error (503, or the TCP close)."""

    def finish(self) -> None:
        """The client left while the server side was being set up."""


class Dispatch:
    __slots__ = (
        "connecting",
        "ctx",
        "loop",
        "owner",
        "private",
        "state",
        "t_queued_at",
        "timer",
        "tls_name",
        "waiting_on",
    )

    def __init__(self, owner: Owner, ctx: Context) -> None:
        self.owner = owner
        self.ctx = ctx
        self.loop = ctx.loop
        self.state = INI
        self.connecting = False  # a connect's task is under way (its end calls the owner)
        self.timer: asyncio.TimerHandle | None = None  # the queue, connect or turn-around
        self.waiting_on: ServerState | None = None  # the server whose queue it waits in
        self.t_queued_at = 0.0
        self.tls_name: str | None = None  # the SNI of the last server connection, if it varies
        self.private = 0  # this session's number among those that sent PROXY headers

    def assign(self, avoid: ServerState | None, kept: Upstream | None = None) -> None:
        """Pick a server and connect, or queue, or fail (no server): the first
        `use-server` rule that applies, else the balancer; a redispatch (`avoid`) goes
        to the balancer, as HAProxy runs its server rules once. `kept`: the server
        connection the session keeps from its last request; with `option
        prefer-last-server` its server is taken again while usable (HAProxy's
        assign_server), even when full (the request then waits in its queue)."""
        owner = self.owner
        backend = owner.backend
        assert backend is not None
        if backend.use_servers and avoid is None:
            chosen = backend.rule_server(owner.sni_request(), owner.txn.persist is True)
            if chosen is not None:
                if backend.stick is not None:  # matching nothing, the rules still store
                    owner.txn.stick_stores = []
                    backend.stick.request(owner.sni_request(), owner.txn.stick_stores, True)
                self.assign_to(chosen)
                return
        if backend.stick is not None and avoid is None:
            stores = owner.txn.stick_stores = []
            persist = owner.txn.persist is True
            stuck = backend.stick.request(owner.sni_request(), stores, False, persist)
            if stuck is not None:
                self.assign_to(stuck)
                return
        if backend.prefers_last and kept is None:  # (the HTTP stream does not hold it)
            kept = getattr(owner, "upstream", None)
        if kept is not None and backend.prefers_last and not kept.closed:
            last = kept.home.server
            if last is not avoid and last.usable and last.backend == backend.name:
                self.assign_to(last)
                return
        self.state = REQ
        key = owner.balance_key() if backend.hashes_source or backend.hashes_request else b""
        take = backend.take(self, key, avoid)
        if take.outcome is Outcome.ASSIGNED:
            assert take.server is not None
            owner.txn.t_queue = max(owner.txn.t_queue, 0)
            self.connect(take.server)
        elif take.outcome is Outcome.QUEUED:
            self.queue(take.server, backend)
        else:
            self.state = CLO
            owner.fail(Failure.NO_SERVER)

    def assign_to(self, server: ServerState) -> None:
        """Use this server (persistence): its slot is taken, or the session waits for it."""
        owner = self.owner
        backend = owner.backend
        assert backend is not None
        self.state = REQ
        if server.full:
            backend.wait_for(self, server)
            self.queue(server, backend)
            return
        backend.occupy(server)
        owner.txn.t_queue = max(owner.txn.t_queue, 0)
        self.connect(server)

    def queue(self, server: ServerState | None, backend: Backend) -> None:
        self.state = QUE
        self.waiting_on = server
        self.t_queued_at = self.loop.time()
        if backend.queue_timeout is not None:
            self.timer = self.loop.call_later(backend.queue_timeout, self.queue_timed_out)

    def dequeued(self, server: ServerState) -> None:
        """The backend gave this waiting session a server slot."""
        owner = self.owner
        self.waiting_on = None
        self.cancel_timer()
        owner.txn.t_queue = int((self.loop.time() - self.t_queued_at) * 1000)
        if owner.client_gone:
            self.state = INI
            owner.server = server
            owner.finish()
            return
        self.connect(server)

    def leave_queue(self) -> None:
        """The client left while waiting in a queue (or the queue timed out): Tw is the
        time it waited, as HAProxy logs it (`CQ` with its queue time)."""
        if self.state is QUE:
            backend = self.owner.backend
            assert backend is not None
            backend.cancel(self, self.waiting_on)
            self.state = INI
            self.waiting_on = None
            self.owner.txn.t_queue = int((self.loop.time() - self.t_queued_at) * 1000)

    def queue_timed_out(self) -> None:
        self.timer = None
        self.leave_queue()
        self.owner.txn.t_queue = int((self.loop.time() - self.t_queued_at) * 1000)
        self.state = CLO
        self.owner.fail(Failure.QUEUE_TIMEOUT)

    def connect(self, server: ServerState) -> None:
        owner = self.owner
        owner.server = server
        self.state = ASS
        backend = owner.backend
        if owner.reuse(server):
            server.traffic.reuses += 1
            if backend is not None:
                backend.traffic.reuses += 1
            self.state = EST
            return
        server.traffic.connects += 1
        if backend is not None:
            backend.traffic.connects += 1
        fd = server.sockpair_fd
        addr = server.addr
        unix = server.config.address.family == "unix"
        if fd is not None or unix:
            port = 0
        elif server.port is not None and not server.transparent:
            port = server.port
        else:  # the client's destination: its address (0.0.0.0), its port (+N)
            addr, port = self.destination(server)
        loop = self.loop
        started = loop.time()
        self.state = CON
        self.connecting = True
        tls = backend_tls(self.ctx, owner.backend, server)
        name: str | None = None
        connecting: Coroutine[Any, Any, tuple[asyncio.Transport, asyncio.Protocol]]
        source = server.config.source
        if fd is not None:  # `server sockpair@N` (net/inherited.py)
            connecting = connect_sockpair(loop, fd, owner.server_protocol)
        elif unix:  # `server unix@PATH` or `abns@NAME` (no `source` for a unix socket)
            if tls is not None:
                name = tls.server_name(owner.sni_request() if tls.dynamic is not None else None)
            # (`send-proxy` on an `ssl` server: the header goes before the handshake.)
            header = self.proxy_header(server) if tls and server.config.proxy_protocol else b""
            connecting = connect_unix(loop, owner.server_protocol, addr, tls, name, header=header)
        elif server.config.socks4 is not None:  # through a SOCKS4 proxy (net/socks4.py)
            if tls is not None:
                name = tls.server_name(owner.sni_request() if tls.dynamic is not None else None)
            connecting = self.connect_socks4(server, (addr, port), tls, name)
        elif source is not None or (tls is not None and server.config.proxy_protocol):
            # (`send-proxy` on an `ssl` server: the header goes before the handshake.)
            if tls is not None:
                name = tls.server_name(owner.sni_request() if tls.dynamic is not None else None)
            connecting = self.connect_from(source, server, (addr, port), tls, name)
        elif tls is None:
            connecting = loop.create_connection(owner.server_protocol, addr, port)
        else:
            name = tls.server_name(owner.sni_request() if tls.dynamic is not None else None)
            connecting = loop.create_connection(
                owner.server_protocol,
                addr,
                port,
                ssl=tls.context,
                server_hostname=name or "",  # "": no SNI
            )
        task = loop.create_task(connecting)
        task.add_done_callback(lambda done: self.connected(done, server, started, tls, name))
        backend = owner.backend
        assert backend is not None
        if backend.connect_timeout is not None:
            self.timer = loop.call_later(backend.connect_timeout, task.cancel)

    def destination(self, server: ServerState) -> tuple[str, int]:
        """Where a transparent or port-mapped server's connection goes: the address and
        port the client connected to (before NAT), the server's own port if it has one,
        plus its `+N` offset. The client connection's destination is kept for the log."""
        conn = self.owner.conn
        req = self.owner.txn.req
        if req is not None and req.dst_set:  # `http-request set-dst` (address_rules.py)
            dst_ip, dst_port = req.dst, req.dst_port
        else:
            if conn.proxied is None:  # else the PROXY header's (`accept-proxy`)
                sock = self.owner.client.get_extra_info("socket")
                conn.dst_ip, conn.dst_port = client_destination(sock)
            dst_ip, dst_port = conn.dst_ip, conn.dst_port
        port = server.port if server.port is not None else dst_port + server.port_offset
        return (dst_ip if server.transparent else server.addr), port

    async def connect_from(
        self,
        source: Source | None,
        server: ServerState,
        target: tuple[str, int],
        tls: ServerTls | None,
        name: str | None,
    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
        """Connect from the address `source` says (net/source.py)."""
        owner = self.owner
        loop = self.loop
        addr, port = target
        sock: socket.socket | None = None
        try:
            if source is None:  # `send-proxy` on an `ssl` server
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
            else:
                sock = bound_socket(source, addr, owner.conn.client_ip, owner.conn.client_port)
        except SourceError as exc:
            assert source is not None
            label = owner.backend.proxy.name if owner.backend is not None else "-"
            if not source.fallback or exc.errno not in FALLBACK_ERRORS:
                warn_once(f"Server {label}/{server.name}: {exc.strerror}")
                raise
            # A Keepalived virtual server: the node's own address rather than no service.
            warn_once(
                f"virtual server {label}: {exc.strerror}: the real servers see this node's "
                "address instead of the client's"
            )
        if sock is not None:
            try:
                await loop.sock_connect(sock, (addr, port))
                if tls is not None and server.config.proxy_protocol:
                    await loop.sock_sendall(sock, self.proxy_header(server))
            except BaseException:
                sock.close()
                raise
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": addr, "port": port}
        if tls is None:
            return await loop.create_connection(owner.server_protocol, **where)
        return await loop.create_connection(
            owner.server_protocol, ssl=tls.context, server_hostname=name or "", **where
        )

    async def connect_socks4(
        self, server: ServerState, target: tuple[str, int], tls: ServerTls | None, name: str | None
    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
        """`socks4 ADDR:PORT`: the proxy's CONNECT first (a PROXY header, for an `ssl`
        server, then goes before the handshake; else after, as for a direct one)."""
        proxy = server.config.socks4
        assert proxy is not None
        header = self.proxy_header(server) if tls and server.config.proxy_protocol else b""
        sock = await socks4.connect(self.loop, proxy, target, header)
        factory = self.owner.server_protocol
        if tls is None:
            return await self.loop.create_connection(factory, sock=sock)
        return await self.loop.create_connection(
            factory, sock=sock, ssl=tls.context, server_hostname=name or ""
        )

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
        owner = self.owner
        # Why an attempt failed (refused, unreachable, TLS), for the failure log line.
        owner.txn.connect_error = None if task.cancelled() else task.exception()
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
        if owner.client_gone:
            self.state = CLO
            transport.close()
            owner.finish()
            return
        self.state = EST
        backend = owner.backend
        if backend is not None and (options := self.ctx.io[backend].keepalive):
            keepalive.apply(transport.get_extra_info("socket"), options)  # `option srvtcpka`
        if server.config.proxy_protocol:
            # Such a connection is the client's own (HAProxy makes it private).
            self.tls_name = self.private_key(self.tls_name)
            if tls is None:
                transport.write(self.proxy_header(server))
        owner.server_connected(transport, protocol, int((self.loop.time() - started) * 1000))

    def proxy_header(self, server: ServerState) -> bytes:
        """`send-proxy*`: the PROXY header for this client (net/proxied.py)."""
        owner = self.owner
        client = getattr(owner, "client", None)
        tls = client.get_extra_info("ssl_object") if client is not None else None
        dst = destination_of(client, owner.conn)
        return server_header(server.config.proxy_protocol, owner.conn, dst, tls)

    def private_key(self, name: str | None) -> str:
        """What an idle connection that sent a PROXY header is kept under in its pool: only
        this session takes it again (`name`: its SNI, when the server's varies)."""
        if self.private == 0:
            self.private = next(_PRIVATE)
        return f"{name or ''}\0{self.private}"

    def connect_failed(self, server: ServerState, failure: Failure) -> None:
        owner = self.owner
        backend = owner.backend
        assert backend is not None
        server.failed_conns += 1
        if owner.client_gone:
            self.state = CLO
            owner.finish()
            return
        txn = owner.txn
        # `force-persist` turns the final redispatch off (HAProxy's SF_FORCE_PRST).
        redispatch = None if txn.persist is True else backend.proxy.redispatch
        after = after_failure(txn.retries, backend.max_retries, redispatch)
        if after is After.GIVE_UP:
            self.state = CLO
            owner.fail(failure)
            return
        txn.retries += 1
        if after is After.REDISPATCH:
            txn.redispatched = True
            owner.on_redispatch()
            owner.server = None
            start(backend.release(server))
            self.assign(server)
            # HAProxy counts a redispatch that lands on the same server as a retry.
            count_retry(backend, server, redispatched=owner.server is not server)
            return
        count_retry(backend, server, redispatched=False)
        self.state = TAR
        self.timer = self.loop.call_later(
            turnaround_delay(backend.connect_timeout), self.retry, server
        )

    def tls_failed(self, server: ServerState, tls: ServerTls, reason: str) -> None:
        """A TLS handshake to `server` failed: log why (once per episode)."""
        backend = self.owner.backend
        assert backend is not None
        report(backend, f"{backend.proxy.name}/{server.name}", tls, reason)

    def retry(self, server: ServerState) -> None:
        self.timer = None
        if self.owner.client_gone:
            self.state = CLO
            self.owner.finish()
            return
        self.connect(server)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def end(self) -> None:
        """The transaction is over: out of any queue, no timer, nothing requested (INI)."""
        if self.state is QUE:
            self.leave_queue()
        if self.timer is not None:
            self.cancel_timer()
        self.state = INI

    def close(self) -> None:
        """The session is over (CLO)."""
        self.cancel_timer()
        self.state = CLO
