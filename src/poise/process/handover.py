"""How a master hands its listening sockets to its workers (master-worker mode).

The master opens every listening socket once, before any worker, and keeps it open for as
long as it lives, so a socket is never closed between two workers and no connection waiting
in its queue is lost during a reload. A worker reads its configuration, describes the
sockets it needs (a SocketSpec per `bind` address and per `stats socket`) and asks the master
for them over its channel, a unix SOCK_SEQPACKET pair the master created and the worker
inherited across exec. The master answers with the very sockets it holds, and binds the
addresses a new configuration adds, with its own privileges; the descriptors travel as
SCM_RIGHTS, as with HAProxy's `-x`. Sockets inherited from the master's parent (`fd@N`,
`sockpair@N`, net/inherited.py) are taken by the master and handed over the same way, so
they outlive every reload. A socket is "the same" when its address and the options
set before bind() are (SocketSpec.key); the queue length (`backlog`) is set again by each
worker's listen().

With `nbthread N > 1` (N workers) each TCP `bind` with SO_REUSEPORT is N sockets, one per
worker slot (HAProxy's "shards by-thread"): worker k of every generation gets shard k, so
the connections the kernel queued on a shard wait there for the worker that replaces a dead
one. A `bind` that cannot be sharded (a unix socket, `fd@`, `noreuseport`) is one socket
all workers accept on. Stats sockets are one socket, worker 0's only.

Messages are JSON objects, one per datagram:
  worker -> master  {"op": "sockets", "want": [spec, ...], "warnings": [line, ...]}
  master -> worker  {"op": "sockets", "ok": true, "count": N} and the N descriptors (in
                    messages of at most MAX_FDS, the kernel's limit being 253), or
                    {"op": "sockets", "ok": false, "error": "why"}
  worker -> master  {"op": "failed", "lines": [...]} or {"op": "ready"}
"""

from __future__ import annotations

import json
import socket
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from poise.config import model
from poise.net.admin_socket import AdminSocket, open_admin_socket
from poise.net.inherited import from_master, open_bind, take
from poise.net.listener import DEFAULT_BACKLOG, BindError, Listener

MAX_FDS = 128  # descriptors per message (SCM_MAX_FD is 253 on Linux)
MAX_MESSAGE = 1 << 20

Key = tuple[str, str, str, int | None, bool, bool, bool, int | None, int]
Slot = tuple[Key, int]  # the n-th socket with this key (two frontends may share a port)


@dataclass(frozen=True, slots=True)
class SocketSpec:
    """One listening socket a configuration needs, as the worker tells the master."""

    kind: Literal["bind", "stats", "server"]  # "server": a `server sockpair@N`
    family: model.AddressFamily
    host: str
    port: int | None
    owner: str  # the frontend's name, or GLOBAL for a stats socket (for error messages)
    file: str
    line: int
    freebind: bool = False
    reuseport: bool = True
    v6only: bool = False
    backlog: int = DEFAULT_BACKLOG
    mode: int | None = None  # a unix stats socket's permissions
    user: str | None = None  # and its owner (`user`/`uid`, `group`/`gid`)
    group: str | None = None
    level: Literal["user", "operator", "admin"] = "operator"
    shard: int = 0  # the worker slot of a sharded `bind` (nbthread > 1)

    @property
    def key(self) -> Key:
        return (
            self.kind,
            self.family,
            self.host,
            self.port,
            self.freebind,
            self.reuseport,
            self.v6only,
            self.mode,
            self.shard,
        )

    @property
    def address(self) -> model.Address:
        return model.Address(self.family, self.host, self.port)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: object) -> SocketSpec:
        if not isinstance(data, dict):
            raise ValueError("a socket description must be an object")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise ValueError(f"bad socket description: {exc}") from None

    def open(self) -> socket.socket:
        """Bind and listen (in the master); raises BindError with HAProxy's wording."""
        where = model.Where(self.file, self.line)
        if self.kind == "server":
            return take(self.address, where, f"server {self.owner}")
        if self.kind == "stats":
            stats = model.StatsSocket(
                self.address, where, self.mode, self.level, user=self.user, group=self.group
            )
            return open_admin_socket(stats)
        bind = model.Bind(
            self.address,
            where,
            freebind=self.freebind,
            reuseport=self.reuseport,
            backlog=self.backlog,
            v6only=self.v6only,
        )
        return open_bind(bind, self.owner, 0).sock


def bind_spec(bind: model.Bind, frontend: str, maxconn: int, shard: int = 0) -> SocketSpec:
    """The socket of a `bind`; `shard`: the worker slot, for a `bind` that is sharded
    (TCP with SO_REUSEPORT) when there are several workers."""
    address = bind.address
    if not (bind.reuseport and address.family in ("ipv4", "ipv6")):
        shard = 0
    return SocketSpec(
        "bind",
        address.family,
        address.host,
        address.port,
        frontend,
        bind.where.file,
        bind.where.line,
        freebind=bind.freebind,
        reuseport=bind.reuseport,
        v6only=bind.v6only,
        backlog=bind.backlog or max(maxconn, DEFAULT_BACKLOG),
        shard=shard,
    )


def stats_spec(config: model.StatsSocket) -> SocketSpec:
    address = config.address
    return SocketSpec(
        "stats",
        address.family,
        address.host,
        address.port,
        "GLOBAL",
        config.where.file,
        config.where.line,
        mode=config.mode,
        level=config.level,
        user=config.user,
        group=config.group,
    )


def specs_for(config: model.Config, slot: int = 0, count: int = 1) -> list[SocketSpec]:
    """Every listening socket of a configuration that worker `slot` of `count` serves, in
    the order Runtime.bind() opens them, then the stats sockets (worker 0's only)."""
    specs: list[SocketSpec] = []
    shard = slot if count > 1 else 0
    for proxy in config.frontends:
        if proxy.disabled:
            continue
        maxconn = proxy.maxconn or config.global_.maxconn
        specs += [bind_spec(bind, proxy.name, maxconn, shard) for bind in proxy.binds]
    if slot == 0:
        specs += [stats_spec(s) for s in config.global_.stats_sockets]
    return specs + server_specs(config)


def server_specs(config: model.Config) -> list[SocketSpec]:
    """One per descriptor of the `server sockpair@N` lines."""
    specs: dict[str, SocketSpec] = {}
    for proxy in config.backends:
        for server in proxy.servers:
            address = server.address
            if address.family == "sockpair" and address.host not in specs:
                where = server.where
                owner = f"{proxy.name}/{server.name}"
                specs[address.host] = SocketSpec(
                    "server", "sockpair", address.host, None, owner, where.file, where.line
                )
    return list(specs.values())


class SocketTable:
    """The master's listening sockets, and which worker holds which."""

    def __init__(self) -> None:
        self._socks: dict[Slot, socket.socket] = {}
        self._held: dict[int, set[Slot]] = {}

    def __len__(self) -> int:
        return len(self._socks)

    def provide(
        self, specs: Sequence[SocketSpec], holder: int | None = None
    ) -> list[socket.socket]:
        """The sockets for `specs`, in order: those the master has, and new ones bound now.
        On a bind error the ones bound by this call are closed and BindError is raised."""
        seen: Counter[Key] = Counter()
        slots: list[Slot] = []
        fresh: list[Slot] = []
        try:
            for spec in specs:
                slot = (spec.key, seen[spec.key])
                seen[spec.key] += 1
                if slot not in self._socks:
                    self._socks[slot] = spec.open()
                    fresh.append(slot)
                slots.append(slot)
        except BaseException:
            for slot in fresh:
                self._socks.pop(slot).close()
            raise
        if holder is not None:
            self._held[holder] = set(slots)
        return [self._socks[slot] for slot in slots]

    def release(self, keep: Iterable[int]) -> int:
        """Close every socket none of the workers in `keep` holds (an address the
        configuration in force no longer has); returns how many were closed."""
        wanted = set(keep)
        self._held = {pid: slots for pid, slots in self._held.items() if pid in wanted}
        needed = set().union(*self._held.values()) if self._held else set()
        closed = 0
        for slot in [s for s in self._socks if s not in needed]:
            self._socks.pop(slot).close()
            closed += 1
        return closed

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        self._held.clear()


class Inherited:
    """In a worker: the descriptors the master sent, by key, taken as the runtime binds."""

    def __init__(self, specs: Sequence[SocketSpec], fds: Sequence[int], shard: int = 0) -> None:
        self.shard = shard  # this worker's slot, when there are several
        self._fds: dict[Key, deque[int]] = {}
        for spec, fd in zip(specs, fds, strict=True):
            self._fds.setdefault(spec.key, deque()).append(fd)

    def _take(self, spec: SocketSpec) -> int:
        queue = self._fds.get(spec.key)
        if not queue:
            where = spec.address if spec.family != "unix" else spec.host
            raise BindError(f"Starting frontend {spec.owner}: no socket from the master [{where}]")
        return queue.popleft()

    def listener(self, bind: model.Bind, frontend: str, maxconn: int) -> Listener:
        """Runtime.bind()'s opener: the master's socket for this `bind`."""
        spec = bind_spec(bind, frontend, maxconn, self.shard)
        return from_master(bind, frontend, self._take(spec), spec.backlog)

    def admin_sockets(self, configs: Sequence[model.StatsSocket]) -> list[socket.socket]:
        socks: list[socket.socket] = []
        if self.shard:  # worker 0 answers on the stats sockets
            return socks
        for config in configs:
            sock = AdminSocket(fileno=self._take(stats_spec(config)))
            sock.config = config
            sock.setblocking(False)
            socks.append(sock)
        return socks

    def server_sockpairs(self, config: model.Config) -> dict[int, socket.socket]:
        """The master's copies of the `server sockpair@N` descriptors, by N."""
        socks: dict[int, socket.socket] = {}
        for spec in server_specs(config):
            socks[int(spec.host)] = socket.socket(fileno=self._take(spec))
            socks[int(spec.host)].setblocking(False)
        return socks

    def close_unused(self) -> None:
        for queue in self._fds.values():
            while queue:
                socket.socket(fileno=queue.popleft()).close()


class Channel:
    """One end of the master-worker pair: JSON messages, with descriptors attached."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(one), cls(two)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def receive(self) -> tuple[dict[str, Any] | None, list[int]]:
        """The next message and its descriptors; None at end of stream (the other
        process is gone). Raises BlockingIOError on a non-blocking channel with nothing
        to read, ValueError on a message that is not a JSON object."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, MAX_FDS)
        if not data and not fds:
            return None, []
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            for fd in fds:
                socket.socket(fileno=fd).close()
            raise ValueError("not a JSON object")
        return message, fds

    def send_sockets(self, socks: Sequence[socket.socket]) -> None:
        """The answer to a "sockets" request: a count, then the descriptors."""
        self.send({"op": "sockets", "ok": True, "count": len(socks)})
        fds = [s.fileno() for s in socks]
        for start in range(0, len(fds), MAX_FDS):
            self.send({"op": "fds"}, fds[start : start + MAX_FDS])

    def request_sockets(
        self, specs: Sequence[SocketSpec], warnings: Sequence[str] = ()
    ) -> list[int]:
        """In a worker (blocking): ask for the sockets; BindError with the master's
        reason when it could not bind one."""
        self.send(
            {"op": "sockets", "want": [s.to_wire() for s in specs], "warnings": list(warnings)}
        )
        answer, _ = self.receive()
        while answer is not None and answer.get("op") != "sockets":
            # Another worker's bus message (bus.py), relayed before this one serves: what
            # it says is asked again (checks/shared.py) or answered late (a gather waits).
            answer, _ = self.receive()
        if answer is None:
            raise BindError("the master process is gone")
        if not answer.get("ok"):
            raise BindError(str(answer.get("error", "the master could not provide the sockets")))
        count = int(answer.get("count", 0))
        fds: list[int] = []
        while len(fds) < count:
            message, more = self.receive()
            if message is None:
                raise BindError("the master process is gone")
            fds += more
        return fds

    def close(self) -> None:
        self.sock.close()
