"""The VRRP codec: round trips, checksums (with the v3 pseudo-header), and every malformed
message refused with its reason."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.vrrp.packet import (
    AUTH_NONE,
    AUTH_PASS,
    Advert,
    PacketError,
    checksum,
    decode,
    encode,
    garp_frame,
    parse_garp,
    parse_ipv4,
)

SRC = IPv4Address("198.51.100.11")
GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("198.51.100.170")

addresses = st.lists(st.builds(IPv4Address, st.integers(0, 2**32 - 1)), max_size=20).map(tuple)


@st.composite
def adverts(draw: st.DrawFn) -> Advert:
    version = draw(st.sampled_from([2, 3]))
    interval = draw(st.integers(1, 255)) * 100 if version == 2 else draw(st.integers(1, 4095))
    auth = draw(st.sampled_from([AUTH_NONE, AUTH_PASS])) if version == 2 else AUTH_NONE
    data = draw(st.binary(min_size=8, max_size=8)) if version == 2 else b""
    return Advert(
        version,
        draw(st.integers(1, 255)),
        draw(st.integers(0, 255)),
        interval,
        draw(addresses),
        auth,
        data,
    )


@given(adverts(), st.builds(IPv4Address, st.integers(0, 2**32 - 1)))
def test_every_advert_survives_a_round_trip(advert: Advert, destination: IPv4Address) -> None:
    assert decode(encode(advert, SRC, destination), SRC, destination) == advert


@given(adverts(), st.data())
def test_any_single_bit_flip_is_caught_or_changes_nothing(
    advert: Advert, data: st.DataObject
) -> None:
    wire = bytearray(encode(advert, SRC, GROUP))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = decode(bytes(wire), SRC, GROUP)
    except PacketError:
        return
    # The only bits the checksum does not cover in v3 are the 4 reserved ones.
    assert advert.version == 3 and bit // 8 == 4 and bit % 8 >= 4
    assert decoded == advert


def test_a_v2_advert_as_keepalived_sends_it() -> None:
    advert = Advert(2, 51, 101, 100, (VIP,), AUTH_PASS, b"1111\0\0\0\0")
    wire = encode(advert, SRC, GROUP)
    assert wire.hex() == "213365010101" + wire[6:8].hex() + "c63364aa" + b"1111".hex() + "00" * 4
    assert checksum(wire) == 0  # the v2 checksum covers the message only


def test_the_v3_checksum_covers_the_pseudo_header() -> None:
    advert = Advert(3, 51, 100, 10, (VIP,))
    wire = encode(advert, SRC, GROUP)
    assert wire[:6].hex() == "3133640 1000a".replace(" ", "")
    pseudo = SRC.packed + GROUP.packed + struct.pack("!BBH", 0, 112, len(wire))
    assert checksum(pseudo + wire) == 0
    with pytest.raises(PacketError, match="bad VRRPv3 checksum"):
        decode(wire, SRC, IPv4Address("198.51.100.12"))  # sent to another destination


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x21\x33\x65", "shorter than a VRRP header"),
        (bytes.fromhex("41336500 0101 0000") + b"\0" * 8, "unknown VRRP version 4"),
        (bytes.fromhex("22336500 0101 0000") + b"\0" * 8, "packet type 2 is not an advertisement"),
        (bytes.fromhex("21336501 0101 0000") + b"\0" * 8, "8 addresses|expects 20"),
    ],
)
def test_malformed_messages_are_refused(wire: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        decode(wire, SRC, GROUP)


def test_a_v2_checksum_error_is_refused() -> None:
    wire = bytearray(encode(Advert(2, 1, 100, 100, ()), SRC, GROUP))
    wire[6] ^= 0xFF
    with pytest.raises(PacketError, match="bad VRRPv2 checksum"):
        decode(bytes(wire), SRC, GROUP)


def test_encoding_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="whole seconds"):
        encode(Advert(2, 1, 100, 50, ()), SRC, GROUP)
    with pytest.raises(ValueError, match="out of range"):
        encode(Advert(3, 1, 100, 4096, ()), SRC, GROUP)
    with pytest.raises(ValueError, match="VRID"):
        encode(Advert(3, 0, 100, 100, ()), SRC, GROUP)


def ip_datagram(payload: bytes, ttl: int = 255, total: int | None = None) -> bytes:
    length = 20 + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, length, 0, 0, ttl, 112, 0, SRC.packed, GROUP.packed
    )
    return header + payload


def test_the_ip_header_of_a_received_datagram() -> None:
    payload = encode(Advert(3, 5, 100, 100, ()), SRC, GROUP)
    header = parse_ipv4(ip_datagram(payload, ttl=254))
    assert (header.source, header.destination, header.ttl, header.protocol) == (
        SRC,
        GROUP,
        254,
        112,
    )
    assert header.payload == payload
    with pytest.raises(PacketError, match="total length"):
        parse_ipv4(ip_datagram(payload, total=99))
    with pytest.raises(PacketError, match="shorter than an IPv4 header"):
        parse_ipv4(b"\x45\0")


def test_gratuitous_arp_announces_the_address_from_our_mac() -> None:
    mac = bytes.fromhex("02fc00000001")
    frame = garp_frame(mac, VIP)
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    assert frame[14:22] == bytes.fromhex("0001 0800 06 04 0001".replace(" ", ""))
    assert parse_garp(frame) == (mac, VIP)
