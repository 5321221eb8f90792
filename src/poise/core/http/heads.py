"""HTTP/1 heads as httptools reads them, and HAProxy 2.6's limits on them.

The session (net/http.py) cuts a head at its empty line and hands it here: the collectors
httptools calls back, the status of a plain response, HAProxy's head limits, and the rare
cases that take a slower path, so that the common one stays a few C calls:

- A head larger than `MAX_HEAD` or with more than `MAX_FIELDS` header fields is 400 (502
  for a response), however the bytes arrived (one write or many).
- A bare LF ends a line, as in HAProxy 2.6, which accepts it and forwards the head
  rewritten with CRLF (measured: `GET / HTTP/1.1\\nHost: a\\n\\n` reaches the server as
  `GET / HTTP/1.1\\r\\nhost: a\\r\\n\\r\\n`). A bare CR is still refused.
- Any method token is forwarded (RFC 9110 9.1; HAProxy forwards `BAN`, `FOO`, `get`):
  llhttp knows a fixed list, so a head with another token is parsed with a stand-in method
  and the token put back.
- A server connection dying before any answer: what HAProxy 2.6 does with the request
  (`after_dead_connection`), and whether what the server sent was a response at all (`PH`)
  or only an unfinished one (`SH`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httptools

from poise.config import tune

# HAProxy: tune.bufsize less tune.maxrewrite (15360 bytes). HAProxy 2.6's own limit also
# counts its internal overhead (measured: a 2-field head passes up to 15,273 bytes, a
# 100-field one up to 14,881); poise refuses a head longer than this, in one read or many.
MAX_HEAD = tune.BUFSIZE - tune.MAXREWRITE
# HAProxy's tune.http.maxhdr (101). Measured with HAProxy 2.6: 100 header fields pass,
# 101 are refused with 400 (the limit counts the end of the head as one).
MAX_FIELDS = 100


class RequestHead:
    """httptools callbacks collecting a request head."""

    __slots__ = ("items", "url")

    def __init__(self) -> None:
        self.url = b""
        self.items: list[tuple[str, str]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.items.append((name.decode("latin-1"), value.decode("latin-1")))


class ResponseHead:
    __slots__ = ("items", "reason")

    def __init__(self) -> None:
        self.reason = b""
        self.items: list[tuple[str, str]] = []

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.items.append((name.decode("latin-1"), value.decode("latin-1")))


# A field line without exactly one space after its name's colon, or a Keep-Alive field
# (which a closing head drops): see written_as_rebuilt. A literal first (CRLF) lets the
# regex engine skip to each line (an alternation at every position cost ten times more).
_UNLIKE_REBUILT_LINE = re.compile(rb"\r\n(?:keep-alive:|[^:\r\n]*:(?! ))", re.I)
CONNECTION_LINE = re.compile(rb"\r\nconnection:[^\r]*", re.I)


def written_as_rebuilt(raw: bytes) -> bool:
    """Whether a head is written as poise's rebuild of it writes one (`name: value`
    lines, one space after the colon, no other whitespace around a value, CRLF line
    ends, no Keep-Alive field), so that it can be edited as bytes instead
    (request_analysers.request_head, response_analysers.closing_plain_head); C-level
    scans only."""
    return (
        _UNLIKE_REBUILT_LINE.search(raw) is None
        and b" \r\n" not in raw
        and b"\t" not in raw
        and b":  " not in raw
        and raw.count(b"\n") == raw.count(b"\r\n")
    )


class Unread:
    """httptools with no callbacks: it checks a head without handing its parts over."""

    __slots__ = ()


_UNREAD = Unread()


def plain_status(data: bytes) -> int:
    """The status of a response that validate.plain_length took for plain, once httptools
    has checked it; 0 when httptools refuses it (the full path then says what is wrong)
    or when its status has framing rules of its own (1xx, 204, 304)."""
    parser = httptools.HttpResponseParser(_UNREAD)
    try:
        parser.feed_data(data)
    except httptools.HttpParserError:
        return 0
    status: int = parser.get_status_code()
    return 0 if status < 200 or status in (204, 304) else status


# ---------------------------------------------------------------------------------------
# Bare LF line ends (the slow path: only a head that failed the CRLF grammar comes here)

# The empty line that ends a head: a line end (LF, after an optional CR) right after one.
_EMPTY_LINE = re.compile(rb"\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")


def lf_head_end(buf: bytes | bytearray) -> int:
    """Where the first head in `buf` ends when bare LFs may end its lines (RFC 9112 2.2
    lets a recipient take LF for CRLF; HAProxy 2.6 does): the index just past its empty
    line, or -1 when it has not arrived. Empty lines before the request-line are skipped."""
    start = len(buf) - len(buf.lstrip(b"\r\n"))
    found = _EMPTY_LINE.search(buf, start)
    return -1 if found is None else found.end()


def with_crlf(raw: bytes) -> tuple[bytes, int]:
    """A head that has bare LF line ends: (the first head in `raw` with every line ended
    by CRLF, how many bytes of `raw` it took). A bare CR stays, for the check to refuse."""
    end = lf_head_end(raw)
    if end < 0:
        return raw, len(raw)
    head = raw[:end].lstrip(b"\r\n")
    return _LINE_END.sub(b"\r\n", head), end


# ---------------------------------------------------------------------------------------
# Methods llhttp does not know


def read_unknown_method(
    raw: bytes,
) -> tuple[str, RequestHead, httptools.HttpRequestParser] | str:
    """Read a head whose method llhttp refused (the CRLF grammar already made it a token)
    with `GET` standing in for it: (the method, the head's parts, the parser), or why the
    head is malformed. Only CONNECT changes how llhttp reads a request, and it knows it."""
    method, _, rest = raw.partition(b" ")
    collector = RequestHead()
    parser = httptools.HttpRequestParser(collector)
    try:
        parser.feed_data(b"GET " + rest)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError as exc:
        return f"malformed request: {exc}"
    return method.decode("latin-1"), collector, parser


# ---------------------------------------------------------------------------------------
# A server connection that died before its answer


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 9.2.2


def after_dead_connection(
    method: str, has_body: bool, first: bool
) -> Literal["resend", "close", "502"]:
    """A request sent on a reused server connection that closed without answering.

    RFC 9110 9.2.2: a proxy may send an idempotent request again (its body is not kept, so
    only one without a body). Anything else gets what HAProxy 2.6 gives it (measured with a
    server closing the reused connection under a POST, with or without a body): on a client
    connection's first request, 502 logged `SH--`; on a later one, the client connection
    closed without an answer or a log line, so that the client retries as after any
    keep-alive race (HAProxy's `abort_keep_alive`, http_ana.c)."""
    if method in IDEMPOTENT and not has_body:
        return "resend"
    return "502" if first else "close"


def garbage_response(buf: bytes | bytearray) -> bool:
    """Whether the bytes a server sent so far cannot begin a response (HAProxy logs `PH`
    for those, and `SH` for a response cut short)."""
    parser = httptools.HttpResponseParser(_UNREAD)
    try:
        parser.feed_data(bytes(buf))
    except httptools.HttpParserUpgrade:
        return False
    except httptools.HttpParserError:
        return True
    return False


def feed_response(parser: Any, raw: bytes, collector: ResponseHead) -> str | None:
    """Feed a whole response head to an httptools response parser: why it is refused
    (the server's fault: 502), or None."""
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        return "malformed response head"
    if len(collector.items) > MAX_FIELDS:  # tune.http.maxhdr: HAProxy 2.6 answers 502
        return "too many header fields in the response"
    return None
