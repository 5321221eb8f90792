"""Where log lines go: the `log` targets of a proxy (stdout, stderr, UDP syslog, unix
datagram socket such as /dev/log), and the stderr console lines of start-up and state
changes. The shell around poise.core.logline, which decides the bytes.

A logger must never stall or crash the proxy, so every write is non-blocking and a line
that cannot be written now is dropped and counted, as HAProxy does (its DroppedLogs):
- UDP: one unconnected non-blocking datagram socket per target; EAGAIN/ENOBUFS drop.
- unix: one unconnected non-blocking datagram socket per target, sent to the path each
  time, so a syslog daemon that restarts (new socket at the same path) is found again
  with nothing to reconnect; while it is absent (ENOENT, ECONNREFUSED) lines are dropped.
  As in HAProxy, the path must be reachable from inside a `chroot`.
- stdout/stderr: one write per line. The descriptor is made non-blocking unless it is a
  terminal (as fd.c does; the previous mode comes back when the last user closes); a
  partial write keeps its tail in a small buffer written before the next line (and, for a
  bounded time, at close), so lines are never interleaved or cut, and a line that does not
  fit there is dropped. With no event loop hook, that tail waits for the next line.

Proxies that log to the same target share one socket through a `Registry`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import Callable, Sequence

from poise.config.model import DEFAULT_TAG, Global, LogTarget
from poise.core.logline import (
    EXPLANATION_LEVEL,
    console_line,
    explanation_target,
    frame,
    level_for_target,
)

# Errors that mean "no room or nobody listening right now": drop silently and count.
_TRANSIENT = frozenset(
    {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ENOENT, errno.ECONNREFUSED}
)
# Bytes of stdout/stderr lines kept for the next write after a partial write.
PENDING_LIMIT = 64 * 1024
# Seconds close() waits for a stalled stdout/stderr reader to take what is pending.
CLOSE_FLUSH_TIMEOUT = 2.0

Key = tuple[str, str, int]


class LogSinkError(Exception):
    """A log target cannot be set up (an address that does not resolve)."""


class Transport:
    """One open log target, shared by every sink that logs there."""

    __slots__ = ("dropped", "errors", "key", "sent", "stream", "users")

    def __init__(self, key: Key, *, stream: bool) -> None:
        self.key = key
        self.stream = stream  # stdout/stderr: truncation keeps the LF within `len`
        self.users = 0
        self.sent = 0
        self.dropped = 0
        self.errors = 0  # drops for an unexpected reason (also counted in `dropped`)

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _failed(self, exc: OSError) -> None:
        self.dropped += 1
        if exc.errno not in _TRANSIENT:
            self.errors += 1
            if self.errors == 1:  # say it once, as HAProxy does (even about stderr itself)
                kind, address, port = self.key
                where = f"{address}:{port}" if kind == "udp" else address or kind
                CONSOLE("alert", f"cannot send logs to {where}: {exc.strerror}")


class DatagramTransport(Transport):
    """A UDP syslog server or a unix datagram socket (`/dev/log`)."""

    __slots__ = ("_address", "_sock")

    def __init__(self, key: Key, family: int, address: str | tuple[str, int]) -> None:
        super().__init__(key, stream=False)
        self._address = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        # Nothing is ever read from it (log.c does the same).
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self._address)
        except OSError as exc:
            self._failed(exc)
        else:
            self.sent += 1

    def close(self) -> None:
        self._sock.close()


class StreamTransport(Transport):
    """stdout (fd 1) or stderr (fd 2)."""

    __slots__ = ("_fd", "_pending", "_was_blocking")

    def __init__(self, key: Key, fd: int) -> None:
        super().__init__(key, stream=True)
        self._fd = fd
        self._pending = bytearray()
        self._was_blocking: bool | None = None
        try:
            if not os.isatty(fd):
                self._was_blocking = os.get_blocking(fd)
                os.set_blocking(fd, False)
        except OSError:  # closed descriptor: every write will be dropped
            pass

    def write(self, data: bytes) -> None:
        if self._pending:
            self._flush()
            if self._pending:  # keep the order of lines: queue behind the tail
                if len(self._pending) + len(data) > PENDING_LIMIT:
                    self.dropped += 1
                else:
                    self._pending += data
                    self.sent += 1
                return
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            self._failed(exc)
            return
        self.sent += 1
        if written < len(data):
            self._pending += data[written:]

    def _flush(self) -> None:
        try:
            written = os.write(self._fd, self._pending)
        except OSError:
            return
        del self._pending[:written]

    def close(self) -> None:
        # The tail of a partly written line is finished if the reader makes room within
        # CLOSE_FLUSH_TIMEOUT, so that the last line is not cut; then it is given up.
        deadline = time.monotonic() + CLOSE_FLUSH_TIMEOUT
        while self._pending:
            self._flush()
            left = deadline - time.monotonic()
            if not self._pending or left <= 0:
                break
            try:
                select.select([], [self._fd], [], left)
            except (OSError, ValueError):
                break
        if self._was_blocking is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, self._was_blocking)


def _open(target: LogTarget) -> Transport:
    key = target_key(target)
    if target.kind == "stdout":
        return StreamTransport(key, 1)
    if target.kind == "stderr":
        return StreamTransport(key, 2)
    if target.kind == "unix":
        return DatagramTransport(key, socket.AF_UNIX, target.address)
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            target.address, target.port, type=socket.SOCK_DGRAM
        )[0]
    except OSError as exc:
        raise LogSinkError(f"cannot resolve log server '{target.address}': {exc}") from None
    return DatagramTransport(key, family, (str(sockaddr[0]), int(sockaddr[1])))


def target_key(target: LogTarget) -> Key:
    """What identifies one place to send logs to (format and level do not)."""
    if target.kind in ("stdout", "stderr"):
        return (target.kind, "", 0)
    if target.kind == "unix":
        return ("unix", target.address, 0)
    return ("udp", target.address, target.port)


def log_hostname(global_: Global) -> str | None:
    """The host name `log-send-hostname` puts in the syslog headers: its argument, else
    the system's (as HAProxy reads it, once at start-up); None without the keyword."""
    name = global_.log_send_hostname
    if name == "":
        return socket.gethostname()
    return name


class Registry:
    """The open log targets of the process, shared between sinks."""

    __slots__ = ("_transports",)

    def __init__(self) -> None:
        self._transports: dict[Key, Transport] = {}

    def acquire(self, target: LogTarget) -> Transport:
        key = target_key(target)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = _open(target)
        transport.users += 1
        return transport

    def find(self, key: Key) -> Transport | None:
        return self._transports.get(key)

    def release(self, transport: Transport) -> None:
        transport.users -= 1
        if transport.users <= 0 and self._transports.get(transport.key) is transport:
            del self._transports[transport.key]
            transport.close()

    @property
    def dropped(self) -> int:
        """Lines dropped on every open target (HAProxy's `DroppedLogs` of `show info`)."""
        return sum(t.dropped for t in self._transports.values())

    def __len__(self) -> int:
        return len(self._transports)


REGISTRY = Registry()


class LogSink:
    """The `log` lines of one proxy (or of `global`): `send()` frames a message for each
    target whose level lets it through and writes it there."""

    __slots__ = ("_clock", "_explained", "_registry", "_routes", "hostname", "pid", "tag")

    def __init__(
        self,
        targets: Sequence[LogTarget],
        *,
        tag: str = DEFAULT_TAG,
        pid: int | None = None,
        hostname: str | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`tag` is HAProxy's `log-tag`; `pid` None means the current process id at each
        message (it changes when the process daemonizes); `hostname` is
        `log-send-hostname`; `clock` gives the epoch time written in the headers."""
        self.tag = tag
        self.pid = pid
        self.hostname = hostname
        self._clock = clock
        self._registry = registry if registry is not None else REGISTRY
        self._routes: list[tuple[LogTarget, Transport]] = []
        try:
            for target in targets:
                self._routes.append((target, self._registry.acquire(target)))
        except BaseException:
            self.close()
            raise
        self._explained = [
            route for route in self._routes if explanation_target(route[0].level, route[0].minlevel)
        ]

    def send(
        self, level: str, message: str, facility: str | None = None, sd: str | None = None
    ) -> None:
        """Log `message` at syslog `level` (`info`, `err`, ...) to every target that takes
        it, with the target's facility unless `facility` is given; `sd`: the structured
        data of an RFC 5424 target's header (`log-format-sd`)."""
        if self._routes:
            self._send(self._routes, level, message, facility, sd)

    def explain(self, message: str) -> None:
        """Log an explanation of a failure, at notice, to the targets that take no traffic
        lines (`log ... notice`): see core/logline.py `explanation_target`."""
        if self._explained:
            self._send(self._explained, EXPLANATION_LEVEL, message, None)

    def _send(
        self,
        routes: list[tuple[LogTarget, Transport]],
        level: str,
        message: str,
        facility: str | None,
        sd: str | None = None,
    ) -> None:
        now = self._clock()
        pid = self.pid if self.pid is not None else os.getpid()
        for target, transport in routes:
            number = level_for_target(level, target.level, target.minlevel)
            if number is None:
                continue
            transport.write(
                frame(
                    message,
                    format=target.format,
                    facility=facility or target.facility,
                    level=number,
                    tag=self.tag,
                    pid=pid,
                    now=now,
                    hostname=self.hostname,
                    length=target.length,
                    fd=transport.stream,
                    sd=sd,
                )
            )

    @property
    def dropped(self) -> int:
        """Lines dropped on this sink's targets (counted per target, so a target shared
        with other sinks counts their drops too)."""
        return sum(t.dropped for t in {t for _, t in self._routes})

    def close(self) -> None:
        routes, self._routes, self._explained = self._routes, [], []
        for _, transport in routes:
            self._registry.release(transport)

    def __enter__(self) -> LogSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Console:
    """HAProxy's stderr lines for start-up and state changes (`[WARNING]  (PID) : ...`).
    `quiet` silences it (`-q`, `quiet`, daemon mode). A write that would block is dropped.
    When a `log stderr` target is open, lines go through it so that they stay whole."""

    __slots__ = ("quiet", "registry")

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry
        self.quiet = False

    def __call__(self, level: str, message: str) -> None:
        line = console_line(level, os.getpid(), message).encode("utf-8", "surrogateescape")
        if self.quiet:
            return
        registry = self.registry if self.registry is not None else REGISTRY
        transport = registry.find(("stderr", "", 0))
        if transport is not None:
            transport.write(line)
            return
        with contextlib.suppress(OSError):
            os.write(2, line)


CONSOLE = Console()


def console(level: str, message: str) -> None:
    """Write a console line (alert, warning, notice, diag) unless the console is quiet."""
    CONSOLE(level, message)
