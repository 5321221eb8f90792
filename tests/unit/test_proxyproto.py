"""The PROXY protocol codec (core/proxyproto.py): the examples of HAProxy's
doc/proxy-protocol.txt, HAProxy 2.6's decisions where they differ from the text, the
headers poise sends, and garbage that never raises."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from poise.core import proxyproto as pp
from poise.core.proxyproto import ProxyHeader, Refusal
from tests.unit.fuzzing import fuzz_settings

SIG = pp.V2_SIGNATURE


def v2(command: int, family: int, body: bytes) -> bytes:
    return SIG + bytes((0x20 | command, family)) + len(body).to_bytes(2, "big") + body


# --- version 1 -------------------------------------------------------------------------


def test_v1_longest_lines_of_the_spec() -> None:
    line = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
    assert pp.parse(line + b"GET /") == (
        ProxyHeader(1, ("255.255.255.255", 65535), ("255.255.255.255", 65535)),
        len(line),
    )
    six = "ffff:" * 7 + "ffff"
    line6 = f"PROXY TCP6 {six} {six} 65535 65535\r\n".encode()
    assert len(line6) == 104
    parsed = pp.parse(line6)
    assert parsed is not None and not isinstance(parsed, Refusal)
    assert parsed[0].src == (six, 65535) and parsed[1] == 104


def test_v1_unknown_keeps_the_connection_addresses() -> None:
    assert pp.parse(b"PROXY UNKNOWN\r\nrest") == (ProxyHeader(1), 15)
    # HAProxy 2.6 refuses the long form (conn_recv_proxy wants CRLF after UNKNOWN).
    assert pp.parse(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n") is Refusal.BAD_PROTO


def test_v1_needs_more_until_the_line_ends() -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    for cut in range(len(line)):
        assert pp.parse(line[:cut]) is None, line[:cut]
    assert pp.parse(line) == (ProxyHeader(1, ("192.0.2.1", 56324), ("198.51.100.2", 443)), 45)


def test_v1_refusals() -> None:
    assert pp.parse(b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n") is Refusal.BAD_PROTO
    assert pp.parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP4 ::1 ::1 1 2\r\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n") is Refusal.BAD_HDR
    assert pp.parse(b"PROXY TCP4 " + b"1" * 120) is Refusal.BAD_HDR  # no CRLF in 107


def test_not_a_header() -> None:
    assert pp.parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") is Refusal.NOT_HDR
    assert pp.parse(b"GET / HTTP") is None  # under 16 bytes: HAProxy calls it truncated
    wrong_version = SIG + b"\x11\x11\x00\x0c" + bytes(12)
    assert pp.parse(wrong_version) is Refusal.NOT_HDR


# --- version 2 -------------------------------------------------------------------------


def test_v2_tcp4_and_tcp6() -> None:
    body = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack("!HH", 56324, 443)
    header = v2(1, 0x11, body)
    assert pp.parse(header + b"\x16\x03") == (
        ProxyHeader(2, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
        28,
    )
    body6 = bytes(15) + b"\x01" + b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02" + b"\x00\x01\x00\x02"
    assert pp.parse(v2(1, 0x21, body6)) == (ProxyHeader(2, ("::1", 1), ("2001:db8::2", 2)), 52)


def test_v2_local_keeps_the_addresses_and_skips_the_rest() -> None:
    assert pp.parse(v2(0, 0x00, b"")) == (ProxyHeader(2), 16)
    assert pp.parse(v2(0, 0x11, bytes(12) + b"junk")) == (ProxyHeader(2), 32)


def test_v2_refusals() -> None:
    assert pp.parse(v2(2, 0x11, bytes(12))) is Refusal.BAD_HDR  # no such command
    assert pp.parse(v2(1, 0x31, bytes(216))) is Refusal.BAD_HDR  # unix: not handled
    assert pp.parse(v2(1, 0x12, bytes(12))) is Refusal.BAD_HDR  # UDP
    assert pp.parse(v2(1, 0x11, bytes(8))) is Refusal.BAD_HDR  # too short for TCP4
    assert pp.parse(v2(1, 0x11, bytes(12) + b"\x01\x00")) is Refusal.BAD_HDR  # cut TLV
    assert pp.parse(v2(1, 0x11, bytes(12) + b"\x01\x00\x05ab")) is Refusal.BAD_HDR
    long_authority = pp.tlv(pp.AUTHORITY, b"a" * 256)
    assert pp.parse(v2(1, 0x11, bytes(12) + long_authority)) is Refusal.BAD_HDR
    long_id = pp.tlv(pp.UNIQUE_ID, b"a" * 129)
    assert pp.parse(v2(1, 0x11, bytes(12) + long_id)) is Refusal.BAD_HDR


def test_v2_needs_the_whole_header() -> None:
    header = pp.v2_header(("10.0.0.1", 1), ("10.0.0.2", 2), [(pp.ALPN, b"h2")])
    for cut in range(len(header)):
        assert pp.parse(header[:cut]) is None


def test_v2_tlvs() -> None:
    ssl = pp.ssl_tlv(
        pp.CLIENT_SSL | pp.CLIENT_CERT_CONN | pp.CLIENT_CERT_SESS,
        0,
        [(pp.SSL_VERSION, b"TLSv1.3"), (pp.SSL_CN, b"client.example")],
    )
    tlvs = [
        (pp.ALPN, b"http/1.1"),
        (pp.AUTHORITY, b"www.example"),
        (pp.UNIQUE_ID, b"id-1"),
        (pp.SSL, ssl),
        (pp.NETNS, b"blue"),
        (0xE0, b"custom"),
    ]
    header = pp.v2_header(("192.0.2.1", 1000), ("192.0.2.2", 443), tlvs)
    parsed = pp.parse(header)
    assert parsed is not None and not isinstance(parsed, Refusal)
    got, used = parsed
    assert used == len(header)
    assert got.alpn == b"http/1.1" and got.authority == "www.example"
    assert got.unique_id == "id-1" and got.netns == "blue" and got.tlv(0xE0) == b"custom"
    assert got.ssl == pp.SslTlv(7, 0, version="TLSv1.3", cn="client.example")
    assert pp.parse_ssl_tlv(b"\x01\x00") is None
    assert pp.parse_ssl_tlv(ssl + b"\x21\x00") is None


def test_crc32c() -> None:
    assert pp.crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C
    header = pp.v2_header(("192.0.2.1", 1), ("192.0.2.2", 2), [(pp.ALPN, b"h2")], with_crc32c=True)
    assert header[28] == pp.CRC32C  # first TLV, as HAProxy sends it
    assert pp.parse(header) is not None and not isinstance(pp.parse(header), Refusal)
    broken = header[:31] + bytes([header[31] ^ 1]) + header[32:]
    assert pp.parse(broken) is Refusal.BAD_HDR
    assert pp.parse(v2(1, 0x11, bytes(12) + pp.tlv(pp.CRC32C, b"abc"))) is Refusal.BAD_HDR


# --- building ----------------------------------------------------------------------------


def test_v1_lines() -> None:
    assert pp.v1_line(("192.0.2.1", 5), ("192.0.2.2", 80)) == (
        b"PROXY TCP4 192.0.2.1 192.0.2.2 5 80\r\n"
    )
    assert pp.v1_line(("::1", 5), ("::1", 80)) == b"PROXY TCP6 ::1 ::1 5 80\r\n"
    assert pp.v1_line(("192.0.2.1", 5), ("::1", 80)) == (b"PROXY TCP6 ::ffff:c000:201 ::1 5 80\r\n")
    assert pp.v1_line(None, None) == b"PROXY UNKNOWN\r\n"
    assert pp.v1_line(("unix", 0), ("192.0.2.2", 80)) == b"PROXY UNKNOWN\r\n"


def test_v2_local_without_addresses() -> None:
    assert pp.v2_header(None, None) == SIG + b"\x20\x00\x00\x00"


addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)).flatmap(
    lambda ip: st.tuples(st.just(ip), st.integers(0, 65535))
)


@fuzz_settings(100)
@given(addresses, addresses, st.booleans())
def test_round_trip(src: tuple[str, int], dst: tuple[str, int], crc: bool) -> None:
    for header in (pp.v1_line(src, dst), pp.v2_header(src, dst, with_crc32c=crc)):
        parsed = pp.parse(header + b"data")
        assert parsed is not None and not isinstance(parsed, Refusal)
        got, used = parsed
        assert used == len(header)
        assert got.src is not None and got.dst is not None
        assert got.src[1] == src[1] and got.dst[1] == dst[1]


@fuzz_settings(300)
@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    for sample in (data, b"PROXY " + data, SIG + data, SIG + b"\x21\x11" + data):
        result = pp.parse(sample)
        assert result is None or isinstance(result, Refusal) or result[1] <= len(sample)
