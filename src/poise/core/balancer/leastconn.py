"""`balance leastconn`: the server with the fewest connections relative to its weight
(HAProxy's lb_fwlc.c), for long sessions (databases, LDAP, WebSocket) where round robin
would pile them up on a slow server.

The load of a server is its sessions plus the connections waiting in its own queue,
divided by its weight; loads are compared exactly (cross-multiplied, no rounding). Among
servers with the same load the one picked least recently wins, which makes ties go round
robin as in HAProxy (its tree appends a server behind the others of equal key). Weights are
dynamic: they are read at `update()`. Full servers and `avoid` are passed over; the avoided
server is still returned when it is the only one with a free slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.core.balancer import Balancer, eligible
from poise.core.server import ServerState


def inflight(server: ServerState) -> int:
    """Connections a server has or is about to have (HAProxy: served + queue length)."""
    return server.cur_sess + server.queued


class LeastConn(Balancer):
    def __init__(self, servers: Sequence[ServerState], allbackups: bool = False) -> None:
        self._order: list[tuple[ServerState, int]] = []
        self._last_pick: dict[ServerState, int] = {}
        self._picks = 0
        super().__init__(servers, allbackups)

    def update(self) -> None:
        self._order = [(s, s.weight * s.ramp) for s in eligible(self.servers, self.allbackups)]

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        last = self._last_pick
        best: ServerState | None = None
        best_load = best_weight = best_last = 0
        avoided = False
        for server, weight in self._order:
            if server.full:
                continue
            if server is avoid:
                avoided = True
                continue
            load = inflight(server)
            seen = last.get(server, -1)
            if best is not None:
                lhs, rhs = load * best_weight, best_load * weight
                if lhs > rhs or (lhs == rhs and seen >= best_last):
                    continue
            best, best_load, best_weight, best_last = server, load, weight, seen
        if best is None:
            return avoid if avoided else None
        self._picks += 1
        last[best] = self._picks
        return best
