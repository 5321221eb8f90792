"""Keepalived's `persistence_timeout` (IPVS persistence) over any balancer: a client that
connected within the last `timeout` seconds goes back to the server it had, and its entry's
expiry moves on with each new connection; `persistence_granularity` groups the clients of
one network (a mask on their address) as one. A server that was removed from the pool
(down) loses its clients; one kept with weight 0 (`inhibit_on_failure`, IPVS's quiescent
server) keeps them, as IPVS keeps sending a persistent client to a quiescent server.

Pure: the time comes from the `clock` the shell gives. The key is the client's address as
bytes (the shell's `source_key`); a connection without one is balanced as it comes.
"""

from __future__ import annotations

from collections.abc import Callable

from poise.core.balancer import Balancer
from poise.core.server import ServerState

PURGE_EVERY = 1024  # new entries between two sweeps of the expired ones


class Persistent(Balancer):
    def __init__(
        self,
        inner: Balancer,
        timeout: float,
        prefix: int | None,
        clock: Callable[[], float],
    ) -> None:
        self.inner = inner
        self.refuses_unchosen = inner.refuses_unchosen
        self.timeout = timeout
        self.prefix = prefix
        self.clock = clock
        self.table: dict[bytes, tuple[ServerState, float]] = {}
        self.added = 0
        super().__init__(inner.servers, inner.allbackups)

    def update(self) -> None:
        self.inner.update()

    def key(self, key: bytes) -> bytes:
        """The client's address with `persistence_granularity`'s mask applied."""
        if self.prefix is None:
            return key
        bits = len(key) * 8
        keep = min(self.prefix, bits)
        value = int.from_bytes(key, "big") >> (bits - keep) << (bits - keep)
        return value.to_bytes(len(key), "big")

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        if not key:
            return self.inner.pick(key, avoid)
        client = self.key(key)
        now = self.clock()
        entry = self.table.get(client)
        if entry is not None:
            server, expires = entry
            if (
                expires > now
                and server is not avoid
                and server.serves_persistent
                and not server.full
                and server in self.servers
            ):
                self.table[client] = (server, now + self.timeout)
                return server
        chosen = self.inner.pick(key, avoid)
        if chosen is not None:
            self.table[client] = (chosen, now + self.timeout)
            self.added += 1
            if self.added % PURGE_EVERY == 0:
                self.purge(now)
        return chosen

    def purge(self, now: float) -> None:
        """Forget the clients whose time is over."""
        for client in [c for c, (_, expires) in self.table.items() if expires <= now]:
            del self.table[client]
