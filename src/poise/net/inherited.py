"""Sockets inherited from the parent process (configuration.txt 11 "Address formats").

- `bind fd@N`, `stats socket fd@N`: the socket on descriptor N, as systemd's socket
  activation or a test harness passes it: bound (a TCP or unix stream socket), listening
  or not; poise listens on it (an unbound one gets a port from the system, as HAProxy's).
- `bind sockpair@N`: one end of a unix socketpair; each descriptor the other end sends
  over it (SCM_RIGHTS, with at least one byte of data, as HAProxy's send_fd_uxst() does)
  is an accepted connection, served as if accepted from a listener: counted against the
  frontend's and the process's maxconn, at which poise stops receiving (net/accept.py).
- `server sockpair@N`: each connection to the server is a new socketpair whose other end
  is sent over descriptor N (net/upstream.py calls connect_sockpair()).

The descriptor is checked when it is taken: not open, not a socket, not a stream socket
(or, for sockpair@, not a unix socket) is an error naming the file, the line and the
keyword, in HAProxy's words. `poise check` runs the same checks on its own descriptors
(check_inherited), as `haproxy -c` does. In master-worker mode the master takes the
descriptors once and hands them to each worker like any listening socket (process/handover.py),
so they survive reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from poise.config import model
from poise.config.diagnostics import Diagnostic, error
from poise.net.listener import DEFAULT_BACKLOG, BindError, Listener, open_listener

_TAKEN: set[int] = set()  # the descriptors this process took as they are
if TYPE_CHECKING:
    from poise.net.accept import Gate
    from poise.net.context import Context

MAX_FDS = 64  # descriptors taken per read of a socketpair
RECV_BYTES = 1024  # HAProxy sends one byte per descriptor


class SockpairListener(Listener):
    """A `bind sockpair@N`: its `sock` is the socketpair end connections arrive on."""

    __slots__ = ()


def problem(fd: int, *, unix_only: bool = False) -> str | None:
    """Why descriptor `fd` cannot be used (HAProxy's wording), or None. Takes nothing."""
    try:
        copy = os.dup(fd)
    except (OSError, OverflowError) as exc:
        errno = getattr(exc, "errno", None) or 9  # EBADF: a number no descriptor can have
        return f"cannot use file descriptor '{fd}' : {os.strerror(errno)}."
    try:
        with socket.socket(fileno=copy) as probe:
            probe.getsockname()
            family, kind = probe.family, probe.type
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.close(copy)  # socket() refused it, so it is still open
        return f"cannot use file descriptor '{fd}' : {os.strerror(exc.errno or 0)}."
    if unix_only and family != socket.AF_UNIX:
        return f"socket on file descriptor '{fd}' is not a unix socket (socketpair)."
    if not unix_only and kind != socket.SOCK_STREAM:
        return f"socket on file descriptor '{fd}' is of the wrong type."
    return None


def fail(where: model.Where, keyword: str, message: str) -> BindError:
    return BindError(f"{where}: '{keyword}': {message}")


def take(address: model.Address, where: model.Where, keyword: str) -> socket.socket:
    """The socket on the address's descriptor (owned from now on); raises BindError."""
    fd = address.inherited_fd
    assert fd is not None
    why = problem(fd, unix_only=address.family == "sockpair")
    if why is not None:
        raise fail(where, keyword, why)
    if fd in _TAKEN:  # named again (HAProxy accepts it): a copy, so each owner closes its own
        return socket.socket(fileno=os.dup(fd))
    _TAKEN.add(fd)
    return socket.socket(fileno=fd)


def adopt_listener(bind: model.Bind, frontend: str, maxconn: int) -> Listener:
    """`bind fd@N` or `bind sockpair@N`; raises BindError."""
    sock = take(bind.address, bind.where, "bind")
    if bind.address.family == "sockpair":
        sock.setblocking(False)
        return SockpairListener(bind, frontend, sock, 0, inherited=True)
    return listen(bind, frontend, sock, bind.backlog or max(maxconn, DEFAULT_BACKLOG))


def listen(bind: model.Bind, frontend: str, sock: socket.socket, backlog: int) -> Listener:
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.detach()  # the descriptor stays the parent's to close
        raise fail(
            bind.where, "bind", f"cannot listen on {bind.address}: {exc.strerror}."
        ) from None
    # The parent's socket: never shut down (net/accept.py), as HAProxy leaves it alone.
    return Listener(bind, frontend, sock, backlog, inherited=True)


def open_bind(bind: model.Bind, frontend: str, maxconn: int) -> Listener:
    """Runtime.bind()'s opener: an inherited socket, or one bound here."""
    if bind.address.family in model.INHERITED_FAMILIES:
        return adopt_listener(bind, frontend, maxconn)
    return open_listener(bind, frontend, maxconn)


def from_master(bind: model.Bind, frontend: str, fd: int, backlog: int) -> Listener:
    """In a worker: the master's socket for this `bind` (process/handover.py)."""
    sock = socket.socket(fileno=fd)
    if bind.address.family == "sockpair":
        sock.setblocking(False)
        return SockpairListener(bind, frontend, sock, 0, inherited=True)
    sock.listen(backlog)
    sock.setblocking(False)
    return Listener(bind, frontend, sock, backlog, inherited=True)


def server_sockpairs(config: model.Config) -> dict[int, socket.socket]:
    """The socketpair of every `server sockpair@N`, by N; raises BindError."""
    taken: dict[int, socket.socket] = {}
    try:
        for address, where, keyword in inherited_addresses(config):
            fd = address.inherited_fd
            if keyword.startswith("server ") and fd is not None and fd not in taken:
                taken[fd] = take(address, where, keyword)
                taken[fd].setblocking(False)
    except BaseException:
        for sock in taken.values():
            sock.detach()  # still the parent's
        raise
    return taken


def inherited_addresses(config: model.Config) -> Iterator[tuple[model.Address, model.Where, str]]:
    for sock in config.global_.stats_sockets:
        yield sock.address, sock.where, "stats socket"
    for proxy in config.frontends:
        for bind in proxy.binds:
            yield bind.address, bind.where, "bind"
    for proxy in config.backends:
        for server in proxy.servers:
            yield server.address, server.where, f"server {proxy.name}/{server.name}"


def check_inherited(config: model.Config) -> list[Diagnostic]:
    """`poise check`: every fd@/sockpair@ descriptor, checked in this process."""
    found: list[Diagnostic] = []
    for address, where, keyword in inherited_addresses(config):
        fd = address.inherited_fd
        if fd is not None:
            why = problem(fd, unix_only=address.family == "sockpair")
            if why is not None:
                found.append(error(where, why, keyword))
    return found


@dataclass(slots=True)
class SockpairReceiver:
    """Serves a `bind sockpair@N`: each descriptor received is an accepted connection."""

    loop: asyncio.AbstractEventLoop
    sock: socket.socket
    factory: Callable[[], asyncio.Protocol]
    # What the connections are counted against (net/accept.py), and the context whose
    # limited listeners resume as sessions end; None: not counted.
    gate: Gate | None = None
    ctx: Context | None = None
    reading: bool = False  # started and not closed
    active: bool = False  # its reader is registered (not at a limit, not paused)
    pending: set[asyncio.Task[None]] = field(default_factory=set)  # connections being taken

    def start(self) -> None:
        self.reading = True
        self.resume()

    def resume(self) -> None:
        """Receive again, if the limits allow (else wait among the limited listeners)."""
        if not self.reading or self.active:
            return
        if self.gate is not None and not self.gate.room():
            if self.ctx is not None and self not in self.ctx.limited:
                self.ctx.limited.append(self)
            return
        self.loop.add_reader(self.sock.fileno(), self.received)
        self.active = True

    def pause(self) -> None:
        """Stop receiving (at a limit, `disable frontend`): descriptors wait in the pair."""
        if self.active:
            self.active = False
            with contextlib.suppress(OSError, ValueError):
                self.loop.remove_reader(self.sock.fileno())
        if self.ctx is not None and self in self.ctx.limited:
            self.ctx.limited.remove(self)

    def received(self) -> None:
        while self.active:
            if self.gate is not None and not self.gate.room():
                self.pause()
                self.resume()  # waits among the limited listeners
                return
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, RECV_BYTES, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not data and not fds:  # the other end is closed: nothing more comes
                self.close()
                return
            for fd in fds:
                self.serve(fd)

    def serve(self, fd: int) -> None:
        try:
            conn = socket.socket(fileno=fd)
        except OSError:  # not a socket: dropped, as HAProxy drops it
            with contextlib.suppress(OSError):
                os.close(fd)
            return
        if conn.type != socket.SOCK_STREAM:
            conn.close()
            return
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.gate is not None:
            self.gate.admit()
        accepted = self.loop.connect_accepted_socket(self.factory, conn)
        task = self.loop.create_task(served(accepted, conn, self.gate))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def close(self) -> None:
        """Stop receiving (the socket itself is the listener's, closed with it)."""
        self.pause()
        self.reading = False


async def served(accepted: Awaitable[object], conn: socket.socket, gate: Gate | None) -> None:
    """Wait for the loop to take the connection; close it (and count it out) if the loop
    could not."""
    try:
        await accepted
    except (OSError, RuntimeError):
        conn.close()
        if gate is not None:
            gate.release()


async def connect_sockpair(
    loop: asyncio.AbstractEventLoop,
    fd: int,
    factory: Callable[[], asyncio.Protocol],
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """`server sockpair@N`: a new socketpair, one end sent over descriptor N, the other
    the connection. Raises OSError (a failed connect) when N cannot carry it."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        carrier = socket.socket(fileno=os.dup(fd))
        try:
            carrier.settimeout(0)
            socket.send_fds(carrier, [b"\0"], [theirs.fileno()])
        finally:
            carrier.close()
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ours.setblocking(False)
    transport, protocol = await loop.connect_accepted_socket(factory, ours)
    return transport, protocol
