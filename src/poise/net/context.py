"""What the sessions of one running poise share: the loop, the global connection count and
limit, the running frontends and backends (core/frontend.py, core/backend.py) with the I/O
of each backend, and the listeners stopped at a limit.

Connections are counted in when they are accepted (net/accept.py). A frontend or the
process at its `maxconn` stops accepting, as HAProxy's listeners do: new connections wait
in the kernel's backlog, and the listeners resume as sessions end (release) or when the
runtime API raises a limit or enables a frontend (wake).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from poise.admin import stats
from poise.core.backend import Backend
from poise.core.frontend import Frontend, Listening
from poise.core.sockstats import SocketCounters
from poise.net.siblings import Alone, Siblings

MAXACCEPT = 64  # connections a listener accepts per wake-up: HAProxy's tune.maxaccept

if TYPE_CHECKING:
    from poise.net.services import Services
    from poise.net.tls_server import ServerTls
    from poise.net.upstream import Pool

__all__ = ["BackendIo", "Context", "Listening", "Session"]


class Session(Protocol):
    def kill(self, code: str) -> None: ...


class BackendIo:
    """The shell's I/O of one running backend (core/backend.py), kept in Context.io by
    that backend: idle server connections and TLS contexts, per server id."""

    __slots__ = ("check_tls", "keepalive", "pools", "server_tls")

    def __init__(self) -> None:
        # HTTP: idle keep-alive connections per server id (net/upstream.py).
        self.pools: dict[int, Pool] = {}
        # `server ... ssl`: per server id, its TLS context and the name to send as SNI and
        # to verify (net/tls.py fills it); a server absent here is spoken to in clear.
        self.server_tls: dict[int, ServerTls] = {}
        # `check-ssl` (or `ssl` with checks on the server's own address): per server id,
        # the TLS of its checks and the name they send (net/tls.py fills it).
        self.check_tls: dict[int, tuple[ServerTls, str | None]] = {}
        # `option srvtcpka`, `option nolinger`: the socket options of each server
        # connection (net/keepalive.py)
        self.keepalive: tuple[tuple[int, int, int | bytes], ...] = ()


class Context:
    __slots__ = (
        "actconn",
        "backends",
        "cum_conns",
        "drained",
        "failed_accepts",
        "frontends",
        "hard_maxconn",
        "idle_conns",
        "io",
        "limited",
        "loop",
        "maxaccept",
        "maxconn",
        "maxsock",
        "pool_high",
        "pool_low",
        "reserved_fds",
        "services",
        "sessions",
        "siblings",
        "stopping",
        "waking",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, maxconn: int, maxsock: int = 0) -> None:
        self.loop = loop
        self.maxconn = maxconn
        self.maxaccept = MAXACCEPT  # `tune.maxaccept` (runtime.py sets it)
        self.hard_maxconn = maxconn  # `set maxconn global` may lower maxconn, never pass this
        # The descriptors maxconn needs (core/limits.py), of which those held whatever
        # the connections (listeners, the loop...); unknown: two per connection.
        self.maxsock = maxsock or 2 * maxconn
        self.reserved_fds = self.maxsock - 2 * maxconn
        # HAProxy's tune.pool-high-fd-ratio (25) and pool-low-fd-ratio (20) of maxsock:
        # beyond them idle server connections are not kept (net/upstream.py).
        self.pool_high = (self.maxsock * 25 + 99) // 100
        self.pool_low = (self.maxsock * 20 + 99) // 100
        self.idle_conns = 0  # idle server connections kept for reuse
        self.actconn = 0
        self.cum_conns = 0  # connections ever accepted (`show info` CumConns)
        self.failed_accepts = 0  # accept() failures: out of descriptors (net/accept.py)
        # Listeners that stopped accepting at a limit (HAProxy's listener queues), and
        # whether their wake-up is scheduled.
        self.limited: list[Listening] = []
        self.waking = False
        self.frontends: dict[str, Frontend] = {}
        self.backends: dict[str, Backend] = {}
        self.io: dict[Backend, BackendIo] = {}  # by running backend: add_backend() fills it
        self.services: Services | None = None  # the stats page's (net/services.py)
        self.sessions: set[Session] = set()
        # The other workers of this balancer (`nbthread`): process/ replaces Alone when
        # there are several.
        self.siblings: Siblings = Alone()
        self.stopping = False
        # Set when the process is stopping and the last session has ended.
        self.drained = asyncio.Event()

    def add_backend(self, backend: Backend) -> BackendIo:
        """A running backend joins, with its I/O."""
        self.backends[backend.name] = backend
        io = self.io[backend] = BackendIo()
        return io

    def view(
        self,
        info: stats.AdminInfo,
        *,
        accepted: int = 0,
        tasks: int = 0,
        ulimit_n: int = 0,
        sessions: Callable[[], Sequence[stats.SessionInfo]] = stats.no_sessions,
    ) -> stats.View:
        """The running model as the stats read it (admin/stats.py): one builder for the
        stats sockets (net/admin_socket.py), which add their own facts (`accepted`: their
        connections, which `show info` counts in CumConns), and for the stats page and
        the exporter (net/services.py)."""
        return stats.View(
            info=info,
            frontends=self.frontends,
            backends=self.backends,
            maxconn=self.maxconn,
            actconn=self.actconn,
            cum_conns=self.cum_conns + accepted,
            stopping=self.stopping,
            now=self.loop.time(),
            hard_maxconn=self.hard_maxconn,
            tasks=tasks,
            ulimit_n=ulimit_n,
            maxsock=self.maxsock,
            failed_accepts=self.failed_accepts,
            sessions=sessions,
        )

    def wall(self) -> float:
        """Wall-clock time (epoch seconds): cookie dates and log dates."""
        return time.time()

    def used_fds(self) -> int:
        """The descriptors in use, as counted: the reserved ones, two per connection,
        and the idle server connections."""
        return self.reserved_fds + 2 * self.actconn + self.idle_conns

    def forget(self, session: Session) -> None:
        """A session is over (or was refused)."""
        self.sessions.discard(session)
        if self.stopping and not self.sessions:
            self.drained.set()

    def admit(self, frontend: Frontend) -> None:
        """Count a connection in: it was just accepted, the limits allowing it."""
        self.actconn += 1
        self.cum_conns += 1
        frontend.admit()

    def release(self, frontend: Frontend, sock: SocketCounters | None = None) -> None:
        """A connection ended: count it out, and resume the listeners waiting for room,
        once the loop has closed its sockets (the transports close them in callbacks
        scheduled before this one): a listener at the limit accepts no more connections
        than there are descriptors free."""
        self.actconn -= 1
        frontend.leave()
        if sock is not None:  # `option socket-stats`: the listener that accepted it
            sock.leave()
        if self.limited and not self.waking:
            self.waking = True
            self.loop.call_soon(self.wake)

    def pause(self, frontend: Frontend, paused: bool) -> None:
        """`disable frontend` (its listeners stop listening) or `enable frontend`."""
        frontend.paused = paused
        for listener in frontend.listeners:
            if paused:
                listener.pause()
            else:
                listener.resume()

    def wake(self) -> None:
        """There may be room (a session ended, a limit was raised, a frontend enabled):
        the limited listeners resume, or wait again where there still is none."""
        self.waking = False
        waiting, self.limited = self.limited, []
        for listener in waiting:
            listener.resume()
