"""Log lines as HAProxy writes them: the `option tcplog` line and the syslog framing of
every format a `log` line accepts. Pure: time comes in as a float epoch.

Byte-for-byte compatibility is the point, so that the log parsers, SIEM rules and
`halog` runs people already point at HAProxy keep working on poise. The formats follow
configuration.txt (sections "log", 8.2.2, 8.5) and log.c (`build_log_header`,
`__do_send_log`, `sess_build_logline`) of HAProxy 2.6, and were checked against the
datagrams Debian's haproxy 2.6.12 sends (tests/unit/test_logline.py holds them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from poise.config.model import LogFormatName
from poise.config.tune import LOG_LENGTH
from poise.core.http.message import Request

# log.c: log_facilities[] and log_levels[]; the index is the syslog number.
FACILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
            "uucp", "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
            "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        )
    )
}  # fmt: skip
LEVELS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
    )
}
# C-locale month names, whatever the locale of the host (HAProxy's monthname[]).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

EXPLANATION_LEVEL = "notice"  # one above the traffic lines
NOSRV = "<NOSRV>"  # %s when the session never reached a server
BADREQ = "<BADREQ>"  # %r of a request that could not be read
# %s of a request one of HAProxy's applets answered, by the reason its verdict gives
# (net/services.py): the stats page, and `use-service prometheus-exporter`.
STATS_SERVICE = "stats"
PROMEX_SERVICE = "prometheus-exporter"
SERVICE_SERVERS = {STATS_SERVICE: "<STATS>", PROMEX_SERVICE: "<PROMEX>"}


def facility_number(facility: int | str) -> int:
    """`local0` -> 16. Raises ValueError for a name syslog does not have."""
    if isinstance(facility, int):
        return facility
    try:
        return FACILITIES[facility]
    except KeyError:
        raise ValueError(f"unknown log facility '{facility}'") from None


def level_number(level: int | str) -> int:
    """`info` -> 6. Raises ValueError for a name syslog does not have."""
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown log level '{level}'") from None


def level_for_target(level: int | str, max_level: str | None, min_level: str | None) -> int | None:
    """The level a message is sent with to a `log` target, or None when the target filters
    it out. As log.c `process_send_log`: a message less important than the target's max
    level is not sent; one more severe than its min level is sent at the min level (so that
    `emerg` does not reach every terminal through a default syslog set-up)."""
    number = level_number(level)
    if max_level is not None and number > LEVELS[max_level]:
        return None
    if min_level is not None:
        number = max(number, LEVELS[min_level])
    return number


def explanation_target(max_level: str | None, min_level: str | None) -> bool:
    """Whether a `log` target receives poise's explanations of failures (core/explain.py):
    those that take `notice` lines but not the traffic lines (level info), such as
    `log 127.0.0.1 local1 notice`. The explanations stay off the traffic's targets, whose
    readers (halog, goaccess, lnav, SIEM rules) expect HAProxy's lines alone."""
    return (
        level_for_target("info", max_level, min_level) is None
        and level_for_target(EXPLANATION_LEVEL, max_level, min_level) is not None
    )


def split_epoch(epoch: float) -> tuple[int, int]:
    """Whole seconds and microseconds, as a `struct timeval`."""
    seconds, micros = divmod(round(epoch * 1_000_000), 1_000_000)
    return seconds, micros


def format_date(epoch: float) -> str:
    """`%t`: the accept date in local time, `06/Feb/2009:12:12:51.443` (log.c
    `date2str_log`; milliseconds truncated, not rounded)."""
    seconds, micros = split_epoch(epoch)
    t = datetime.fromtimestamp(seconds)
    return (
        f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year:04d}:"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{micros // 1000:03d}"
    )


def legacy_time(epoch: float) -> str:
    """The RFC 3164 timestamp in local time, day padded with a space: `Feb  6 12:12:56`."""
    t = datetime.fromtimestamp(split_epoch(epoch)[0])
    return f"{MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def iso_time(epoch: float) -> str:
    """The RFC 5424 / `timed` / `iso` timestamp: local time with microseconds and the UTC
    offset, `2026-11-21T16:10:49.775885+05:30` (tools.c `timeofday_as_iso_us`)."""
    seconds, micros = split_epoch(epoch)
    t = datetime.fromtimestamp(seconds, UTC).astimezone()
    offset = t.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{micros:06d}{sign}{hours:02d}:{minutes:02d}"


@dataclass(slots=True)
class LogExtras:
    """What only a `log-format` line can show, beyond the fixed formats' fields: made by
    the shell only for a frontend with a `log-format`, and only with the values its format
    shows (core/logformat.py `Formatter.uses`). None prints as "-", as HAProxy prints a
    value it does not have."""

    frontend_ip: str | None = None  # %fi %fp: the address the client connected to
    frontend_port: int | None = None
    backend_ip: str | None = None  # %bi %bp: poise's side of the server connection
    backend_port: int | None = None
    server_ip: str | None = None  # %si %sp: the server's side
    server_port: int | None = None
    bytes_uploaded: int = 0  # %U: bytes from the client
    th: int = 0  # %Th: handshake time (TLS, PROXY protocol)
    ti: int = 0  # %Ti: idle time before an HTTP request
    request_counter: int = 0  # %rt
    log_counter: int = 0  # %lc: lines the frontend logged before this one
    pid: int = 0  # %pid
    hostname: str = ""  # %H
    ssl_version: str | None = None  # %sslv %sslc (None: not a TLS connection)
    ssl_cipher: str | None = None
    ssl_resumed: bool = False  # %[ssl_fc_is_resumed]: the client resumed a TLS session
    request: Request | None = None  # what %[sample] reads (HTTP)
    response_version: str | None = None  # "1.1": %[capture.res.ver]


NO_EXTRAS = LogExtras()


@dataclass(slots=True)
class TcpLogRecord:
    """Every field of `option tcplog` (configuration.txt 8.2.2), named as the documentation
    names them. Durations are milliseconds; -1 means the phase was never reached (Tw when
    the session was aborted before the queue, Tc when no connection was established)."""

    client_ip: str  # as the socket reports it; "unix" for a unix socket listener
    client_port: int  # for a unix socket listener: the listener's id
    accept_date: float  # epoch seconds when the connection was accepted
    frontend_name: str
    backend_name: str
    server_name: str = NOSRV
    tw: int = -1  # time waiting in queues
    tc: int = -1  # time to establish the connection to the server, retries included
    tt: int = 0  # total time from accept to the last close (to the log, with logasap)
    bytes_read: int = 0  # bytes sent from the server to the client
    termination_state: str = "--"  # termination.code(cause, phase)
    actconn: int = 0  # concurrent connections on the process
    feconn: int = 0  # concurrent connections on the frontend
    beconn: int = 0  # concurrent connections on the backend, queued ones included
    srv_conn: int = 0  # concurrent connections still active on the server
    retries: int = 0
    redispatched: bool = False  # "+" before the retries: the server is not the first one
    srv_queue: int = 0  # requests processed before this one in the server queue
    backend_queue: int = 0  # ... and in the backend queue
    logasap: bool = False  # `option logasap`: Tt and bytes_read are lower bounds, "+"
    frontend_tls: bool = False  # %ft appends "~" when the bind line terminates TLS
    # %hr %hs %hrl %hsl of a `log-format`: a TCP session reads no header, so a frontend's
    # captures are there and empty (HAProxy prints `{}`); None when it has none.
    request_captures: tuple[str | None, ...] | None = None
    response_captures: tuple[str | None, ...] | None = None
    extras: LogExtras | None = None


def format_tcplog(r: TcpLogRecord) -> str:
    """The `option tcplog` line, HAProxy's
    `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`."""
    asap = "+" if r.logasap else ""
    return (
        f"{r.client_ip}:{r.client_port} [{format_date(r.accept_date)}] "
        f"{r.frontend_name}{'~' if r.frontend_tls else ''} {r.backend_name}/{r.server_name} "
        f"{r.tw}/{r.tc}/{asap}{r.tt} {asap}{r.bytes_read} {r.termination_state} "
        f"{r.actconn}/{r.feconn}/{r.beconn}/{r.srv_conn}/"
        f"{'+' if r.redispatched else ''}{r.retries} {r.srv_queue}/{r.backend_queue}"
    )


CONSOLE_LABELS = {"alert": "ALERT", "warning": "WARNING", "notice": "NOTICE", "diag": "DIAG"}


def console_line(level: str, pid: int, message: str) -> str:
    """A start-up or state-change line on stderr, as errors.c `print_message` writes it:
    `[WARNING]  (1234) : message`, the bracketed label padded with spaces to 10 columns.
    `level` is alert, warning, notice or diag (any case)."""
    try:
        label = CONSOLE_LABELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown console level '{level}'") from None
    message = message.removesuffix("\n")
    return f"{'[' + label + ']':<10} ({pid}) : {message}\n"


def header(
    format: LogFormatName,
    *,
    facility: int | str,
    level: int | str,
    tag: str,
    pid: int | None,
    now: float,
    hostname: str | None = None,
    sd: str | None = None,
) -> str:
    """The syslog header put before a message (log.c `build_log_header`):

    - local:    `<PRI>Mmm dd HH:MM:SS [host ]tag[pid]: ` (HAProxy's default format; the
                host only with `log-send-hostname`)
    - rfc3164:  `<PRI>Mmm dd HH:MM:SS host tag[pid]: `, host "localhost" when not given
    - rfc5424:  `<PRI>1 ISOTIME host tag pid - SD ` ("-" for what is not given; SD: the
                structured data of `log-format-sd`)
    - priority: `<PRI>`;  short: `<LEVEL>`;  timed: `<LEVEL>ISOTIME `;  iso: `ISOTIME `
    - raw:      nothing

    PRI is facility * 8 + level. An empty tag drops `tag[pid]: ` from local and rfc3164.
    """
    lvl = level_number(level)
    if format == "raw":
        return ""
    if format == "short":
        return f"<{lvl}>"
    if format == "timed":
        return f"<{lvl}>{iso_time(now)} "
    if format == "iso":
        return f"{iso_time(now)} "
    pri = f"<{facility_number(facility) * 8 + lvl}>"
    if format == "priority":
        return pri
    if format == "rfc5424":
        return (
            f"{pri}1 {iso_time(now)} {hostname or '-'} {tag or '-'} "
            f"{pid if pid is not None else '-'} - {sd or '-'} "
        )
    # local and rfc3164 (`log-send-hostname` puts a host name in the local one too)
    host = f"{hostname} " if hostname else "localhost " if format == "rfc3164" else ""
    if not tag:
        return f"{pri}{legacy_time(now)} {host}"
    ident = f"{tag}[{pid}]" if pid is not None else tag
    return f"{pri}{legacy_time(now)} {host}{ident}: "


def frame(
    message: str | bytes,
    *,
    format: LogFormatName,
    facility: int | str,
    level: int | str,
    tag: str,
    pid: int | None,
    now: float,
    hostname: str | None = None,
    length: int = LOG_LENGTH,
    fd: bool = False,
    sd: str | None = None,
) -> bytes:
    """One log message as sent to a target: header + message, truncated, then LF.

    Trailing LF and NUL bytes of the message are dropped first (log.c does the same). The
    truncation differs by target, as in HAProxy 2.6: a datagram (UDP, unix socket) carries
    at most `length` bytes of header and message, then the LF (`len 80` gives 81-byte
    datagrams); a stream target (`fd=True`: stdout, stderr) keeps the LF within `length`
    (fd.c `fd_write_frag_line`). The message text is encoded as UTF-8; surrogate escapes
    give back the original bytes of text decoded with `surrogateescape`.
    """
    if isinstance(message, str):
        message = message.encode("utf-8", "surrogateescape")
    message = message.rstrip(b"\n\0")
    head = header(
        format,
        facility=facility,
        level=level,
        tag=tag,
        pid=pid,
        now=now,
        hostname=hostname,
        sd=sd,
    ).encode("utf-8", "surrogateescape")
    limit = length - 1 if fd else length
    line = head + message
    if len(line) > limit:
        line = line[:limit]
    return line + b"\n"
