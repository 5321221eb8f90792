"""`balance roundrobin`: smooth weighted round robin, the algorithm of nginx's upstream
module, which HAProxy's dynamic round robin (lb_fwrr.c) matches in effect.

Each server keeps a running score. On every pick each candidate's score grows by its
weight, the highest score wins and pays back the sum of the weights that took part. Over
one cycle of W = sum(weights) picks, from a fresh start and with nothing skipped, every
server is picked exactly `weight` times, and the picks are spread out: weights 5/1/1 give
a a b a c a a, never a burst of five.

Weights are dynamic (`set weight` applies after `update()`): a server keeps its score
across updates, so a change of one weight or of the server set does not reset everybody's
place in the cycle. Scores are clamped to the new total weight so that a server whose
weight dropped sharply cannot run a long burst on credit it earned before.

A full server (maxconn reached) and the `avoid` server sit out a pick (their score does not
move, as nginx does for unavailable peers); the avoided server is still chosen when it is
the only one that can take the connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.core.balancer import Balancer, eligible
from poise.core.server import ServerState


class RoundRobin(Balancer):
    def __init__(self, servers: Sequence[ServerState], allbackups: bool = False) -> None:
        self._order: list[tuple[ServerState, int]] = []  # eligible servers and weights
        self._score: dict[ServerState, int] = {}
        super().__init__(servers, allbackups)

    def update(self) -> None:
        # weight x ramp: HAProxy's effective weight (core/slowstart.py).
        order = [(s, s.weight * s.ramp) for s in eligible(self.servers, self.allbackups)]
        total = sum(w for _, w in order)
        old = self._score
        self._order = order
        self._score = {s: max(-total, min(total, old.get(s, 0))) for s, _ in order}

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        score = self._score
        best: ServerState | None = None
        best_score = 0
        total = 0
        avoided = False
        for server, weight in self._order:
            if server.full:
                continue
            if server is avoid:
                avoided = True
                continue
            current = score[server] + weight
            score[server] = current
            total += weight
            if best is None or current > best_score:
                best, best_score = server, current
        if best is None:
            return avoid if avoided else None
        score[best] = best_score - total
        return best
