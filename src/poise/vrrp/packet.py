"""VRRP advertisements on the wire, for IPv4: bytes in, an Advert out, and back. Pure.

VRRPv2 (RFC 3768 section 5.1, with the simple password of RFC 2338 that Keepalived still
speaks) and VRRPv3 (RFC 5798 section 5.1):

     0                   1                   2                   3
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    v2: | Auth Type | Adver Int (s) |   Checksum    |
    v3: |(rsvd)| Max Adver Int (centiseconds, 12 bits) |  Checksum  |
    |                     IPvX Address(es)                          |
    v2: |                 Authentication Data (8 bytes)             |

The v2 checksum covers the VRRP message; the v3 one also covers the IPv4 pseudo-header
(source, destination, zero, protocol 112, VRRP length) as TCP's does (RFC 5798 5.2.8).
Intervals are kept in centiseconds for both versions (v2's whole seconds times 100), so
the state machine has one unit.

Also the IPv4 header of a received datagram (a raw socket hands it over whole) and the
gratuitous ARP frame that announces a virtual address (RFC 5227 section 3, an ARP request
whose sender and target addresses are both the announced one, broadcast).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

PROTOCOL = 112  # IANA: VRRP
TTL = 255  # RFC 5798 5.1.1.3: sent with 255, and anything else is discarded
TYPE_ADVERTISEMENT = 1
AUTH_NONE = 0
AUTH_PASS = 1  # RFC 2338 5.3.6.1: simple text password, 8 bytes
AUTH_AH = 2
AUTH_LEN = 8
HEADER_LEN = 8
MAX_ADDRESSES = 255
V3_MAX_INTERVAL = 0x0FFF  # 12 bits of centiseconds
ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6


class PacketError(ValueError):
    """A datagram that is not a well-formed advertisement; the message says why."""


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement. `interval` is in centiseconds (v2: seconds x 100)."""

    version: int
    vrid: int
    priority: int
    interval: int
    addresses: tuple[IPv4Address, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""


@dataclass(frozen=True, slots=True)
class IPv4Header:
    source: IPv4Address
    destination: IPv4Address
    ttl: int
    protocol: int
    payload: bytes


def checksum(data: bytes, initial: int = 0) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = initial + _sum16(data)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(source: IPv4Address, destination: IPv4Address, length: int) -> bytes:
    return source.packed + destination.packed + struct.pack("!BBH", 0, PROTOCOL, length)


def encode(advert: Advert, source: IPv4Address, destination: IPv4Address) -> bytes:
    """The VRRP message (the IP payload), checksum included. `source` and `destination`
    are those of the IP header, which the v3 checksum covers."""
    if not 1 <= advert.vrid <= 255 or not 0 <= advert.priority <= 255:
        raise ValueError(f"bad VRID {advert.vrid} or priority {advert.priority}")
    if len(advert.addresses) > MAX_ADDRESSES:
        raise ValueError("more than 255 addresses")
    addresses = b"".join(a.packed for a in advert.addresses)
    count = len(advert.addresses)
    first = (advert.version << 4) | TYPE_ADVERTISEMENT
    if advert.version == 2:
        seconds = advert.interval // 100
        if not 1 <= seconds <= 255 or advert.interval % 100:
            raise ValueError(f"VRRPv2 interval {advert.interval}cs is not 1-255 whole seconds")
        auth = advert.auth_data[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
        head = struct.pack(
            "!BBBBBB", first, advert.vrid, advert.priority, count, advert.auth_type, seconds
        )
        body = head + b"\0\0" + addresses + auth
        return body[:6] + struct.pack("!H", checksum(body)) + body[8:]
    if advert.version == 3:
        if not 1 <= advert.interval <= V3_MAX_INTERVAL:
            raise ValueError(f"VRRPv3 interval {advert.interval}cs is out of range")
        head = struct.pack("!BBBBH", first, advert.vrid, advert.priority, count, advert.interval)
        body = head + b"\0\0" + addresses
        initial = _sum16(_pseudo_header(source, destination, len(body)))
        return body[:6] + struct.pack("!H", checksum(body, initial)) + body[8:]
    raise ValueError(f"unknown VRRP version {advert.version}")


def _sum16(data: bytes) -> int:
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    return sum(words)


def decode(data: bytes, source: IPv4Address, destination: IPv4Address) -> Advert:
    """Parse and verify a VRRP message (raises PacketError): version 2 or 3, type
    advertisement, a length that matches the address count, a valid checksum."""
    if len(data) < HEADER_LEN:
        raise PacketError(f"{len(data)} bytes: shorter than a VRRP header")
    first, vrid, priority, count = data[0], data[1], data[2], data[3]
    version, kind = first >> 4, first & 0x0F
    if version not in (2, 3):
        raise PacketError(f"unknown VRRP version {version}")
    if kind != TYPE_ADVERTISEMENT:
        raise PacketError(f"packet type {kind} is not an advertisement")
    expected = HEADER_LEN + 4 * count + (AUTH_LEN if version == 2 else 0)
    if len(data) != expected:
        raise PacketError(
            f"{len(data)} bytes for {count} addresses (VRRPv{version} expects {expected})"
        )
    if version == 2:
        if checksum(data):
            raise PacketError("bad VRRPv2 checksum")
        interval = data[5] * 100
        auth_type = data[4]
        auth_data = data[expected - AUTH_LEN :]
    else:
        if checksum(data, _sum16(_pseudo_header(source, destination, len(data)))):
            raise PacketError("bad VRRPv3 checksum")
        interval = struct.unpack("!H", data[4:6])[0] & V3_MAX_INTERVAL
        auth_type, auth_data = AUTH_NONE, b""
    addresses = tuple(
        IPv4Address(data[HEADER_LEN + 4 * i : HEADER_LEN + 4 * i + 4]) for i in range(count)
    )
    return Advert(version, vrid, priority, interval, addresses, auth_type, auth_data)


def parse_ipv4(datagram: bytes) -> IPv4Header:
    """The IPv4 header of a received datagram and its payload (raises PacketError)."""
    if len(datagram) < 20:
        raise PacketError(f"{len(datagram)} bytes: shorter than an IPv4 header")
    version, ihl = datagram[0] >> 4, (datagram[0] & 0x0F) * 4
    if version != 4 or ihl < 20 or len(datagram) < ihl:
        raise PacketError("not a well-formed IPv4 header")
    total = struct.unpack("!H", datagram[2:4])[0]
    # The kernel may hand over the total length in host order on some systems (BSD);
    # Linux keeps the header as received.
    if total != len(datagram):
        raise PacketError(f"IP total length {total} but {len(datagram)} bytes received")
    return IPv4Header(
        source=IPv4Address(datagram[12:16]),
        destination=IPv4Address(datagram[16:20]),
        ttl=datagram[8],
        protocol=datagram[9],
        payload=datagram[ihl:],
    )


def garp_frame(mac: bytes, address: IPv4Address) -> bytes:
    """An Ethernet frame announcing that `address` is at `mac`: a broadcast ARP request
    whose sender and target protocol addresses are both `address` (RFC 5227 section 3)."""
    if len(mac) != 6:
        raise ValueError("a MAC address has 6 bytes")
    ethernet = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + address.packed
    arp += BROADCAST_MAC + address.packed
    return ethernet + arp


def parse_garp(frame: bytes) -> tuple[bytes, IPv4Address] | None:
    """The (MAC, address) a gratuitous ARP frame announces, or None (for tests and logs)."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    arp = frame[14:42]
    sender_mac, sender_ip, target_ip = arp[8:14], arp[14:18], arp[24:28]
    if sender_ip != target_ip:
        return None
    return sender_mac, IPv4Address(sender_ip)
