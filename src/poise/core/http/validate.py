"""Strict HTTP/1 rules: what poise refuses before anything is forwarded, and how a message
body is framed.

poise is the first hop, so it must never forward a request that two servers could read
differently (request smuggling), nor relay a response whose end it cannot tell. Every branch
names the section of RFC 9112 (HTTP/1.1) or RFC 9110 (HTTP semantics) it follows; where the
RFC leaves a choice, HAProxy's choice is taken and said so.

Two checks run on each request, both before anything is forwarded:

- `check_request_head(raw)` on the head as received (up to and including CRLFCRLF): one
  compiled regex matches the whole head against the grammar (request-line, field lines, CRLF
  line ends), so a clean head costs one C-level scan. Only a head that fails is diagnosed,
  line by line, to give the log a precise reason.
- `check_request(req)` on the parsed head: framing (Content-Length, Transfer-Encoding),
  Host, the request-target's form, the method and version.

httptools (llhttp, strict unless leniencies are switched on) already rejects most wire
errors itself; `tests/unit/test_httptools_behaviour.py` pins which. The head check repeats
those it can do in the same single scan, so poise stays strict if the parser ever gets more
lenient, and it catches what llhttp lets through (two spaces in the request-line, `#` in
the request-target).

Decisions where the RFC allows a choice:

- Repeated identical Content-Length values (several fields, or a list in one field) are
  merged into one, as HAProxy does (RFC 9112 6.3 rule 5 allows it); differing ones are 400.
- Transfer-Encoding in a request: `chunked` must be final and appear once (400); any other
  coding is refused with 501 (RFC 9112 6.1). HAProxy likewise supports only `chunked` (it
  answers 422). Empty list elements are 400, as HAProxy has them.
- Content-Length with Transfer-Encoding is refused (400) rather than repaired (RFC 9112 6.1
  lets a server do either); so is Transfer-Encoding in an HTTP/1.0 request (6.1: faulty
  framing).
- An HTTP/1.0 GET, HEAD or DELETE with a body is 413, as HAProxy answers it: an HTTP/1.0
  server may not expect a body there and read it as the next request.
- Absolute-form with a Host that names another authority: RFC 9112 3.2.2 says the authority
  wins. poise routes on Host and forwards the head as received, so a differing Host would
  make poise and the server disagree; it is refused with 400, as HAProxy refuses it. The
  same host written with or without its scheme's default port is not a difference.
- More than one Host field is 400 even when the values are equal (RFC 9112 3.2; HAProxy
  merges equal values).
- `Expect` values other than `100-continue` are forwarded, not answered with 417: HAProxy
  does not answer 417 either (RFC 9110 10.1.1 makes 417 a MAY).
- CONNECT is not supported: the request is 501, a 2xx answer to one is 502. Any other
  method token is forwarded, as HAProxy forwards it (RFC 9110 9.1).
- A bare LF line end in a request head (RFC 9112 2.2 lets a recipient accept it) is
  reported as `BARE_LF`, the one problem the session repairs: as HAProxy 2.6 does, it reads
  the head with LF line ends and forwards it rewritten with CRLF (core/http/heads.py), after
  checking the rewritten head again. A bare CR stays refused.
- A response whose Transfer-Encoding does not end in a single `chunked` is 502 (RFC 9112
  6.3 would read it until close; HAProxy 3 also refuses it); other codings before `chunked`
  are relayed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from poise.core.http.headers import Headers
from poise.core.http.heads import MAX_FIELDS
from poise.core.http.message import Request, Response


@dataclass(frozen=True, slots=True)
class HttpProblem:
    """Why a message is refused: the status to answer with and a short reason for the log."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Framing:
    """How a message body ends (RFC 9112 6.3): no body, `length` bytes, chunked, or when the
    server closes the connection (responses only)."""

    kind: Literal["none", "length", "chunked", "close"]
    length: int = 0


NO_BODY = Framing("none")
CHUNKED = Framing("chunked")
UNTIL_CLOSE = Framing("close")

# RFC 9110 5.6.2: token = 1*tchar.
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_BYTES = re.compile(rb"[" + _TCHAR + rb"]+")

# The whole request head, RFC 9112 2.1-5.2 as poise accepts it:
#   *( CRLF )                       2.2: empty lines before the request-line are ignored
#   method SP request-target SP HTTP-version CRLF      3: exactly one SP between the parts
#   *( field-name ":" field-value CRLF )               5.1: no whitespace before the colon;
#                                                      a line starting with SP/HTAB (obs-fold,
#                                                      5.2) does not begin with a tchar
#   CRLF
# request-target: visible ASCII except "#" (3.2: no fragment; HAProxy refuses it too).
# field-value: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5): no CR, LF, NUL or other CTL, so
# a bare CR or LF (2.2) cannot match either. Each repetition is deterministic (a name stops
# at ":", a value at CR), so the match never backtracks into a blow-up.
_HEAD = re.compile(
    rb"(?:\r\n)*"
    rb"[" + _TCHAR + rb"]+ [\x21\x22\x24-\x7e]+ HTTP/[0-9]\.[0-9]\r\n"
    rb"(?:[" + _TCHAR + rb"]+:[\t\x20-\x7e\x80-\xff]*\r\n)*"
    rb"\r\n"
)
_BARE_LF = re.compile(rb"(?<!\r)\n")
BARE_LF = "bare LF line ending"  # the one problem a session repairs (core/http/heads.py)
_BARE_CR = re.compile(rb"\r(?!\n)")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# RFC 9110 7.2: Host = uri-host [ ":" port ], uri-host from RFC 3986 3.2.2 (IP-literal limited
# to IPv6 addresses; no IPvFuture, no zone).
_REG_NAME = r"[A-Za-z0-9\-._~!$&'()*+,;=]*"  # unreserved / sub-delims; pct-encoded between
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|" + _REG_NAME + r"(?:%[0-9A-Fa-f]{2}" + _REG_NAME + r")*)"
    r"(?::[0-9]{0,5})?"
)
# RFC 9112 3.2.2 absolute-form: scheme "://" authority path-abempty [ "?" query ].
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?]*)(.*)", re.DOTALL)
_DEFAULT_PORT = {"http": "80", "https": "443"}
# RFC 6455 4.1: Sec-WebSocket-Key is 16 bytes, base64-encoded (24 characters).
_WS_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")

# Header fields that frame the message or name its target: never removed because a
# Connection header lists them (a classic way to make the next hop drop Content-Length).
_FRAMING_FIELDS = frozenset({"content-length", "transfer-encoding", "host"})
# RFC 9110 7.6.1: fields an intermediary removes whether or not Connection lists them.
# Transfer-Encoding is not among them here: the body is forwarded as received, chunked.
# Trailer is end-to-end (RFC 9110 6.6.2) and describes the forwarded trailer section.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "upgrade"})

_NONE: list[str] = []  # shared, never changed: the values of an absent header
MAX_CONTENT_LENGTH = 2**63 - 1  # larger values are refused (RFC 9110 8.6: avoid overflow)


# ---------------------------------------------------------------------------------------
# The wire form


def check_request_head(raw: bytes) -> HttpProblem | None:
    """Check a request head as received, from its first byte through the empty line that
    ends it. None when it follows the grammar; the first problem found otherwise.

    Leading empty lines (CRLF) are accepted (RFC 9112 2.2); the head forwarded to a server
    should start at the request-line.
    """
    if _HEAD.fullmatch(raw) is not None:
        return None
    return _diagnose_head(raw)


def _diagnose_head(raw: bytes) -> HttpProblem:
    """Say precisely what is wrong with a head that did not match the grammar."""
    head = raw
    while head.startswith(b"\r\n"):
        head = head[2:]
    # RFC 9112 2.2: a bare LF ends a line only for lenient recipients; the session is one
    # (HAProxy is): it rewrites such a head with CRLF and checks it again.
    if _BARE_LF.search(head):
        return HttpProblem(400, BARE_LF)
    # RFC 9112 2.2: a recipient of a bare CR must treat the element as invalid.
    if _BARE_CR.search(head):
        return HttpProblem(400, "bare CR")
    if not head.endswith(b"\r\n\r\n"):
        return HttpProblem(400, "request head not ended by an empty line")
    lines = head[:-4].split(b"\r\n")
    problem = _diagnose_request_line(lines[0])
    if problem is not None:
        return problem
    for index, line in enumerate(lines[1:]):
        problem = _diagnose_field_line(line, first=index == 0)
        if problem is not None:
            return problem
    return HttpProblem(400, "malformed request head")


def _diagnose_request_line(line: bytes) -> HttpProblem | None:
    parts = line.split(b" ")
    # RFC 9112 3: request-line = method SP request-target SP HTTP-version, one SP each;
    # recipients should not autocorrect (it may be crafted to pass a filter).
    if len(parts) != 3:
        return HttpProblem(400, "request-line is not method SP target SP version")
    method, target, version = parts
    if _TOKEN_BYTES.fullmatch(method) is None:
        return HttpProblem(400, "invalid method token")  # RFC 9110 9.1
    if b"#" in target:
        return HttpProblem(400, "fragment in request-target")  # RFC 9112 3.2
    if _TARGET.fullmatch(target) is None:
        return HttpProblem(400, "invalid character in request-target")  # RFC 9112 3.2
    if _VERSION.fullmatch(version) is None:
        return HttpProblem(400, "malformed HTTP-version")  # RFC 9112 2.3
    return None


def _diagnose_field_line(line: bytes, first: bool) -> HttpProblem | None:
    if line[:1] in (b" ", b"\t"):
        if first:
            # RFC 9112 2.2: whitespace between the start-line and the first field.
            return HttpProblem(400, "whitespace before the first header field")
        return HttpProblem(400, "obsolete line folding")  # RFC 9112 5.2
    name, colon, value = line.partition(b":")
    if not colon:
        return HttpProblem(400, "header line without a colon")  # RFC 9112 5.1
    if not name:
        return HttpProblem(400, "empty header field name")  # RFC 9110 5.1
    if name[-1:] in (b" ", b"\t"):
        return HttpProblem(400, "whitespace between header field name and colon")  # 9112 5.1
    if _TOKEN_BYTES.fullmatch(name) is None:
        return HttpProblem(400, "invalid character in header field name")  # RFC 9110 5.1
    if b"\x00" in value:
        return HttpProblem(400, "NUL in header field value")  # RFC 9110 5.5
    if _CTL.search(value):
        return HttpProblem(400, "control character in header field value")  # RFC 9110 5.5
    return None


# ---------------------------------------------------------------------------------------
# The parsed request


def check_request(req: Request) -> HttpProblem | None:
    """Check a parsed request head; None when it can be forwarded."""
    method = req.method
    if _TOKEN.fullmatch(method) is None:
        return HttpProblem(400, "invalid method token")  # RFC 9110 9.1
    version = req.version
    if version not in ("1.1", "1.0"):
        if version == "0.9":
            return HttpProblem(400, "HTTP/0.9 request")  # RFC 9112 2.3: no such head
        return HttpProblem(505, "HTTP version not supported")  # RFC 9110 15.6.6
    if method == "CONNECT":
        return HttpProblem(501, "CONNECT is not supported")  # RFC 9110 9.3.6, 15.6.2

    index = req.headers.index()  # built once; the later checks and the rules reuse it
    hosts = index.get("host", _NONE)
    lengths = index.get("content-length", _NONE)
    codings = index.get("transfer-encoding", _NONE)
    options = index.get("connection", _NONE)

    body = 0
    if codings:
        if lengths:
            # RFC 9112 6.1, 6.3 rule 3: refuse rather than guess which one the server uses.
            return HttpProblem(400, "Content-Length with Transfer-Encoding")
        if version == "1.0":
            # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            return HttpProblem(400, "Transfer-Encoding in an HTTP/1.0 request")
        problem = _request_codings(codings)
        if problem is not None:
            return problem
        body = 1
    elif lengths:
        length = _content_length(lengths)
        if isinstance(length, str):
            return HttpProblem(400, length)  # RFC 9112 6.3 rule 5
        body = length

    for value in options:
        for option in value.split(","):
            if option.strip(" \t").lower() in _FRAMING_FIELDS:
                # RFC 9110 7.6.1 would have the next hop drop it: framing must not move.
                return HttpProblem(400, "Connection names a framing header")

    # RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0, and a valid one.
    if len(hosts) > 1:
        return HttpProblem(400, "more than one Host")
    host: str | None = None
    if hosts:
        host = hosts[0].strip(" \t")
        if _HOST.fullmatch(host) is None:
            return HttpProblem(400, "invalid Host")
    elif version == "1.1":
        return HttpProblem(400, "missing Host")

    problem = _check_target(method, req.uri, host)
    if problem is not None:
        return problem

    if body and version == "1.0" and method in ("GET", "HEAD", "DELETE"):
        # HAProxy: an HTTP/1.0 server may take such a body for the next request.
        return HttpProblem(413, "body in an HTTP/1.0 GET, HEAD or DELETE request")
    return None


def _check_target(method: str, uri: str, host: str | None) -> HttpProblem | None:
    """RFC 9112 3.2: the request-target's form must suit the method."""
    if "#" in uri:
        return HttpProblem(400, "fragment in request-target")  # RFC 9112 3.2
    if uri[:1] == "/":
        return None  # origin-form (3.2.1)
    if uri == "*":
        if method != "OPTIONS":
            return HttpProblem(400, "asterisk-form without OPTIONS")  # 3.2.4
        return None
    match = _ABSOLUTE.fullmatch(uri)
    if match is None:
        return HttpProblem(400, "invalid request-target form")  # 3.2.3 is CONNECT's only
    scheme, authority = match.group(1).lower(), match.group(2)
    if scheme not in _DEFAULT_PORT:
        return HttpProblem(400, "request-target scheme is not http or https")
    if "@" in authority:
        return HttpProblem(400, "userinfo in request-target")  # RFC 9110 4.2.4
    if not authority or _HOST.fullmatch(authority) is None:
        return HttpProblem(400, "invalid authority in request-target")  # RFC 9110 4.2.1
    if host is not None and not _same_authority(scheme, authority, host):
        return HttpProblem(400, "Host differs from the request-target's authority")  # 3.2.2
    return None


def _same_authority(scheme: str, authority: str, host: str) -> bool:
    """Whether two authorities name the same host and port, the scheme's default port being
    the same as none (as HAProxy's h1_validate_mismatch_authority compares them)."""
    default = _DEFAULT_PORT[scheme]
    name_a, port_a = _split_authority(authority)
    name_b, port_b = _split_authority(host)
    return name_a.lower() == name_b.lower() and (port_a or default) == (port_b or default)


def _split_authority(authority: str) -> tuple[str, str]:
    colon = authority.rfind(":")
    if colon < 0 or authority.endswith("]"):
        return authority, ""
    return authority[:colon], authority[colon + 1 :]


def _content_length(values: list[str]) -> int | str:
    """The body length given by every Content-Length value, or why there is none.

    RFC 9112 6.3 rule 5 / RFC 9110 8.6: 1*DIGIT; a list of identical values, or identical
    repeated fields, counts as one (HAProxy merges them too); anything else is invalid.
    """
    length = -1
    for value in values:
        for element in value.split(","):
            digits = element.strip(" \t")
            if not digits.isdigit() or not digits.isascii():
                return "invalid Content-Length"
            number = int(digits)
            if number > MAX_CONTENT_LENGTH:
                return "Content-Length too large"
            if length >= 0 and number != length:
                return "differing Content-Length values"
            length = number
    return length


def _codings(values: list[str]) -> list[str] | None:
    """The transfer codings in order, lower-cased (RFC 9112 7: case-insensitive), or None
    when a list element is empty (HAProxy refuses those)."""
    codings: list[str] = []
    for value in values:
        for element in value.split(","):
            coding = element.strip(" \t").lower()
            if not coding:
                return None
            codings.append(coding)
    return codings


def _request_codings(values: list[str]) -> HttpProblem | None:
    codings = _codings(values)
    if codings is None:
        return HttpProblem(400, "empty transfer coding")
    if codings.count("chunked") > 1:
        return HttpProblem(400, "chunked applied more than once")  # RFC 9112 6.1
    if codings[-1] != "chunked":
        return HttpProblem(400, "chunked is not the final transfer coding")  # 6.1, 6.3 rule 4
    if len(codings) > 1:
        return HttpProblem(501, "unsupported transfer coding")  # RFC 9112 6.1
    return None


def request_framing(req: Request) -> Framing:
    """How the request body ends (RFC 9112 6.3 rules 3-7). Call after `check_request`
    accepted the request; a framing it would have refused is a bug here (ValueError)."""
    index = req.headers.index()
    if "transfer-encoding" in index:
        return CHUNKED  # rule 4: chunked is final (checked)
    lengths = index.get("content-length")
    if not lengths:
        return NO_BODY  # rule 7: a request without either has no body
    length = _content_length(lengths)
    if isinstance(length, str):
        raise ValueError(f"request_framing on an unchecked request: {length}")
    return Framing("length", length) if length else NO_BODY


# ---------------------------------------------------------------------------------------
# Responses


def response_framing(method: str, status: int, resp: Response) -> Framing | HttpProblem:
    """How the body of a response to `method` ends (RFC 9112 6.3), or a 502 when the server
    framed it so that poise cannot tell where it ends.

    A 101 has no body here: the session turns into a tunnel when it accepts the upgrade.
    """
    # Rule 1: whatever the headers say.
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return NO_BODY
    # Rule 2: a 2xx to CONNECT starts a tunnel, which poise does not offer.
    if method == "CONNECT" and 200 <= status < 300:
        return HttpProblem(502, "2xx answer to CONNECT")
    lengths: list[str] = []
    codings: list[str] = []
    for name, value in resp.headers.items:
        lname = name.lower()
        if lname == "content-length":
            lengths.append(value)
        elif lname == "transfer-encoding":
            codings.append(value)
    if codings:
        if lengths:
            return HttpProblem(502, "Content-Length with Transfer-Encoding")  # 6.1, 6.3 r3
        if resp.version == "1.0":
            return HttpProblem(502, "Transfer-Encoding in an HTTP/1.0 response")  # 6.1
        parsed = _codings(codings)
        if parsed is None:
            return HttpProblem(502, "empty transfer coding")
        if parsed.count("chunked") != 1 or parsed[-1] != "chunked":
            return HttpProblem(502, "chunked is not the final transfer coding")  # 6.3 r4
        return CHUNKED
    if lengths:
        length = _content_length(lengths)
        if isinstance(length, str):
            return HttpProblem(502, length)  # rule 5
        return Framing("length", length) if length else NO_BODY
    return UNTIL_CLOSE  # rule 8


# The lines of a response head that decide its framing and its connection.
_FRAMING_LINE = re.compile(rb"\r\n(content-length|transfer-encoding|connection):([^\r]*)", re.I)
_PLAIN_DIGITS = 15  # at most 15 digits: far below MAX_CONTENT_LENGTH


def plain_length(data: bytes, size: int) -> int:
    """The body length of the commonest response, read straight off its raw head: HTTP/1.1
    with one plain Content-Length, no Transfer-Encoding, and no Connection header other
    than `keep-alive`. -1 for anything else, which takes the full path (`response_framing`
    and the Connection rules): this is a shortcut for the common case, never a second
    opinion on an unusual one. The head is `data[:size]` (a body may follow it); it must
    also pass httptools (the caller's job). One regex pass: cheaper here than bytes.find."""
    if not data.startswith(b"HTTP/1.1 ") or data.count(b"\n", 0, size) > MAX_FIELDS + 2:
        return -1  # (a head is its status line, its fields and an empty line)
    length = -1
    for field, value in _FRAMING_LINE.findall(data, 0, size):
        name = field.lower()
        if name == b"content-length":
            digits = value.strip(b" \t")
            if length >= 0 or not digits.isdigit() or len(digits) > _PLAIN_DIGITS:
                return -1
            length = int(digits)
        elif name == b"connection" and value.strip(b" \t").lower() == b"keep-alive":
            continue
        else:
            return -1
    return length


# ---------------------------------------------------------------------------------------
# Forwarding


def hop_by_hop(headers: Headers) -> set[str]:
    """The lower-case names of the fields to remove before forwarding (RFC 9110 7.6.1):
    Connection, Keep-Alive, Proxy-Connection, TE, Upgrade, and every field Connection names,
    except the fields that frame the message (Content-Length, Transfer-Encoding, Host).

    Transfer-Encoding stays: the body is forwarded as received. When a WebSocket upgrade is
    forwarded, the caller keeps `connection` and `upgrade` (they are the request itself).
    """
    index = headers.index()
    drop = index.keys() & _HOP_BY_HOP  # a set, made in C (no comprehension's frame)
    for value in index.get("connection", _NONE) if drop else _NONE:
        for element in value.split(","):
            option = element.strip(" \t").lower()
            if option and option not in _FRAMING_FIELDS:
                drop.add(option)
    return drop


def is_websocket_upgrade(req: Request) -> HttpProblem | bool:
    """True for a valid WebSocket opening handshake (RFC 6455 4.1, RFC 9110 7.8): a GET in
    HTTP/1.1 with `Upgrade: websocket` and the `upgrade` connection option. Such a request
    without a proper Sec-WebSocket-Key or Sec-WebSocket-Version 13 is 400 (HAProxy refuses
    a missing key too). Anything else is False, and its Upgrade is dropped as hop-by-hop;
    so is a request with a body, which HAProxy 2.6 forwards as a plain request without its
    Upgrade header (measured: the server gets the body and no `upgrade: websocket`)."""
    upgrade = connection = body = False
    keys: list[str] = []
    versions: list[str] = []
    for name, value in req.headers.items:
        lname = name.lower()
        if lname == "upgrade":
            upgrade = upgrade or any(
                p.strip(" \t").lower() == "websocket" for p in value.split(",")
            )
        elif lname == "connection":
            connection = connection or any(
                p.strip(" \t").lower() == "upgrade" for p in value.split(",")
            )
        elif lname == "sec-websocket-key":
            keys.append(value.strip(" \t"))
        elif lname == "sec-websocket-version":
            versions.append(value.strip(" \t"))
        elif lname == "transfer-encoding" or (lname == "content-length" and value.strip(" \t0")):
            body = True  # check_request accepted the framing: a length other than 0
    if not (upgrade and connection) or req.version != "1.1" or body:
        return False  # RFC 9110 7.8: an Upgrade in HTTP/1.0 is ignored
    if req.method != "GET":
        return HttpProblem(400, "WebSocket upgrade not on GET")  # RFC 6455 4.1 item 2
    if len(keys) != 1 or _WS_KEY.fullmatch(keys[0]) is None:
        return HttpProblem(400, "missing or invalid Sec-WebSocket-Key")  # RFC 6455 4.1 item 7
    if versions != ["13"]:
        return HttpProblem(400, "Sec-WebSocket-Version is not 13")  # RFC 6455 4.1 item 9
    return True


def expects_continue(req: Request) -> bool:
    """Whether the client waits for `100 Continue` before sending the body (RFC 9110
    10.1.1; an HTTP/1.0 request's expectation is ignored). As HAProxy 2.6 reads it
    (http_ana.c, http_handle_expect_hdr): HTTP/1.1 only, the first element of the first
    Expect header, case-insensitive."""
    if req.version != "1.1":
        return False
    values = req.headers.values("expect")
    return bool(values) and values[0].lower() == "100-continue"


def forwarded_for(
    req: Request, client_ip: str, except_net: str | None, header: str, if_none: bool
) -> None:
    """Apply `option forwardfor [except NET] [header NAME] [if-none]` to the request, as
    HAProxy does: append a `header` field with the client's address unless the client is in
    `except_net` (same address family only) or, with `if-none`, the request already has one.
    IPv6 addresses are written as inet_ntop writes them; a client that is not an IP address
    (a UNIX socket) gets no field."""
    if if_none and req.headers.has(header):
        return
    client = client_address(client_ip)
    if client is None:
        return
    address, text = client
    if except_net is not None:
        net = network(except_net)
        if address.version == net.version and address in net:
            return
    req.headers.add(header, text)


@lru_cache(maxsize=256)
def network(spec: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(spec, strict=False)


@lru_cache(maxsize=4096)
def client_address(
    client_ip: str,
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str] | None:
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return address, str(address)
    return address, _ntop6(address)


def _ntop6(address: ipaddress.IPv6Address) -> str:
    """The text glibc's inet_ntop gives (what HAProxy writes): Python's compressed form,
    except that IPv4-mapped and IPv4-compatible addresses end in dotted decimal."""
    packed = address.packed
    if packed[:10] == bytes(10) and (
        packed[10:12] == b"\xff\xff" or (packed[10:12] == b"\0\0" and packed[12:14] != b"\0\0")
    ):
        dotted = ".".join(str(b) for b in packed[12:])
        return ("::ffff:" if packed[10:12] == b"\xff\xff" else "::") + dotted
    return str(address)
