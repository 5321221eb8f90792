"""What httptools (llhttp, in its default strict mode) refuses by itself, and what it lets
through for poise's own checks to refuse: pinned with the real parser, so that the checks in
poise.core.http.validate neither duplicate it blindly nor miss what it accepts.

The last part runs every row of tests/io/smuggling_cases.py through the same steps as the
HTTP session (raw head check, httptools, check_request, is_websocket_upgrade, body framing)
and checks the status and the step that refuses it.
"""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.core.http.headers import Headers
from poise.core.http.heads import read_unknown_method, with_crlf
from poise.core.http.message import Request, Response
from poise.core.http.validate import (
    NO_BODY,
    HttpProblem,
    check_request,
    check_request_head,
    is_websocket_upgrade,
    request_framing,
    response_framing,
)
from tests.io.smuggling_cases import CASES, Case


class Head:
    """Collects what the session collects from httptools' callbacks."""

    def __init__(self) -> None:
        self.url = b""
        self.items: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.items.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def parse(raw: bytes) -> tuple[str, Head, httptools.HttpRequestParser]:
    """Feed `raw` to a fresh request parser: ("ok" | "upgrade" | the error's message)."""
    head = Head()
    parser = httptools.HttpRequestParser(head)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        return "upgrade", head, parser
    except httptools.HttpParserError as exc:
        return f"error: {exc}", head, parser
    return "ok", head, parser


def parse_response(raw: bytes) -> tuple[str, Head]:
    head = Head()
    parser = httptools.HttpResponseParser(head)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        return "upgrade", head
    except httptools.HttpParserError as exc:
        return f"error: {exc}", head
    return "ok", head


def request_of(head: Head, parser: httptools.HttpRequestParser) -> Request:
    return Request(
        parser.get_method().decode("latin-1"),
        head.url.decode("latin-1"),
        parser.get_http_version(),
        Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.items]),
    )


def head_of(raw: bytes) -> bytes:
    """The head as the session cuts it: through the first CRLFCRLF."""
    return raw[: raw.index(b"\r\n\r\n") + 4]


GET = b"GET / HTTP/1.1\r\nHost: a\r\n"
POST = b"POST / HTTP/1.1\r\nHost: a\r\n"

# ---------------------------------------------------------------------------------------
# Refused by llhttp itself. `wire`: the raw head check refuses it too (defence in depth,
# in the same single scan); False where only the parsed values show it.

LLHTTP_REFUSES = [
    ("obs-fold RFC 9112 5.2", GET + b"X: a\r\n b\r\n\r\n", True),
    ("obs-fold with HTAB RFC 9112 5.2", GET + b"X: a\r\n\tb\r\n\r\n", True),
    ("space before colon RFC 9112 5.1", GET + b"X : a\r\n\r\n", True),
    ("HTAB before colon RFC 9112 5.1", GET + b"X\t: a\r\n\r\n", True),
    ("bare CR in value RFC 9112 2.2", GET + b"X: a\rb\r\n\r\n", True),
    ("bare LF line end RFC 9112 2.2", GET + b"X: a\nY: b\r\n\r\n", True),
    ("NUL in value RFC 9110 5.5", GET + b"X: a\x00b\r\n\r\n", True),
    ("CTL 0x01 in value RFC 9110 5.5", GET + b"X: a\x01b\r\n\r\n", True),
    ("VT in value RFC 9110 5.5", GET + b"X: a\x0bb\r\n\r\n", True),
    ("FF in value RFC 9110 5.5", GET + b"X: a\x0cb\r\n\r\n", True),
    ("ESC in value RFC 9110 5.5", GET + b"X: a\x1bb\r\n\r\n", True),
    ("DEL in value RFC 9110 5.5", GET + b"X: a\x7fb\r\n\r\n", True),
    ("CTL in name RFC 9110 5.1", GET + b"X\x01Y: a\r\n\r\n", True),
    ("separator in name RFC 9110 5.1", GET + b"X(Y): a\r\n\r\n", True),
    ("slash in name RFC 9110 5.1", GET + b"X/Y: a\r\n\r\n", True),
    ("space in name RFC 9110 5.1", GET + b"X Y: a\r\n\r\n", True),
    ("non-ASCII in name RFC 9110 5.1", GET + b"X\xe9: a\r\n\r\n", True),
    ("empty name RFC 9110 5.1", GET + b": a\r\n\r\n", True),
    ("line without colon RFC 9112 5.1", GET + b"X a\r\n\r\n", True),
    ("space before first field RFC 9112 2.2", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", True),
    ("HTAB as request-line separator RFC 9112 3", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", True),
    ("space after version RFC 9112 3", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", True),
    ("CTL in target RFC 9112 3.2", b"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", True),
    ("DEL in target RFC 9112 3.2", b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", True),
    ("non-ASCII in target RFC 9112 3.2", b"GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", True),
    ("lower-case version RFC 9112 2.3", b"GET / http/1.1\r\nHost: a\r\n\r\n", True),
    ("invalid method token RFC 9110 9.1", b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", True),
    ("HTTP/1.2 RFC 9112 2.3", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", False),
    ("unknown method RFC 9110 9.1", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", False),
    ("lower-case method RFC 9110 9.1", b"get / HTTP/1.1\r\nHost: a\r\n\r\n", False),
    (
        "CL with TE RFC 9112 6.1",
        POST + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        False,
    ),
    (
        "TE with CL RFC 9112 6.1",
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
        False,
    ),
    (
        "two CL differing RFC 9112 6.3",
        POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
        False,
    ),
    ("two CL equal RFC 9112 6.3", POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", False),
    ("CL list RFC 9110 8.6", POST + b"Content-Length: 1, 1\r\n\r\n", False),
    ("CL sign RFC 9110 8.6", POST + b"Content-Length: +1\r\n\r\n", False),
    ("CL hex RFC 9110 8.6", POST + b"Content-Length: 0x1\r\n\r\n", False),
    ("CL inner space RFC 9110 8.6", POST + b"Content-Length: 1 2\r\n\r\n", False),
    ("CL empty RFC 9110 8.6", POST + b"Content-Length: \r\n\r\n", False),
    ("CL overflow RFC 9110 8.6", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", False),
    ("TE chunked twice RFC 9112 6.1", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", False),
    (
        "TE chunked in two fields RFC 9112 6.1",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        False,
    ),
    ("TE chunked not last RFC 9112 6.1", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", False),
    ("TE chunked then comma RFC 9112 6.1", POST + b"Transfer-Encoding: chunked,\r\n\r\n", False),
    ("TE without chunked RFC 9112 6.3", POST + b"Transfer-Encoding: gzip\r\n\r\n", False),
    ("TE xchunked RFC 9112 6.3", POST + b"Transfer-Encoding: xchunked\r\n\r\n", False),
    (
        "TE chunked with parameter RFC 9112 7.1",
        POST + b"Transfer-Encoding: chunked;a=b\r\n\r\n",
        False,
    ),
    ("TE identity RFC 9112 6.1", POST + b"Transfer-Encoding: identity\r\n\r\n", False),
    ("TE empty RFC 9112 6.1", POST + b"Transfer-Encoding: \r\n\r\n", False),
]


@pytest.mark.parametrize(
    ("name", "raw", "wire"), LLHTTP_REFUSES, ids=[c[0] for c in LLHTTP_REFUSES]
)
def test_llhttp_refuses(name: str, raw: bytes, wire: bool) -> None:
    outcome, _, _ = parse(raw)
    assert outcome.startswith("error"), outcome
    assert (check_request_head(head_of(raw)) is not None) is wire


BODIES_LLHTTP_REFUSES = [
    ("chunk size not hex RFC 9112 7.1", b"zz\r\nabc\r\n0\r\n\r\n"),
    ("chunk size with 0x RFC 9112 7.1", b"0x3\r\nabc\r\n0\r\n\r\n"),
    ("chunk size negative RFC 9112 7.1", b"-3\r\nabc\r\n0\r\n\r\n"),
    ("space before chunk size RFC 9112 7.1", b" 3\r\nabc\r\n0\r\n\r\n"),
    ("space after chunk size RFC 9112 7.1", b"3 \r\nabc\r\n0\r\n\r\n"),
    ("space before chunk extension RFC 9112 7.1.1", b"3 ;a=b\r\nabc\r\n0\r\n\r\n"),
    ("chunk size overflow RFC 9112 7.1", b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
    ("bare LF after chunk size RFC 9112 2.2", b"3\nabc\r\n0\r\n\r\n"),
    ("chunk data longer than size RFC 9112 7.1", b"3\r\nabcX\r\n0\r\n\r\n"),
    ("bare CR in chunk extension RFC 9112 7.1.1", b"3;a\rb\r\nabc\r\n0\r\n\r\n"),
    ("NUL in chunk extension RFC 9112 7.1.1", b"3;a\x00b\r\nabc\r\n0\r\n\r\n"),
    ("bare LF ending the trailer section RFC 9112 7.1.2", b"3\r\nabc\r\n0\r\n\n"),
    ("space before colon in trailer RFC 9112 5.1", b"0\r\nX : y\r\n\r\n"),
    ("obs-fold in trailer RFC 9112 5.2", b"0\r\nX: y\r\n z\r\n\r\n"),
]


@pytest.mark.parametrize(
    ("name", "body"), BODIES_LLHTTP_REFUSES, ids=[c[0] for c in BODIES_LLHTTP_REFUSES]
)
def test_llhttp_refuses_chunked_body(name: str, body: bytes) -> None:
    outcome, head, _ = parse(POST + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert outcome.startswith("error"), outcome
    assert not head.complete


def test_llhttp_accepts_chunk_extensions_and_trailers() -> None:
    """RFC 9112 7.1.1, 7.1.2: extensions (quoted too) and trailer fields are legal."""
    body = b'3;a=b\r\nabc\r\n2;q="x y"\r\nde\r\n0\r\nX-T: 1\r\n\r\n'
    outcome, head, _ = parse(POST + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert outcome == "ok"
    assert head.complete and head.body == b"abcde"


# ---------------------------------------------------------------------------------------
# Let through by llhttp: poise's own checks refuse them.

LLHTTP_ALLOWS_POISE_REFUSES = [
    ("two spaces in request-line RFC 9112 3", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "head"),
    ("fragment in target RFC 9112 3.2", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", "head"),
    ("HTTP/0.9 request-line RFC 9112 3", b"GET /\r\n\r\n", "head"),
    ("HTTP/2.0 over HTTP/1 RFC 9110 15.6.6", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "request"),
    ("missing Host RFC 9112 3.2", b"GET / HTTP/1.1\r\n\r\n", "request"),
    ("two Host RFC 9112 3.2", GET + b"Host: b\r\n\r\n", "request"),
    ("invalid Host RFC 9112 3.2", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "request"),
    ("asterisk-form on GET RFC 9112 3.2.4", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "request"),
    (
        "absolute-form with another Host RFC 9112 3.2.2",
        b"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
        "request",
    ),
    (
        "userinfo in absolute-form RFC 9110 4.2.4",
        b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
        "request",
    ),
    ("CONNECT RFC 9110 9.3.6", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "request"),
    (
        "TE unknown coding RFC 9112 6.1",
        POST + b"Transfer-Encoding: foo, chunked\r\n\r\n",
        "request",
    ),
    ("TE empty element RFC 9110 5.6.1", POST + b"Transfer-Encoding: ,chunked\r\n\r\n", "request"),
    (
        "TE in HTTP/1.0 RFC 9112 6.1",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "request",
    ),
    (
        "TE over two fields with a coding before chunked RFC 9112 6.1",
        POST + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        "request",
    ),
    (
        "HTTP/1.0 GET with a body (HAProxy 413)",
        b"GET / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        "request",
    ),
    (
        "Connection names Content-Length RFC 9110 7.6.1",
        POST + b"Connection: content-length\r\n\r\n",
        "request",
    ),
    (
        "WebSocket upgrade without key RFC 6455 4.1",
        GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "websocket",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "step"),
    LLHTTP_ALLOWS_POISE_REFUSES,
    ids=[c[0] for c in LLHTTP_ALLOWS_POISE_REFUSES],
)
def test_llhttp_allows_poise_refuses(name: str, raw: bytes, step: str) -> None:
    outcome, head, parser = parse(raw)
    assert outcome in ("ok", "upgrade"), outcome
    head_problem = check_request_head(head_of(raw))
    if step == "head":
        assert head_problem is not None
        return
    assert head_problem is None
    req = request_of(head, parser)
    problem = check_request(req)
    if step == "request":
        assert problem is not None
        return
    assert problem is None
    assert isinstance(is_websocket_upgrade(req), HttpProblem)


LEGAL = [
    ("HTAB inside a value RFC 9110 5.5", GET + b"X: a\tb\r\n\r\n"),
    ("obs-text in a value RFC 9110 5.5", GET + b"X: caf\xe9\r\n\r\n"),
    ("OWS around a value RFC 9110 5.5", GET + b"X:\t a \t\r\n\r\n"),
    ("empty value RFC 9110 5.5", GET + b"X:\r\n\r\n"),
    ("leading empty line RFC 9112 2.2", b"\r\n" + GET + b"\r\n"),
    ("TE Chunked in capitals RFC 9112 7", POST + b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
    ("CL with leading zeros RFC 9110 8.6", POST + b"Content-Length: 003\r\n\r\nabc"),
    ("CL with trailing OWS RFC 9110 5.5", POST + b"Content-Length: 3 \r\n\r\nabc"),
    ("absolute-form, same host RFC 9112 3.2.2", b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("absolute-form, default port RFC 9112 3.2.2", b"GET http://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("OPTIONS * RFC 9112 3.2.4", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("HTTP/1.0 without Host RFC 9112 3.2", b"GET / HTTP/1.0\r\n\r\n"),
    ("WebDAV method llhttp knows RFC 9110 9.1", b"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("Expect other than 100-continue (HAProxy forwards it)", POST + b"Expect: foo\r\n\r\n"),
]


@pytest.mark.parametrize(("name", "raw"), LEGAL, ids=[c[0] for c in LEGAL])
def test_legal_edge_cases_pass_both(name: str, raw: bytes) -> None:
    outcome, head, parser = parse(raw)
    assert outcome == "ok", outcome
    assert check_request_head(head_of(raw)) is None
    assert check_request(request_of(head, parser)) is None


def test_llhttp_hands_values_over_with_trailing_whitespace() -> None:
    """RFC 9110 5.5: OWS around a value is not part of it. llhttp strips the leading OWS
    only, so every check on a value strips it again."""
    _, head, _ = parse(GET + b"Content-Length: 3 \t\r\nX:  a  \r\n\r\nabc")
    assert head.items[1:] == [(b"Content-Length", b"3 \t"), (b"X", b"a  ")]


def test_llhttp_skips_empty_lines_even_bare_lf_ones() -> None:
    """RFC 9112 2.2 lets a server ignore CRLFs before the request-line; llhttp also skips
    bare LFs there. The raw head check does not; the session then rewrites the head with
    CRLF, as HAProxy 2.6 does (core/http/heads.py), and checks it again."""
    raw = b"\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert parse(raw)[0] == "ok"
    assert check_request_head(raw) is not None
    assert with_crlf(raw) == (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", len(raw))
    assert check_request_head(with_crlf(raw)[0]) is None


def test_llhttp_raises_upgrade_for_connect_and_upgrade() -> None:
    """The session catches HttpParserUpgrade: for CONNECT and for any Upgrade request."""
    assert parse(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")[0] == "upgrade"
    h2c = GET + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n"
    outcome, head, parser = parse(h2c)
    assert outcome == "upgrade"
    assert is_websocket_upgrade(request_of(head, parser)) is False


def test_llhttp_refuses_data_after_an_http10_request() -> None:
    """llhttp treats an HTTP/1.0 request without keep-alive as the last one and refuses
    anything after it in the same feed: feed it one head at a time."""
    outcome, _, _ = parse(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    assert outcome == "error: Data after `Connection: close`"


def test_a_method_llhttp_does_not_know_is_read_with_a_stand_in() -> None:
    """RFC 9110 9.1: a method is any token, and HAProxy 2.6 forwards `BAN`, `FOO`, `get`;
    llhttp refuses what it does not know, so the head is read with GET standing in."""
    raw = b"BAN /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"
    assert parse(raw)[0].startswith("error")
    read = read_unknown_method(raw)
    assert not isinstance(read, str)
    method, head, parser = read
    assert (method, head.url, parser.get_http_version()) == ("BAN", b"/x", "1.1")
    assert head.items == [("Host", "a"), ("Content-Length", "3")]
    assert read_unknown_method(b"get / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == "get"
    assert isinstance(read_unknown_method(b"FOO / HTTP/1.1\r\nHost a\r\n\r\n"), str)


# ---------------------------------------------------------------------------------------
# Responses: llhttp does not know the request's method, and is lenient on codings.


def test_llhttp_response_parser_cannot_frame_a_head_response() -> None:
    """RFC 9112 6.3 rule 1: a response to HEAD has no body, whatever Content-Length says.
    llhttp's response parser waits for the body, so poise frames responses itself."""
    outcome, head = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
    assert outcome == "ok" and not head.complete
    resp = Response(200, "OK", "1.1", Headers([("Content-Length", "3")]))
    assert response_framing("HEAD", 200, resp) == NO_BODY


RESPONSES = [
    # (name, raw, what llhttp does, what response_framing says)
    ("CL with TE RFC 9112 6.1", b"Content-Length: 3\r\nTransfer-Encoding: chunked", "error", 502),
    ("two CL equal RFC 9112 6.3", b"Content-Length: 3\r\nContent-Length: 3", "error", "length"),
    ("two CL differing RFC 9112 6.3", b"Content-Length: 3\r\nContent-Length: 4", "error", 502),
    ("invalid CL RFC 9110 8.6", b"Content-Length: 3x", "error", 502),
    ("chunked twice RFC 9112 6.1", b"Transfer-Encoding: chunked, chunked", "ok", 502),
    ("chunked not last RFC 9112 6.3", b"Transfer-Encoding: chunked, gzip", "ok", 502),
    ("no chunked at all RFC 9112 6.3", b"Transfer-Encoding: gzip", "ok", 502),
    ("gzip then chunked RFC 9112 6.1", b"Transfer-Encoding: gzip, chunked", "ok", "chunked"),
    ("neither RFC 9112 6.3 rule 8", b"X: y", "ok", "close"),
]


@pytest.mark.parametrize(
    ("name", "fields", "llhttp", "framing"), RESPONSES, ids=[c[0] for c in RESPONSES]
)
def test_response_framing_against_llhttp(
    name: str, fields: bytes, llhttp: str, framing: str | int
) -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\n"
    outcome, _ = parse_response(raw)
    assert outcome.split(":")[0] == llhttp, outcome
    lines = fields.decode().split("\r\n")
    resp = Response(
        200, "OK", "1.1", Headers([(ln.split(": ")[0], ln.split(": ")[1]) for ln in lines])
    )
    result = response_framing("GET", 200, resp)
    if isinstance(result, HttpProblem):
        assert result.status == framing
    else:
        assert result.kind == framing


def test_llhttp_reads_chunked_in_an_http10_response() -> None:
    """RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; llhttp decodes it
    anyway, poise answers 502."""
    outcome, head = parse_response(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert outcome == "ok" and head.complete
    resp = Response(200, "OK", "1.0", Headers([("Transfer-Encoding", "chunked")]))
    assert response_framing("GET", 200, resp) == HttpProblem(
        502, "Transfer-Encoding in an HTTP/1.0 response"
    )


# ---------------------------------------------------------------------------------------
# poise and llhttp read an accepted head the same way.

# Mostly legal bytes with a few illegal ones, so that about half of the heads pass the check
# and the other half explore what it refuses.
LEGAL_VALUE = [b"a", b"Z", b"0", b" ", b"\t", b":", b",", b"\xe9", b";", b'"']
ILLEGAL_VALUE = [b"\r", b"\n", b"\x00", b"\x7f", b"\x0b"]
VALUE_BYTES = st.sampled_from(LEGAL_VALUE * 12 + ILLEGAL_VALUE)
NAME_BYTES = st.sampled_from(
    [b"a", b"X", b"-", b"_", b"~", b"!"] * 12 + [b" ", b"\t", b"(", b"\xe9"]
)
TARGET_BYTES = st.sampled_from([b"a", b"%2F", b"?", b"=", b"/"] * 10 + [b"#", b" ", b"\xe9"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"]))
    target = b"/" + b"".join(draw(st.lists(TARGET_BYTES, max_size=5)))
    sep = draw(st.sampled_from([b" "] * 20 + [b"  ", b"\t"]))
    lines = [method + b" " + target + sep + b"HTTP/1.1"]
    for _ in range(draw(st.integers(0, 5))):
        name = b"".join(draw(st.lists(NAME_BYTES, min_size=0, max_size=4)))
        value = b"".join(draw(st.lists(VALUE_BYTES, max_size=6)))
        lines.append(name + b":" + value)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@settings(max_examples=1000)
@given(heads())
def test_a_head_poise_accepts_reads_the_same_in_llhttp(raw: bytes) -> None:
    """Whatever check_request_head lets through, llhttp parses into exactly the request-line
    and fields poise sees in the bytes: no head that the two read differently is forwarded."""
    if check_request_head(raw) is not None:
        return
    outcome, head, _ = parse(raw)
    assert outcome == "ok", (raw, outcome)
    lines = raw[:-4].split(b"\r\n")
    assert head.url == lines[0].split(b" ")[1]
    fields = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name, value.lstrip(b" \t")))
    assert head.items == fields


# ---------------------------------------------------------------------------------------
# The smuggling table, through the session's steps.


def chunked_body_length(data: bytes) -> int | None:
    """How many bytes of `data` a chunked body takes, by llhttp; None when it is refused
    (or incomplete)."""
    head = Head()
    parser = httptools.HttpRequestParser(head)
    parser.feed_data(POST + b"Transfer-Encoding: chunked\r\n\r\n")
    for index in range(len(data)):
        try:
            parser.feed_data(data[index : index + 1])
        except httptools.HttpParserError:
            return None
        if head.complete:
            return index + 1
    return None


def through_session(data: bytes) -> tuple[int, str | None, int | None]:
    """(requests forwarded, the step that refused one, its status), as the session runs
    them: one head at a time, cut at CRLFCRLF."""
    forwarded = 0
    buf = data
    while buf:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            break
        raw, buf = buf[: end + 4], buf[end + 4 :]
        problem: HttpProblem | bool | None = check_request_head(raw)
        if isinstance(problem, HttpProblem):
            return forwarded, "check_request_head", problem.status
        head = Head()
        parser = httptools.HttpRequestParser(head)
        try:
            parser.feed_data(raw)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserInvalidMethodError:
            # The session reads it with GET standing in (heads.read_unknown_method).
            if isinstance(read_unknown_method(raw.lstrip(b"\r\n")), str):
                return forwarded, "httptools", 400
            head = Head()
            parser = httptools.HttpRequestParser(head)
            parser.feed_data(b"GET " + raw.lstrip(b"\r\n").partition(b" ")[2])
        except httptools.HttpParserError:
            return forwarded, "httptools", 400
        req = request_of(head, parser)
        problem = check_request(req)
        if isinstance(problem, HttpProblem):
            return forwarded, "check_request", problem.status
        problem = is_websocket_upgrade(req)
        if isinstance(problem, HttpProblem):
            return forwarded, "is_websocket_upgrade", problem.status
        framing = request_framing(req)
        if framing.kind == "length":
            buf = buf[framing.length :]
        elif framing.kind == "chunked":
            used = chunked_body_length(buf)
            if used is None:
                return forwarded, "body", 400
            buf = buf[used:]
        forwarded += 1
    return forwarded, None, None


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_smuggling_case_is_refused_by_the_step_it_names(case: Case) -> None:
    forwarded, step, status = through_session(case.raw)
    assert (forwarded, step, status) == (case.good_before, case.caught_by, case.status)
    assert case.in_body == (step == "body")


def test_smuggling_case_names_are_unique() -> None:
    assert len({case.name for case in CASES}) == len(CASES)
