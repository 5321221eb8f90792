"""The tcplog line, the termination codes and the syslog framing, byte for byte.

The expected bytes are HAProxy's: the documented example of configuration.txt 8.2.2, and
datagrams captured from Debian's haproxy 2.6.12 (one `log` line per format, a UDP
receiver on 127.0.0.1) with the pid, time and time zone of that capture.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from poise.config.model import LogFormatName
from poise.core import termination
from poise.core.logline import (
    NOSRV,
    TcpLogRecord,
    console_line,
    facility_number,
    format_date,
    format_tcplog,
    frame,
    level_for_target,
    level_number,
)
from poise.core.termination import Cause, Phase


@pytest.fixture
def tz(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run the test in the time zone given as the fixture's parameter."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def utc(iso: str) -> float:
    """Epoch seconds of an ISO date-time written in UTC."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------------------
# tcplog


def test_documented_example_reproduces() -> None:
    # configuration.txt 8.2.2:
    #   Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313
    #   [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0
    accepted = datetime(2009, 2, 6, 12, 12, 51, 443_000).timestamp()  # local time
    record = TcpLogRecord(
        client_ip="10.0.1.2",
        client_port=33313,
        accept_date=accepted,
        frontend_name="fnt",
        backend_name="bck",
        server_name="srv1",
        tw=0,
        tc=0,
        tt=5007,
        bytes_read=212,
        termination_state=termination.NORMAL,
        retries=3,
    )
    line = format_tcplog(record)
    assert line == (
        "10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0"
    )
    sent = frame(
        line,
        format="rfc3164",
        facility="local0",
        level="info",
        tag="haproxy",
        pid=14387,
        now=datetime(2009, 2, 6, 12, 12, 56).timestamp(),
        hostname="localhost",
    )
    assert sent == (
        b"<134>Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 "
        b"[06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0\n"
    )


@pytest.mark.parametrize("tz", ["UTC"], indirect=True)
def test_ipv6_client_has_no_brackets(tz: None) -> None:
    # haproxy 2.6.12: "::1:38916 [21/Nov/2026:10:40:27.832] fnt bck/srv1 1/0/0 212 ..."
    record = TcpLogRecord(
        "::1", 38916, utc("2026-11-21T10:40:27.832811"), "fnt", "bck", "srv1",
        tw=1, tc=0, tt=0, bytes_read=212, actconn=1, feconn=1,
    )  # fmt: skip
    assert format_tcplog(record) == (
        "::1:38916 [21/Nov/2026:10:40:27.832] fnt bck/srv1 1/0/0 212 -- 1/1/0/0/0 0/0"
    )


@pytest.mark.parametrize("tz", ["Asia/Kolkata"], indirect=True)
def test_server_refused_with_retries(tz: None) -> None:
    # haproxy 2.6.12, TZ=Asia/Kolkata, server port closed, retries 3.
    record = TcpLogRecord(
        "127.0.0.1", 50128, utc("2026-11-21T10:40:46.772500"), "fnt", "bck", "srv1",
        tw=1, tc=-1, tt=3003, bytes_read=0,
        termination_state=termination.code(Cause.SERVER_ABORT, Phase.CONNECT),
        actconn=1, feconn=1, retries=3,
    )  # fmt: skip
    assert format_tcplog(record) == (
        "127.0.0.1:50128 [21/Nov/2026:16:10:46.772] fnt bck/srv1 1/-1/3003 0 SC 1/1/0/0/3 0/0"
    )


@pytest.mark.parametrize("tz", ["UTC"], indirect=True)
def test_logasap_and_redispatch_prefixes(tz: None) -> None:
    # haproxy 2.6.12 with `option logasap`, `option redispatch`, first server dead.
    record = TcpLogRecord(
        "127.0.0.1", 56970, utc("2026-11-21T10:41:03.190999"), "fnt", "bck", "srv1",
        tw=1, tc=0, tt=0, bytes_read=0, actconn=1, feconn=1, beconn=1, srv_conn=1,
        retries=1, redispatched=True, logasap=True,
    )  # fmt: skip
    assert format_tcplog(record) == (
        "127.0.0.1:56970 [21/Nov/2026:10:41:03.190] fnt bck/srv1 1/0/+0 +0 -- 1/1/1/1/+1 0/0"
    )


def test_defaults_no_server_and_tls_frontend() -> None:
    record = TcpLogRecord("unix", 1, 0.0, "fe", "be", frontend_tls=True)
    line = format_tcplog(record)
    assert line.startswith("unix:1 [")
    assert line.endswith("] fe~ be/<NOSRV> -1/-1/0 0 -- 0/0/0/0/0 0/0")
    assert record.server_name == NOSRV


def test_date_truncates_milliseconds() -> None:
    t = datetime(2024, 12, 31, 23, 59, 59, 999_999).timestamp()
    assert format_date(t) == "31/Dec/2024:23:59:59.999"
    assert format_date(datetime(2024, 1, 2, 3, 4, 5, 6_000).timestamp()) == (
        "02/Jan/2024:03:04:05.006"
    )


# ---------------------------------------------------------------------------------------
# termination codes (log.c: sess_term_cond "-LcCsSPRIDKU", sess_fin_state "-RCHDLQT")


def test_every_termination_code() -> None:
    assert {c.value for c in Cause} == set("-LcCsSPRIDKU")
    assert {p.value for p in Phase} == set("-RCHDLQT")
    for cause in Cause:
        assert cause.__doc__
        for phase in Phase:
            text = termination.code(cause, phase)
            assert text == cause.value + phase.value
            assert termination.parse(text) == (cause, phase)
    assert termination.code(Cause.NONE, Phase.NONE) == termination.NORMAL == "--"
    assert termination.code(Cause.CLIENT_TIMEOUT, Phase.DATA) == "cD"
    assert termination.code(Cause.SERVER_TIMEOUT, Phase.HEADERS) == "sH"
    assert termination.code(Cause.PROXY, Phase.REQUEST) == "PR"
    assert termination.code(Cause.KILLED, Phase.DATA) == "KD"
    assert termination.code(Cause.CLIENT_ABORT, Phase.QUEUE) == "CQ"
    assert termination.code(Cause.LOCAL, Phase.REQUEST) == "LR"


def test_parse_rejects_unknown_letters() -> None:
    with pytest.raises(ValueError):
        termination.parse("XD")
    with pytest.raises(ValueError):
        termination.parse("-")
    assert termination.parse("--NI") == (Cause.NONE, Phase.NONE)


# ---------------------------------------------------------------------------------------
# syslog framing: one datagram per format, captured from haproxy 2.6.12 (pid 4823, UTC).

MSG = "127.0.0.1:51922 [21/Nov/2026:10:40:27.830] fnt bck/srv1 1/0/1 212 -- 1/1/0/0/0 0/0"
NOW = utc("2026-11-21T10:40:27.832119")
CAPTURED: list[tuple[LogFormatName, str, bytes]] = [
    # (format, facility, datagram)
    ("local", "local0", b"<134>Nov 21 10:40:27 haproxy[4823]: " + MSG.encode() + b"\n"),
    ("rfc3164", "local1", b"<142>Nov 21 10:40:27 localhost haproxy[4823]: " + MSG.encode() + b"\n"),
    ("local", "local2", b"<150>Nov 21 10:40:27 haproxy[4823]: " + MSG.encode() + b"\n"),
    ("rfc5424", "local3",
     b"<158>1 2026-11-21T10:40:27.832119+00:00 - haproxy 4823 - - " + MSG.encode() + b"\n"),
    ("raw", "local4", MSG.encode() + b"\n"),
    ("short", "local5", b"<6>" + MSG.encode() + b"\n"),
    ("timed", "local6", b"<6>2026-11-21T10:40:27.832119+00:00 " + MSG.encode() + b"\n"),
    ("iso", "local7", b"2026-11-21T10:40:27.832119+00:00 " + MSG.encode() + b"\n"),
    ("priority", "daemon", b"<30>" + MSG.encode() + b"\n"),
]  # fmt: skip


@pytest.mark.parametrize("tz", ["UTC"], indirect=True)
@pytest.mark.parametrize(("fmt", "facility", "expected"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_each_syslog_format(tz: None, fmt: LogFormatName, facility: str, expected: bytes) -> None:
    sent = frame(
        MSG,
        format=fmt,
        facility=facility,
        level="info",
        tag="haproxy",
        pid=4823,
        now=NOW,
    )
    assert sent == expected


MSG2 = "127.0.0.1:50128 [21/Nov/2026:16:10:46.772] fnt bck/srv1 1/-1/3003 0 SC 1/1/0/0/3 0/0"
NOW2 = utc("2026-11-21T10:40:49.775885")
CAPTURED_HOST: list[tuple[LogFormatName, bytes]] = [
    # log-send-hostname myhost, log-tag mytag, TZ=Asia/Kolkata, pid 5425, local0
    ("rfc3164", b"<134>Nov 21 16:10:49 myhost mytag[5425]: "),
    ("rfc5424", b"<134>1 2026-11-21T16:10:49.775885+05:30 myhost mytag 5425 - - "),
    # haproxy 2.6.12 puts the host name in the local format too (checked again with a
    # `log` target in the frontend and one in `global`).
    ("local", b"<134>Nov 21 16:10:49 myhost mytag[5425]: "),
    ("timed", b"<6>2026-11-21T16:10:49.775885+05:30 "),
]


@pytest.mark.parametrize("tz", ["Asia/Kolkata"], indirect=True)
@pytest.mark.parametrize(("fmt", "head"), CAPTURED_HOST, ids=[c[0] for c in CAPTURED_HOST])
def test_hostname_tag_and_offset(tz: None, fmt: LogFormatName, head: bytes) -> None:
    sent = frame(
        MSG2, format=fmt, facility="local0", level="info", tag="mytag", pid=5425,
        now=NOW2, hostname="myhost",
    )  # fmt: skip
    assert sent == head + MSG2.encode() + b"\n"


@pytest.mark.parametrize("tz", ["America/St_Johns"], indirect=True)
def test_negative_half_hour_offset(tz: None) -> None:
    sent = frame(
        "m",
        format="iso",
        facility=0,
        level=0,
        tag="",
        pid=None,
        now=utc("2024-01-01T00:00:00.000000"),
    )
    assert sent == b"2023-12-31T20:30:00.000000-03:30 m\n"


def test_rfc5424_and_local_without_tag_or_pid() -> None:
    now = 0.0
    assert frame("m", format="rfc5424", facility=0, level=3, tag="", pid=None, now=now).startswith(
        b"<3>1 "
    )
    assert frame("m", format="rfc5424", facility=0, level=3, tag="", pid=None, now=now).endswith(
        b" - - - - - m\n"
    )
    local = frame("m", format="local", facility=1, level=5, tag="", pid=None, now=now)
    assert local.startswith(b"<13>") and local.endswith(b" m\n") and b"[" not in local
    assert frame("m", format="local", facility=1, level=5, tag="t", pid=None, now=now).endswith(
        b" t: m\n"
    )


def test_trailing_newlines_and_nul_are_dropped() -> None:
    assert frame("hello\n\n\0", format="raw", facility=0, level=6, tag="x", pid=1, now=0) == (
        b"hello\n"
    )
    assert frame(b"\xffbytes", format="raw", facility=0, level=6, tag="x", pid=1, now=0) == (
        b"\xffbytes\n"
    )


# ---------------------------------------------------------------------------------------
# truncation: `len 80` in haproxy 2.6.12


@pytest.mark.parametrize("tz", ["UTC"], indirect=True)
def test_datagram_truncation_keeps_len_bytes_then_lf(tz: None) -> None:
    sent = frame(
        MSG, format="local", facility="local0", level="info", tag="haproxy", pid=4823,
        now=NOW, length=80,
    )  # fmt: skip
    assert (
        sent
        == b"<134>Nov 21 10:40:27 haproxy[4823]: 127.0.0.1:51922 [21/Nov/2026:10:40:27.830] f\n"
    )
    assert len(sent) == 81


@pytest.mark.parametrize("tz", ["UTC"], indirect=True)
def test_stream_truncation_keeps_lf_within_len(tz: None) -> None:
    # `log stderr len 80 local0`: the line written to fd 2 is 80 bytes, LF included.
    msg = "127.0.0.1:58968 [21/Nov/2026:10:40:36.172] fnt bck/srv1 1/0/5 5 -- 1/1/0/0/0 0/0"
    sent = frame(
        msg, format="local", facility="local0", level="info", tag="haproxy", pid=5122,
        now=utc("2026-11-21T10:40:36.175000"), length=80, fd=True,
    )  # fmt: skip
    assert (
        sent == b"<134>Nov 21 10:40:36 haproxy[5122]: 127.0.0.1:58968 [21/Nov/2026:10:40:36.172] \n"
    )
    assert len(sent) == 80


def test_short_message_is_not_padded() -> None:
    assert frame("x", format="raw", facility=0, level=0, tag="", pid=None, now=0, length=80) == (
        b"x\n"
    )


def test_truncation_inside_the_header() -> None:
    sent = frame("x", format="rfc5424", facility=23, level=7, tag="t", pid=1, now=0, length=3)
    assert sent == b"<19\n"


# ---------------------------------------------------------------------------------------
# console lines (haproxy 2.6.12 on stderr)


def test_console_lines_match_haproxy_spacing() -> None:
    assert console_line("notice", 5122, "haproxy version is 2.6.12-1+deb12u4") == (
        "[NOTICE]   (5122) : haproxy version is 2.6.12-1+deb12u4\n"
    )
    assert console_line("WARNING", 5122, "config : missing timeouts for frontend 'fnt'.\n") == (
        "[WARNING]  (5122) : config : missing timeouts for frontend 'fnt'.\n"
    )
    assert console_line("alert", 5805, "config : Cannot open configuration file") == (
        "[ALERT]    (5805) : config : Cannot open configuration file\n"
    )
    assert console_line("diag", 1, "x") == "[DIAG]     (1) : x\n"
    with pytest.raises(ValueError, match="unknown console level 'info'"):
        console_line("info", 1, "x")


# ---------------------------------------------------------------------------------------
# names and levels


def test_facility_and_level_names() -> None:
    assert facility_number("kern") == 0
    assert facility_number("local0") == 16
    assert facility_number("local7") == 23
    assert facility_number("auth2") == 10
    assert facility_number(5) == 5
    assert level_number("emerg") == 0
    assert level_number("debug") == 7
    with pytest.raises(ValueError, match="unknown log facility 'local8'"):
        facility_number("local8")
    with pytest.raises(ValueError, match="unknown log level 'error'"):
        level_number("error")


def test_level_filter() -> None:
    # No level: everything passes unchanged.
    assert level_for_target("debug", None, None) == 7
    # `... local0 notice`: info and debug are not sent, notice and worse are.
    assert level_for_target("info", "notice", None) is None
    assert level_for_target("notice", "notice", None) == 5
    assert level_for_target("emerg", "notice", None) == 0
    # `... local0 info err`: emerg is sent capped to err; info stays info.
    assert level_for_target("emerg", "info", "err") == 3
    assert level_for_target("warning", "info", "err") == 4
    assert level_for_target("info", "info", "err") == 6
    assert level_for_target("debug", "info", "err") is None


def test_rfc5424_structured_data_and_the_other_formats() -> None:
    # log-format-sd: in place of the "-" after the message id, in RFC 5424 only.
    sd = '[x@1 a="b"]'
    sent = frame("m", format="rfc5424", facility=0, level=6, tag="t", pid=1, now=0.0, sd=sd)
    assert sent.endswith(b' t 1 - [x@1 a="b"] m\n')
    local = frame("m", format="local", facility=0, level=6, tag="t", pid=1, now=0.0, sd=sd)
    assert local.endswith(b" t[1]: m\n")
