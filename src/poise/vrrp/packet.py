"""VRRP advertisements on the wire, for IPv4 and IPv6: bytes in, an Advert out, and back. Pure.

VRRPv2 (RFC 3768 section 5.1, with the simple password of RFC 2338 that Keepalived still
speaks) and VRRPv3 (RFC 5798 section 5.1):

     0                   1                   2                   3
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    v2: | Auth Type | Adver Int (s) |   Checksum    |
    v3: |(rsvd)| Max Adver Int (centiseconds, 12 bits) |  Checksum  |
    |                     IPvX Address(es)                          |
    v2: |                 Authentication Data (8 bytes)             |

The v2 checksum covers the VRRP message; the v3 one also covers the IP pseudo-header as
TCP's does (RFC 5798 5.2.8): for IPv4 source, destination, zero, protocol 112, VRRP length;
for IPv6 (RFC 8200 8.1) source, destination, the 32-bit length, three zeros, next header
112. An advert carries addresses of its source's family only (4 or 16 bytes each).
VRRPv2 over IPv6 is no RFC's, but Keepalived 2.2.7 sends it (its default `vrrp_version 2`
with IPv6 addresses): the v2 header (auth type, whole seconds) without authentication data,
and the checksum with the IPv6 pseudo-header (the kernel's IPV6_CHECKSUM); so does poise.
Intervals are kept in centiseconds for both versions (v2's whole seconds times 100), so
the state machine has one unit.

Also the IPv4 header of a received datagram (a raw socket hands it over whole), the
gratuitous ARP frame that announces a virtual IPv4 address (RFC 5227 section 3, an ARP
request whose sender and target addresses are both the announced one, broadcast) and the
unsolicited neighbour advertisement that announces a virtual IPv6 one (RFC 4861 section
4.4 and 7.2.6: to all nodes, Override set, the target's link-layer address as option).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

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
ICMP6_NEIGHBOR_ADVERT = 136  # RFC 4861 section 4.4
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
IPAddress = IPv4Address | IPv6Address


class PacketError(ValueError):
    """A datagram that is not a well-formed advertisement; the message says why."""


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement. `interval` is in centiseconds (v2: seconds x 100)."""

    version: int
    vrid: int
    priority: int
    interval: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""


@dataclass(frozen=True, slots=True)
class IPHeader:
    """What the IP header of a received datagram says (IPv6: from recvmsg's ancillary
    data, which is all a raw IPv6 socket tells; `ttl` is then the hop limit)."""

    source: IPAddress
    destination: IPAddress
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


def _pseudo_header(source: IPAddress, destination: IPAddress, length: int) -> bytes:
    if source.version == 6:
        return source.packed + destination.packed + struct.pack("!IxxxB", length, PROTOCOL)
    return source.packed + destination.packed + struct.pack("!BBH", 0, PROTOCOL, length)


def encode(advert: Advert, source: IPAddress, destination: IPAddress) -> bytes:
    """The VRRP message (the IP payload), checksum included. `source` and `destination`
    are those of the IP header, which the v3 checksum covers."""
    if not 1 <= advert.vrid <= 255 or not 0 <= advert.priority <= 255:
        raise ValueError(f"bad VRID {advert.vrid} or priority {advert.priority}")
    if len(advert.addresses) > MAX_ADDRESSES:
        raise ValueError("more than 255 addresses")
    if destination.version != source.version or any(
        a.version != source.version for a in advert.addresses
    ):
        raise ValueError("an advert's addresses are all of its source's family")
    addresses = b"".join(a.packed for a in advert.addresses)
    count = len(advert.addresses)
    first = (advert.version << 4) | TYPE_ADVERTISEMENT
    if advert.version == 2:
        seconds = advert.interval // 100
        if not 1 <= seconds <= 255 or advert.interval % 100:
            raise ValueError(f"VRRPv2 interval {advert.interval}cs is not 1-255 whole seconds")
        head = struct.pack(
            "!BBBBBB", first, advert.vrid, advert.priority, count, advert.auth_type, seconds
        )
        if source.version == 6:  # Keepalived's VRRPv2 over IPv6: no auth data
            body = head + b"\0\0" + addresses
            initial = _sum16(_pseudo_header(source, destination, len(body)))
            return body[:6] + struct.pack("!H", checksum(body, initial)) + body[8:]
        auth = advert.auth_data[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
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


def decode(data: bytes, source: IPAddress, destination: IPAddress) -> Advert:
    """Parse and verify a VRRP message (raises PacketError): version 2 or 3 (3 over IPv6),
    type advertisement, a length that matches the address count, a valid checksum. The
    addresses are of the source's family."""
    if len(data) < HEADER_LEN:
        raise PacketError(f"{len(data)} bytes: shorter than a VRRP header")
    first, vrid, priority, count = data[0], data[1], data[2], data[3]
    version, kind = first >> 4, first & 0x0F
    if version not in (2, 3):
        raise PacketError(f"unknown VRRP version {version}")
    if kind != TYPE_ADVERTISEMENT:
        raise PacketError(f"packet type {kind} is not an advertisement")
    size = 16 if source.version == 6 else 4
    auth_len = AUTH_LEN if version == 2 and size == 4 else 0
    expected = HEADER_LEN + size * count + auth_len
    if len(data) != expected:
        raise PacketError(
            f"{len(data)} bytes for {count} addresses (VRRPv{version} expects {expected})"
        )
    pseudo = _sum16(_pseudo_header(source, destination, len(data)))
    if version == 2:
        if checksum(data, pseudo if size == 16 else 0):
            raise PacketError("bad VRRPv2 checksum")
        interval = data[5] * 100
        auth_type = data[4]
        auth_data = data[expected - auth_len :] if auth_len else b""
    else:
        if checksum(data, pseudo):
            raise PacketError("bad VRRPv3 checksum")
        interval = struct.unpack("!H", data[4:6])[0] & V3_MAX_INTERVAL
        auth_type, auth_data = AUTH_NONE, b""
    family = IPv6Address if size == 16 else IPv4Address
    addresses = tuple(
        family(data[HEADER_LEN + size * i : HEADER_LEN + size * (i + 1)]) for i in range(count)
    )
    return Advert(version, vrid, priority, interval, addresses, auth_type, auth_data)


def parse_ipv4(datagram: bytes) -> IPHeader:
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
    return IPHeader(
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


def neighbour_advert(mac: bytes, address: IPv6Address, *, router: bool = False) -> bytes:
    """The ICMPv6 message (the IP payload) of an unsolicited neighbour advertisement that
    `address` is at `mac`: Solicited clear, Override set (RFC 4861 7.2.6), Router as the
    node forwards; the checksum is left to the kernel (a raw ICMPv6 socket fills it in)."""
    if len(mac) != 6:
        raise ValueError("a MAC address has 6 bytes")
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    head = struct.pack("!BBHI", ICMP6_NEIGHBOR_ADVERT, 0, 0, flags)
    return head + address.packed + struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac


def parse_neighbour_advert(message: bytes) -> tuple[IPv6Address, bytes | None, int] | None:
    """(target, link-layer address option or None, flags) of an ICMPv6 neighbour
    advertisement, or None (for tests and logs)."""
    if len(message) < 24 or message[0] != ICMP6_NEIGHBOR_ADVERT:
        return None
    flags = struct.unpack("!I", message[4:8])[0]
    target = IPv6Address(message[8:24])
    options, mac = message[24:], None
    while len(options) >= 8 and options[1]:
        if options[0] == ND_OPT_TARGET_LINKADDR:
            mac = options[2:8]
        options = options[8 * options[1] :]
    return target, mac, flags
