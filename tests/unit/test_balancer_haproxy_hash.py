"""HAProxy's hashing, piece by piece: the hash functions and avalanche (hash.c, full_hash),
the source address hash, the map-based table (lb_map.c) and the consistent ring
(lb_chash.c), the single-server and keyless rules of backend.c, and the RDP cookie.

The pinned values were checked against a real haproxy 2.6 by tests/io/test_hash_haproxy.py,
which sends keys through haproxy and compares its choices with these balancers'.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.core.balancer.chash import WEIGHT_SCALE, server_points
from poise.core.balancer.hashfn import address_hash, crc32, djb2, full_hash, sdbm, wt6
from poise.core.balancer.lbmap import fill
from poise.core.balancer.source import HashBalancer
from poise.core.rdp_cookie import INCOMPLETE, NOT_FOUND, rdp_cookie
from poise.core.server import AdminState, ServerState

A = model.Algorithm
MAP = model.HashType.MAP_BASED
CONSISTENT = model.HashType.CONSISTENT


def make_servers(weights: list[int], backups: tuple[int, ...] = ()) -> list[ServerState]:
    address = model.Address("ipv4", "127.0.0.1", 8000)
    return [
        ServerState(model.Server(f"s{i + 1}", address, model.NOWHERE, i + 1, w, i in backups), "be")
        for i, w in enumerate(weights)
    ]


def balancer(
    servers: list[ServerState],
    hash_type: model.HashType,
    algorithm: model.Algorithm = A.URI,
    allbackups: bool = False,
    **settings: object,
) -> HashBalancer:
    balance = model.Balance(algorithm, hash_type=hash_type, **settings)  # type: ignore[arg-type]
    return HashBalancer(servers, allbackups, balance)


# -- the hash functions ----------------------------------------------------------------------


def test_the_hash_functions_give_haproxys_values() -> None:
    keys = (b"", b"/", b"/index.html", b"haproxy")
    assert [sdbm(k) for k in keys] == [0, 0x2F, 0x33242976, 0x0ED519B5]
    assert [djb2(k) for k in keys] == [5381, 0x2B5D4, 0xE114B9CF, 0x33D7D490]
    assert [wt6(k) for k in keys] == [0xF99A0360, 0x7073CEA5, 0x3101077E, 0x80713D93]
    assert [crc32(k) for k in keys] == [0, 0x79D3D2D4, 0xEA224B42, 0x53CD3FA0]
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_avalanche_is_haproxys_full_hash() -> None:
    assert [full_hash(x) for x in (0, 1, 4096, 0xFFFFFFFF)] == [
        0xAB4ED927,
        0x348681B6,
        0x49C2008B,
        0x7E64C182,
    ]


def test_full_hash_is_a_bijection_on_a_sample() -> None:
    rng = random.Random(22)
    sample = {rng.getrandbits(32) for _ in range(50_000)}
    assert len({full_hash(x) for x in sample}) == len(sample)


def test_the_source_hash_xors_the_addresses_words() -> None:
    assert address_hash(bytes([192, 0, 2, 1])) == 0xC0000201
    assert address_hash(bytes.fromhex("20010db8000000000000000000000001")) == 0x20010DB9


# -- map-based ---------------------------------------------------------------------------------


def test_the_map_is_filled_in_haproxys_order() -> None:
    """recalc_server_map by hand for weights 1, 2, 3: each round every server adds its
    weight, the first with the highest (score + 6) // 6 takes the entry and pays 6."""
    a, b, c = servers = make_servers([1, 2, 3])
    assert fill(servers, [1, 2, 3], 6) == [a, c, b, c, b, c]
    lb = balancer(servers, MAP)
    assert lb.map is not None and lb.map.table == [a, c, b, c, b, c]
    # A key goes to entry hash % 6: sdbm("/") = 47 -> entry 5.
    assert lb.pick(b"/") is c


def test_the_map_divides_the_weights_by_their_gcd() -> None:
    servers = make_servers([5, 10, 15, 20])
    lb = balancer(servers, MAP)
    assert lb.map is not None and len(lb.map.table) == 10


def test_a_single_server_left_is_looked_up_without_hashing() -> None:
    """backend.c hashes nothing when one server is left: entry 0, which without
    `allbackups` may be another backup than the first (HAProxy fills the first backup's
    entries from every usable backup: here weights 2 and 5 give [s3, s3])."""
    servers = make_servers([1, 2, 5], backups=(1, 2))
    servers[0].admin = AdminState.MAINT
    lb = balancer(servers, MAP, A.SOURCE)
    assert lb.map is not None and lb.map.table == [servers[2], servers[2]]
    assert lb.tot_used == 1 and lb.key_hash(b"\x0a\x00\x00\x01") == 0
    assert lb.pick(b"\x0a\x00\x00\x01") is servers[2]
    # Backups of weights 4 and 5: [s2, s3, s2, s3]; url_param hashes anyway: entry hash % 4.
    servers[1].initial_weight = servers[1].weight = 4
    servers[2].initial_weight = servers[2].weight = 5
    param = balancer(servers, MAP, A.URL_PARAM, argument="id")
    assert param.map is not None and param.map.table == [servers[1], servers[2]] * 2
    assert param.pick(b"/") is param.map.table[sdbm(b"/") % 4]


# -- consistent --------------------------------------------------------------------------------


def test_each_server_has_16_points_per_unit_of_weight_at_full_hash_of_its_id() -> None:
    assert WEIGHT_SCALE == 16
    assert server_points(1, 2) == [full_hash(4096), full_hash(4097)]
    servers = make_servers([1, 3, 0])
    lb = balancer(servers, CONSISTENT)
    assert lb.ring is not None
    assert Counter(lb.ring.owners) == {servers[0]: 16, servers[1]: 48}
    assert lb.ring.keys == sorted(server_points(1, 16) + server_points(2, 48))


def test_a_key_goes_to_the_nearest_point_and_a_tie_to_the_one_before() -> None:
    a, b = servers = make_servers([1, 1])
    lb = balancer(servers, CONSISTENT, avalanche=False)
    assert lb.ring is not None
    keys, owners = lb.ring.keys, lb.ring.owners
    i = next(i for i in range(1, len(keys)) if owners[i] is not owners[i - 1])
    low, high = keys[i - 1], keys[i]
    middle = low + (high - low) // 2  # as near to both, or nearer to the one before
    assert lb.ring.get(middle, None) is owners[i - 1]
    assert lb.ring.get(middle + 1, None) is owners[i]
    assert lb.ring.get(low, None) is owners[i - 1]
    # Past the last point the ring wraps around.
    assert lb.ring.get(0xFFFFFFFF, None) in (owners[0], owners[-1])
    assert {lb.ring.get(k, a) for k in keys} == {b}  # avoid: walk on to another server


@given(seed=st.integers(0, 2**32), gone=st.integers(0, 4))
def test_on_the_ring_only_the_departed_servers_keys_move(seed: int, gone: int) -> None:
    servers = make_servers([1, 2, 3, 10, 5])
    lb = balancer(servers, CONSISTENT, avalanche=True)
    rng = random.Random(seed)
    keys = [rng.randbytes(8) for _ in range(300)]
    before = [lb.pick(k) for k in keys]
    servers[gone].admin = AdminState.MAINT
    lb.update()
    for key, was in zip(keys, before, strict=True):
        if was is not servers[gone]:
            assert lb.pick(key) is was


def test_backups_take_over_when_no_active_server_is_left() -> None:
    servers = make_servers([1, 1, 2, 3], backups=(2, 3))
    for hash_type in (MAP, CONSISTENT):
        servers[0].admin = servers[1].admin = AdminState.MAINT
        lb = balancer(servers, hash_type, avalanche=True)
        if hash_type is CONSISTENT:  # the first usable backup alone
            assert {lb.pick(bytes([i])) for i in range(100)} == {servers[2]}
        both = balancer(servers, hash_type, allbackups=True, avalanche=True)
        assert {both.pick(bytes([i])) for i in range(200)} == {servers[2], servers[3]}
        servers[0].admin = servers[1].admin = AdminState.READY


@pytest.mark.parametrize("hash_type", [MAP, CONSISTENT])
def test_without_a_key_the_table_is_walked_round_robin(hash_type: model.HashType) -> None:
    servers = make_servers([1, 2, 3])
    lb = balancer(servers, hash_type, A.URL_PARAM, argument="id")
    lap = 6 if hash_type is MAP else 96
    names = [lb.pick_without_key() for _ in range(lap)]
    assert Counter(names) == {s: s.weight * lap // 6 for s in servers}
    # A full server is passed over.
    servers[2].maxconn, servers[2].cur_sess = 1, 1
    assert servers[2] not in {lb.pick_without_key() for _ in range(lap)}


def test_hdr_without_the_header_and_one_server_left_looks_up_zero() -> None:
    servers = make_servers([1, 1])
    servers[1].admin = AdminState.MAINT
    lb = balancer(servers, CONSISTENT, A.HDR, argument="x-user")
    assert lb.pick_without_key() is servers[0]


# -- the RDP cookie ----------------------------------------------------------------------------

X224 = b"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00"  # TPKT and X.224 headers: 11 bytes


def test_the_rdp_cookie_is_read_after_the_x224_header() -> None:
    packet = X224 + b"Cookie: mstshash=alice\r\n\x01\x00\x08\x00"
    assert rdp_cookie(packet, "mstshash") == b"alice"
    assert rdp_cookie(packet, "MSTSHASH") == b"alice"  # names compare without case
    assert rdp_cookie(packet, None) == b"alice"  # any name
    assert rdp_cookie(packet, "msts") is NOT_FOUND
    assert rdp_cookie(X224 + b"COOKIE:   mstshash=bob\r\n", "mstshash") == b"bob"
    assert rdp_cookie(X224 + b"Cookie: mstshash=\r\n", "mstshash") == b""


def test_a_short_packet_may_still_carry_the_cookie() -> None:
    packet = X224 + b"Cookie: mstshash=alice\r\n"
    for size in range(len(packet)):
        assert rdp_cookie(packet[:size], "mstshash") is INCOMPLETE
    assert rdp_cookie(X224 + b"Cookie: mstshash=alice\rx", "mstshash") is NOT_FOUND
    assert rdp_cookie(X224 + b"Hello: mstshash=alice\r\n", "mstshash") is NOT_FOUND
    assert rdp_cookie(X224 + b"Cookie: no-equals\r\n", None) is NOT_FOUND
