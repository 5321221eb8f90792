"""VRRP over IPv6 and no_accept, the pure half: the codec with the IPv6 pseudo-header
(checked against bytes Keepalived 2.2.7 sent), the unsolicited neighbour advertisement, and how
keepalived.conf makes an instance IPv6 (its addresses, `native_ipv6`), with Keepalived's
verdicts on mixed families (each one run through keepalived 2.2.7 first), and the
no_accept set elements."""

from __future__ import annotations

import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, IPv6Interface

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.diagnostics import Diagnostic
from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig
from poise.vrrp.events import AdvertReceived
from poise.vrrp.firewall import _element, needed
from poise.vrrp.fsm import Instance, Params
from poise.vrrp.packet import (
    NA_FLAG_OVERRIDE,
    NA_FLAG_ROUTER,
    Advert,
    PacketError,
    decode,
    encode,
    neighbour_advert,
    parse_neighbour_advert,
)
from tests.unit.keepalived_support import FakeSource, errors, warnings
from tests.unit.test_vrrp_fsm import FakeClock

LINK_LOCAL = IPv6Address("fe80::b8ba:e8ff:fe36:c9b5")
GROUP6 = IPv6Address("ff02::12")
VIPS = tuple(IPv6Address(f"2001:db8::{n}") for n in (170, 171, 172))
# What Keepalived 2.2.7 sent with `vrrp_version 2` and these three addresses (captured on
# a veth in a namespace): VRRPv2 over IPv6, no authentication data, the checksum 0x2164
# computed over the IPv6 pseudo-header.
KEEPALIVED_V2_OVER_IPV6 = struct.pack("!BBBBBBH", 0x21, 51, 200, 3, 0, 1, 0x2164) + b"".join(
    v.packed for v in VIPS
)

addresses6 = st.lists(st.builds(IPv6Address, st.integers(0, 2**128 - 1)), max_size=12).map(tuple)


def test_keepalived_v2_over_ipv6_advert_decodes_and_encodes_byte_for_byte() -> None:
    advert = decode(KEEPALIVED_V2_OVER_IPV6, LINK_LOCAL, GROUP6)
    assert advert == Advert(2, 51, 200, 100, VIPS)
    assert encode(advert, LINK_LOCAL, GROUP6) == KEEPALIVED_V2_OVER_IPV6


def test_the_ipv6_checksum_covers_the_pseudo_header() -> None:
    other = IPv6Address("fe80::1")
    with pytest.raises(PacketError, match="checksum"):
        decode(KEEPALIVED_V2_OVER_IPV6, other, GROUP6)
    v3 = encode(Advert(3, 51, 100, 10, VIPS), LINK_LOCAL, GROUP6)
    assert decode(v3, LINK_LOCAL, GROUP6).interval == 10
    with pytest.raises(PacketError, match="bad VRRPv3 checksum"):
        decode(v3, LINK_LOCAL, IPv6Address("ff02::1"))


@given(st.sampled_from([2, 3]), st.integers(1, 255), st.integers(0, 255), addresses6, st.data())
def test_every_ipv6_advert_survives_a_round_trip(
    version: int, vrid: int, priority: int, vips: tuple[IPv6Address, ...], data: st.DataObject
) -> None:
    interval = (
        data.draw(st.integers(1, 255)) * 100 if version == 2 else data.draw(st.integers(1, 4095))
    )
    advert = Advert(version, vrid, priority, interval, vips)
    wire = encode(advert, LINK_LOCAL, GROUP6)
    assert len(wire) == 8 + 16 * len(vips)
    assert decode(wire, LINK_LOCAL, GROUP6) == advert
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    flipped = bytearray(wire)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(PacketError):
        decode(bytes(flipped), LINK_LOCAL, GROUP6)


def test_an_ipv4_length_is_refused_over_ipv6_and_families_do_not_mix() -> None:
    v4 = encode(
        Advert(3, 51, 100, 100, (IPv4Address("198.51.100.170"),)),
        IPv4Address("198.51.100.11"),
        IPv4Address("224.0.0.18"),
    )
    with pytest.raises(PacketError, match="expects"):
        decode(v4, LINK_LOCAL, GROUP6)
    with pytest.raises(ValueError, match="family"):
        encode(Advert(3, 51, 100, 100, (IPv4Address("198.51.100.170"),)), LINK_LOCAL, GROUP6)


def test_unsolicited_neighbour_advert_is_keepalived_s() -> None:
    # Keepalived 2.2.7 sent: 88 00 cksum 20000000 TARGET 02 01 MAC (Override only).
    mac = bytes.fromhex("babae836c9b5")
    message = neighbour_advert(mac, VIPS[0])
    assert message == (
        bytes([136, 0, 0, 0]) + bytes.fromhex("20000000") + VIPS[0].packed + b"\x02\x01" + mac
    )
    assert parse_neighbour_advert(message) == (VIPS[0], mac, NA_FLAG_OVERRIDE)
    routed = neighbour_advert(mac, VIPS[0], router=True)
    assert parse_neighbour_advert(routed) == (VIPS[0], mac, NA_FLAG_OVERRIDE | NA_FLAG_ROUTER)
    assert parse_neighbour_advert(b"\x87" + bytes(30)) is None


def load(body: str, globals_: str = "") -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    text = (
        f"global_defs {{\n{globals_}}}\n"
        f"vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n{body}}}\n"
    )
    return parse("/k.conf", FakeSource({"/k.conf": text}))


def test_ipv6_addresses_make_an_ipv6_instance() -> None:
    config, diagnostics = load(
        " virtual_ipaddress {\n  fe80::170/64\n  2001:db8::170/64 -nodad\n  2001:db8::171\n }\n"
    )
    assert config is not None, diagnostics
    (instance,) = config.instances
    assert instance.family == 6
    first, second, third = instance.virtual_ipaddress
    assert (first.dad, second.dad) == (False, True)
    assert third.interface == IPv6Interface("2001:db8::171/128") and not third.prefix_given
    assert config.global_defs.mcast_group(6) == GROUP6
    assert not warnings(diagnostics)


def test_keepalived_s_verdicts_on_mixed_families() -> None:
    # keepalived -t: "(VI_1): address family must match VRRP instance [198.51.100.170/24]
    # - ignoring", and at start "(V6) the first IPv6 VIP address should be link local".
    config, diagnostics = load(
        " virtual_ipaddress {\n  2001:db8::170/64\n  198.51.100.170/24\n }\n"
    )
    assert config is not None
    assert [v.ip for v in config.instances[0].virtual_ipaddress] == [IPv6Address("2001:db8::170")]
    texts = [d.message for d in warnings(diagnostics)]
    assert "(VI_1): address family must match VRRP instance [198.51.100.170/24] - ignoring" in texts
    assert "(VI_1) the first IPv6 VIP address should be link local" in texts
    # native_ipv6 makes the instance IPv6 whatever its addresses are: with only IPv4 ones
    # it has none left, which Keepalived 2.2.7 refuses for IPv6 (keepalived -t exits 5)
    config, diagnostics = load(
        " native_ipv6\n virtual_ipaddress {\n  198.51.100.171/24\n  fe80::171\n }\n"
    )
    assert config is not None and config.instances[0].family == 6
    assert [str(v.ip) for v in config.instances[0].virtual_ipaddress] == ["fe80::171"]
    config, diagnostics = load(" native_ipv6\n virtual_ipaddress {\n  198.51.100.171/24\n }\n")
    assert config is None
    assert "(VI_1) No VIP specified; at least one is required" in errors(diagnostics)[0].message
    # "VRRP instance[VI_3] and unicast peer address[198.51.100.1] MUST be of the same family"
    config, diagnostics = load(
        " virtual_ipaddress {\n  2001:db8::170/64\n }\n unicast_peer {\n  198.51.100.1\n }\n"
    )
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.where.line == 10 and "MUST be of the same family" in problem.message


def test_excluded_addresses_take_either_family_and_are_not_advertised() -> None:
    config, diagnostics = load(
        " virtual_ipaddress {\n  198.51.100.170/24\n }\n"
        " virtual_ipaddress_excluded {\n  2001:db8::104/64\n  198.51.100.174\n }\n"
    )
    assert config is not None, diagnostics
    (instance,) = config.instances
    assert instance.family == 4 and len(instance.virtual_ipaddress) == 1
    assert [str(v.ip) for v in instance.virtual_ipaddress_excluded] == [
        "2001:db8::104",
        "198.51.100.174",
    ]


def test_vrrp_mcast_group6() -> None:
    config, _ = load(
        " virtual_ipaddress {\n  2001:db8::170/64\n }\n", " vrrp_mcast_group6 ff02::1:12\n"
    )
    assert config is not None and config.global_defs.mcast_group(6) == IPv6Address("ff02::1:12")
    config, diagnostics = load(
        " virtual_ipaddress {\n  2001:db8::170/64\n }\n", " vrrp_mcast_group6 2001:db8::1\n"
    )
    assert config is None and "not an IPv6 multicast address" in errors(diagnostics)[0].message


def test_ipv6_instances_use_version_3_unless_the_instance_says_2() -> None:
    body = " virtual_ipaddress {\n  2001:db8::170/64\n }\n"
    config, _ = load(body, " vrrp_version 2\n")
    assert config is not None and config.instances[0].version == 3
    config, _ = load(" version 2\n" + body, " vrrp_version 3\n")
    assert config is not None and config.instances[0].version == 2  # as Keepalived sends
    # below the addresses (or native_ipv6), Keepalived ignores it: "(A) vrrp_version 2
    # conflicts with configured or deduced version 0; ignoring." (poise says 3)
    for text in (body + " version 2\n", " native_ipv6\n version 2\n" + body):
        config, diagnostics = load(text)
        assert config is not None and config.instances[0].version == 3
        assert any("vrrp_version 2 conflicts" in w.message for w in warnings(diagnostics))
    config, diagnostics = load(
        " version 2\n authentication {\n  auth_type PASS\n  auth_pass secret\n }\n" + body
    )
    assert config is None and "not implemented yet" in errors(diagnostics)[0].message


def test_no_accept_clears_accept_mode_and_the_owner_keeps_it() -> None:
    body = " virtual_ipaddress {\n  198.51.100.170/24\n }\n"
    config, diagnostics = load(" no_accept\n" + body)
    assert config is not None and not config.instances[0].accept, diagnostics
    assert needed(config)
    config, _ = load(" no_accept\n priority 255\n" + body)
    assert config is not None and not needed(config)  # the owner accepts (RFC 5798 6.1)
    config, _ = load(" no_accept\n accept\n" + body)
    assert config is not None and config.instances[0].accept and not needed(config)


def test_no_accept_elements_are_keepalived_s() -> None:
    assert _element(IPv4Address("198.51.100.170"), "eth0") == ("ip", "vips", "198.51.100.170")
    assert _element(VIPS[0], "eth0") == ("ip6", "vips", "2001:db8::170")
    link = IPv6Address("fe80::61")
    assert _element(link, "eth0") == ("ip6", "vips-link-local", 'fe80::61 . "eth0"')


def test_hop_limit_is_checked_except_on_unicast_ipv6_as_keepalived() -> None:
    peer = IPv6Address("2001:db8::12")
    base = Params(
        name="VI_6",
        vrid=61,
        version=3,
        priority=100,
        interval=10,
        addresses=VIPS[:1],
        address=IPv6Address("2001:db8::11"),
    )
    heard = Advert(3, 61, 150, 10, VIPS[:1])
    multicast = Instance(replace(base, multicast_group=GROUP6), FakeClock())
    assert multicast.check(AdvertReceived(heard, LINK_LOCAL, GROUP6, 64)) == "TTL 64, expected 255"
    assert multicast.check(AdvertReceived(heard, LINK_LOCAL, GROUP6, 255)) is None
    unicast = Instance(replace(base, unicast_peers=(peer,)), FakeClock())
    # Keepalived 2.2.7 sends unicast IPv6 adverts with hop limit 64
    assert unicast.check(AdvertReceived(heard, peer, base.address, 64)) is None


def test_use_vmac_on_an_ipv6_instance_carries_the_ipv6_virtual_mac() -> None:
    # RFC 5798 section 7.3: 00-00-5E-00-02-{VRID} for IPv6 (Keepalived's vrrp.61 has it)
    config, diagnostics = load(" use_vmac\n virtual_ipaddress {\n  2001:db8::170/64\n }\n")
    assert config is not None and not errors(diagnostics)
    (instance,) = config.instances
    assert instance.family == 6 and instance.use_vmac == f"vrrp.{instance.virtual_router_id}"
    assert instance.virtual_mac == bytes((0, 0, 0x5E, 0, 2, instance.virtual_router_id))
