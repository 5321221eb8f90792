"""The contents of an `errorfile` (and of `http-request return errorfile`): a whole HTTP
response, checked as HAProxy checks it when it loads the file (configuration.txt 4.2,
`errorfile`): a status line and headers ending with an empty line (CRLF or LF), no
chunked body, and a body as long as its Content-Length says. An empty file is allowed
(HAProxy then sends nothing and closes). Pure; core/http/reply.py renders the parsed
message the way HAProxy sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATUS_LINE = re.compile(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# The status codes HAProxy has error pages for, and so accepts for `errorfile`,
# `deny_status` and the replies built from error files (HAProxy 2.6).
HANDLED_STATUSES = frozenset(
    {200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}
)


@dataclass(frozen=True, slots=True)
class HttpMessage:
    """A parsed response: its status line's parts, headers (as written) and body."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


def parse_response(data: bytes) -> HttpMessage | None:
    """The response a file holds (None for an empty file); raises ValueError saying what
    is wrong, as HAProxy refuses such a file."""
    if not data:
        return None
    head, separator, body = _split_head(data)
    if not separator:
        raise ValueError("unable to parse headers (the header block does not end)")
    lines = head.decode("latin-1").split("\n")
    lines = [line.removesuffix("\r") for line in lines]
    match = _STATUS_LINE.fullmatch(lines[0])
    if not match:
        raise ValueError(f"unable to parse headers (bad status line '{lines[0]}')")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise ValueError(f"unable to parse headers (bad header line '{line}')")
        headers.append((name, value.strip(" \t")))
    version, status, reason = match.group(1), int(match.group(2)), match.group(3) or ""
    message = HttpMessage(version, status, reason, tuple(headers), body)
    codings = ",".join(message.header("transfer-encoding")).lower()
    if "chunked" in codings:
        raise ValueError("chunk-encoded payload not supported")
    lengths = {value.strip() for value in message.header("content-length")}
    if len(lengths) > 1 or any(not value.isdigit() for value in lengths):
        raise ValueError("invalid content-length")
    if lengths and int(next(iter(lengths))) != len(body):
        announced = next(iter(lengths))
        raise ValueError(
            f"payload size does not match the announced content-length ({len(body)} != {announced})"
        )
    return message


def _split_head(data: bytes) -> tuple[bytes, bool, bytes]:
    """(the status line and header lines, whether an empty line ended them, the body)."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return data, False, b""
        if start and data[start:end] in (b"", b"\r"):
            return data[: start - 1], True, data[end + 1 :]
        start = end + 1
