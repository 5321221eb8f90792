"""Build the balancer a backend's `balance` line asks for. The one place that maps
HAProxy's algorithm names to the classes that implement them.

`source`, `uri`, `url_param`, `hdr(NAME)` and `rdp-cookie` get source.py's hashing with the
backend's `hash-type`, function and `avalanche`, over the key the shell hands it (the
client address, or what core/http/hashkey.py takes from the request), and round robin for
a request that has no key (HAProxy's fallback).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from poise.config import model
from poise.core.balancer import Balancer
from poise.core.balancer.first import First
from poise.core.balancer.leastconn import LeastConn
from poise.core.balancer.random import RandomBalancer
from poise.core.balancer.roundrobin import RoundRobin
from poise.core.balancer.source import HashBalancer
from poise.core.balancer.static_rr import StaticRoundRobin
from poise.core.server import ServerState

# The algorithms that hash a key (see source.py).
HASHES = frozenset(
    (
        model.Algorithm.SOURCE,
        model.Algorithm.URI,
        model.Algorithm.URL_PARAM,
        model.Algorithm.HDR,
        model.Algorithm.RDP_COOKIE,
    )
)


def make_balancer(
    balance: model.Balance,
    servers: Sequence[ServerState],
    allbackups: bool,
    rng: random.Random | None = None,
) -> Balancer:
    """A balancer over `servers` (a backend's servers in declaration order).

    `rng` feeds `balance random`; when None a generator seeded by the system is used.
    """
    algorithm = balance.algorithm
    if algorithm is model.Algorithm.ROUNDROBIN:
        return RoundRobin(servers, allbackups)
    if algorithm is model.Algorithm.STATIC_RR:
        return StaticRoundRobin(servers, allbackups)
    if algorithm is model.Algorithm.LEASTCONN:
        return LeastConn(servers, allbackups)
    if algorithm is model.Algorithm.FIRST:
        return First(servers, allbackups)
    if algorithm is model.Algorithm.RANDOM:
        return RandomBalancer(servers, allbackups, balance.draws, rng)
    if algorithm in HASHES:
        return HashBalancer(servers, allbackups, balance)
    raise AssertionError(f"unhandled balance algorithm {algorithm}")
