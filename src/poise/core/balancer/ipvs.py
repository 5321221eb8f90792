"""IPVS's schedulers that have no HAProxy counterpart, for keepalived.conf's virtual
servers (`lb_algo dh|fo|ovf`), choosing as Linux's ip_vs_dh.c, ip_vs_fo.c and ip_vs_ovf.c
choose. Their list of destinations is the real servers in the pool (`up`: a real server a
checker removed is not in it; one kept with weight 0 by `inhibit_on_failure` is, as IPVS
keeps a quiescent destination), in the configuration's order; IPVS's list is in the order
the destinations were added, which is the same until a removed real server comes back (it
then goes to the end of IPVS's list, and stays in its place here).

- `dh`, destination hashing: 256 buckets dealt to the destinations in turn (bucket i to
  destination i mod n, weights play no part), a connection to the bucket of its
  destination address (`(addr * 2654435761) mod 256`, an IPv6 address folded to 32 bits by
  XOR of its four words). A virtual server listens on one address, so all its connections
  go to one real server: the one that address hashes to. When that real server has weight
  0 the connection is refused ("no destination available"), as IPVS drops it.
- `fo`, weighted failover: the destination with the highest weight (above 0) takes every
  new connection; the first listed among equals.
- `ovf`, overflow: the destination with the highest weight whose active connections are not
  above its weight takes the connection; when it has more, the next by weight does (poise
  counts the connections open or being opened to it; IPVS the established ones).

When none is chosen the connection is refused at once (IPVS answers the client's SYN with
ICMP port unreachable), never queued. A connection a real server refused (`avoid`) goes to
the next choice, as every poise
virtual server retries once on another real server where IPVS would let it fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address

from poise.core.balancer import Balancer
from poise.core.server import ServerState

DH_BUCKETS = 256  # IP_VS_DH_TAB_SIZE (CONFIG_IP_VS_DH_TAB_BITS 8)
GOLDEN = 2654435761  # the multiplier of ip_vs_dh_hashkey


def dh_bucket(destination: str) -> int:
    """ip_vs_dh_hashkey: the bucket of a destination address."""
    packed = ip_address(destination).packed
    fold = 0
    for i in range(0, len(packed), 4):
        fold ^= int.from_bytes(packed[i : i + 4], "big")
    return (fold * GOLDEN) % DH_BUCKETS


def _destinations(servers: Sequence[ServerState]) -> list[ServerState]:
    """The IPVS service's list: the servers in the pool, weight 0 included."""
    return [s for s in servers if s.up and not s.in_maint]


class DestinationHash(Balancer):
    deterministic = True
    refuses_unchosen = True

    def __init__(self, servers: Sequence[ServerState], destination: str) -> None:
        self.bucket = dh_bucket(destination)
        self._list: list[ServerState] = []
        super().__init__(servers, False)

    def update(self) -> None:
        self._list = _destinations(self.servers)

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        found = self._list
        if not found:
            return None
        start = self.bucket % len(found)
        server = found[start]
        if server is not avoid:
            return server if server.weight > 0 else None
        for i in range(1, len(found)):  # the refused one's next in the list
            other = found[(start + i) % len(found)]
            if other.weight > 0:
                return other
        return None


class WeightedFailover(Balancer):
    refuses_unchosen = True
    _list: list[ServerState]

    def update(self) -> None:
        self._list = _destinations(self.servers)

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        best: ServerState | None = None
        for server in self._list:
            if server is avoid or server.weight <= 0:
                continue
            if best is None or server.weight > best.weight:
                best = server
        return best


class Overflow(Balancer):
    refuses_unchosen = True
    _list: list[ServerState]

    def update(self) -> None:
        self._list = _destinations(self.servers)

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        best: ServerState | None = None
        for server in self._list:
            weight = server.weight
            if server is avoid or weight <= 0 or server.cur_sess > weight:
                continue
            if best is None or weight > best.weight:
                best = server
        return best
