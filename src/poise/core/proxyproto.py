"""The PROXY protocol (HAProxy's doc/proxy-protocol.txt), versions 1 and 2, as bytes in
and values out: no socket here.

`parse(data)` reads a header at the start of what a connection received: None while more
bytes are needed, else the header and how many bytes it took, or a Refusal (HAProxy's
reason, the text it logs: src/connection.c conn_err_code_str). It decides as HAProxy 2.6's
conn_recv_proxy does, where the two differ from the text of the protocol:
- v1: `PROXY UNKNOWN` must be followed by CRLF at once (the long form is refused as an
  unhandled protocol); an address or a port that does not parse is a bad header.
- v2: a PROXY command must carry TCP over IPv4 or IPv6 (anything else is a bad header:
  HAProxy's TLV walk then starts inside the signature); LOCAL keeps the connection's own
  addresses and skips the rest; a CRC32C TLV must be 4 bytes and match, AUTHORITY is at
  most 255 bytes and UNIQUE_ID at most 128.

`v1_line` and `v2_header` build what a server is sent (`send-proxy`, `send-proxy-v2`,
make_proxy_line_v1/v2): mixed families become IPv6 (IPv4-mapped), no addresses give
`PROXY UNKNOWN` (v1) or a LOCAL command (v2). The TLVs come in HAProxy's order (CRC32C,
ALPN, AUTHORITY, UNIQUE_ID, SSL, NETNS); the caller gives those it has.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER_LEN = 16  # signature, version/command, family, length
V1_MAX = 107  # the longest v1 line, CRLF included (proxy-protocol.txt 2.1)
AUTHORITY_MAX = 255  # HAProxy's PP2_AUTHORITY_MAX
UNIQUE_ID_MAX = 128  # HAProxy's UNIQUEID_LEN

# TLV types (proxy-protocol.txt 2.2).
ALPN = 0x01
AUTHORITY = 0x02
CRC32C = 0x03
NOOP = 0x04
UNIQUE_ID = 0x05
SSL = 0x20
SSL_VERSION = 0x21
SSL_CN = 0x22
SSL_CIPHER = 0x23
SSL_SIG_ALG = 0x24
SSL_KEY_ALG = 0x25
NETNS = 0x30

# The SSL TLV's client bits.
CLIENT_SSL = 0x01
CLIENT_CERT_CONN = 0x02
CLIENT_CERT_SESS = 0x04

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_TCP4 = 0x11
_TCP6 = 0x21


class Refusal(enum.Enum):
    """Why a connection's PROXY header was refused, as HAProxy logs it. EMPTY, ABORT and
    TIMEOUT are the reader's (the connection ended or stayed silent)."""

    EMPTY = "Connection closed while waiting for PROXY protocol header"
    ABORT = "Connection error while waiting for PROXY protocol header"
    TIMEOUT = "Timeout while waiting for PROXY protocol header"
    TRUNCATED = "Truncated PROXY protocol header received"
    NOT_HDR = "Received something which does not look like a PROXY protocol header"
    BAD_HDR = "Received an invalid PROXY protocol header"
    BAD_PROTO = "Received an unhandled protocol in the PROXY protocol header"

    @property
    def empty(self) -> bool:
        """Nothing was received: hidden by `option dontlognull`, as HAProxy does."""
        return self in (Refusal.EMPTY, Refusal.ABORT)


@dataclass(frozen=True, slots=True)
class SslTlv:
    """The SSL TLV: the client's TLS connection as the sender saw it."""

    client: int  # CLIENT_* bits
    verify: int  # the certificate verification result, 0 when it passed
    version: str | None = None
    cn: str | None = None
    cipher: str | None = None
    sig_alg: str | None = None
    key_alg: str | None = None


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A received header. `src`/`dst` are None for LOCAL (v2) and UNKNOWN (v1): the
    connection's own addresses stay."""

    version: int
    src: tuple[str, int] | None = None
    dst: tuple[str, int] | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def tlv(self, kind: int) -> bytes | None:
        for found, value in self.tlvs:
            if found == kind:
                return value
        return None

    @property
    def alpn(self) -> bytes | None:
        return self.tlv(ALPN)

    @property
    def authority(self) -> str | None:
        value = self.tlv(AUTHORITY)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def unique_id(self) -> str | None:
        value = self.tlv(UNIQUE_ID)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def netns(self) -> str | None:
        value = self.tlv(NETNS)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def ssl(self) -> SslTlv | None:
        value = self.tlv(SSL)
        return None if value is None else parse_ssl_tlv(value)


Parsed = tuple[ProxyHeader, int] | Refusal | None


def parse(data: bytes) -> Parsed:
    """The header at the start of `data` and its length; None: more bytes are needed."""
    if len(data) < 6:
        return None
    if data.startswith(b"PROXY "):
        return _parse_v1(data)
    if len(data) < V2_HEADER_LEN:
        return None
    if not data.startswith(V2_SIGNATURE) or data[12] & 0xF0 != 0x20:
        return Refusal.NOT_HDR
    return _parse_v2(data)


def _parse_v1(data: bytes) -> Parsed:
    if len(data) < 9:
        return None
    proto = data[6:11]
    if proto not in (b"TCP4 ", b"TCP6 "):
        rest = data[6:15]
        if rest == b"UNKNOWN\r\n":
            return ProxyHeader(1), 15
        if any(known.startswith(rest) for known in (b"TCP4 ", b"TCP6 ", b"UNKNOWN\r\n")):
            return None
        return Refusal.BAD_PROTO
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        return Refusal.BAD_HDR if len(data) >= V1_MAX or b"\r" in data[:-1] else None
    fields = data[11:end].split(b" ")
    if len(fields) != 4:
        return Refusal.BAD_HDR
    family = ipaddress.IPv4Address if proto == b"TCP4 " else ipaddress.IPv6Address
    if b"%" in fields[0] or b"%" in fields[1]:  # inet_pton takes no scope
        return Refusal.BAD_HDR
    try:
        src = str(family(fields[0].decode("ascii")))
        dst = str(family(fields[1].decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return Refusal.BAD_HDR
    sport, dport = _port(fields[2]), _port(fields[3])
    if sport < 0 or dport < 0:
        return Refusal.BAD_HDR
    return ProxyHeader(1, (src, sport), (dst, dport)), end + 2


def _port(text: bytes) -> int:
    """A v1 port: decimal digits up to 65535 (-1: not one)."""
    if not text.isdigit() or len(text) > 5:
        return -1
    port = int(text)
    return port if port <= 65535 else -1


def _parse_v2(data: bytes) -> Parsed:
    length = int.from_bytes(data[14:16], "big")
    total = V2_HEADER_LEN + length
    if len(data) < total:
        return None
    command = data[12] & 0x0F
    if command == 0x00:  # LOCAL: the connection's own addresses
        return ProxyHeader(2), total
    if command != 0x01:
        return Refusal.BAD_HDR
    family = data[13]
    src_ip: IP
    dst_ip: IP
    if family == _TCP4 and length >= 12:
        src_ip, dst_ip = ipaddress.IPv4Address(data[16:20]), ipaddress.IPv4Address(data[20:24])
        sport, dport = struct.unpack_from("!HH", data, 24)
        offset = 28
    elif family == _TCP6 and length >= 36:
        src_ip, dst_ip = ipaddress.IPv6Address(data[16:32]), ipaddress.IPv6Address(data[32:48])
        sport, dport = struct.unpack_from("!HH", data, 48)
        offset = 52
    else:
        return Refusal.BAD_HDR
    tlvs = []
    while offset < total:
        if offset + 3 > total:
            return Refusal.BAD_HDR
        kind = data[offset]
        size = int.from_bytes(data[offset + 1 : offset + 3], "big")
        value = data[offset + 3 : offset + 3 + size]
        if offset + 3 + size > total:
            return Refusal.BAD_HDR
        if kind == CRC32C:
            if size != 4:
                return Refusal.BAD_HDR
            zeroed = data[: offset + 3] + b"\0\0\0\0" + data[offset + 7 : total]
            if crc32c(zeroed) != int.from_bytes(value, "big"):
                return Refusal.BAD_HDR
        elif (kind == AUTHORITY and size > AUTHORITY_MAX) or (
            kind == UNIQUE_ID and size > UNIQUE_ID_MAX
        ):
            return Refusal.BAD_HDR
        tlvs.append((kind, bytes(value)))
        offset += 3 + size
    header = ProxyHeader(2, (str(src_ip), sport), (str(dst_ip), dport), tuple(tlvs))
    return header, total


def parse_ssl_tlv(value: bytes) -> SslTlv | None:
    """The SSL TLV's value (client, verify, then sub-TLVs); None when it is malformed
    (HAProxy 2.6 does not read it: a bad one does not refuse the header)."""
    if len(value) < 5:
        return None
    client = value[0]
    verify = int.from_bytes(value[1:5], "big")
    subs: dict[int, str] = {}
    offset = 5
    while offset < len(value):
        if offset + 3 > len(value):
            return None
        kind = value[offset]
        size = int.from_bytes(value[offset + 1 : offset + 3], "big")
        if offset + 3 + size > len(value):
            return None
        subs[kind] = value[offset + 3 : offset + 3 + size].decode("utf-8", "replace")
        offset += 3 + size
    return SslTlv(
        client,
        verify,
        subs.get(SSL_VERSION),
        subs.get(SSL_CN),
        subs.get(SSL_CIPHER),
        subs.get(SSL_SIG_ALG),
        subs.get(SSL_KEY_ALG),
    )


# --- building headers ------------------------------------------------------------------


def _ip(text: str) -> IP | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _pair(
    src: tuple[str, int] | None, dst: tuple[str, int] | None
) -> tuple[IP, int, IP, int] | None:
    """Two addresses of one family (IPv6 when they differ), None when one is not IP."""
    if src is None or dst is None:
        return None
    src_ip, dst_ip = _ip(src[0]), _ip(dst[0])
    if src_ip is None or dst_ip is None:
        return None
    if src_ip.version != dst_ip.version:  # mixed: both as IPv6 (IPv4-mapped)
        src_ip, dst_ip = _v6(src_ip), _v6(dst_ip)
    return src_ip, src[1], dst_ip, dst[1]


def _v6(ip: IP) -> ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address):
        return ip
    return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)


def v1_line(src: tuple[str, int] | None, dst: tuple[str, int] | None) -> bytes:
    """`send-proxy`: the v1 line for a client's addresses (UNKNOWN without them)."""
    pair = _pair(src, dst)
    if pair is None:
        return b"PROXY UNKNOWN\r\n"
    src_ip, sport, dst_ip, dport = pair
    proto = "TCP4" if src_ip.version == 4 else "TCP6"
    return f"PROXY {proto} {src_ip} {dst_ip} {sport} {dport}\r\n".encode("ascii")


def tlv(kind: int, value: bytes) -> bytes:
    return bytes((kind,)) + len(value).to_bytes(2, "big") + value


def ssl_tlv(client: int, verify: int, subs: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """The SSL TLV's value: the client bits, the verification result, sub-TLVs."""
    return bytes((client,)) + verify.to_bytes(4, "big") + b"".join(tlv(k, v) for k, v in subs)


def v2_header(
    src: tuple[str, int] | None,
    dst: tuple[str, int] | None,
    tlvs: Sequence[tuple[int, bytes]] = (),
    *,
    with_crc32c: bool = False,
) -> bytes:
    """`send-proxy-v2`: a PROXY command for the client's addresses, a LOCAL command
    without them (a health check's connection); `tlvs` in the order to send them;
    `with_crc32c`: a CRC32C TLV first, over the whole header."""
    pair = _pair(src, dst)
    if pair is None:
        head = b"\x20\x00"
        addresses = b""
    else:
        src_ip, sport, dst_ip, dport = pair
        head = b"\x21" + bytes((_TCP4 if src_ip.version == 4 else _TCP6,))
        addresses = src_ip.packed + dst_ip.packed + struct.pack("!HH", sport, dport)
    body = addresses
    crc_at = -1
    if with_crc32c:
        crc_at = V2_HEADER_LEN + len(body) + 3
        body += tlv(CRC32C, b"\0\0\0\0")
    body += b"".join(tlv(kind, value) for kind, value in tlvs)
    header = V2_SIGNATURE + head + len(body).to_bytes(2, "big") + body
    if crc_at >= 0:
        header = header[:crc_at] + crc32c(header).to_bytes(4, "big") + header[crc_at + 4 :]
    return header


# --- CRC32C (Castagnoli, reflected 0x82F63B78) -------------------------------------------


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
