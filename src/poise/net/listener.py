"""Listening sockets, bound before the event loop starts (and before poise daemonizes or
drops privileges), so that a port already in use or a privileged port is a clear error on
the terminal with exit status 1 and nothing half-started.

Sockets get SO_REUSEADDR and, unless `noreuseport`, SO_REUSEPORT as in HAProxy (several
workers or an old and a new process may share a port during a reload); `freebind` sets
IP_FREEBIND so a VRRP backup can listen on a virtual address it does not hold yet.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
from dataclasses import dataclass

from poise.config import model

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
DEFAULT_BACKLOG = 1024
SUN_PATH_SIZE = 108  # sizeof(struct sockaddr_un.sun_path) on Linux


class BindError(Exception):
    pass


@dataclass(slots=True)
class Listener:
    bind: model.Bind
    frontend: str
    sock: socket.socket
    backlog: int
    # `bind ... ssl crt ...`: the TLS context the listener terminates with (net/tls.py).
    tls: ssl.SSLContext | None = None
    # The master's socket, shared with other workers (process/handover.py): never shut down.
    inherited: bool = False

    @property
    def address(self) -> str:
        name = self.sock.getsockname()
        if isinstance(name, tuple):
            host = f"[{name[0]}]" if ":" in name[0] else name[0]
            return f"{host}:{name[1]}"
        return str(name)


def open_listener(bind: model.Bind, frontend: str, maxconn: int) -> Listener:
    """Bind and listen, or raise BindError with HAProxy's wording."""
    address = bind.address
    try:
        sock = unix_socket(address.host) if address.family == "unix" else inet_socket(bind)
        backlog = bind.backlog or max(maxconn, DEFAULT_BACKLOG)
        sock.listen(backlog)
        if bind.tfo and address.family != "unix":
            # `tfo`: TCP Fast Open, its queue as long as the backlog (as HAProxy 2.6)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, backlog)
        sock.setblocking(False)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BindError(
            f"Starting frontend {frontend}: cannot bind socket ({reason}) [{address}]"
        ) from None
    return Listener(bind, frontend, sock, backlog)


def inet_socket(bind: model.Bind) -> socket.socket:
    address = bind.address
    host = address.host
    family = socket.AF_INET6 if address.family == "ipv6" or ":" in host else socket.AF_INET
    if not host:
        host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if bind.reuseport and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if bind.freebind:
            level = socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP
            sock.setsockopt(level, IP_FREEBIND, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if bind.v6only else 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, address.port or 0))
    except BaseException:
        sock.close()
        raise
    return sock


def sun_path(path: str) -> str:
    """The address to bind or connect a unix socket to: an abstract name (`abns@`, a
    leading NUL) padded with NULs to the whole sun_path, as HAProxy 2.6 does, so that poise
    and haproxy reach each other's abstract sockets."""
    return path.ljust(SUN_PATH_SIZE, "\0") if path.startswith("\0") else path


def unix_socket(path: str) -> socket.socket:
    # A stale socket file from a previous run is replaced; any other file is not.
    # (An abstract socket has no file: it goes with its last descriptor.)
    try:
        if not path.startswith("\0") and stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(sun_path(path))
    except BaseException:
        sock.close()
        raise
    return sock
