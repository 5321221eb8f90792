"""`balance source`: the client's address, hashed, chooses the server, so a client keeps
its server without a cookie (TCP services, or HTTP without persistence) and every node and
worker agrees on it (see hashing.py for the hash and the tables).

The key is the client IP address as bytes (4 for IPv4, 16 for IPv6). The table is built
over the eligible servers only, so a key always maps to a usable server: with
`hash-type map-based` (the default, static: the configured weights) most keys move when the
set changes; with `hash-type consistent` (Maglev, dynamic weights) only the keys of the
server that left, and few others, move.

The balancer is deterministic: it keeps its choice even when that server is full (the
connection waits in that server's queue, as in HAProxy). `avoid` (a redispatch after a
failed connection) takes the next entry of the table that holds another server, which is
again the same for every node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from poise.config.model import HashType
from poise.core.balancer import Balancer, eligible
from poise.core.balancer.hashing import (
    hash64,
    maglev_permutations,
    maglev_size,
    maglev_table,
    weighted_map,
)
from poise.core.balancer.static_rr import static_weight
from poise.core.server import ServerState


class Source(Balancer):
    deterministic: ClassVar[bool] = True

    def __init__(
        self,
        servers: Sequence[ServerState],
        allbackups: bool = False,
        hash_type: HashType = HashType.MAP_BASED,
    ) -> None:
        self.hash_type = hash_type
        self.table: list[ServerState] = []
        self._permutations: dict[str, tuple[int, int]] = {}
        self._configured: tuple[str, ...] = ()
        super().__init__(servers, allbackups)

    def update(self) -> None:
        members = eligible(self.servers, self.allbackups)
        if self.hash_type is HashType.CONSISTENT:
            # Size and permutations come from every configured server, so that they stay
            # the same when servers go down or come back (only membership changes).
            configured = tuple(s.name for s in self.servers)
            size = maglev_size(len(configured))
            if configured != self._configured:
                self._configured = configured
                self._permutations = maglev_permutations(configured, size)
            names = [s.name for s in members]
            weights = [s.weight for s in members]
            indices = maglev_table(names, weights, size, self._permutations)
        else:
            indices = weighted_map([static_weight(s) for s in members])
        self.table = [members[i] for i in indices]

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        table = self.table
        if not table:
            return None
        size = len(table)
        entry = hash64(key) % size
        server = table[entry]
        if server is avoid:
            for step in range(1, size):
                other = table[(entry + step) % size]
                if other is not avoid:
                    return other
        return server
