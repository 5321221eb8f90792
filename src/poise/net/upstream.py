"""HTTP connections to servers, and the pool of idle ones kept for reuse (keep-alive on
the server side, `http-reuse`).

An Upstream serves one HTTP session at a time. Between transactions it waits in its
server's pool; an idle connection that the server closes, or that speaks out of turn,
leaves the pool at once, and one idle for longer than the purge delay is closed, as
HAProxy's `pool-purge-delay` (5s) does.

Idle connections hold descriptors that maxconn does not count, so, as in HAProxy
(srv_add_to_idle_list), one is kept only while the process uses fewer descriptors than
a quarter of maxsock (`tune.pool-high-fd-ratio` 25), and, beyond a server's first idle
one, while it uses fewer than a fifth (`tune.pool-low-fd-ratio` 20) and the server's
connections, in use and idle, stay within what it was seen to need (the most in use at
once over the last purge period, averaged with the estimate before, as HAProxy's
est_need_conns); else it is closed. So a server sees no more connections at once than
the limits let sessions use, and one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from poise.core.http.readgate import SERVER_FULL

if TYPE_CHECKING:
    from poise.core.server import ServerState
    from poise.net.context import Context
    from poise.net.http import HttpSession

POOL_PURGE_DELAY = 5.0  # seconds an idle server connection is kept (HAProxy's default)
POOL_MAX = 64  # idle connections kept per server


class Upstream(asyncio.Protocol):
    __slots__ = ("closed", "home", "idle_since", "pool", "session", "sni", "transport", "write")

    def __init__(self, session: HttpSession | None, home: Pool) -> None:
        self.session = session
        self.home = home  # the pool of this connection's server
        self.pool: Pool | None = None  # the pool it waits in now, if idle
        self.closed = False
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self.sni: str | None = None  # the SNI it was opened with, when the server's varies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.transport = cast(asyncio.Transport, transport)
        self.write = self.transport.write  # bound once: the session writes through it

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            self.close()  # an idle connection must not speak: it cannot be reused
            return
        session.server_data(data, session.loop.time())

    def eof_received(self) -> bool:
        session = self.session
        if session is not None:
            session.server_eof()
        return False

    def pause_writing(self) -> None:
        session = self.session
        if session is not None and session.gate.pause(SERVER_FULL):
            session.client.pause_reading()

    def resume_writing(self) -> None:
        session = self.session
        if session is not None and session.gate.resume(SERVER_FULL):
            session.client.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.pool is not None:
            self.pool.discard(self)
        session = self.session
        if session is not None:
            self.session = None
            session.upstream_lost(self)

    def close(self) -> None:
        self.session = None
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
            if self.pool is not None:
                self.pool.discard(self)

    def release(self, now: float) -> None:
        """The transaction is over and the connection may serve another: back to the pool."""
        self.home.put(self, now)

    def abort(self) -> None:
        self.session = None
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()
            if self.pool is not None:
                self.pool.discard(self)


class Pool:
    """Idle connections to one server, most recently used first."""

    __slots__ = ("ctx", "est_need", "estimated", "idle", "max_used", "server")

    def __init__(self, ctx: Context, server: ServerState) -> None:
        self.ctx = ctx  # the process's descriptors (Context.used_fds)
        self.server = server  # its sessions (cur_sess) are the connections in use
        self.idle: list[Upstream] = []
        self.max_used = 0  # the most connections in use at once since the last estimate
        self.est_need = 0  # HAProxy's est_need_conns
        self.estimated = 0.0  # when est_need was last worked out

    def take(self, now: float, sni: str | None = None) -> Upstream | None:
        """The most recently used idle connection (opened with this SNI, when the
        server's SNI varies), or None."""
        if sni is not None:
            for upstream in reversed(self.idle):
                if upstream.sni == sni and not upstream.closed:
                    if now - upstream.idle_since >= POOL_PURGE_DELAY:
                        break
                    self.idle.remove(upstream)
                    self.ctx.idle_conns -= 1
                    upstream.pool = None
                    return upstream
            return None
        while self.idle:
            upstream = self.idle.pop()
            self.ctx.idle_conns -= 1
            upstream.pool = None
            if upstream.closed:
                continue
            if now - upstream.idle_since < POOL_PURGE_DELAY:
                return upstream
            upstream.close()
        return None

    def put(self, upstream: Upstream, now: float) -> None:
        if upstream.closed:
            return
        ctx = self.ctx
        fds = ctx.used_fds()
        in_use = self.server.cur_sess + 1  # this one was in use until now
        self.max_used = max(self.max_used, in_use)
        if (
            len(self.idle) >= POOL_MAX
            or fds >= ctx.pool_high
            or (
                self.idle
                and (fds >= ctx.pool_low or in_use + len(self.idle) > max(in_use, self.est_need))
            )
        ):
            upstream.close()
            return
        upstream.session = None
        upstream.idle_since = now
        upstream.pool = self
        self.idle.append(upstream)
        ctx.idle_conns += 1

    def discard(self, upstream: Upstream) -> None:
        if upstream in self.idle:
            self.idle.remove(upstream)
            self.ctx.idle_conns -= 1
        upstream.pool = None

    def purge(self, now: float) -> None:
        """Close the connections idle for longer than the purge delay; once per purge
        delay, estimate the connections the server needs (HAProxy's
        srv_cleanup_idle_conns)."""
        if now - self.estimated >= POOL_PURGE_DELAY:
            self.estimated = now
            self.est_need = max((self.est_need + self.max_used) // 2, self.max_used)
            self.max_used = self.server.cur_sess
        for upstream in [u for u in self.idle if now - u.idle_since >= POOL_PURGE_DELAY]:
            upstream.close()

    def close_all(self) -> None:
        for upstream in list(self.idle):
            upstream.close()
