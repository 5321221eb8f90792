"""core/http/heads.py and core/tlsalert.py: where a head with bare LF line ends ends, its
CRLF form, what happens to a request whose reused server connection died, what counts as a
server's garbage, and the TLS alert for OpenSSL's reason (HAProxy 2.6's answers, measured;
the I/O tests drive the same cases through a running poise)."""

from __future__ import annotations

import pytest

from poise.core.http.heads import (
    after_dead_connection,
    garbage_response,
    lf_head_end,
    read_unknown_method,
    with_crlf,
)
from poise.core.http.validate import check_request_head
from poise.core.tlsalert import alert_record


@pytest.mark.parametrize(
    ("buf", "end"),
    [
        (b"GET / HTTP/1.1\nHost: a\n\n", 24),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 27),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\nrest", 26),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\nrest", 26),
        (b"\r\n\nGET / HTTP/1.1\nHost: a\n\n", 27),  # empty lines before are skipped
        (b"GET / HTTP/1.1\r\nHost: a\r\n", -1),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r", -1),
    ],
)
def test_a_head_ends_at_its_first_empty_line_lf_or_crlf(buf: bytes, end: int) -> None:
    assert lf_head_end(buf) == end


def test_with_crlf_rewrites_the_first_head_and_says_what_it_took() -> None:
    raw = b"GET / HTTP/1.1\nHost: a\nX: b\r\n\nPOST / HTTP/1.1\r\n\r\n"
    head, used = with_crlf(raw)
    assert head == b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n"
    assert raw[used:] == b"POST / HTTP/1.1\r\n\r\n"
    assert check_request_head(head) is None
    bare_cr, _ = with_crlf(b"GET / HTTP/1.1\nHost: a\nX: a\rb\n\n")
    assert check_request_head(bare_cr) is not None  # a bare CR is still refused


def test_an_unknown_method_is_read_with_get_standing_in() -> None:
    read = read_unknown_method(b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not isinstance(read, str)
    assert read[0] == "PURGE" and read[1].url == b"/x"


@pytest.mark.parametrize(
    ("method", "has_body", "first", "after"),
    [
        ("GET", False, False, "resend"),
        ("HEAD", False, True, "resend"),
        ("PUT", False, False, "resend"),
        ("DELETE", False, False, "resend"),
        ("PUT", True, False, "close"),  # its body is not kept: it cannot be sent again
        ("POST", False, False, "close"),  # HAProxy: the client connection closed, no log
        ("POST", True, False, "close"),
        ("POST", False, True, "502"),  # HAProxy: 502, SH--
        ("PATCH", True, True, "502"),
        ("get", False, False, "close"),  # methods are case-sensitive (RFC 9110 9.1)
    ],
)
def test_only_an_idempotent_request_without_body_is_sent_again(
    method: str, has_body: bool, first: bool, after: str
) -> None:
    assert after_dead_connection(method, has_body, first) == after


@pytest.mark.parametrize(
    ("sent", "garbage"),
    [
        (b"this is not http\n", True),
        (b"<html>", True),
        (b"HTTP/1.1 200 OK\r\nContent-Le", False),  # cut short: SH, not PH
        (b"HTT", False),
        (b"HTTP/1.1 2", False),
    ],
)
def test_garbage_is_what_cannot_begin_a_response(sent: bytes, garbage: bool) -> None:
    assert garbage_response(sent) is garbage


def test_tls_alerts_are_openssls_for_its_reason() -> None:
    assert alert_record("UNEXPECTED_MESSAGE") == b"\x15\x03\x03\x00\x02\x02\x0a"
    assert alert_record("UNSUPPORTED_PROTOCOL")[-1] == 70
    assert alert_record("NO_SHARED_CIPHER")[-1] == 40
    assert alert_record("CALLBACK_FAILED")[-1] == 112  # strict-sni
    for silent in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER", "TLSV1_ALERT_UNKNOWN_CA", None):
        assert alert_record(silent) == b""  # HAProxy: a bare FIN
