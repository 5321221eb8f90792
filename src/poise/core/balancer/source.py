"""The hashing balancers: `balance source|uri|url_param|hdr(NAME)|rdp-cookie`, which send
the same key to the same server on every node and worker, and to the server HAProxy 2.6
sends it to for the same configuration and server states.

The shell hands `pick` the key: the client address as 4 or 16 bytes for `source`, the part
of the request that core/http/hashkey.py takes for the others, the RDP cookie's value for
`rdp-cookie`. It is hashed as backend.c hashes it (hashfn.py: the address's words XORed,
or the `hash-type` function over the bytes, then `avalanche` when asked), and looked up in
HAProxy's map (`map-based`, lbmap.py) or ring (`consistent`, chash.py). When a single
server takes part, HAProxy does not hash and looks up 0 (except for `url_param`); so does
this. `hash-type maglev` is poise's own table (maglev.py) over its own key hash.

The balancer is deterministic: it keeps its choice even when that server is full (the
connection waits in that server's queue, as in HAProxy). A redispatch (`avoid`) changes
nothing with `map-based`, as in HAProxy; on the ring it walks on to the next server's
point. A request without a key is balanced round robin over the same map or ring, as
HAProxy does; with `maglev`, by poise's weighted round robin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from poise.config import model
from poise.config.model import Algorithm, HashType
from poise.core.balancer import Balancer
from poise.core.balancer.chash import Ring
from poise.core.balancer.hashfn import FUNCTIONS, address_hash, full_hash
from poise.core.balancer.lbmap import WeightMap
from poise.core.balancer.maglev import MaglevTable
from poise.core.balancer.roundrobin import RoundRobin
from poise.core.server import ServerState

SOURCE_BALANCE = model.Balance(Algorithm.SOURCE)


class HashBalancer(Balancer):
    deterministic: ClassVar[bool] = True

    def __init__(
        self,
        servers: Sequence[ServerState],
        allbackups: bool = False,
        balance: model.Balance = SOURCE_BALANCE,
    ) -> None:
        self.balance = balance
        self.function = FUNCTIONS[balance.hash_function]
        self.avalanche = balance.avalanche
        self.by_address = balance.algorithm is Algorithm.SOURCE
        # backend.c's get_server_ph alone hashes even with a single server left.
        self.hashes_single = balance.algorithm is Algorithm.URL_PARAM
        # get_server_hh looks up 0 for a single server before it looks for the header.
        self.single_without_key = balance.algorithm is Algorithm.HDR
        self.map: WeightMap | None = None
        self.ring: Ring | None = None
        self.maglev: MaglevTable | None = None
        self.fallback: RoundRobin | None = None
        self.lookup: WeightMap | Ring | MaglevTable
        if balance.hash_type is HashType.CONSISTENT:
            self.lookup = self.ring = Ring(servers)
        elif balance.hash_type is HashType.MAGLEV:
            self.lookup = self.maglev = MaglevTable(servers)
            self.fallback = RoundRobin(servers, allbackups)
        else:
            self.lookup = self.map = WeightMap(servers)
            self.dynamic_weights = False
        super().__init__(servers, allbackups)

    @property
    def hash_type(self) -> HashType:
        return self.balance.hash_type

    def update(self) -> None:
        self.lookup.update(self.allbackups)
        if self.fallback is not None:
            self.fallback.update()

    @property
    def tot_used(self) -> int:
        """How many servers take part now (HAProxy's tot_used)."""
        return self.lookup.tot_used

    def key_hash(self, key: bytes) -> int:
        """The 32-bit value HAProxy looks `key` up with."""
        if not self.hashes_single and self.tot_used == 1:
            return 0
        value = address_hash(key) if self.by_address else self.function(key)
        return full_hash(value) if self.avalanche else value

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        if self.maglev is not None:
            return self.maglev.get(key, avoid)
        if self.ring is not None:
            return self.ring.get(self.key_hash(key), avoid)
        assert self.map is not None
        return self.map.get(self.key_hash(key))

    def pick_without_key(self, avoid: ServerState | None = None) -> ServerState | None:
        """A request without a key: round robin over the map or the ring (HAProxy's
        map_get_server_rr and chash_get_next_server), skipping full servers. `hdr()`
        looks up 0 instead when a single server is left, as HAProxy checks that before
        looking for the header."""
        if self.single_without_key and self.maglev is None and self.tot_used == 1:
            return self.pick(b"", avoid)
        if self.fallback is not None:
            return self.fallback.pick(b"", avoid)
        if self.ring is not None:
            return self.ring.next_rr(avoid)
        assert self.map is not None
        return self.map.next_rr(avoid)
