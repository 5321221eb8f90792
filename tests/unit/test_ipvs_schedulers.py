"""IPVS's dh, fo and ovf schedulers (core/balancer/ipvs.py) against what Linux's
ip_vs_dh.c, ip_vs_fo.c and ip_vs_ovf.c choose, worked out by hand here."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.core.balancer.ipvs import DestinationHash, Overflow, WeightedFailover, dh_bucket
from poise.core.server import ServerState


def make_servers(weights: list[int]) -> list[ServerState]:
    address = model.Address("ipv4", "198.51.100.31", 8080)
    return [
        ServerState(model.Server(f"s{i + 1}", address, model.NOWHERE, i + 1, w), "vs")
        for i, w in enumerate(weights)
    ]


def test_the_bucket_of_an_address_is_ip_vs_dh_hashkey() -> None:
    # (ntohl(addr) * 2654435761) & 255: the low byte of the product, so for IPv4 only the
    # last octet counts: 0xAA * 0xB1 = 30090 = 117 * 256 + 138
    assert dh_bucket("198.51.100.170") == 138
    assert dh_bucket("10.0.0.170") == 138
    assert dh_bucket("198.51.100.171") == 59  # 171 * 177 = 30267 = 118 * 256 + 59
    assert dh_bucket("0.0.0.0") == 0
    # IPv6: the four 32-bit words folded by XOR: 0x20010db8 ^ 0x170 ends in 0xc8 (200),
    # 200 * 177 = 35400 = 138 * 256 + 72
    assert dh_bucket("2001:db8::170") == 72


def test_dh_sends_every_connection_to_one_address_to_one_real_server() -> None:
    servers = make_servers([1, 5, 1])
    balancer = DestinationHash(servers, "198.51.100.170")  # bucket 138: 138 mod 3 = 0
    assert {balancer.pick(bytes([i, 0, 0, 1])) for i in range(50)} == {servers[0]}
    other = DestinationHash(servers, "198.51.100.171")  # bucket 59: 59 mod 3 = 2
    assert other.pick() is servers[2]


def test_dh_deals_the_buckets_again_over_the_servers_left_in_the_pool() -> None:
    servers = make_servers([1, 1, 1])
    balancer = DestinationHash(servers, "198.51.100.171")
    assert balancer.pick() is servers[2]
    servers[0].up = False  # removed by its checker: 59 mod 2 = 1, the second of s2, s3
    balancer.update()
    assert balancer.pick() is servers[2]
    servers[1].up = False  # only s3 left
    balancer.update()
    assert balancer.pick() is servers[2]
    servers[2].up = False
    balancer.update()
    assert balancer.pick() is None


def test_dh_refuses_the_connection_when_its_server_has_weight_0() -> None:
    servers = make_servers([1, 1, 1])
    balancer = DestinationHash(servers, "198.51.100.170")
    servers[0].weight = 0  # inhibit_on_failure: still listed, so bucket 138 keeps it
    balancer.update()
    assert balancer.pick() is None
    assert balancer.pick_without_key() is None


def test_dh_after_a_refused_connection_takes_the_next_server() -> None:
    servers = make_servers([1, 1, 1])
    balancer = DestinationHash(servers, "198.51.100.170")
    assert balancer.pick(avoid=servers[0]) is servers[1]


def test_fo_takes_the_highest_weight_until_it_leaves() -> None:
    servers = make_servers([10, 30, 30, 20])
    balancer = WeightedFailover(servers)
    assert {balancer.pick() for _ in range(10)} == {servers[1]}  # the first of the two 30s
    servers[1].up = False
    balancer.update()
    assert balancer.pick() is servers[2]
    servers[2].weight = 0  # quiescent: listed, never chosen
    balancer.update()
    assert balancer.pick() is servers[3]
    assert balancer.pick(avoid=servers[3]) is servers[0]


def test_ovf_fills_the_highest_weight_then_overflows() -> None:
    servers = make_servers([2, 3])
    balancer = Overflow(servers)
    chosen = []
    for _ in range(7):
        server = balancer.pick()
        assert server is not None
        server.cur_sess += 1
        chosen.append(server.name)
    # s2 (weight 3) while its connections are not above 3 (0..3: four), then s1 (0..2:
    # three), then none: IPVS's `activeconns > weight` test
    assert chosen == ["s2"] * 4 + ["s1"] * 3
    assert balancer.pick() is None
    servers[1].cur_sess -= 1  # one closes: s2 again
    assert balancer.pick() is servers[1]


@given(
    weights=st.lists(st.integers(0, 300), min_size=1, max_size=8),
    up=st.lists(st.booleans(), min_size=8, max_size=8),
    last=st.integers(0, 255),
)
def test_dh_choice_is_the_bucket_s_server_whatever_the_client(
    weights: list[int], up: list[bool], last: int
) -> None:
    servers = make_servers(weights)
    for server, flag in zip(servers, up, strict=False):
        server.up = flag
    balancer = DestinationHash(servers, f"198.51.100.{last}")
    listed = [s for s in servers if s.up]
    expected = listed[(last * 177 % 256) % len(listed)] if listed else None
    if expected is not None and expected.weight == 0:
        expected = None
    assert balancer.pick(b"\x01\x02\x03\x04") is expected
