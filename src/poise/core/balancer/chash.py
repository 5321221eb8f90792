"""`hash-type consistent`: HAProxy's consistent hashing ring (lb_chash.c), point for point.

Every usable server owns `weight x 16` points (HAProxy's BE_WEIGHT_SCALE: a server's
effective weight; fewer while `slowstart` ramps it up, core/slowstart.py) on a 32-bit ring;
its j-th point sits at full_hash(id x 4096 + j), `id` being the server's numeric id (its
declaration rank, or its `id` setting), 4096 = 256 x 16 the widest span a server's points
may need. full_hash is a bijection, so no two points share a place. A key's hash falls
between two points; the nearer one wins, the one before on a tie (chash_get_server_hash). A
server going down takes its points away and nothing else moves: only its keys move, each to
a neighbour's point.

Active and backup servers have rings of their own: the backup ring is used when no active
server is left, and then only the first usable backup is used unless `option allbackups`.
A redispatch that must avoid a server walks on to the next points until another server
owns one. Without a key, HAProxy walks the ring round robin from the point where the last
walk stopped, skipping full servers (chash_get_next_server).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from poise.core.balancer.hashfn import MASK, full_hash
from poise.core.balancer.lbmap import has_room
from poise.core.server import ServerState

WEIGHT_SCALE = 16  # BE_WEIGHT_SCALE: points per unit of weight
POINT_RANGE = 256 * WEIGHT_SCALE  # SRV_EWGHT_RANGE: the span of ids one server's points use


def server_points(server_id: int, count: int) -> list[int]:
    """The places of a server's first `count` points on the ring."""
    base = server_id * POINT_RANGE
    return [full_hash((base + j) & MASK) for j in range(count)]


class Ring:
    """The active and backup rings of a backend (rebuilt by `update` on any change)."""

    __slots__ = (
        "_cache",
        "first_backup",
        "keys",
        "last",
        "owners",
        "servers",
        "tot_used",
        "tot_weight",
    )

    def __init__(self, servers: Sequence[ServerState]) -> None:
        self.servers = servers
        self.keys: list[int] = []  # the ring in use: sorted places...
        self.owners: list[ServerState] = []  # ...and the server owning each
        self.first_backup: ServerState | None = None  # used alone (no allbackups)
        self.tot_weight = 0
        self.tot_used = 0
        self.last: int | None = None  # the place where the last round-robin walk stopped
        self._cache: dict[tuple[int, int], list[int]] = {}

    def points(self, server: ServerState) -> list[int]:
        count = server.weight * server.ramp  # WEIGHT_SCALE, less while slowstart ramps
        key = (server.id, count)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = server_points(server.id, count)
        return cached

    def update(self, allbackups: bool) -> None:
        usable = [s for s in self.servers if s.usable]
        active = [s for s in usable if not s.backup]
        members = active or [s for s in usable if s.backup]
        self.first_backup = None
        if not active and members and not allbackups:
            self.first_backup = members[0]
            self.tot_weight, self.tot_used = members[0].weight * members[0].ramp, 1
            members = []
        else:
            self.tot_weight = sum(s.weight * s.ramp for s in members)
            self.tot_used = len(members)
        placed = sorted((key, i) for i, s in enumerate(members) for key in self.points(s))
        self.keys = [key for key, _ in placed]
        self.owners = [members[i] for _, i in placed]
        if self.last is not None and self.keys:
            # A removed point hands the walk on to the next point that remains.
            at = bisect_left(self.keys, self.last)
            if at == len(self.keys) or self.keys[at] != self.last:
                self.last = self.keys[at % len(self.keys)]
        elif not self.keys:
            self.last = None

    def get(self, hash32: int, avoid: ServerState | None) -> ServerState | None:
        """chash_get_server_hash: the server of the point nearest to `hash32`."""
        if self.first_backup is not None:
            return self.first_backup
        keys = self.keys
        size = len(keys)
        if not size:
            return None
        nxt = bisect_left(keys, hash32)
        if nxt == size:
            nxt = 0
        prev = nxt - 1 if nxt else size - 1
        if (hash32 - keys[prev]) & MASK <= (keys[nxt] - hash32) & MASK:
            nxt = prev
        server = self.owners[nxt]
        laps = 0
        while server is avoid:
            nxt += 1
            if nxt == size:
                nxt = 0
                laps += 1
                if laps > 1:
                    break
            server = self.owners[nxt]
        return server

    def next_rr(self, avoid: ServerState | None) -> ServerState | None:
        """chash_get_next_server: walk on from the last point to a server with room,
        preferring another than `avoid`."""
        if self.first_backup is not None:
            return self.first_backup
        keys = self.keys
        size = len(keys)
        if not size:
            return None
        index = -1 if self.last is None else bisect_right(keys, self.last) - 1
        stop = index
        avoided: ServerState | None = None
        avoided_at = -1
        while True:
            index = index + 1 if index + 1 < size else 0
            if stop < 0:
                stop = index
            server = self.owners[index]
            if has_room(server):
                if server is not avoid:
                    self.last = keys[index]
                    return server
                avoided, avoided_at = server, index
            if index == stop:
                break
        self.last = keys[avoided_at] if avoided_at >= 0 else None
        return avoided
