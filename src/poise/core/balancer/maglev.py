"""`hash-type maglev`, poise's own option (HAProxy has no such method): a weighted Maglev
table over a BLAKE2b hash of the key. HAProxy's `map-based` and `consistent` are lbmap.py
and chash.py, and send every key where HAProxy sends it; this one does not, and is kept for
its balance: shares within about 1% of the weights, where HAProxy's ring of 16 points per
unit of weight strays further when weights are small (the server furthest from its share,
measured over the ring: 11.5% off with 3 servers of weight 1, 23.6% with 5, 34% with 10;
7% with 5 of weight 10), with few keys moving when a server leaves.

Every node and every worker process must send a client to the same server, so nothing here
depends on local history, on the order of events, or on Python's `hash()` (salted per
process). The key hash is BLAKE2b with an 8-byte digest (RFC 7693, in `hashlib`): stable
across runs, versions and machines, well mixed, and about 0.5 µs per key in CPython.

The table is Maglev hashing (Eisenbud et al., "Maglev: A Fast and
Reliable Software Network Load Balancer", NSDI 2016, section 3.4), with weights. Every
server has its own permutation of the M table entries, derived from its name; the servers
take turns claiming their next preferred free entry, a server of weight w taking w turns
for every one of a server of weight 1, until the table is full. A key goes to entry
`hash % M`. Removing a server frees exactly its entries, and the others' permutations do
not change, so they mostly re-claim the entries they had: the keys of the removed server
move, and only a small fraction of the others' (over 20,000 random backends of 2 to 20
servers with weights up to 256: 0.7% on average, 2.5% at the 99th percentile, 10.3% at
worst; the tests assert 15%).

M must not change when a server goes down, or every permutation would change with it: it
is a prime from a fixed ladder, chosen from the number of configured servers (not the
eligible ones). The paper asks M >= 100 x servers for shares within about 1% of the
weights; poise takes M >= 200 x servers while that keeps M <= 16381 (backends of up to 81
servers), and M >= 100 x servers above that (65521 at most: beyond 655 servers the factor
drops below 100). A rebuild, measured in CPython 3.11 on the project's machines: 0.25 ms
for 5 servers, 0.45 ms for 10, 1.3 ms for 20 with equal weights (about twice that with
mixed weights), 8-11 ms for 100, 26-53 ms for 500.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence

from poise.core.balancer import eligible
from poise.core.server import ServerState

# Primes, roughly doubling (see the module docstring for the choice of M).
MAGLEV_SIZES = (1021, 2039, 4093, 8191, 16381, 32749, 65521)
MAGLEV_FACTOR = 200  # preferred entries per configured server...
MAGLEV_FACTOR_LARGE = 100  # ...and the paper's minimum, for large backends
MAGLEV_PREFERRED_MAX = 16381  # the largest table built only for the preferred factor
# Skips in a ratio of +-1, 2, 3 (or 1/2, 1/3) are kept apart (see maglev_permutations).
SKIP_RATIO_LIMIT = 3


def hash64(data: bytes) -> int:
    """The 64-bit hash of a key (BLAKE2b-64, big-endian): the same on every node."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def maglev_size(servers: int) -> int:
    """The Maglev table size for a backend of `servers` configured servers."""
    for size in MAGLEV_SIZES:
        if MAGLEV_FACTOR * servers <= size <= MAGLEV_PREFERRED_MAX:
            return size
    for size in MAGLEV_SIZES:
        if size >= MAGLEV_FACTOR_LARGE * servers:
            return size
    return MAGLEV_SIZES[-1]


def maglev_permutations(names: Iterable[str], size: int) -> dict[str, tuple[int, int]]:
    """Each server's Maglev permutation of a table of `size` entries, as (offset, skip):
    its j-th preference is entry (offset + j * skip) % size.

    Two servers whose skips are equal, opposite, or in a small ratio (2, 3 or their
    inverses, modulo the prime) walk the same cycle of entries and chase each other: with
    them, removing a third server moved up to 39% of the other keys in our measurements,
    against about 1% otherwise. So servers are taken in name order and a server whose skip
    is in such a ratio with an earlier one hashes again. Give it every configured server,
    not only the eligible ones: the permutations then stay the same when a server goes
    down or comes back.
    """
    result: dict[str, tuple[int, int]] = {}
    forbidden: set[int] = set()
    for name in sorted(set(names)):
        raw = name.encode()
        offset = hash64(b"maglev-offset\0" + raw) % size
        attempt = 0
        skip = hash64(b"maglev-skip\0" + raw) % (size - 1) + 1
        # Enforced while at most half the skips are forbidden (about 650 servers per 65521
        # entries), so that a new hash succeeds within two attempts on average and a huge
        # backend cannot exhaust the choice.
        while skip in forbidden and 2 * len(forbidden) < size:
            attempt += 1
            skip = hash64(b"maglev-skip\0%d\0" % attempt + raw) % (size - 1) + 1
        result[name] = (offset, skip)
        for k in range(1, SKIP_RATIO_LIMIT + 1):
            for value in (skip * k, skip * pow(k, -1, size)):
                forbidden.add(value % size)
                forbidden.add(-value % size)
    return result


def maglev_table(
    names: Sequence[str],
    weights: Sequence[int],
    size: int,
    permutations: dict[str, tuple[int, int]] | None = None,
) -> list[int]:
    """The Maglev lookup table: for each of `size` entries, an index into `names`.

    `size` must be a prime larger than len(names) so that every permutation visits every
    entry; `permutations` (from `maglev_permutations`) must cover `names`. Server i makes
    its k-th claim at virtual time k / w_i (ties by name): the order of one server's
    claims against another's depends on their two weights only, so a server leaving does
    not reorder the claims of the others. With equal weights this is the paper's
    round-robin population. The table depends only on its arguments.
    """
    count = len(names)
    if count == 0:
        return []
    if len(weights) != count or any(w <= 0 for w in weights):
        raise ValueError("every server in a Maglev table needs a positive weight")
    if permutations is None:
        permutations = maglev_permutations(names, size)
    position = [permutations[name][0] for name in names]
    skip = [permutations[name][1] for name in names]
    claims = claim_order(names, weights)
    table = [-1] * size
    for _ in range(size):
        i = next(claims)
        entry, step = position[i], skip[i]
        while table[entry] >= 0:
            entry += step
            if entry >= size:
                entry -= size
        table[entry] = i
        entry += step
        position[i] = entry - size if entry >= size else entry
    return table


def claim_order(names: Sequence[str], weights: Sequence[int]) -> Iterator[int]:
    """Which server claims next, forever: server i's k-th claim at virtual time k / w_i,
    ties by name. Equal weights (the common case) are plain rounds in name order, without
    the heap, which costs about half of a rebuild."""
    count = len(names)
    if len(set(weights)) == 1:
        yield from itertools.cycle(sorted(range(count), key=names.__getitem__))
    claims = [0] * count
    turns = [(1 / weights[i], names[i], i) for i in range(count)]
    heapq.heapify(turns)
    while True:
        _, name, i = turns[0]
        yield i
        claims[i] += 1
        heapq.heapreplace(turns, ((claims[i] + 1) / weights[i], name, i))


class MaglevTable:
    """The Maglev table over a backend's eligible servers (rebuilt by `update`)."""

    __slots__ = ("_configured", "_permutations", "servers", "table", "tot_used")

    def __init__(self, servers: Sequence[ServerState]) -> None:
        self.servers = servers
        self.table: list[ServerState] = []
        self.tot_used = 0
        self._permutations: dict[str, tuple[int, int]] = {}
        self._configured: tuple[str, ...] = ()

    def update(self, allbackups: bool) -> None:
        members = eligible(self.servers, allbackups)
        self.tot_used = len(members)
        # Size and permutations come from every configured server, so that they stay the
        # same when servers go down or come back (only membership changes).
        configured = tuple(s.name for s in self.servers)
        size = maglev_size(len(configured))
        if configured != self._configured:
            self._configured = configured
            self._permutations = maglev_permutations(configured, size)
        names = [s.name for s in members]
        weights = [s.weight for s in members]
        indices = maglev_table(names, weights, size, self._permutations)
        self.table = [members[i] for i in indices]

    def get(self, key: bytes, avoid: ServerState | None) -> ServerState | None:
        """The key's entry; with `avoid`, the next entry holding another server (the same
        on every node)."""
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
