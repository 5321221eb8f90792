"""Build the balancer a backend's `balance` line asks for. The one place that maps
HAProxy's algorithm names to the classes that implement them.

`uri`, `url_param` and `hdr(NAME)` get source.py's deterministic hashing with the
backend's `hash-type`, over the key that core/http/hashkey.py takes from the request, and
round robin for a request that has no key (HAProxy's fallback).
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
from poise.core.balancer.source import Source
from poise.core.balancer.static_rr import StaticRoundRobin
from poise.core.http.hashkey import RequestHash
from poise.core.server import ServerState

# The HTTP algorithms that hash a part of the request (see hashkey.py).
REQUEST_HASHES = frozenset((model.Algorithm.URI, model.Algorithm.URL_PARAM, model.Algorithm.HDR))


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
    if algorithm is model.Algorithm.SOURCE:
        return Source(servers, allbackups, balance.hash_type)
    if algorithm is model.Algorithm.RANDOM:
        return RandomBalancer(servers, allbackups, balance.draws, rng)
    if algorithm in REQUEST_HASHES:
        return RequestHash(servers, allbackups, balance.hash_type)
    raise AssertionError(f"unhandled balance algorithm {algorithm}")
