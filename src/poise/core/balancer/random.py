"""`balance random` and `random(N)`: the power of N random choices (HAProxy's lb_chash.c
random mode; Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing").

Each pick draws N servers independently, each with a probability proportional to its
weight, and keeps the one with the least load relative to its weight (sessions plus its
own queue, divided by weight, as HAProxy compares them); a tie keeps the earlier draw.
N = 1 is plain weighted random; N = 2, the default, already keeps loads close without the
herding of pure leastconn when several balancers share the servers.

Randomness comes from the injected `random.Random`, so a seeded generator makes every pick
reproducible in tests. Weights are dynamic (read at `update()`); full servers and `avoid`
are not drawn, and the avoided server is still returned when no other can be.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import accumulate

from poise.core.balancer import Balancer, eligible
from poise.core.balancer.leastconn import inflight
from poise.core.server import ServerState


class RandomBalancer(Balancer):
    def __init__(
        self,
        servers: Sequence[ServerState],
        allbackups: bool = False,
        draws: int = 2,
        rng: random.Random | None = None,
    ) -> None:
        if draws < 1:
            raise ValueError(f"random({draws}): the number of draws must be at least 1")
        self.draws = draws
        self.rng = rng if rng is not None else random.Random()
        self._members: list[ServerState] = []
        self._weights: list[int] = []
        self._cumulative: list[int] = []
        super().__init__(servers, allbackups)

    def update(self) -> None:
        self._members = eligible(self.servers, self.allbackups)
        self._weights = [s.weight * s.ramp for s in self._members]  # core/slowstart.py
        self._cumulative = list(accumulate(self._weights))

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        members, weights, cumulative = self._members, self._weights, self._cumulative
        if any(s.full or s is avoid for s in members):
            kept = [i for i, s in enumerate(members) if not s.full and s is not avoid]
            if not kept:
                return avoid if avoid in members and not avoid.full else None
            members = [members[i] for i in kept]
            weights = [weights[i] for i in kept]
            cumulative = list(accumulate(weights))
        if not members:
            return None
        best = -1
        for i in self.rng.choices(range(len(members)), cum_weights=cumulative, k=self.draws):
            if (
                best < 0
                or inflight(members[i]) * weights[best] < inflight(members[best]) * weights[i]
            ):
                best = i
        return members[best]
