"""`balance static-rr`: HAProxy's static round robin (lb_map.c). (`hash-type map-based`
looks keys up in HAProxy's own map, entry for entry: lbmap.py.)

The map is a table in which every server appears `weight` times, interleaved so that the
servers alternate smoothly rather than in blocks. static-rr walks it with a cursor that
survives rebuilds; a full server and the `avoid` server are passed over. The map is rebuilt
when the set of eligible servers changes (a server goes up, down, into maintenance, or is
set to weight 0), but it always uses the weights the configuration gave: HAProxy's doc says
that with a static algorithm "changing a server's weight on the fly will have no effect"
(the runtime API only accepts 0 and 100% for such servers).
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.core.balancer import Balancer, eligible
from poise.core.server import ServerState


def smooth_map(weights: Sequence[int]) -> list[int]:
    """Indices into `weights`, each index i appearing weights[i] times, spread evenly.

    The k-th appearance of server i is placed at its ideal position (k + 1/2) / w_i of the
    cycle (stride scheduling); ties go to the earlier server. O(W log W), W = sum(weights).
    The result depends only on the weights (floats are IEEE-exact here: the same map on
    every node and every run).
    """
    slots = [((2 * k + 1) / (2 * w), i) for i, w in enumerate(weights) if w > 0 for k in range(w)]
    slots.sort()
    return [i for _, i in slots]


def static_weight(server: ServerState) -> int:
    """The weight a static algorithm uses: the configured one. A server configured with
    weight 0 and given a weight at runtime counts with that weight."""
    return server.initial_weight if server.initial_weight > 0 else server.weight


class StaticRoundRobin(Balancer):
    dynamic_weights = False

    def __init__(self, servers: Sequence[ServerState], allbackups: bool = False) -> None:
        self._map: list[ServerState] = []
        self._cursor = 0
        super().__init__(servers, allbackups)

    def update(self) -> None:
        members = eligible(self.servers, self.allbackups)
        self._map = [members[i] for i in smooth_map([static_weight(s) for s in members])]
        if self._cursor >= len(self._map):
            self._cursor = 0

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        table = self._map
        size = len(table)
        index = self._cursor
        avoided_at = -1
        for _ in range(size):
            server = table[index]
            index = index + 1 if index + 1 < size else 0
            if server.full:
                continue
            if server is avoid:
                avoided_at = index
                continue
            self._cursor = index
            return server
        if avoided_at >= 0:
            self._cursor = avoided_at
            return avoid
        return None
