"""The layer-4 fetches' readers (core/payload.py) on real bytes: ClientHellos written by
Python's own TLS client (OpenSSL, through a memory BIO: no socket needed to get the bytes
a client sends first), the examples of configuration.txt 7.3.5, an RDP client's first
packet, and random bytes (never an exception: "no value")."""

from __future__ import annotations

import contextlib
import ssl

from hypothesis import given
from hypothesis import strategies as st

from poise.core import payload
from poise.core.payload import MORE


def client_hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    """The first bytes a TLS client sends: its ClientHello record(s)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_a_real_client_hello_gives_its_type_name_protocols_and_version() -> None:
    hello = client_hello("a.example", ["h2", "http/1.1"])
    assert payload.hello_type(hello) == 1
    assert payload.sni(hello) == "a.example"
    assert payload.alpn(hello) == ("h2", "http/1.1")
    # The record's version: TLS 1.0 or 1.2 (3.1 or 3.3) as OpenSSL writes its first record.
    assert payload.version(hello) in (0x30001, 0x30003)


def test_a_hello_without_sni_or_alpn_has_neither() -> None:
    hello = client_hello(None)
    assert payload.hello_type(hello) == 1
    assert payload.sni(hello) is None
    assert payload.alpn(hello) is None


def test_a_partial_hello_may_still_become_one() -> None:
    hello = client_hello("b.example")
    for cut in (0, 1, 5, 9, 40, len(hello) - 1):
        assert payload.hello_type(hello[:cut]) is MORE, cut
        assert payload.sni(hello[:cut]) is MORE, cut
    assert payload.version(hello[:3]) is MORE


def test_what_is_not_tls_is_no_hello_at_once() -> None:
    for data in (b"GET / HTTP/1.1\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"\x17\x03\x03\x00\x05hello"):
        assert payload.hello_type(data) is None
        assert payload.sni(data) is None


def test_a_malformed_hello_is_no_value() -> None:
    hello = bytearray(client_hello("c.example"))
    # A handshake length larger than its record: not a hello HAProxy reads.
    hello[6:9] = (0xFF, 0xFF, 0xFF)
    assert payload.sni(bytes(hello)) is None
    # An extension list that overruns the message.
    good = client_hello("c.example")
    broken = good[:-3] + b"\xff\xff\xff"
    assert payload.sni(broken) in (None, "c.example")  # never an exception


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    for read in (payload.hello_type, payload.sni, payload.alpn, payload.version):
        read(data)
    payload.proto_http(data)
    payload.payload_lv(0, 2, None)(data)
    payload.rdp("mstshash", False)(data)


@given(st.binary(min_size=60, max_size=600), st.integers(0, 600))
def test_random_bytes_after_a_hello_header_never_raise(tail: bytes, size: int) -> None:
    header = bytes([22, 3, 1, (size + 4) >> 8, (size + 4) & 0xFF, 1, 0, size >> 8, size & 0xFF])
    for read in (payload.sni, payload.alpn):
        read(header + tail)


def test_payload_takes_length_bytes_from_offset_or_all_with_length_zero() -> None:
    data = b"SSH-2.0-OpenSSH"
    assert payload.payload(0, 7)(data) == "SSH-2.0"
    assert payload.payload(4, 0)(data) == "2.0-OpenSSH"
    assert payload.payload(10, 20)(data) is MORE  # not there yet


def test_payload_lv_reads_a_length_then_the_block() -> None:
    # configuration.txt's `stick store-response payload_lv(43,1)`: the session id of a
    # hello, whose one-byte length is at offset 43.
    hello = client_hello("d.example")
    session_id = payload.payload_lv(43, 1, None)(hello)
    assert isinstance(session_id, str) and len(session_id) == hello[43]
    data = b"\x00\x03abcdef"
    assert payload.payload_lv(0, 2, None)(data) == "abc"
    assert payload.payload_lv(0, 2, "+1")(data) == "bcd"  # relative to after the length
    assert payload.payload_lv(0, 2, "5")(data) == "def"  # absolute
    assert payload.payload_lv(0, 2, None)(b"\x00") is MORE
    assert payload.payload_lv(0, 2, None)(b"\x00\x09abc") is MORE


def test_proto_http_waits_for_a_whole_head() -> None:
    assert payload.proto_http(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") is True
    assert payload.proto_http(b"GET / HTTP/1.1\r\nHost: a\r\n") is MORE
    assert payload.proto_http(b"") is MORE
    assert payload.proto_http(b"\x16\x03\x01\x02\x00") is False
    assert payload.proto_http(b"GET / FTP/1.0\r\n\r\n") is False


def test_the_rdp_cookie_of_a_remote_desktop_client() -> None:
    first = b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n\x01\x00"
    assert payload.rdp("mstshash", False)(first) == "alice"
    assert payload.rdp(None, True)(first) == 1
    assert payload.rdp("mstshash", False)(first[:20]) is MORE
    assert payload.rdp("mstshash", True)(b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00x" * 2) == 0
