"""A `log-format` string as a function of a log record (configuration.txt 8.2.6).

config/logformat.py reads the string into nodes; `compile_http` and `compile_tcp` turn
them, once per string (cached), into a Formatter whose `render` builds the line from an
HttpLogRecord or a TcpLogRecord. Values are written as log.c `sess_build_logline` writes
them in HAProxy 2.6, flags included: `Q` quotes strings (numbers never), `X` writes
addresses, ports, %Ts, %ms, %rt, %lc and %pid in hexadecimal, `E` puts a backslash before
`"`, `\\` and `]`, and an empty string is "-" unless `-M` or `Q` (which gives `""`).

HAProxy's own formats are log-format strings too (config/logformat.py HTTPLOG, TCPLOG,
HTTPLOG_CLF): rendered from the same record, the first two give exactly the lines of
core/httplog.py `format_httplog` and core/logline.py `format_tcplog` (a test checks it on
many records), which stay as the fast path of `option httplog` and `option tcplog`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Generic, TypeVar

from poise.config.logformat import (
    CAPTURE_FETCHES,
    ESCAPE,
    HEX,
    MANDATORY,
    QUOTE,
    Expression,
    Node,
    Separator,
    Text,
    Variable,
    parse,
)
from poise.config.model import Sample
from poise.core import convert
from poise.core.fetch import parse_ip, path_of, sample_text, sample_value, to_str
from poise.core.http.message import Request
from poise.core.httplog import (
    HEADER_ENCODED,
    URL_ENCODED,
    HttpLogRecord,
    encode,
    hex_escape,
)
from poise.core.logline import (
    BADREQ,
    MONTHS,
    NO_EXTRAS,
    LogExtras,
    TcpLogRecord,
    format_date,
    split_epoch,
)

Record = HttpLogRecord | TcpLogRecord
CONNECTION_FETCHES = frozenset(
    {"fc_err", "ssl_fc_err", "ssl_c_err", "ssl_c_ca_err", "ssl_fc_is_resumed"}
)
R = TypeVar("R", bound=Record)
R_contra = TypeVar("R_contra", bound=Record, contravariant=True)
Get = Callable[[R], str]
_RFC5424 = frozenset('"\\]')


class Block(Generic[R_contra]):
    """A piece that may print nothing (a capture block of a frontend without captures):
    a separator after it then waits for the next piece that prints."""

    __slots__ = ("get",)

    def __init__(self, get: Callable[[R_contra], str | None]) -> None:
        self.get: Callable[[R_contra], str | None] = get


# A compiled string: constant text, a separator (None), a value, or a Block.
Part = str | None | Callable[[R], str] | Block[R]


class Formatter(Generic[R]):
    """A compiled `log-format` string. `uses` names the variables it shows (and "[]" for
    sample expressions), so that the shell computes costly values only when shown."""

    __slots__ = ("_parts", "_static", "text", "uses")

    def __init__(self, text: str, parts: list[Part[R]], uses: frozenset[str]) -> None:
        self.text = text
        self.uses = uses
        self._parts: list[Part[R]] = parts
        self._static: list[str | Get[R]] | None = _resolve(parts)

    def render(self, record: R) -> str:
        static = self._static
        if static is not None:
            return "".join([p if isinstance(p, str) else p(record) for p in static])
        out: list[str] = []
        space = True  # log.c last_isspace: no separator at the start, none twice
        for part in self._parts:
            if part is None:
                if not space:
                    out.append(" ")
                    space = True
                continue
            if isinstance(part, Block):
                value = part.get(record)
                if value is None:
                    continue
                out.append(value)
            else:
                out.append(part if isinstance(part, str) else part(record))
            space = False
        return "".join(out)


def _resolve(parts: list[Part[R]]) -> list[str | Get[R]] | None:
    """Without a Block every part prints, so the separators are known in advance and
    runs of text are joined into one string; None when there is a Block."""
    out: list[str | Get[R]] = []
    space = True
    for part in parts:
        if isinstance(part, Block):
            return None
        piece = part
        if piece is None:
            if space:
                continue
            piece = " "
        space = piece == " "
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return out


# --- how values are written (log.c lf_text_len, lf_ip, lf_port, lf_encode_string) ---------


def escape(text: str) -> str:
    """The `E` flag: `"`, `\\` and `]` get a backslash before them (RFC 5424 6.3.3)."""
    if not _RFC5424.intersection(text):
        return text
    return "".join("\\" + c if c in _RFC5424 else c for c in text)


def text_value(value: str | None, flags: int) -> str:
    """A string: escaped with E, "-" when empty (unless -M or Q), quoted with Q."""
    if value:
        if flags & ESCAPE:
            value = escape(value)
    else:
        value = "-" if flags & MANDATORY and not flags & QUOTE else ""
    return f'"{value}"' if flags & QUOTE else value


def encoded(value: str, url: bool, flags: int) -> str:
    """A request line or captured header: `#XX` for what the map names, and with E a
    backslash before `\\` and `]` (`"` is already `#22`)."""
    pattern = URL_ENCODED if url else HEADER_ENCODED
    if flags & ESCAPE:
        out = []
        for char in value:
            if pattern.match(char):
                out.append(hex_escape(char))
            elif char in _RFC5424:
                out.append("\\" + char)
            else:
                out.append(char)
        return "".join(out)
    return encode(value, pattern)


def ip_value(address: str | None, flags: int) -> str:
    if address and flags & HEX:
        ip = parse_ip(address)
        if ip is not None:
            return f"{ip[1]:08X}" if ip[0] == 4 else f"{ip[1]:032X}"
    return text_value(address, flags)


def port_value(port: int | None, flags: int) -> str:
    if port is None:
        return text_value(None, flags)
    return f"{port:04X}" if flags & HEX else str(port)


def hex_number(number: int, flags: int, width: int = 4) -> str:
    return f"{number:0{width}X}" if flags & HEX else str(number)


def gmt_date(epoch: float) -> str:
    """%T %trg: `06/Feb/2009:12:12:51 +0000` (log.c gmt2str_log)."""
    t = datetime.fromtimestamp(split_epoch(epoch)[0], UTC)
    return (
        f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year:04d}:"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"
    )


def local_date(epoch: float) -> str:
    """%Tl %trl: `06/Feb/2009:13:12:51 +0100` (log.c localdate2str_log)."""
    t = datetime.fromtimestamp(split_epoch(epoch)[0]).astimezone()
    offset = t.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return (
        f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year:04d}:"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} {sign}{hours:02d}{minutes:02d}"
    )


# --- the request line's parts (%HM %HU %HP %HPO %HQ %HV), as log.c cuts txn->uri ----------


def _line_parts(line: str) -> tuple[str, str, str] | None:
    """(method, uri, version) of a request line; None for `<BADREQ>` or no space."""
    if line == BADREQ:
        return None
    method, space, rest = line.partition(" ")
    if not space:
        return None
    rest = rest.lstrip(" \t")
    uri, _, version = rest.partition(" ")
    return method, uri, version.lstrip(" \t") or "HTTP/0.9"


def request_part(line: str, name: str) -> str:
    if name == "HM":
        method, space, _ = line.partition(" ")
        return method if space else BADREQ
    parts = _line_parts(line)
    if parts is None:
        return BADREQ
    uri = parts[1]
    if name == "HU":
        return uri
    if name == "HP":
        return uri.split("?", 1)[0]
    if name == "HPO":
        return path_of(uri) or ""
    if name == "HQ":
        mark = line.find("?")
        return line[mark:].split(" ", 1)[0] if mark >= 0 else ""
    return parts[2]  # HV


# --- variables ------------------------------------------------------------------------


def _x(r: Record) -> LogExtras:
    return r.extras or NO_EXTRAS


def _accept_date(r: Record) -> float:
    if isinstance(r, TcpLogRecord):
        return r.accept_date
    extras = _x(r)
    return r.request_date - (extras.ti + extras.th) / 1000


def _captures(r: Record, request: bool) -> tuple[str | None, ...] | None:
    return r.request_captures if request else r.response_captures


def _common(name: str, flags: int) -> Get[Record] | None:
    """The variables that read the same in both records."""
    if name == "ci":
        return lambda r: ip_value(r.client_ip, flags)
    if name == "cp":
        return lambda r: port_value(r.client_port, flags)
    if name == "fi":
        return lambda r: ip_value(_x(r).frontend_ip, flags)
    if name == "fp":
        return lambda r: port_value(_x(r).frontend_port, flags)
    if name == "bi":
        return lambda r: ip_value(_x(r).backend_ip, flags)
    if name == "bp":
        return lambda r: port_value(_x(r).backend_port, flags)
    if name == "si":
        return lambda r: ip_value(_x(r).server_ip, flags)
    if name == "sp":
        return lambda r: port_value(_x(r).server_port, flags)
    if name == "f":
        return lambda r: text_value(r.frontend_name, flags)
    if name == "ft":
        quote = '"' if flags & QUOTE else ""
        return lambda r: f"{quote}{r.frontend_name}{'~' if r.frontend_tls else ''}{quote}"
    if name == "b":
        return lambda r: text_value(r.backend_name, flags)
    if name == "s":
        return lambda r: text_value(r.server_name, flags)
    if name == "t":
        return lambda r: format_date(_accept_date(r))
    if name == "T":
        return lambda r: gmt_date(_accept_date(r))
    if name == "Tl":
        return lambda r: local_date(_accept_date(r))
    if name == "Ts":
        return lambda r: hex_number(split_epoch(_accept_date(r))[0], flags)
    if name == "ms":
        return lambda r: (
            f"{split_epoch(_accept_date(r))[1] // 1000:{'02X' if flags & HEX else '03d'}}"
        )
    if name == "Th":
        return lambda r: str(_x(r).th)
    if name == "Tw":
        return lambda r: str(r.tw)
    if name == "Tc":
        return lambda r: str(r.tc)
    if name == "U":
        return lambda r: str(_x(r).bytes_uploaded)
    if name == "ac":
        return lambda r: str(r.actconn)
    if name == "fc":
        return lambda r: str(r.feconn)
    if name == "bc":
        return lambda r: str(r.beconn)
    if name == "sc":
        return lambda r: str(r.srv_conn)
    if name == "rc":
        return lambda r: f"{'+' if r.redispatched else ''}{r.retries}"
    if name == "sq":
        return lambda r: str(r.srv_queue)
    if name == "bq":
        return lambda r: str(r.backend_queue)
    if name == "rt":
        return lambda r: hex_number(_x(r).request_counter, flags)
    if name == "lc":
        return lambda r: hex_number(_x(r).log_counter, flags)
    if name == "pid":
        return lambda r: hex_number(_x(r).pid, flags)
    if name == "H":
        return lambda r: text_value(_x(r).hostname, flags)
    if name == "ID":  # no `unique-id-format` in poise: HAProxy prints "-" then too
        return lambda r: text_value(None, flags)
    if name == "sslv":
        return lambda r: text_value(_x(r).ssl_version, flags)
    if name == "sslc":
        return lambda r: text_value(_x(r).ssl_cipher, flags)
    return None


def _http(name: str, flags: int) -> Get[HttpLogRecord]:
    if name in ("r", "HM", "HU", "HP", "HPO", "HQ", "HV"):
        quote = '"' if flags & QUOTE else ""
        if name == "r":
            return lambda r: f"{quote}{encoded(r.request_line, True, flags)}{quote}"
        return lambda r: f"{quote}{encoded(request_part(r.request_line, name), True, flags)}{quote}"
    if name in ("tr", "trg", "trl"):
        date = {"tr": format_date, "trg": gmt_date, "trl": local_date}[name]
        return lambda r: date(r.request_date)
    if name == "TR":
        return lambda r: str(r.tr)
    if name == "Tr":
        return lambda r: str(r.tr_server)
    if name == "Ti":
        return lambda r: str(_x(r).ti)
    if name == "Tq":
        return lambda r: str(_x(r).th + _x(r).ti + r.tr if r.tr >= 0 else -1)
    if name == "Ta":
        return lambda r: str(r.ta)
    if name in ("Tt", "Tu"):
        idle = name == "Tt"
        return lambda r: str(r.ta + _x(r).th + (_x(r).ti if idle else 0))
    if name == "Td":
        return lambda r: str(_http_data_time(r))
    if name == "ST":
        return lambda r: str(r.status)
    if name == "B":
        return lambda r: str(r.bytes_read)
    if name in ("CC", "CS"):
        request = name == "CC"
        return lambda r: text_value(
            _cookie(r.captured_request_cookie if request else r.captured_response_cookie), flags
        )
    if name == "ts":
        return lambda r: r.termination_state[:2]
    if name == "tsc":
        return lambda r: r.termination_state
    get = _common(name, flags)
    assert get is not None, name
    return get


def _http_data_time(r: HttpLogRecord) -> int:
    """%Td: Tt less the time to the response head (-1 without a response)."""
    if r.tr_server < 0:
        return -1
    return r.ta - max(r.tr, 0) - max(r.tw, 0) - max(r.tc, 0) - r.tr_server


def _cookie(value: str) -> str | None:
    return None if value == "-" else value


def _tcp(name: str, flags: int) -> Get[TcpLogRecord]:
    asap = "+"
    if name == "Tt":
        return lambda r: f"{asap if r.logasap else ''}{r.tt}"
    if name == "Tu":
        return lambda r: str(r.tt)
    if name == "Td":
        return lambda r: str(r.tt - max(r.tw, 0) - r.tc if r.tc >= 0 else -1)
    if name == "B":
        return lambda r: f"{asap if r.logasap else ''}{r.bytes_read}"
    if name == "ST":
        return lambda r: "-1"
    if name in ("CC", "CS"):
        return lambda r: text_value(None, flags)
    if name == "ts":
        return lambda r: r.termination_state
    if name == "tsc":
        return lambda r: r.termination_state + "--"
    get = _common(name, flags)
    assert get is not None, name  # the HTTP-only variables are refused by check_mode
    return get


def _capture_block(name: str, flags: int) -> Block[Record]:
    """%hr %hs (one `{a|b}` block) and %hrl %hsl (the values apart); nothing when the
    frontend has no capture in that direction."""
    request = name in ("hr", "hrl")
    quote = '"' if flags & QUOTE else ""
    if name in ("hr", "hs"):

        def block(r: Record) -> str | None:
            values = _captures(r, request)
            if values is None:
                return None
            inner = "|".join(encoded(v, False, flags) if v else "" for v in values)
            return f"{quote}{{{inner}}}{quote}"

        return Block(block)

    def listed(r: Record) -> str | None:
        values = _captures(r, request)
        if values is None:
            return None
        absent = "" if quote else "-"
        return " ".join(
            f"{quote}{encoded(v, False, flags) if v is not None else absent}{quote}" for v in values
        )

    return Block(listed)


# --- sample expressions ----------------------------------------------------------------


def _connection_request(r: Record) -> Request:
    """What a sample fetch sees of a session without a parsed request: its addresses."""
    return Request(
        "",
        "",
        "",
        src=r.client_ip,
        src_port=r.client_port,
        dst=_x(r).frontend_ip or "",
        dst_port=_x(r).frontend_port or 0,
        ssl=r.frontend_tls,
    )


def _converter(sample: Sample) -> Callable[[str | None, Record], str | None]:
    """A sample's converters, applied to a value the log computed itself."""
    if not sample.converters:
        return lambda value, r: value
    step = convert.chain(sample.converters)

    def apply(value: str | None, r: Record) -> str | None:
        if value is None:
            return None
        converted = step(value, _x(r).request or _connection_request(r))
        return to_str(converted) if converted is not None else None

    return apply


def _capture_fetch(sample: Sample) -> Callable[[Record], str | None]:
    name = sample.fetch
    if name in ("capture.req.hdr", "capture.res.hdr"):
        index = int(sample.args[0])
        request = name == "capture.req.hdr"

        def header(r: Record) -> str | None:
            values = _captures(r, request)
            return values[index] if values is not None and index < len(values) else None

        return header
    if name == "capture.res.ver":
        return lambda r: f"HTTP/{_x(r).response_version}" if _x(r).response_version else None
    position = ("capture.req.method", "capture.req.uri", "capture.req.ver").index(name)

    def part(r: Record) -> str | None:
        if not isinstance(r, HttpLogRecord):
            return None
        parts = _line_parts(r.request_line)
        return parts[position] if parts is not None else None

    return part


def _connection_fetch(sample: Sample, flags: int) -> Get[Record]:
    """`%[fc_err]`, `%[ssl_fc_err]`, `%[ssl_c_err]`, `%[ssl_c_ca_err]`: 0, as a logged
    session's connection and TLS handshake succeeded (the TLS ones: nothing without TLS);
    `%[ssl_fc_is_resumed]`: whether the client resumed a TLS session."""
    name = sample.fetch
    step = convert.chain(sample.converters) if sample.converters else None

    def get(r: Record) -> str:
        value: int | None
        if name == "ssl_fc_is_resumed":
            value = int(bool(_x(r).ssl_resumed))
        else:
            value = 0 if name == "fc_err" or r.frontend_tls else None
        if value is not None and step is not None:
            converted = step(value, _x(r).request or _connection_request(r))
            return text_value(to_str(converted) if converted is not None else None, flags)
        return text_value(None if value is None else str(value), flags)

    return get


def _expression(node: Expression) -> Get[Record]:
    sample, flags = node.sample, node.flags
    if sample.fetch in CONNECTION_FETCHES:
        return _connection_fetch(sample, flags)
    if sample.fetch in CAPTURE_FETCHES:
        fetch = _capture_fetch(sample)
        converted = _converter(sample)
        return lambda r: text_value(sample_text(converted(fetch(r), r)), flags)
    if sample.fetch == "req.proto_http":  # the request is gone when the line is written
        return lambda r: text_value(None, flags)
    if sample.fetch == "status":
        on_status = _converter(sample)
        return lambda r: text_value(
            on_status(str(r.status), r) if isinstance(r, HttpLogRecord) and r.status else None,
            flags,
        )
    value = sample_value(sample, "any")

    def get(r: Record) -> str:
        return text_value(sample_text(value(_x(r).request or _connection_request(r), None)), flags)

    return get


# --- compiling ----------------------------------------------------------------------------


def _compile(text: str, variable: Callable[[str, int], Callable[[R], str]]) -> Formatter[R]:
    nodes: tuple[Node, ...] = parse(text)
    parts: list[Part[R]] = []
    uses: set[str] = set()
    for node in nodes:
        if isinstance(node, Separator):
            parts.append(None)
        elif isinstance(node, Text):
            parts.append(node.text)
        elif isinstance(node, Expression):
            uses.add("[]")
            parts.append(_expression(node))
        elif isinstance(node, Variable):
            uses.add(node.name)
            if node.name in ("hr", "hs", "hrl", "hsl"):
                parts.append(_capture_block(node.name, node.flags))
            else:
                parts.append(variable(node.name, node.flags))
    return Formatter(text, parts, frozenset(uses))


@lru_cache(maxsize=256)
def compile_http(text: str) -> Formatter[HttpLogRecord]:
    """The Formatter of an HTTP frontend's `log-format` (the string is valid: checked when
    the configuration was read)."""
    return _compile(text, _http)


@lru_cache(maxsize=256)
def compile_tcp(text: str) -> Formatter[TcpLogRecord]:
    """The Formatter of a TCP frontend's `log-format`."""
    return _compile(text, _tcp)
