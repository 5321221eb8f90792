"""The stats sockets (`stats socket` in `global`): HAProxy's runtime API over a unix or TCP
socket, so that `socat`, `hatop` and scripts written for HAProxy drive poise as they are.

The sockets are bound before the event loop starts and before poise drops its privileges
(a socket under /var/lib/haproxy needs root), and a failure names the path. The protocol
is HAProxy's text protocol: one command per line or several separated by `;`; without
`prompt` the connection answers what it received and closes; `prompt` toggles the
interactive mode with its `> ` prompt; `quit` closes. A connection idle for `stats
timeout` is closed. What a command does is decided in admin/commands.py; this shell reads
bytes, writes answers, and starts the waiting connections a change of state lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import time
from collections.abc import Sequence
from typing import cast

from poise import __version__
from poise.admin import commands, stats
from poise.admin.stats import AdminInfo
from poise.config import model
from poise.core.backend import start
from poise.net.context import Context
from poise.net.listener import BindError

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
    unix = address.family == "unix"
    try:
        sock = unix_socket(address.host, config.mode) if unix else tcp_socket(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        kind = "UNIX socket" if unix else "socket"
        where = address.host if unix else str(address)
        raise BindError(
            f"Binding [{config.where}] for frontend GLOBAL: cannot bind {kind} ({reason}) [{where}]"
        ) from None
    sock.config = config
    return sock


def unix_socket(path: str, mode: int | None) -> AdminSocket:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    sock = AdminSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The file is created with `mode` at once (through the umask), never wider first.
    old_umask = os.umask(0o777 & ~mode) if mode is not None else None
    try:
        sock.bind(path)
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
    )


class AdminService:
    """What the connections of every stats socket share."""

    def __init__(self, ctx: Context, info: AdminInfo, timeout: float) -> None:
        self.ctx = ctx
        self.info = info
        self.timeout = timeout
        self.accepted = 0  # HAProxy counts CLI connections in CumConns

    def view(self) -> stats.View:
        ctx = self.ctx
        return stats.View(
            info=self.info,
            frontends=ctx.frontends,
            backends={name: runtime.backend for name, runtime in ctx.backends.items()},
            maxconn=ctx.maxconn,
            actconn=ctx.actconn,
            cum_conns=sum(fe.cum_conn for fe in ctx.frontends.values()) + self.accepted,
            stopping=ctx.stopping,
            now=ctx.loop.time(),
        )


class AdminConnection(asyncio.Protocol):
    __slots__ = ("idle", "paused", "reader", "service", "session", "transport")

    def __init__(self, service: AdminService, level: commands.Level) -> None:
        self.service = service
        self.session = commands.Session(level)
        self.reader = commands.LineReader()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.service.accepted += 1
        self.rearm()

    def rearm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.service.timeout > 0:
            self.idle = self.service.ctx.loop.call_later(self.service.timeout, self.close)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.rearm()
        self.run()

    def run(self) -> None:
        """Answer the complete commands received, in order, while the client reads."""
        transport = self.transport
        while transport is not None and not transport.is_closing() and not self.paused:
            command = self.reader.next()
            if command is None:
                if self.reader.overflow:
                    self.close()
                return
            answer = commands.execute(command, self.session, self.service.view())
            if answer.text:
                transport.write(answer.text.encode("utf-8", "surrogateescape"))
            start(list(answer.goes))
            if answer.close or not (self.session.interactive or self.reader.pending):
                self.close()

    def eof_received(self) -> bool | None:
        return None  # whatever was complete has been answered: close

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self.run()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        self.transport = None


async def serve_admin(
    ctx: Context,
    socks: Sequence[socket.socket],
    info: AdminInfo,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[asyncio.AbstractServer]:
    """Serve the runtime API on sockets from open_admin_sockets(); `timeout` is `stats
    timeout` in seconds (0: never). Each socket answers at its own level."""
    loop = asyncio.get_running_loop()
    service = AdminService(ctx, info, timeout)
    servers: list[asyncio.AbstractServer] = []
    try:
        for sock in socks:
            level = socket_level(sock)

            def factory(level: commands.Level = level) -> asyncio.Protocol:
                return AdminConnection(service, level)

            if sock.family == socket.AF_UNIX:
                servers.append(await loop.create_unix_server(factory, sock=sock))
            else:
                servers.append(await loop.create_server(factory, sock=sock))
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers
