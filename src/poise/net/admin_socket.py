"""The stats sockets (`stats socket` in `global`): HAProxy's runtime API over a unix or TCP
socket, so that `socat`, `hatop` and scripts written for HAProxy drive poise as they are.

The sockets are bound before the event loop starts and before poise drops its privileges
(a socket under /var/lib/haproxy needs root), and a failure names the path. The protocol
is HAProxy's text protocol: one command per line or several separated by `;`; without
`prompt` the connection answers what it received and closes; `prompt` toggles the
interactive mode with its `> ` prompt; `quit` closes. A connection idle for `stats
timeout` (or `set timeout cli`) is closed. What a command does is decided in
admin/commands*.py; this shell reads bytes, writes answers, starts the waiting connections
a change of state lets go, and carries out the effects a command returns (ending sessions,
a frontend's limit or pause, dropping idle server connections). It also describes the
running sessions for `show sess`, its own connections among them, as HAProxy lists its
CLI's. On a socket with `expose-fd listeners`, `_getsocks` gives the listening sockets to
a new process (net/getsocks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import resource
import socket
import stat
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from poise import __version__
from poise.admin import commands, stats
from poise.admin.stats import AdminInfo, SessionInfo
from poise.config import model
from poise.core import connect
from poise.core.backend import start
from poise.core.limits import STATS_SOCKET_MAXCONN
from poise.core.termination import Cause, Phase, code
from poise.net import getsocks
from poise.net.accept import Acceptor
from poise.net.context import Context, Session
from poise.net.inherited import take
from poise.net.listener import BindError, sun_path
from poise.net.logsink import LogSink, console

__all__ = ["AdminInfo", "AdminSocket", "admin_info", "open_admin_sockets", "serve_admin"]

BACKLOG = 128
DEFAULT_TIMEOUT = 10.0  # seconds: HAProxy's default `stats timeout`
RELEASE_DATE = "2026/11/21"  # `show info` Release_date of this version (HAProxy's format)


class AdminSocket(socket.socket):
    """A listening stats socket that remembers its `stats socket` line (for its level)."""

    __slots__ = ("config",)
    config: model.StatsSocket


def open_admin_sockets(sockets: Sequence[model.StatsSocket]) -> list[socket.socket]:
    """Bind and listen on every stats socket, or raise BindError naming the one that
    failed (the ones already opened are closed). A stale unix socket file is replaced,
    any other file in the way is not. The returned sockets are AdminSockets."""
    opened: list[socket.socket] = []
    try:
        for config in sockets:
            opened.append(open_admin_socket(config))
    except BaseException:
        for sock in opened:
            sock.close()
        raise
    return opened


def open_admin_socket(config: model.StatsSocket) -> AdminSocket:
    address = config.address
    if address.family == "fd":  # inherited from the parent (net/inherited.py)
        return inherited_admin_socket(config)
    unix = address.family == "unix"
    abstract = unix and address.host.startswith("\0")  # `abns@NAME`
    try:
        sock = unix_socket(address.host, config.mode) if unix else tcp_socket(address)
        # (An abstract socket, `abns@`, has no file to give: HAProxy ignores them too.)
        if unix and not abstract and (config.user is not None or config.group is not None):
            try:
                os.chown(address.host, *owner_ids(config))
            except BaseException:
                sock.close()
                raise
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        kind = "UNIX socket" if unix else "socket"
        where = address.host if unix and not abstract else str(address)
        raise BindError(
            f"Binding [{config.where}] for frontend GLOBAL: cannot bind {kind} ({reason}) [{where}]"
        ) from None
    sock.config = config
    return sock


def owner_ids(config: model.StatsSocket) -> tuple[int, int]:
    """The uid and gid a unix stats socket's file gets (`user`/`uid`, `group`/`gid`;
    -1: unchanged); raises OSError for a name this system does not know."""
    uid = gid = -1
    if config.user is not None:
        try:
            uid = int(config.user) if config.user.isdigit() else pwd.getpwnam(config.user).pw_uid
        except KeyError:
            raise OSError(f"unknown user name '{config.user}'") from None
    if config.group is not None:
        try:
            gid = int(config.group) if config.group.isdigit() else grp.getgrnam(config.group).gr_gid
        except KeyError:
            raise OSError(f"unknown group name '{config.group}'") from None
    return uid, gid


def inherited_admin_socket(config: model.StatsSocket) -> AdminSocket:
    """`stats socket fd@N`: the parent's socket, listened on; raises BindError."""
    taken = take(config.address, config.where, "stats socket")
    sock = AdminSocket(fileno=taken.detach())
    try:
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.detach()
        raise BindError(
            f"{config.where}: 'stats socket': cannot listen on {config.address}: {exc.strerror}."
        ) from None
    sock.config = config
    return sock


def unix_socket(path: str, mode: int | None) -> AdminSocket:
    abstract = path.startswith("\0")  # `abns@`: no file, no stale one, no mode
    if abstract:
        mode = None
    with contextlib.suppress(FileNotFoundError):
        if not abstract and stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    sock = AdminSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The file is created with `mode` at once (through the umask), never wider first.
    old_umask = os.umask(0o777 & ~mode) if mode is not None else None
    try:
        sock.bind(sun_path(path))
        if mode is not None:
            os.chmod(path, mode)
    except BaseException:
        sock.close()
        raise
    finally:
        if old_umask is not None:
            os.umask(old_umask)
    return sock


def tcp_socket(address: model.Address) -> AdminSocket:
    family = socket.AF_INET6 if address.family == "ipv6" else socket.AF_INET
    host = address.host or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    sock = AdminSocket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address.port or 0))
    except BaseException:
        sock.close()
        raise
    return sock


def socket_level(sock: socket.socket) -> commands.Level:
    if isinstance(sock, AdminSocket):
        return commands.LEVELS[sock.config.level]
    return commands.Level.OPERATOR  # HAProxy's default level


# -- serving ------------------------------------------------------------------------------


def admin_info(global_: model.Global, loop: asyncio.AbstractEventLoop) -> AdminInfo:
    """What `show info` says about this process; build it once poise serves (after it has
    detached, so that the pid is the serving process's)."""
    return AdminInfo(
        pid=os.getpid(),
        started=loop.time(),
        start_time=time.time(),
        version=__version__,
        release_date=RELEASE_DATE,
        node=global_.node or socket.gethostname(),  # HAProxy's default node name
        description=global_.description,
        nbthread=global_.nbthread,
    )


class AdminService:
    """What the connections of every stats socket share."""

    def __init__(
        self,
        ctx: Context,
        info: AdminInfo,
        timeout: float,
        exported: Callable[[], list[socket.socket]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.info = info
        self.timeout = timeout
        self.exported = exported  # the listening sockets `_getsocks` gives (marked shared)
        self.accepted = 0  # HAProxy counts CLI connections in CumConns
        self.connections: set[AdminConnection] = set()
        self.ready: deque[AdminConnection] = deque()  # connections with a command to run
        self.turn: asyncio.Handle | None = None

    # -- turns ----------------------------------------------------------------------------

    def queue(self, connection: AdminConnection) -> None:
        """Give a connection a turn. All the stats sockets' connections together run one
        command per turn of the event loop, in turn (HAProxy yields between pipelined
        commands too): however many clients send long or many commands, the proxied
        traffic waits at most one command between two of its own events."""
        self.ready.append(connection)
        if self.turn is None:
            self.turn = self.ctx.loop.call_soon(self.next_turn)

    def next_turn(self) -> None:
        self.turn = None
        while self.ready:
            connection = self.ready.popleft()
            connection.queued = False
            if connection.transport is not None:
                connection.run()
                break
        if self.ready and self.turn is None:
            self.turn = self.ctx.loop.call_soon(self.next_turn)

    def view(self) -> stats.View:
        return self.ctx.view(
            self.info,
            accepted=self.accepted,
            tasks=len(asyncio.all_tasks(self.ctx.loop)),
            ulimit_n=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            sessions=self.sessions,
        )

    # -- show sess ------------------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        now = self.ctx.loop.time()
        found = [describe(session, now) for session in self.ctx.sessions]
        found += [conn.describe(now) for conn in self.connections]
        return found

    def find_session(self, session_id: int) -> Session | AdminConnection | None:
        for session in self.ctx.sessions:
            if id(session) == session_id:
                return session
        for connection in self.connections:
            if id(connection) == session_id:
                return connection
        return None

    # -- effects --------------------------------------------------------------------------

    def apply(self, effect: commands.Effect) -> None:
        ctx = self.ctx
        if isinstance(effect, commands.EndSessions):
            for session in list(ctx.sessions):
                if getattr(session, "server", None) is effect.server:
                    session.kill(kill_code(session))
        elif isinstance(effect, commands.EndSession):
            found = self.find_session(effect.session_id)
            if isinstance(found, AdminConnection):
                found.close()
            elif found is not None:
                found.kill(kill_code(found))
        elif isinstance(effect, commands.DropIdle):
            backend = ctx.backends.get(effect.backend)
            if backend is not None:
                io = ctx.io[backend]
                pool = io.pools.get(effect.server_id)
                if pool is not None:
                    pool.close_all()
                if effect.forget:
                    io.pools.pop(effect.server_id, None)
                    io.server_tls.pop(effect.server_id, None)
        elif isinstance(effect, commands.SetMaxconn):
            if effect.frontend is None:
                ctx.maxconn = effect.value
            else:
                ctx.frontends[effect.frontend].maxconn = effect.value
            ctx.wake()
        elif isinstance(effect, commands.Pause):
            ctx.pause(ctx.frontends[effect.frontend], effect.paused)
        elif isinstance(effect, commands.ClearFrontends):
            for frontend in ctx.frontends.values():
                frontend.clear(effect.every)
        elif isinstance(effect, commands.Notice):
            console(effect.level, effect.text)
            runtime_log = ctx.backends.get(effect.proxy) or ctx.frontends.get(effect.proxy)
            if runtime_log is not None and runtime_log.log is not None:
                runtime_log.log.send(effect.level.lower(), effect.text)


def kill_code(session: object, cause: Cause = Cause.KILLED) -> str:
    """The termination state of a session poise ends: killed (K) by the runtime API, or
    shut down because its server went DOWN (D, `on-marked-down`) or an active server came
    UP (U, `on-marked-up`); while waiting in a queue, connecting to its server, or in the
    data phase (its Dispatch's state, net/dispatch.py)."""
    dispatch = getattr(session, "dispatch", None)
    state = dispatch.state if dispatch is not None else None
    if state is connect.QUE:
        return code(cause, Phase.QUEUE)
    if state is connect.CON:
        return code(cause, Phase.CONNECT)
    # Measured: HAProxy 2.6 logs `D-` for an established session on-marked-down ends.
    return code(cause, Phase.DATA if cause is Cause.KILLED else Phase.NONE)


def shut_down_sessions(ctx: Context, servers: Sequence[object], cause: Cause) -> None:
    """End at once the sessions using one of `servers` (on-marked-down|up)."""
    for session in list(ctx.sessions):
        if getattr(session, "server", None) in servers:
            session.kill(kill_code(session, cause))


def describe(session: Any, now: float) -> SessionInfo:
    """A TCP or HTTP session (net/tcp.py, net/http.py) as `show sess` shows it."""
    client = getattr(session, "client", None)
    frontend = session.frontend
    backend = getattr(session, "backend", None)
    server = getattr(session, "server", None)
    upstream = getattr(session, "upstream", None)
    server_transport = getattr(session, "server_transport", None)
    if server_transport is None and upstream is not None:
        server_transport = upstream.transport
    dispatch = getattr(session, "dispatch", None)
    # The server side's timer while connecting or queued, else the session's own: a TCP
    # session's (or an HTTP tunnel's) relay timer, an HTTP session's one deadline.
    relay = getattr(session, "relay", None) or session
    candidates = (
        dispatch.timer if dispatch is not None else None,
        getattr(relay, "timer", None),
        getattr(session, "idle_timer", None),
    )
    timer = next((c for c in candidates if hasattr(c, "when")), None)
    accepted = getattr(session, "accept_time", None)
    return SessionInfo(
        id=id(session),
        proto=protocol(client),
        source=f"{session.conn.client_ip}:{session.conn.client_port}",
        frontend=frontend.name,
        backend=backend.name if backend is not None else None,
        server=server.name if server is not None else None,
        age=now - accepted if accepted is not None else 0.0,
        expires=timer.when() - now if timer is not None else None,
        client_fd=fileno(client),
        server_fd=fileno(server_transport),
    )


def protocol(transport: asyncio.BaseTransport | None) -> str:
    sock = transport.get_extra_info("socket") if transport is not None else None
    family = getattr(sock, "family", None)
    if family == socket.AF_INET6:
        return "tcpv6"
    if family == socket.AF_UNIX:
        return "unix_stream"
    return "tcpv4"


def fileno(transport: asyncio.BaseTransport | None) -> int:
    sock = transport.get_extra_info("socket") if transport is not None else None
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError):
        return -1


class AdminGate:
    """A stats socket's connections: at most 10 at once, as HAProxy's CLI listeners
    (`maxconn 10`, outside the global maxconn); more wait in the backlog
    (net/accept.py)."""

    __slots__ = ("ctx", "current", "log", "name")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.current = 0
        self.name = "GLOBAL"
        self.log: LogSink | None = None

    def room(self) -> bool:
        return self.current < STATS_SOCKET_MAXCONN

    def admit(self) -> None:
        self.current += 1

    def release(self) -> None:
        self.current -= 1
        if self.ctx.limited:
            self.ctx.wake()  # a stats connection holds one descriptor, closed by now


class AdminConnection(asyncio.Protocol):
    __slots__ = (
        "accepted", "ended", "expose", "gate", "idle", "listener", "paused", "queued",
        "reader", "service", "session", "transport",
    )  # fmt: skip

    def __init__(
        self,
        service: AdminService,
        level: commands.Level,
        listener: int = 1,
        gate: AdminGate | None = None,
        expose: bool = False,
    ) -> None:
        self.service = service
        self.expose = expose  # `expose-fd listeners`: `_getsocks` gives the listeners
        self.gate = gate  # counted in when accepted (net/accept.py), out when lost
        self.session = commands.Session(level)
        self.reader = commands.LineReader()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.paused = False
        self.queued = False  # waiting for its turn (AdminService.queue)
        self.ended = False  # the client has sent all it will
        self.listener = listener  # which stats socket (1 = the first): `show sess` src
        self.accepted = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.service.accepted += 1
        self.service.connections.add(self)
        self.accepted = self.service.ctx.loop.time()
        self.rearm()

    def timeout(self) -> float:
        """`set timeout cli` if this connection set it, else `stats timeout`."""
        own = self.session.timeout
        return own if own is not None else self.service.timeout

    def rearm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if self.timeout() > 0:
            self.idle = self.service.ctx.loop.call_later(self.timeout(), self.close)

    def describe(self, now: float) -> SessionInfo:
        """This connection as HAProxy's `show sess` shows one of its CLI's."""
        transport = self.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if isinstance(peer, tuple):
            proto, source = protocol(transport), f"{peer[0]}:{peer[1]}"
        else:
            proto, source = "unix_stream", f"unix:{self.listener}"
        return SessionInfo(
            id=id(self),
            proto=proto,
            source=source,
            frontend="GLOBAL",
            age=now - self.accepted,
            expires=self.idle.when() - now if self.idle is not None else None,
            client_fd=fileno(transport),
        )

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.rearm()
        if self.transport is not None:
            self.transport.pause_reading()  # until the commands read are answered
        self.take_turn()

    def take_turn(self) -> None:
        if not self.queued:
            self.queued = True
            self.service.queue(self)

    def run(self) -> None:
        """Answer the next complete command, if the client reads; read again once none is
        left. One command per turn (AdminService.queue): poise never holds more than one
        read of a client's bytes, nor runs more than one command between two turns."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.paused:
            return
        command = self.reader.next()
        if command is None:
            if self.reader.overflow or self.ended:  # overflow: longer than HAProxy's buffer
                self.close()
            else:
                transport.resume_reading()
            return
        if command.line.strip() == "_getsocks":
            self.give_sockets(transport)
            return
        answer = commands.execute(command, self.session, self.service.view())
        siblings = self.service.ctx.siblings  # nbthread: the others run it (admin_shared.py)
        if siblings.count > 1 and commands.shared(command.line):
            level = int(self.session.level)
            siblings.broadcast(
                "cli", {"line": command.line, "payload": command.payload, "level": level}
            )
        if answer.text:
            transport.write(answer.text.encode("utf-8", "surrogateescape"))
        start(list(answer.goes))
        for effect in answer.effects:
            self.service.apply(effect)
        self.rearm()  # `set timeout cli` takes effect at once
        if answer.close or not (self.session.interactive or self.reader.pending):
            self.close()
        else:
            self.take_turn()

    def give_sockets(self, transport: asyncio.Transport) -> None:
        """`_getsocks` (net/getsocks.py): hand the listening sockets to a new process,
        in a thread (the exchange blocks, as in HAProxy), then close. Without
        `expose-fd listeners`, nothing is sent, as in HAProxy."""
        exported = self.service.exported
        sock = transport.get_extra_info("socket")
        if not self.expose or exported is None or sock is None:
            self.close()
            return
        fds = [s.fileno() for s in exported()]
        conn = socket.socket(fileno=os.dup(sock.fileno()))

        def given(future: asyncio.Future[None]) -> None:
            conn.close()
            if future.exception() is not None:
                console("WARNING", f"_getsocks: {future.exception()}")
            self.close()

        loop = self.service.ctx.loop
        loop.run_in_executor(None, getsocks.give, conn, fds).add_done_callback(given)

    def eof_received(self) -> bool | None:
        if self.queued:  # answer the commands read first
            self.ended = True
            return True
        return None  # whatever was complete has been answered: close

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self.take_turn()  # reading resumes once the commands read are answered

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        self.transport = None
        self.service.connections.discard(self)
        gate, self.gate = self.gate, None
        if gate is not None:
            gate.release()


def serve_admin(
    ctx: Context,
    socks: Sequence[socket.socket],
    info: AdminInfo,
    timeout: float = DEFAULT_TIMEOUT,
    exported: Callable[[], list[socket.socket]] | None = None,
) -> list[Acceptor]:
    """Serve the runtime API on sockets from open_admin_sockets() (accepted as the
    frontends' are, net/accept.py); `timeout` is `stats timeout` in seconds (0: never).
    Each socket answers at its own level; `exported` gives the listening sockets for
    `_getsocks` on those with `expose-fd listeners`."""
    service = AdminService(ctx, info, timeout, exported)
    acceptors: list[Acceptor] = []
    for number, sock in enumerate(socks, 1):
        level = socket_level(sock)
        gate = AdminGate(ctx)
        expose = isinstance(sock, AdminSocket) and sock.config.expose_fd

        def factory(
            level: commands.Level = level,
            number: int = number,
            gate: AdminGate = gate,
            expose: bool = expose,
        ) -> asyncio.Protocol:
            return AdminConnection(service, level, number, gate, expose)

        acceptor = Acceptor(ctx, gate, sock, factory)
        acceptor.resume()
        acceptors.append(acceptor)
    return acceptors
