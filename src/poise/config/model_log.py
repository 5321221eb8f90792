"""Where and how a proxy logs, beyond its log line's format: the `log` targets, and the
settings that shape the syslog message around the line (`log-tag`, `log-format-sd`,
`error-log-format`). Pure, immutable data, re-exported by config/model.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poise.config.tune import LOG_LENGTH
from poise.config.where import Where

LogFormatName = Literal["rfc3164", "rfc5424", "raw", "short", "timed", "iso", "local", "priority"]
LogKind = Literal["stdout", "stderr", "udp", "unix"]
# The syslog tag (the program name of RFC 3164, APP-NAME of RFC 5424) without `log-tag`:
# HAProxy's, so that the rules written for HAProxy's lines (Debian's rsyslog file
# /etc/rsyslog.d/49-haproxy.conf, `programname == "haproxy"` filters) take poise's too.
DEFAULT_TAG = "haproxy"


@dataclass(frozen=True, slots=True)
class LogTarget:
    """A `log` line: where log lines go and in which syslog format.
    `udp`: host/port (default port 514); `unix`: path (e.g. /dev/log)."""

    kind: LogKind
    address: str
    port: int
    facility: str
    where: Where
    level: str | None = None  # max level sent (e.g. "info"); None = all
    minlevel: str | None = None
    format: LogFormatName = "local"  # HAProxy's default (rfc3164 adds a hostname)
    length: int = LOG_LENGTH


@dataclass(frozen=True, slots=True)
class ProxyLog:
    """A proxy's `log-tag` (None: the global one), `log-format-sd` (the structured data
    of its RFC 5424 messages, as written) and `error-log-format` (the line of a connection
    that failed before it made a session, as written; None: HAProxy's own line)."""

    tag: str | None = None
    format_sd: str | None = None
    error_format: str | None = None
