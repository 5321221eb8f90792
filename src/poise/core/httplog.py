"""The `option httplog` line, as HAProxy 2.6 writes it:
`%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc
%sq/%bq %hr %hs %{+Q}r` (configuration.txt 8.2.3), and the header captures it shows.

`capture request|response header NAME len N` (8.8) puts one `{v1|v2}` block per direction
after `%sq/%bq`: the last occurrence of each header, stripped of blanks and cut to N
bytes, an absent header as an empty value. A frontend without captures in a direction
prints no block for it, and a request that never became a transaction (`<BADREQ>`) prints
none at all. Characters a log parser would trip on are written `#XX` (log.c: `"#{|}` and
the non-printable ones in a capture, `"#` and the non-printable ones in the request line).
Checked byte for byte against haproxy 2.6.12 (tests/io/test_http_logs.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from poise.config.model import Capture
from poise.core.http.headers import Headers
from poise.core.logline import BADREQ, NOSRV, LogExtras, format_date

# log.c init: hdr_encode_map and url_encode_map. Anything beyond latin-1 is non-printable.
HEADER_ENCODED = re.compile('[\x00-\x1f"#{|}\x7f-\U0010ffff]')
URL_ENCODED = re.compile('[\x00-\x1f"#\x7f-\U0010ffff]')


def hex_escape(char: str) -> str:
    """One character as HAProxy's `#XX` (each byte of it: latin-1, or UTF-8 beyond)."""
    if ord(char) < 256:
        return f"#{ord(char):02X}"
    return "".join(f"#{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))


def encode(text: str, pattern: re.Pattern[str]) -> str:
    """tools.c `encode_string`: the characters `pattern` matches written as `#XX`."""
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda match: hex_escape(match.group()), text)


def capture_block(values: Iterable[str | None]) -> str:
    """`{v1|v2}`: the captured values of one direction, encoded (empty when absent)."""
    return "{" + "|".join(encode(v, HEADER_ENCODED) if v else "" for v in values) + "}"


@lru_cache(maxsize=64)
def _capture_slots(captures: tuple[Capture, ...]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Lower-case header name -> (capture index, length) of the captures of that name."""
    slots: dict[str, list[tuple[int, int]]] = {}
    for index, capture in enumerate(captures):
        slots.setdefault(capture.name.lower(), []).append((index, capture.length))
    return {name: tuple(found) for name, found in slots.items()}


def capture_headers(
    captures: tuple[Capture, ...], headers: Headers | None
) -> tuple[str | None, ...]:
    """The values `captures` take from `headers` (one pass over the header lines): the
    last occurrence of each name wins, as in HAProxy's http_capture_headers."""
    values: list[str | None] = [None] * len(captures)
    if headers is None:
        return tuple(values)
    slots = _capture_slots(captures)
    for name, value in headers.items:
        found = slots.get(name.lower())
        if found is not None:
            stripped = value.strip(" \t")
            for index, length in found:
                values[index] = stripped[:length]
    return tuple(values)


@dataclass(slots=True)
class HttpLogRecord:
    client_ip: str
    client_port: int
    request_date: float  # epoch seconds: when the request began (%tr)
    frontend_name: str
    backend_name: str
    server_name: str = NOSRV
    tr: int = -1  # time to receive the full request head
    tw: int = -1
    tc: int = -1
    tr_server: int = -1  # server response time (%Tr)
    ta: int = 0  # active time of the request, to the end of the response
    status: int = 0
    bytes_read: int = 0
    captured_request_cookie: str = "-"
    captured_response_cookie: str = "-"
    termination_state: str = "----"  # %tsc: the two-letter state and two cookie flags
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False
    srv_queue: int = 0
    backend_queue: int = 0
    request_line: str = BADREQ
    frontend_tls: bool = False
    # %hr %hs: the frontend's `capture request|response header` values, in declaration
    # order (None: header absent). None: the frontend captures nothing in that direction,
    # or the request never became a transaction (HAProxy then prints no block at all).
    request_captures: tuple[str | None, ...] | None = None
    response_captures: tuple[str | None, ...] | None = None
    extras: LogExtras | None = None  # for a `log-format` line


def format_httplog(r: HttpLogRecord) -> str:
    captures = ""
    if r.request_captures is not None:
        captures = capture_block(r.request_captures) + " "
    if r.response_captures is not None:
        captures += capture_block(r.response_captures) + " "
    return (
        f"{r.client_ip}:{r.client_port} [{format_date(r.request_date)}] "
        f"{r.frontend_name}{'~' if r.frontend_tls else ''} {r.backend_name}/{r.server_name} "
        f"{r.tr}/{r.tw}/{r.tc}/{r.tr_server}/{r.ta} {r.status} {r.bytes_read} "
        f"{r.captured_request_cookie} {r.captured_response_cookie} {r.termination_state} "
        f"{r.actconn}/{r.feconn}/{r.beconn}/{r.srv_conn}/"
        f"{'+' if r.redispatched else ''}{r.retries} {r.srv_queue}/{r.backend_queue} "
        f'{captures}"{encode(r.request_line, URL_ENCODED)}"'
    )
