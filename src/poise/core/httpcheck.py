"""HTTP health checks, the deciding part: the request bytes a check sends, and the verdict
on what the server answered, with HAProxy's texts (src/tcpcheck.c in HAProxy 2.6,
tcpcheck_eval_send() and tcpcheck_eval_expect_http(), and its H1 multiplexer's output).

The request is what HAProxy 2.6 puts on the wire (captured from it, see
tests/unit/test_httpcheck.py): the request line, the configured headers with lower-case
names, then `content-length` (for a body, or 0 for a method other than GET, HEAD, OPTIONS
and DELETE), then `connection: close` unless the request's HTTP version already means it
(HTTP/1.0) or a `Connection` header was configured. A configured Content-Length or
Transfer-Encoding header is dropped, as configuration.txt says for `http-check send`.

The verdict follows the expectation (`http-check expect`), or without one the implicit
`status 200-399`:
- status/rstatus decide once the response head is read; a miss is "Layer7 wrong status"
  with the code, and the reason phrase as the info.
- string/rstring look at the body (de-chunked), waiting for more while a match is still
  possible and the response is not over; a miss is "Layer7 invalid response" with
  "HTTP content check did not match" (or "HTTP check matched unwanted content" with `!`);
  an empty body is "HTTP content check could not find a response body", negated or not.
- A pass is "Layer7 check passed" with the code and no info.
HAProxy shows the code only for statuses that carry layer-7 data (L7OK, L7STS: those at
or above HCHK_STATUS_L57DATA); "Layer7 invalid response" and "Layer7 timeout" are below
it, so their results have no code.

HAProxy's check buffer is `tune.bufsize` (16384 bytes): a response is read up to that
much, head and body together, and a body pattern beyond it is not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from poise.config import model, tune
from poise.core import health

# tune.bufsize's default: the most of a response a check reads (configuration.txt,
# `http-check expect`: "the responses will be limited to a certain size defined by the
# global tune.bufsize option, which defaults to 16384 bytes").
CHECK_BUFFER_BYTES = tune.BUFSIZE

L7_PASSED = "Layer7 check passed"
L7_WRONG_STATUS = "Layer7 wrong status"
L7_INVALID = "Layer7 invalid response"
L7_TIMEOUT = "Layer7 timeout"

NO_MATCH = "HTTP content check did not match"
UNWANTED_MATCH = "HTTP check matched unwanted content"
NO_BODY = "HTTP content check could not find a response body"

# HAProxy's H1 multiplexer leaves out "content-length: 0" for these methods.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

# Without `http-check expect`, HAProxy adds `http-check expect status 200-399`.
IMPLICIT_CODES = ((200, 399),)

KEEP_CLOSE = frozenset({"close", "keep-alive"})


# -- the request ---------------------------------------------------------------------------


def build_request(check: model.HttpCheck) -> bytes:
    """The bytes of the check's request, as HAProxy 2.6 sends them."""
    version = check.version
    lines = [f"{check.method} {check.uri} {version}"]
    # A configured Connection header replaces HAProxy's own "Connection: close"; its
    # close and keep-alive tokens are then written by the H1 multiplexer at the end of
    # the head, and only where they differ from the version's default.
    tokens: list[str] | None = None
    for name, value in check.headers:
        lower = name.lower()
        if not value or lower in ("content-length", "transfer-encoding"):
            continue
        if lower == "connection":
            listed = [t.strip() for t in value.split(",") if t.strip()]
            tokens = (tokens or []) + [t.lower() for t in listed]
            others = [t for t in listed if t.lower() not in KEEP_CLOSE]
            if others:
                lines.append(f"connection: {', '.join(others)}")
            continue
        lines.append(f"{lower}: {value}")
    body = check.body.encode("utf-8")
    if body or check.method not in BODYLESS_METHODS:
        lines.append(f"content-length: {len(body)}")
    close = tokens is None or "close" in tokens
    if version == "HTTP/1.0":
        if not close and "keep-alive" in (tokens or ()):
            lines.append("connection: keep-alive")
    elif close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# -- the response --------------------------------------------------------------------------


@dataclass(slots=True)
class Response:
    """What has been read of a check's response so far (the shell fills it in).

    `code` is set once the head is complete (the first head, a 1xx included, as HAProxy
    reads it); `over` once nothing more will come: the message ended, the server closed,
    or the check buffer is full; `invalid` when the bytes are not an HTTP response."""

    code: int | None = None
    reason: bytes = b""
    body: bytearray = field(default_factory=bytearray)
    over: bool = False
    invalid: bool = False


def parse_status_codes(pattern: str) -> tuple[tuple[int, int], ...]:
    """`http-check expect status 200,201,300-310` -> ((200, 200), (201, 201), (300, 310)).

    As HAProxy 2.6 reads the list: empty items are skipped, `-300` is 0-300; a range
    without its end (`200-`) or any other character is an error (ValueError)."""
    ranges = []
    for item in pattern.split(","):
        if not item:
            continue
        low, sep, high = item.partition("-")
        if not (low.isdigit() or (sep and not low)) or (sep and not high.isdigit()):
            raise ValueError(f"invalid status code or range '{item}'")
        first = int(low) if low else 0
        ranges.append((first, int(high) if sep else first))
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class Expectation:
    """One backend's `http-check expect`, compiled once."""

    kind: Literal["status", "rstatus", "string", "rstring"] = "status"
    negate: bool = False
    codes: tuple[tuple[int, int], ...] = IMPLICIT_CODES
    status_regex: re.Pattern[str] | None = None
    text: bytes = b""
    body_regex: re.Pattern[bytes] | None = None

    @classmethod
    def from_config(cls, expect: model.HttpExpect | None) -> Expectation:
        """Raises ValueError (or re.error) for a pattern that does not compile."""
        if expect is None:
            return cls()
        kind, pattern, negate = expect.kind, expect.pattern, expect.negate
        if kind == "status":
            return cls(kind, negate, codes=parse_status_codes(pattern))
        if kind == "rstatus":
            return cls(kind, negate, status_regex=re.compile(pattern))
        if kind == "string":
            return cls(kind, negate, text=pattern.encode("utf-8"))
        return cls(kind, negate, body_regex=re.compile(pattern.encode("utf-8")))

    @property
    def reads_body(self) -> bool:
        return self.kind in ("string", "rstring")

    def evaluate(self, response: Response, duration_ms: int) -> health.CheckResult | None:
        """The verdict, or None while more of the response is needed to reach one."""
        if response.invalid:
            return invalid_response(duration_ms)
        code = response.code
        if code is None:
            return invalid_response(duration_ms) if response.over else None
        if not self.reads_body:
            if self.kind == "status":
                match = any(low <= code <= high for low, high in self.codes)
            else:
                assert self.status_regex is not None
                match = self.status_regex.search(str(code)) is not None
            if match == self.negate:
                info = response.reason.decode("utf-8", "replace") or None
                return health.CheckResult(False, L7_WRONG_STATUS, info, duration_ms, code)
            return passed(code, duration_ms)
        body = bytes(response.body)
        if not body:
            if not response.over:
                return None
            return health.CheckResult(False, L7_INVALID, NO_BODY, duration_ms)
        if self.kind == "string":
            if not response.over and len(body) < len(self.text):
                return None
            match = self.text in body
        else:
            assert self.body_regex is not None
            match = self.body_regex.search(body) is not None
        if not match and not response.over:
            return None  # it may still come
        if match == self.negate:
            info = UNWANTED_MATCH if self.negate else NO_MATCH
            return health.CheckResult(False, L7_INVALID, info, duration_ms)
        return passed(code, duration_ms)


def passed(code: int, duration_ms: int) -> health.CheckResult:
    """L7OK: HAProxy reports the code and no info."""
    return health.CheckResult(True, L7_PASSED, None, duration_ms, code)


def invalid_response(duration_ms: int) -> health.CheckResult:
    """L7RSP without info: not HTTP, a head cut short, or nothing before the close."""
    return health.CheckResult(False, L7_INVALID, None, duration_ms)


def timeout(duration_ms: int) -> health.CheckResult:
    """L7TOUT: connected, but no verdict before the check's time ran out."""
    return health.CheckResult(False, L7_TIMEOUT, None, duration_ms)
