"""`hash-type map-based`: HAProxy's weighted map (lb_map.c), entry for entry.

A key's 32-bit hash picks entry `hash % total weight` of a table in which each usable
server appears as often as its weight. To send a key where HAProxy sends it, the table
must be HAProxy's own, in HAProxy's order:

- the weights are the configured ones divided by their greatest common divisor (static:
  runtime weights other than 0 and 100% are refused, see admin/commands_servers.py);
- the table holds the usable active servers, or, when none is left, the usable backup
  servers; its length is the total weight of the active servers, or, without
  `option allbackups`, the weight of the first usable backup alone (its other entries
  then still cycle through every usable backup, as HAProxy fills them);
- it is filled entry by entry: every candidate adds its weight to its score, the first one
  (in declaration order) with the highest `(score + total) // total` takes the entry and
  pays the total back.

Without a key (a `url_param` absent from the query) HAProxy walks the same table round
robin from where the last walk stopped, skipping full servers (map_get_server_rr).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from poise.core.balancer.static_rr import static_weight
from poise.core.server import ServerState


class WeightMap:
    """HAProxy's map over a backend's servers (rebuilt by `update` on any change)."""

    __slots__ = ("rr_index", "servers", "table", "tot_used", "tot_weight", "wmult")

    def __init__(self, servers: Sequence[ServerState]) -> None:
        self.servers = servers
        self.table: list[ServerState] = []
        self.tot_weight = 0  # the length of the table that lookups use
        self.tot_used = 0  # how many servers take part (1: no hashing needed)
        self.rr_index = 0
        self.wmult = 1
        self.configure()

    def configure(self) -> None:
        """The weight divisor: the GCD of the configured weights (init_server_map)."""
        divisor = 0
        for server in self.servers:
            divisor = gcd(divisor, server.initial_weight)
        self.wmult = divisor or 1

    def eweight(self, server: ServerState) -> int:
        return -(-static_weight(server) // self.wmult)  # rounded up, as HAProxy

    def update(self, allbackups: bool) -> None:
        usable = [s for s in self.servers if s.usable and self.eweight(s) > 0]
        active = [s for s in usable if not s.backup]
        if active:
            members = active
            total = sum(self.eweight(s) for s in active)
            self.tot_used = len(active)
        else:
            members = [s for s in usable if s.backup]
            if members and not allbackups:
                total, self.tot_used = self.eweight(members[0]), 1
            else:
                total, self.tot_used = sum(self.eweight(s) for s in members), len(members)
        self.tot_weight = total
        if total:
            self.table = fill(members, [self.eweight(s) for s in members], total)

    def get(self, hash32: int) -> ServerState | None:
        """map_get_server_hash: no server is avoided (HAProxy's map ignores it too)."""
        if not self.tot_weight:
            return None
        return self.table[hash32 % self.tot_weight]

    def next_rr(self, avoid: ServerState | None) -> ServerState | None:
        """map_get_server_rr: the next server of the table that is not full, preferring
        another than `avoid`."""
        total = self.tot_weight
        if not total:
            return None
        if not 0 <= self.rr_index < total:
            self.rr_index = 0
        start = index = self.rr_index
        avoided: ServerState | None = None
        avoided_index = 0
        while True:
            server = self.table[index]
            index += 1
            if has_room(server):
                avoided, avoided_index = server, index
                if server is not avoid:
                    self.rr_index = index
                    return server
            if index == total:
                index = 0
            if index == start:
                break
        if avoided is not None:
            self.rr_index = avoided_index
        return avoided


def has_room(server: ServerState) -> bool:
    """HAProxy's test before a round-robin pick: no limit, or no queue and a free slot."""
    return not server.maxconn or (not server.queued and server.cur_sess < server.maxconn)


def fill(members: Sequence[ServerState], weights: Sequence[int], total: int) -> list[ServerState]:
    """recalc_server_map: `total` entries over `members` (declaration order) of `weights`."""
    if total == 1:
        return [members[0]]
    scores = [0] * len(members)
    table: list[ServerState] = []
    for _ in range(total):
        best, top = -1, 0
        for i, weight in enumerate(weights):
            scores[i] += weight
            # C's division truncates toward zero; the score never falls below -total,
            # so the dividend is not negative and floor division agrees.
            value = (scores[i] + total) // total
            if best < 0 or value > top:
                best, top = i, value
        table.append(members[best])
        scores[best] -= total
    return table
