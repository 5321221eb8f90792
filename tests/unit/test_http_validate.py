"""poise's strict HTTP/1 rules, one test per rule, named by the RFC section it follows
(RFC 9112: HTTP/1.1; RFC 9110: HTTP semantics; RFC 6455: WebSocket), plus properties:
any head built from valid tokens passes both checks, and one forbidden byte put anywhere in
a field value is caught."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response, keep_alive
from poise.core.http.validate import (
    _HOST,
    CHUNKED,
    NO_BODY,
    UNTIL_CLOSE,
    Framing,
    HttpProblem,
    check_request,
    check_request_head,
    expects_continue,
    forwarded_for,
    hop_by_hop,
    is_websocket_upgrade,
    plain_length,
    request_framing,
    response_framing,
)


def request(
    *fields: str, method: str = "GET", uri: str = "/", version: str = "1.1", host: bool = True
) -> Request:
    """A parsed request with the given "Name: value" fields (and Host: a unless told not)."""
    items = [("Host", "a")] if host else []
    items += [(f.split(":", 1)[0], f.split(":", 1)[1].lstrip(" ")) for f in fields]
    return Request(method, uri, version, Headers(items))


def response(*fields: str, version: str = "1.1") -> Response:
    items = [(f.split(":", 1)[0], f.split(":", 1)[1].lstrip(" ")) for f in fields]
    return Response(200, "OK", version, Headers(items))


def problem(status: int, reason: str) -> HttpProblem:
    return HttpProblem(status, reason)


# ---------------------------------------------------------------------------------------
# check_request_head: the wire form

CLEAN = (
    b"GET /index.html?q=1 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"Accept: text/html,*/*;q=0.8\r\n"
    b"X-Empty:\r\n"
    b"X-Tab:\tvalue\twith tab \r\n"
    b"X-Latin: caf\xe9\r\n"
    b"\r\n"
)


def test_a_clean_head_passes() -> None:
    assert check_request_head(CLEAN) is None


def test_empty_lines_before_the_request_line_are_ignored_rfc9112_2_2() -> None:
    assert check_request_head(b"\r\n\r\n" + CLEAN) is None


HEAD_RULES = [
    ("rfc9112_5_2 obs-fold", b"X: a\r\n b", "obsolete line folding"),
    ("rfc9112_5_2 obs-fold with HTAB", b"X: a\r\n\tb", "obsolete line folding"),
    ("rfc9112_5_1 space before colon", b"X : a", "whitespace between header field name and colon"),
    ("rfc9112_5_1 HTAB before colon", b"X\t: a", "whitespace between header field name and colon"),
    ("rfc9112_5_1 no colon", b"X a", "header line without a colon"),
    ("rfc9112_2_2 bare CR", b"X: a\rb", "bare CR"),
    ("rfc9112_2_2 bare CR at line end", b"X: a\r", "bare CR"),
    ("rfc9112_2_2 bare LF", b"X: a\nY: b", "bare LF line ending"),
    ("rfc9110_5_5 NUL", b"X: a\x00b", "NUL in header field value"),
    ("rfc9110_5_5 SOH", b"X: a\x01b", "control character in header field value"),
    ("rfc9110_5_5 VT", b"X: \x0bchunked", "control character in header field value"),
    ("rfc9110_5_5 DEL", b"X: a\x7f", "control character in header field value"),
    ("rfc9110_5_1 empty name", b": a", "empty header field name"),
    ("rfc9110_5_1 separator in name", b"X(Y): a", "invalid character in header field name"),
    ("rfc9110_5_1 space in name", b"X Y: a", "invalid character in header field name"),
    ("rfc9110_5_1 non-ASCII in name", b"X\xe9: a", "invalid character in header field name"),
    ("rfc9110_5_1 NUL in name", b"X\x00: a", "invalid character in header field name"),
]


@pytest.mark.parametrize(("name", "line", "reason"), HEAD_RULES, ids=[r[0] for r in HEAD_RULES])
def test_field_line_rule(name: str, line: bytes, reason: str) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n"
    assert check_request_head(raw) == problem(400, reason)


def test_whitespace_before_the_first_field_rfc9112_2_2() -> None:
    raw = b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"
    assert check_request_head(raw) == problem(400, "whitespace before the first header field")


REQUEST_LINE_RULES = [
    ("rfc9112_3 two spaces", b"GET  / HTTP/1.1", "request-line is not method SP target SP version"),
    ("rfc9112_3 HTAB", b"GET\t/ HTTP/1.1", "request-line is not method SP target SP version"),
    (
        "rfc9112_3 trailing space",
        b"GET / HTTP/1.1 ",
        "request-line is not method SP target SP version",
    ),
    ("rfc9112_3 HTTP/0.9", b"GET /", "request-line is not method SP target SP version"),
    ("rfc9110_9_1 method token", b"G@T / HTTP/1.1", "invalid method token"),
    ("rfc9112_3_2 fragment", b"GET /a#b HTTP/1.1", "fragment in request-target"),
    ("rfc9112_3_2 non-ASCII target", b"GET /\xe9 HTTP/1.1", "invalid character in request-target"),
    ("rfc9112_3_2 CTL in target", b"GET /\x01 HTTP/1.1", "invalid character in request-target"),
    ("rfc9112_2_3 lower-case version", b"GET / http/1.1", "malformed HTTP-version"),
    ("rfc9112_2_3 two-digit version", b"GET / HTTP/1.10", "malformed HTTP-version"),
]


@pytest.mark.parametrize(
    ("name", "line", "reason"), REQUEST_LINE_RULES, ids=[r[0] for r in REQUEST_LINE_RULES]
)
def test_request_line_rule(name: str, line: bytes, reason: str) -> None:
    assert check_request_head(line + b"\r\nHost: a\r\n\r\n") == problem(400, reason)


def test_head_not_ended_by_an_empty_line_is_refused() -> None:
    assert check_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n") == problem(
        400, "request head not ended by an empty line"
    )


def test_arbitrary_bytes_never_raise() -> None:
    for raw in (b"", b"\r\n", b"\r\n\r\n", b"\x00" * 10, b":\r\n\r\n", b" \r\n\r\n"):
        assert isinstance(check_request_head(raw), HttpProblem)


# ---------------------------------------------------------------------------------------
# Properties over heads built from valid tokens

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NAMES = st.text(TCHAR, min_size=1, max_size=12).filter(
    lambda n: (
        n.lower() not in {"host", "content-length", "transfer-encoding", "connection", "upgrade"}
    )
)
# field-value: VCHAR / obs-text, with SP and HTAB inside (RFC 9110 5.5).
VCHAR = st.sampled_from([chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x80, 0x100)])
VALUES = st.lists(st.one_of(VCHAR, st.sampled_from([" ", "\t"])), max_size=20).map("".join)
TARGETS = st.lists(
    st.sampled_from([chr(c) for c in range(0x21, 0x7F) if chr(c) != "#"]), max_size=20
).map(lambda chars: "/" + "".join(chars))
METHODS = st.text(TCHAR, min_size=1, max_size=10).filter(lambda m: m != "CONNECT")
HOSTS = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}(:[0-9]{1,5})?", fullmatch=True)
FORBIDDEN = st.sampled_from([bytes([c]) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]])


@st.composite
def valid_heads(draw: st.DrawFn) -> tuple[bytes, Request]:
    method = draw(METHODS)
    target = draw(TARGETS)
    version = draw(st.sampled_from(["1.0", "1.1"]))
    fields = [("Host", draw(HOSTS))]
    fields += draw(st.lists(st.tuples(NAMES, VALUES), max_size=8))
    head = f"{method} {target} HTTP/{version}\r\n"
    head += "".join(f"{name}:{value}\r\n" for name, value in fields) + "\r\n"
    req = Request(method, target, version, Headers([(n, v.lstrip(" \t")) for n, v in fields]))
    return head.encode("latin-1"), req


@given(valid_heads())
def test_any_head_built_from_valid_tokens_passes_both_checks(head: tuple[bytes, Request]) -> None:
    raw, req = head
    assert check_request_head(raw) is None
    assert check_request(req) is None


@given(valid_heads(), st.data())
def test_one_forbidden_byte_anywhere_in_a_field_value_is_caught_rfc9110_5_5(
    head: tuple[bytes, Request], data: st.DataObject
) -> None:
    raw, _ = head
    lines = raw.split(b"\r\n")
    index = data.draw(st.integers(1, len(lines) - 3))  # a field line (not the request-line)
    name, _, value = lines[index].partition(b":")
    at = data.draw(st.integers(0, len(value)))
    byte = data.draw(FORBIDDEN)
    lines[index] = name + b":" + value[:at] + byte + value[at:]
    assert isinstance(check_request_head(b"\r\n".join(lines)), HttpProblem)


@given(valid_heads(), st.data())
def test_one_non_token_byte_anywhere_in_a_field_name_is_caught_rfc9110_5_1(
    head: tuple[bytes, Request], data: st.DataObject
) -> None:
    raw, _ = head
    lines = raw.split(b"\r\n")
    index = data.draw(st.integers(1, len(lines) - 3))
    name, _, value = lines[index].partition(b":")
    at = data.draw(st.integers(0, len(name)))
    byte = bytes([data.draw(st.integers(0, 255).filter(lambda b: chr(b) not in TCHAR + ":"))])
    lines[index] = name[:at] + byte + name[at:] + b":" + value
    assert isinstance(check_request_head(b"\r\n".join(lines)), HttpProblem)


# ---------------------------------------------------------------------------------------
# check_request: the parsed head

REQUEST_RULES = [
    # Framing, RFC 9112 6
    (
        "rfc9112_6_1 CL with TE",
        request("Content-Length: 3", "Transfer-Encoding: chunked", method="POST"),
        problem(400, "Content-Length with Transfer-Encoding"),
    ),
    (
        "rfc9112_6_1 TE in HTTP/1.0",
        request("Transfer-Encoding: chunked", method="POST", version="1.0"),
        problem(400, "Transfer-Encoding in an HTTP/1.0 request"),
    ),
    (
        "rfc9112_6_1 chunked twice",
        request("Transfer-Encoding: chunked, chunked", method="POST"),
        problem(400, "chunked applied more than once"),
    ),
    (
        "rfc9112_6_1 chunked twice over two fields",
        request("Transfer-Encoding: chunked", "Transfer-Encoding: chunked", method="POST"),
        problem(400, "chunked applied more than once"),
    ),
    (
        "rfc9112_6_1 chunked not final",
        request("Transfer-Encoding: chunked, gzip", method="POST"),
        problem(400, "chunked is not the final transfer coding"),
    ),
    (
        "rfc9112_6_3 no chunked",
        request("Transfer-Encoding: gzip", method="POST"),
        problem(400, "chunked is not the final transfer coding"),
    ),
    (
        "rfc9112_6_1 unknown coding is 501",
        request("Transfer-Encoding: foo, chunked", method="POST"),
        problem(501, "unsupported transfer coding"),
    ),
    (
        "rfc9112_6_1 gzip before chunked is 501 (HAProxy supports chunked only)",
        request("Transfer-Encoding: gzip", "Transfer-Encoding: chunked", method="POST"),
        problem(501, "unsupported transfer coding"),
    ),
    (
        "rfc9110_5_6_1 empty coding element (as HAProxy)",
        request("Transfer-Encoding: ,chunked", method="POST"),
        problem(400, "empty transfer coding"),
    ),
    (
        "rfc9112_6_3 differing CL",
        request("Content-Length: 3", "Content-Length: 4", method="POST"),
        problem(400, "differing Content-Length values"),
    ),
    (
        "rfc9112_6_3 differing CL in a list",
        request("Content-Length: 3, 4", method="POST"),
        problem(400, "differing Content-Length values"),
    ),
    ("rfc9110_8_6 CL sign", request("Content-Length: +3"), problem(400, "invalid Content-Length")),
    ("rfc9110_8_6 CL hex", request("Content-Length: 0x3"), problem(400, "invalid Content-Length")),
    ("rfc9110_8_6 CL empty", request("Content-Length: "), problem(400, "invalid Content-Length")),
    (
        "rfc9110_8_6 CL empty list element",
        request("Content-Length: 3,"),
        problem(400, "invalid Content-Length"),
    ),
    (
        "rfc9110_8_6 CL non-ASCII digits",
        request("Content-Length: \u0663"),
        problem(400, "invalid Content-Length"),
    ),
    (
        "rfc9110_8_6 CL too large",
        request("Content-Length: 9223372036854775808"),
        problem(400, "Content-Length too large"),
    ),
    (
        "rfc9110_7_6_1 Connection names Content-Length",
        request("Content-Length: 3", "Connection: close, Content-Length", method="POST"),
        problem(400, "Connection names a framing header"),
    ),
    (
        "rfc9110_7_6_1 Connection names Transfer-Encoding",
        request("Transfer-Encoding: chunked", "Connection: transfer-encoding", method="POST"),
        problem(400, "Connection names a framing header"),
    ),
    (
        "HAProxy HTTP/1.0 GET with a body is 413",
        request("Content-Length: 3", version="1.0"),
        problem(413, "body in an HTTP/1.0 GET, HEAD or DELETE request"),
    ),
    # Host, RFC 9112 3.2
    ("rfc9112_3_2 missing Host", request(host=False), problem(400, "missing Host")),
    ("rfc9112_3_2 two Host", request("Host: b"), problem(400, "more than one Host")),
    ("rfc9112_3_2 two equal Host", request("Host: a"), problem(400, "more than one Host")),
    (
        "rfc9112_3_2 two Host in HTTP/1.0",
        request("Host: a", version="1.0"),
        problem(400, "more than one Host"),
    ),
    ("rfc9110_7_2 Host with space", request("Host: a b", host=False), problem(400, "invalid Host")),
    ("rfc9110_7_2 Host with slash", request("Host: a/b", host=False), problem(400, "invalid Host")),
    ("rfc9110_7_2 Host with @", request("Host: u@a", host=False), problem(400, "invalid Host")),
    ("rfc9110_7_2 Host bad port", request("Host: a:8x", host=False), problem(400, "invalid Host")),
    ("rfc9110_7_2 Host bad %", request("Host: a%zz", host=False), problem(400, "invalid Host")),
    # Request target, RFC 9112 3.2
    (
        "rfc9112_3_2 fragment",
        request(uri="/a#b"),
        problem(400, "fragment in request-target"),
    ),
    (
        "rfc9112_3_2_4 asterisk-form without OPTIONS",
        request(uri="*"),
        problem(400, "asterisk-form without OPTIONS"),
    ),
    (
        "rfc9112_3_2_3 authority-form without CONNECT",
        request(uri="a:80"),
        problem(400, "invalid request-target form"),
    ),
    (
        "rfc9112_3_2_2 absolute-form with a differing Host",
        request(uri="http://b/x"),
        problem(400, "Host differs from the request-target's authority"),
    ),
    (
        "rfc9112_3_2_2 absolute-form with a differing port",
        request("Host: b:8080", uri="http://b/x", host=False),
        problem(400, "Host differs from the request-target's authority"),
    ),
    (
        "rfc9112_3_2_2 absolute-form https default port is not http's",
        request("Host: b:80", uri="https://b/x", host=False),
        problem(400, "Host differs from the request-target's authority"),
    ),
    (
        "rfc9110_4_2_4 userinfo",
        request(uri="http://u:p@a/x"),
        problem(400, "userinfo in request-target"),
    ),
    (
        "rfc9110_4_2_1 empty authority",
        request(uri="http:///x"),
        problem(400, "invalid authority in request-target"),
    ),
    (
        "rfc9112_3_2_2 other scheme",
        request(uri="ftp://a/x"),
        problem(400, "request-target scheme is not http or https"),
    ),
    (
        "rfc9112_3_2 absolute-form still needs Host in HTTP/1.1",
        request(uri="http://a/x", host=False),
        problem(400, "missing Host"),
    ),
    # Method and version
    ("rfc9110_9_1 method token", request(method="G T"), problem(400, "invalid method token")),
    ("rfc9110_9_1 empty method", request(method=""), problem(400, "invalid method token")),
    ("rfc9112_2_3 HTTP/0.9", request(version="0.9"), problem(400, "HTTP/0.9 request")),
    ("rfc9110_15_6_6 HTTP/2.0", request(version="2.0"), problem(505, "HTTP version not supported")),
    (
        "rfc9110_9_3_6 CONNECT not supported",
        request(method="CONNECT", uri="a:443"),
        problem(501, "CONNECT is not supported"),
    ),
]


@pytest.mark.parametrize(
    ("name", "req", "expected"), REQUEST_RULES, ids=[r[0] for r in REQUEST_RULES]
)
def test_request_rule(name: str, req: Request, expected: HttpProblem) -> None:
    assert check_request(req) == expected


ACCEPTED_REQUESTS = [
    ("rfc9112_6_3 equal CL merged as HAProxy", request("Content-Length: 3", "Content-Length: 3")),
    ("rfc9112_6_3 equal CL list merged", request("Content-Length: 3, 3")),
    ("rfc9110_8_6 CL with OWS", request("Content-Length:\t3 \t")),
    ("rfc9110_8_6 CL with leading zeros", request("Content-Length: 007")),
    ("rfc9112_7 coding case-insensitive", request("Transfer-Encoding: Chunked ", method="POST")),
    ("rfc9112_3_2 HTTP/1.0 without Host", request(version="1.0", host=False)),
    ("rfc9110_7_2 empty Host", request("Host: ", host=False)),
    ("rfc9110_7_2 IPv6 Host", request("Host: [2001:db8::1]:8080", host=False)),
    ("rfc9110_7_2 pct-encoded Host", request("Host: a%2Db", host=False)),
    ("rfc9112_3_2_4 OPTIONS *", request(method="OPTIONS", uri="*")),
    (
        "rfc9112_3_2_2 absolute-form same host",
        request("Host: A.example", uri="http://a.EXAMPLE/x", host=False),
    ),
    ("rfc9112_3_2_2 default port either side", request("Host: a:80", uri="http://a/x", host=False)),
    ("rfc9112_3_2_2 https default port", request("Host: a", uri="HTTPS://a:443", host=False)),
    ("rfc9112_3_2_2 IPv6 authority", request("Host: [::1]", uri="http://[::1]:80/", host=False)),
    (
        "rfc9112_3_2_2 absolute-form HTTP/1.0 without Host",
        request(uri="http://a/", version="1.0", host=False),
    ),
    ("rfc9110_10_1_1 other Expect forwarded (no 417, as HAProxy)", request("Expect: foo")),
    (
        "HAProxy HTTP/1.0 POST with a body",
        request("Content-Length: 3", method="POST", version="1.0"),
    ),
    ("HAProxy HTTP/1.0 GET with an empty body", request("Content-Length: 0", version="1.0")),
    ("rfc9110_7_6_1 ordinary Connection options", request("Connection: keep-alive, Upgrade")),
]


@pytest.mark.parametrize(("name", "req"), ACCEPTED_REQUESTS, ids=[r[0] for r in ACCEPTED_REQUESTS])
def test_request_accepted(name: str, req: Request) -> None:
    assert check_request(req) is None


# ---------------------------------------------------------------------------------------
# Framing, RFC 9112 6.3


def test_request_framing_rfc9112_6_3() -> None:
    assert request_framing(request()) == NO_BODY  # rule 7
    assert request_framing(request("Content-Length: 0")) == NO_BODY
    assert request_framing(request("Content-Length: 12")) == Framing("length", 12)  # rule 6
    assert request_framing(request("Content-Length: 5, 5")) == Framing("length", 5)
    assert request_framing(request("Transfer-Encoding: chunked")) == CHUNKED  # rule 4


def test_request_framing_on_an_unchecked_request_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unchecked"):
        request_framing(request("Content-Length: 1", "Content-Length: 2"))


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 100), ("GET", 101), ("GET", 103), ("GET", 204), ("GET", 304)],
)
def test_no_body_whatever_the_headers_say_rfc9112_6_3_rule1(method: str, status: int) -> None:
    for fields in (
        ("Content-Length: 10",),
        ("Transfer-Encoding: chunked",),
        ("Content-Length: 1", "Transfer-Encoding: chunked"),
        ("Content-Length: bogus",),
    ):
        assert response_framing(method, status, response(*fields)) == NO_BODY


def test_2xx_to_connect_is_a_problem_rfc9112_6_3_rule2() -> None:
    assert response_framing("CONNECT", 200, response()) == problem(502, "2xx answer to CONNECT")
    assert response_framing("CONNECT", 407, response("Content-Length: 0")) == NO_BODY


def test_response_framing_rfc9112_6_3() -> None:
    assert response_framing("GET", 200, response("Transfer-Encoding: chunked")) == CHUNKED
    assert response_framing("GET", 200, response("Transfer-Encoding: gzip, chunked")) == CHUNKED
    assert response_framing("POST", 201, response("Content-Length: 7")) == Framing("length", 7)
    assert response_framing("GET", 200, response("Content-Length: 0")) == NO_BODY
    assert response_framing("GET", 200, response("Content-Length: 2, 2")) == Framing("length", 2)
    assert response_framing("GET", 200, response()) == UNTIL_CLOSE  # rule 8
    assert response_framing("GET", 200, response(version="1.0")) == UNTIL_CLOSE


BROKEN_RESPONSES = [
    ("rfc9112_6_1 CL with TE", ("Content-Length: 3", "Transfer-Encoding: chunked"), "1.1"),
    ("rfc9112_6_3 differing CL", ("Content-Length: 3", "Content-Length: 4"), "1.1"),
    ("rfc9110_8_6 invalid CL", ("Content-Length: 3x",), "1.1"),
    ("rfc9112_6_3 chunked not last", ("Transfer-Encoding: chunked, gzip",), "1.1"),
    ("rfc9112_6_3 no chunked", ("Transfer-Encoding: gzip",), "1.1"),
    ("rfc9112_6_1 chunked twice", ("Transfer-Encoding: chunked, chunked",), "1.1"),
    ("rfc9112_6_1 empty coding", ("Transfer-Encoding: chunked,,",), "1.1"),
    ("rfc9112_6_1 TE in HTTP/1.0", ("Transfer-Encoding: chunked",), "1.0"),
]


@pytest.mark.parametrize(
    ("name", "fields", "version"), BROKEN_RESPONSES, ids=[r[0] for r in BROKEN_RESPONSES]
)
def test_broken_response_framing_is_502(name: str, fields: tuple[str, ...], version: str) -> None:
    result = response_framing("GET", 200, response(*fields, version=version))
    assert isinstance(result, HttpProblem) and result.status == 502


# ---------------------------------------------------------------------------------------
# Hop-by-hop fields, RFC 9110 7.6.1


def test_hop_by_hop_rfc9110_7_6_1() -> None:
    headers = Headers(
        [
            ("Host", "a"),
            ("Connection", "keep-alive, X-Private,  , Upgrade"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("X-Private", "1"),
            ("Transfer-Encoding", "chunked"),
        ]
    )
    assert hop_by_hop(headers) == {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "x-private",
    }


def test_hop_by_hop_never_drops_framing_fields() -> None:
    """RFC 9110 7.6.1 makes Connection name fields to drop; dropping Content-Length,
    Transfer-Encoding or Host would change how the next hop frames or routes the message."""
    headers = Headers([("Connection", "Content-Length, transfer-encoding, HOST, X-A")])
    assert hop_by_hop(headers) == {"connection", "x-a"}


def test_hop_by_hop_of_a_plain_request_is_empty() -> None:
    assert hop_by_hop(Headers([("Host", "a"), ("Accept", "*/*")])) == set()


# ---------------------------------------------------------------------------------------
# WebSocket opening handshake, RFC 6455 4.1 and RFC 9110 7.8

KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="


def websocket(*fields: str, method: str = "GET", version: str = "1.1") -> Request:
    return request(
        "Connection: keep-alive, Upgrade",
        "Upgrade: websocket",
        *fields,
        method=method,
        version=version,
    )


def test_valid_websocket_upgrade_rfc6455_4_1() -> None:
    assert is_websocket_upgrade(websocket(KEY, "Sec-WebSocket-Version: 13")) is True
    req = request("Connection: upgrade", "Upgrade: WebSocket", KEY, "Sec-WebSocket-Version: 13")
    assert is_websocket_upgrade(req) is True


WEBSOCKET_PROBLEMS = [
    (
        "rfc6455_4_1 no key",
        websocket("Sec-WebSocket-Version: 13"),
        "missing or invalid Sec-WebSocket-Key",
    ),
    (
        "rfc6455_4_1 short key",
        websocket("Sec-WebSocket-Key: abc", "Sec-WebSocket-Version: 13"),
        "missing or invalid Sec-WebSocket-Key",
    ),
    (
        "rfc6455_4_1 two keys",
        websocket(KEY, KEY, "Sec-WebSocket-Version: 13"),
        "missing or invalid Sec-WebSocket-Key",
    ),
    (
        "rfc6455_4_1 version 8",
        websocket(KEY, "Sec-WebSocket-Version: 8"),
        "Sec-WebSocket-Version is not 13",
    ),
    ("rfc6455_4_1 no version", websocket(KEY), "Sec-WebSocket-Version is not 13"),
    (
        "rfc6455_4_1 POST",
        websocket(KEY, "Sec-WebSocket-Version: 13", method="POST"),
        "WebSocket upgrade not on GET",
    ),
]


@pytest.mark.parametrize(
    ("name", "req", "reason"), WEBSOCKET_PROBLEMS, ids=[r[0] for r in WEBSOCKET_PROBLEMS]
)
def test_malformed_websocket_upgrade_is_400(name: str, req: Request, reason: str) -> None:
    assert is_websocket_upgrade(req) == problem(400, reason)


def test_not_a_websocket_upgrade() -> None:
    assert is_websocket_upgrade(request()) is False
    # RFC 9110 7.8: Upgrade needs the "upgrade" connection option, and is ignored in 1.0.
    assert is_websocket_upgrade(request("Upgrade: websocket", KEY)) is False
    assert is_websocket_upgrade(websocket(KEY, "Sec-WebSocket-Version: 13", version="1.0")) is False
    assert is_websocket_upgrade(request("Connection: Upgrade", "Upgrade: h2c")) is False


# ---------------------------------------------------------------------------------------
# Expect, RFC 9110 10.1.1


def test_expects_continue_rfc9110_10_1_1() -> None:
    assert expects_continue(request("Expect: 100-Continue", method="POST"))
    assert not expects_continue(request("Expect: 100-continue", version="1.0"))
    assert not expects_continue(request("Expect: foo"))
    assert not expects_continue(request())
    # HAProxy 2.6 (http_handle_expect_hdr) reads the first element of the first Expect.
    assert expects_continue(request("Expect: 100-continue, foo", method="POST"))
    assert not expects_continue(request("Expect: foo, 100-continue", method="POST"))


# ---------------------------------------------------------------------------------------
# option forwardfor, as HAProxy applies it


def test_forwardfor_appends_the_client_address() -> None:
    req = request("X-Forwarded-For: 10.9.9.9")
    forwarded_for(req, "192.0.2.7", None, "X-Forwarded-For", False)
    assert req.headers.items[-2:] == [
        ("X-Forwarded-For", "10.9.9.9"),
        ("X-Forwarded-For", "192.0.2.7"),
    ]
    assert req.headers.modified


def test_forwardfor_if_none_keeps_an_existing_header() -> None:
    req = request("x-forwarded-for: 10.9.9.9")
    forwarded_for(req, "192.0.2.7", None, "X-Forwarded-For", True)
    assert req.headers.get_all("X-Forwarded-For") == ["10.9.9.9"]
    assert not req.headers.modified
    req = request()
    forwarded_for(req, "192.0.2.7", None, "X-Forwarded-For", True)
    assert req.headers.get("x-forwarded-for") == "192.0.2.7"


def test_forwardfor_header_name() -> None:
    req = request()
    forwarded_for(req, "192.0.2.7", None, "X-Client-IP", False)
    assert req.headers.items[-1] == ("X-Client-IP", "192.0.2.7")


@pytest.mark.parametrize(
    ("client", "network", "added"),
    [
        ("127.0.0.1", "127.0.0.0/8", False),
        ("10.1.2.3", "10.0.0.0/255.0.0.0", False),
        ("10.1.2.3", "10.1.2.3", False),
        ("10.1.2.3", "10.1.2.4", True),
        ("192.0.2.7", "127.0.0.0/8", True),
        ("2001:db8::1", "2001:db8::/32", False),
        ("2001:db8::1", "127.0.0.0/8", True),  # another family never matches
        ("::ffff:127.0.0.1", "127.0.0.0/8", True),  # as HAProxy: an IPv6 source
    ],
)
def test_forwardfor_except(client: str, network: str, added: bool) -> None:
    req = request()
    forwarded_for(req, client, network, "X-Forwarded-For", False)
    assert req.headers.has("X-Forwarded-For") is added


def test_forwardfor_ipv6_as_haproxy_writes_it() -> None:
    cases = {
        "2001:DB8:0:0:0:0:0:1": "2001:db8::1",
        "::ffff:192.0.2.1": "::ffff:192.0.2.1",
        "fe80::1%eth0": "fe80::1",
        "[::1]": "::1",
    }
    for client, written in cases.items():
        req = request()
        forwarded_for(req, client, None, "X-Forwarded-For", False)
        assert req.headers.get("X-Forwarded-For") == written


@given(st.binary(min_size=16, max_size=16))
@example(bytes(16))  # ::
@example(bytes(15) + b"\x01")  # ::1
@example(bytes(15) + b"\x02")  # ::2
@example(bytes(13) + b"\x01\x00\x00")  # ::0.1.0.0 (IPv4-compatible)
@example(bytes(10) + b"\xff\xff" + bytes(4))  # ::ffff:0.0.0.0 (IPv4-mapped)
@example(bytes(10) + b"\xff\xfe\x01\x02\x03\x04")  # ::fffe:102:304
@example(b"\x00\x01" + bytes(4) + b"\x00\x01" + bytes(7) + b"\x01")  # 1:0:0:1::1
def test_forwardfor_ipv6_matches_inet_ntop(packed: bytes) -> None:
    """HAProxy formats an IPv6 source with inet_ntop; so does poise, for any address."""
    text = socket.inet_ntop(socket.AF_INET6, packed)
    req = request()
    forwarded_for(req, text, None, "X-Forwarded-For", False)
    assert req.headers.get("X-Forwarded-For") == text


def test_forwardfor_without_an_ip_client_adds_nothing() -> None:
    req = request()
    forwarded_for(req, "/run/poise.sock", None, "X-Forwarded-For", False)
    assert not req.headers.has("X-Forwarded-For")


# -- the shortcut for plain responses -------------------------------------------------


def head(*fields: bytes, status: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return status + b"".join(b"\r\n" + f for f in fields) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "length"),
    [
        (head(b"Content-Length: 3"), 3),
        (head(b"Server: nginx", b"content-length:0", b"Connection: keep-alive"), 0),
        (head(b"Content-Length: 12 ", b"Connection:  Keep-Alive"), 12),
        # Everything else takes the full path (-1).
        (head(b"Content-Length: 3", status=b"HTTP/1.0 200 OK"), -1),
        (head(b"Server: x"), -1),  # until close
        (head(b"Transfer-Encoding: chunked"), -1),
        (head(b"Content-Length: 3", b"Transfer-Encoding: chunked"), -1),
        (head(b"Content-Length: 3", b"Content-Length: 3"), -1),
        (head(b"Content-Length: 3,3"), -1),
        (head(b"Content-Length: +3"), -1),
        (head(b"Content-Length: 1234567890123456"), -1),
        (head(b"Content-Length: 3", b"Connection: close"), -1),
        (head(b"Content-Length: 3", b"Connection: keep-alive, x-hop"), -1),
        (head(b"Content-Length : 3"), -1),
    ],
)
def test_plain_length_only_for_the_plain_case(raw: bytes, length: int) -> None:
    assert plain_length(raw, len(raw)) == length


def test_plain_length_reads_the_head_only() -> None:
    raw = head(b"Content-Length: 20")
    body = b"\r\nTransfer-Encoding: x\r\n"
    assert plain_length(raw + body, len(raw)) == 20


_FIELD_NAMES = st.sampled_from(
    [b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection", b"Server", b"X-A"]
)
_FIELD_VALUES = st.sampled_from(
    [b"0", b"3", b" 7 ", b"3, 3", b"chunked", b"keep-alive", b"close", b"x"]
)


@given(st.lists(st.tuples(_FIELD_NAMES, _FIELD_VALUES), max_size=5))
def test_plain_length_agrees_with_response_framing(fields: list[tuple[bytes, bytes]]) -> None:
    """Whenever the shortcut answers, the full rules frame the response the same way and
    keep the connection."""
    raw = head(*(name + b": " + value for name, value in fields))
    length = plain_length(raw, len(raw))
    if length < 0:
        return
    items = [(n.decode(), v.decode().strip()) for n, v in fields]
    resp = Response(200, "OK", "1.1", Headers(items))
    assert response_framing("GET", 200, resp) == (Framing("length", length) if length else NO_BODY)
    assert keep_alive("1.1", resp.headers)


_HOST_AS_WRITTEN = re.compile(  # RFC 3986 3.2.2 spelt out: the pattern validate unrolls
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]{0,5})?"
)


@given(st.text(alphabet="aZ09-._~!$&'()*+,;=%fG:[]@/ ", max_size=12))
@example("a%2fb:80")
@example("a%2:80")
def test_host_pattern_is_the_rfc_grammar(host: str) -> None:
    assert (_HOST.fullmatch(host) is None) == (_HOST_AS_WRITTEN.fullmatch(host) is None)
