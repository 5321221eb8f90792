"""Malformed requests and the answer poise owes each one: a table, no tests.

The raw-socket tests through a running poise send `raw` in one write and expect: the first
`good_before` requests answered normally (forwarded), then one response with `status`,
nothing else forwarded to any server, and the connection closed.

`caught_by` says which step refuses it first, in the order the HTTP session runs them:
`check_request_head` (validate, on the raw head), `httptools` (the parser),
`check_request`, `is_websocket_upgrade`, or `body` (the request body's framing, found after
the head was accepted: with the whole request in one write nothing has been forwarded yet).
tests/unit/test_httptools_behaviour.py runs every row through those same steps, so the
table stays true.

Not here, because HAProxy 2.6 forwards them (tests/io/test_http_heads.py): a method token
llhttp does not know (`BAN`, `get`), and bare LF line ends (rewritten with CRLF).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    status: int
    rfc: str
    caught_by: str
    good_before: int = 0
    in_body: bool = False


GOOD = b"GET /first HTTP/1.1\r\nHost: example.com\r\n\r\n"
GOOD_POST = b"POST /first HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"


def _req(lines: str, body: bytes = b"", start: str = "POST / HTTP/1.1") -> bytes:
    """A request: the start line, the header lines given (one per line), the body."""
    head = start + "\r\n" + "".join(line + "\r\n" for line in lines.splitlines() if line)
    return head.encode("latin-1") + b"\r\n" + body


CASES: list[Case] = [
    # -- Message framing: Content-Length and Transfer-Encoding (RFC 9112 6) --------------
    Case(
        "cl-te",
        _req("Host: a\nContent-Length: 6\nTransfer-Encoding: chunked", b"0\r\n\r\nG"),
        400,
        "RFC 9112 6.1, 6.3",
        "httptools",
    ),
    Case(
        "te-cl",
        _req("Host: a\nTransfer-Encoding: chunked\nContent-Length: 3", b"0\r\n\r\n"),
        400,
        "RFC 9112 6.1, 6.3",
        "httptools",
    ),
    Case(
        "cl-differing",
        _req("Host: a\nContent-Length: 3\nContent-Length: 4", b"abcd"),
        400,
        "RFC 9112 6.3",
        "httptools",
    ),
    Case(
        "cl-repeated-equal",
        _req("Host: a\nContent-Length: 3\nContent-Length: 3", b"abc"),
        400,
        "RFC 9112 6.3 (llhttp refuses what HAProxy merges)",
        "httptools",
    ),
    Case(
        "cl-list", _req("Host: a\nContent-Length: 3, 4", b"abcd"), 400, "RFC 9110 8.6", "httptools"
    ),
    Case("cl-plus", _req("Host: a\nContent-Length: +3", b"abc"), 400, "RFC 9110 8.6", "httptools"),
    Case("cl-negative", _req("Host: a\nContent-Length: -1"), 400, "RFC 9110 8.6", "httptools"),
    Case("cl-hex", _req("Host: a\nContent-Length: 0x3", b"abc"), 400, "RFC 9110 8.6", "httptools"),
    Case("cl-inner-space", _req("Host: a\nContent-Length: 1 2"), 400, "RFC 9110 8.6", "httptools"),
    Case("cl-empty", _req("Host: a\nContent-Length: "), 400, "RFC 9110 8.6", "httptools"),
    Case(
        "cl-overflow",
        _req("Host: a\nContent-Length: 99999999999999999999999"),
        400,
        "RFC 9110 8.6",
        "httptools",
    ),
    Case(
        "te-chunked-twice",
        _req("Host: a\nTransfer-Encoding: chunked, chunked", b"0\r\n\r\n"),
        400,
        "RFC 9112 6.1",
        "httptools",
    ),
    Case(
        "te-chunked-two-fields",
        _req("Host: a\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked", b"0\r\n\r\n"),
        400,
        "RFC 9112 6.1",
        "httptools",
    ),
    Case(
        "te-chunked-not-last",
        _req("Host: a\nTransfer-Encoding: chunked, gzip", b"0\r\n\r\n"),
        400,
        "RFC 9112 6.1, 6.3",
        "httptools",
    ),
    Case(
        "te-without-chunked",
        _req("Host: a\nTransfer-Encoding: gzip", b"abc"),
        400,
        "RFC 9112 6.3",
        "httptools",
    ),
    Case(
        "te-xchunked",
        _req("Host: a\nTransfer-Encoding: xchunked", b"0\r\n\r\n"),
        400,
        "RFC 9112 6.3",
        "httptools",
    ),
    Case(
        "te-unknown-coding",
        _req("Host: a\nTransfer-Encoding: foo, chunked", b"0\r\n\r\n"),
        501,
        "RFC 9112 6.1",
        "check_request",
    ),
    Case(
        "te-gzip-chunked",
        _req("Host: a\nTransfer-Encoding: gzip, chunked", b"0\r\n\r\n"),
        501,
        "RFC 9112 6.1 (HAProxy supports only chunked)",
        "check_request",
    ),
    Case(
        "te-empty-element",
        _req("Host: a\nTransfer-Encoding: ,chunked", b"0\r\n\r\n"),
        400,
        "RFC 9110 5.6.1 (refused as HAProxy does)",
        "check_request",
    ),
    Case(
        "te-in-http10",
        _req("Host: a\nTransfer-Encoding: chunked", b"0\r\n\r\n", start="POST / HTTP/1.0"),
        400,
        "RFC 9112 6.1",
        "check_request",
    ),
    Case(
        "te-vertical-tab",
        _req("Host: a\nTransfer-Encoding: \x0bchunked", b"0\r\n\r\n"),
        400,
        "RFC 9110 5.5",
        "check_request_head",
    ),
    Case(
        "http10-get-with-body",
        _req("Host: a\nContent-Length: 3", b"abc", start="GET / HTTP/1.0"),
        413,
        "HAProxy: HTTP/1.0 GET/HEAD/DELETE with a body",
        "check_request",
    ),
    Case(
        "connection-drops-content-length",
        _req("Host: a\nContent-Length: 3\nConnection: Content-Length", b"abc"),
        400,
        "RFC 9110 7.6.1",
        "check_request",
    ),
    # -- Field syntax (RFC 9112 5, RFC 9110 5) -----------------------------------------
    Case(
        "space-before-colon",
        _req("Host: a\nTransfer-Encoding : chunked", b"0\r\n\r\n"),
        400,
        "RFC 9112 5.1",
        "check_request_head",
    ),
    Case(
        "tab-before-colon",
        _req("Host: a\nContent-Length\t: 3", b"abc"),
        400,
        "RFC 9112 5.1",
        "check_request_head",
    ),
    Case(
        "obs-fold",
        _req("Host: a\nX-A: one\n two", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 5.2",
        "check_request_head",
    ),
    Case(
        "obs-fold-hides-te",
        _req("Host: a\nX-A: y\n Transfer-Encoding: chunked", b"0\r\n\r\n"),
        400,
        "RFC 9112 5.2",
        "check_request_head",
    ),
    Case(
        "space-before-first-field",
        _req(" Host: a", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 2.2",
        "check_request_head",
    ),
    Case(
        "bare-cr-in-value",
        _req("Host: a\nX-A: one\rtwo", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 2.2",
        "check_request_head",
    ),
    Case(
        "nul-in-value",
        _req("Host: a\nX-A: one\x00two", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.5",
        "check_request_head",
    ),
    Case(
        "ctl-in-value",
        _req("Host: a\nX-A: one\x01two", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.5",
        "check_request_head",
    ),
    Case(
        "del-in-value",
        _req("Host: a\nX-A: one\x7ftwo", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.5",
        "check_request_head",
    ),
    Case(
        "separator-in-name",
        _req("Host: a\nX(A): b", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.1",
        "check_request_head",
    ),
    Case(
        "non-ascii-in-name",
        _req("Host: a\nX-\xe9: b", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.1",
        "check_request_head",
    ),
    Case(
        "empty-name",
        _req("Host: a\n: b", start="GET / HTTP/1.1"),
        400,
        "RFC 9110 5.1",
        "check_request_head",
    ),
    Case(
        "line-without-colon",
        _req("Host: a\nX-A b", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 5.1",
        "check_request_head",
    ),
    # -- Request line (RFC 9112 3) -------------------------------------------------------
    Case(
        "double-space-in-request-line",
        _req("Host: a", start="GET  / HTTP/1.1"),
        400,
        "RFC 9112 3",
        "check_request_head",
    ),
    Case(
        "tab-in-request-line",
        _req("Host: a", start="GET\t/ HTTP/1.1"),
        400,
        "RFC 9112 3",
        "check_request_head",
    ),
    Case(
        "fragment-in-target",
        _req("Host: a", start="GET /a#b HTTP/1.1"),
        400,
        "RFC 9112 3.2",
        "check_request_head",
    ),
    Case(
        "non-ascii-in-target",
        _req("Host: a", start="GET /\xe9 HTTP/1.1"),
        400,
        "RFC 9112 3.2",
        "check_request_head",
    ),
    Case("http09", b"GET /\r\n\r\n", 400, "RFC 9112 3", "check_request_head"),
    Case(
        "lowercase-version",
        _req("Host: a", start="GET / http/1.1"),
        400,
        "RFC 9112 2.3",
        "check_request_head",
    ),
    Case("http12", _req("Host: a", start="GET / HTTP/1.2"), 400, "RFC 9112 2.3", "httptools"),
    Case(
        "http20-over-h1",
        _req("Host: a", start="GET / HTTP/2.0"),
        505,
        "RFC 9110 15.6.6",
        "check_request",
    ),
    Case(
        "invalid-method",
        _req("Host: a", start="G@T / HTTP/1.1"),
        400,
        "RFC 9110 9.1",
        "check_request_head",
    ),
    Case(
        "connect",
        _req("Host: a:443", start="CONNECT a:443 HTTP/1.1"),
        501,
        "RFC 9110 9.3.6",
        "check_request",
    ),
    Case(
        "asterisk-form-on-get",
        _req("Host: a", start="GET * HTTP/1.1"),
        400,
        "RFC 9112 3.2.4",
        "check_request",
    ),
    Case(
        "absolute-form-host-differs",
        _req("Host: b.example", start="GET http://a.example/ HTTP/1.1"),
        400,
        "RFC 9112 3.2.2",
        "check_request",
    ),
    Case(
        "absolute-form-userinfo",
        _req("Host: a.example", start="GET http://u@a.example/ HTTP/1.1"),
        400,
        "RFC 9110 4.2.4",
        "check_request",
    ),
    # -- Host (RFC 9112 3.2) -------------------------------------------------------------
    Case(
        "missing-host", _req("X-A: b", start="GET / HTTP/1.1"), 400, "RFC 9112 3.2", "check_request"
    ),
    Case(
        "two-hosts",
        _req("Host: a\nHost: b", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 3.2",
        "check_request",
    ),
    Case(
        "invalid-host",
        _req("Host: a b", start="GET / HTTP/1.1"),
        400,
        "RFC 9112 3.2, RFC 9110 7.2",
        "check_request",
    ),
    # -- WebSocket handshake (RFC 6455 4.1) ----------------------------------------------
    Case(
        "websocket-without-key",
        _req(
            "Host: a\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13",
            start="GET /ws HTTP/1.1",
        ),
        400,
        "RFC 6455 4.1",
        "is_websocket_upgrade",
    ),
    Case(
        "websocket-bad-version",
        _req(
            "Host: a\nConnection: Upgrade\nUpgrade: websocket\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 8",
            start="GET /ws HTTP/1.1",
        ),
        400,
        "RFC 6455 4.1",
        "is_websocket_upgrade",
    ),
    # -- Chunked body (RFC 9112 7.1): refused after the head was accepted ----------------
    Case(
        "chunk-size-not-hex",
        _req("Host: a\nTransfer-Encoding: chunked", b"zz\r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-size-0x",
        _req("Host: a\nTransfer-Encoding: chunked", b"0x3\r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-size-space",
        _req("Host: a\nTransfer-Encoding: chunked", b"3 \r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-size-overflow",
        _req("Host: a\nTransfer-Encoding: chunked", b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-data-too-long",
        _req("Host: a\nTransfer-Encoding: chunked", b"3\r\nabcX\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-ext-bare-cr",
        _req("Host: a\nTransfer-Encoding: chunked", b"3;a\rb\r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1.1, 2.2",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-ext-nul",
        _req("Host: a\nTransfer-Encoding: chunked", b"3;a\x00b\r\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1.1",
        "body",
        in_body=True,
    ),
    Case(
        "trailer-space-before-colon",
        _req("Host: a\nTransfer-Encoding: chunked", b"0\r\nX : y\r\n\r\n"),
        400,
        "RFC 9112 7.1.2, 5.1",
        "body",
        in_body=True,
    ),
    Case(
        "trailer-obs-fold",
        _req("Host: a\nTransfer-Encoding: chunked", b"0\r\nX: y\r\n z\r\n\r\n"),
        400,
        "RFC 9112 7.1.2, 5.2",
        "body",
        in_body=True,
    ),
    Case(
        "chunk-size-bare-lf",
        _req("Host: a\nTransfer-Encoding: chunked", b"3\nabc\r\n0\r\n\r\n"),
        400,
        "RFC 9112 7.1, 2.2",
        "body",
        in_body=True,
    ),
    # -- A bad request after a good one on the same connection --------------------------
    Case(
        "good-then-space-before-colon",
        GOOD + b"GET /second HTTP/1.1\r\nHost : example.com\r\n\r\n",
        400,
        "RFC 9112 5.1",
        "check_request_head",
        good_before=1,
    ),
    Case(
        "good-then-cl-te",
        GOOD
        + _req("Host: example.com\nContent-Length: 6\nTransfer-Encoding: chunked", b"0\r\n\r\nG"),
        400,
        "RFC 9112 6.1",
        "httptools",
        good_before=1,
    ),
    Case(
        "good-post-then-obs-fold",
        GOOD_POST + _req("Host: example.com\nX-A: a\n b", start="GET /second HTTP/1.1"),
        400,
        "RFC 9112 5.2",
        "check_request_head",
        good_before=1,
    ),
]
