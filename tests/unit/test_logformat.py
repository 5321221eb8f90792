"""`log-format` (configuration.txt 8.2.6): the parser and its errors, every variable, the
flags, separators and capture blocks, and HAProxy's own formats, which must give exactly
the fixed `option httplog` and `option tcplog` lines.

Expected text is HAProxy 2.6.12's: its messages from `haproxy -c`, and log lines from live
runs on 127.0.0.1 (Debian's haproxy, a tests/webapp.py backend), whose values the records
below carry (client port, addresses, pid, dates).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse as parse_config
from poise.config.haproxy_draft import Problem
from poise.config.logformat import (
    HTTP_ONLY,
    HTTPLOG,
    HTTPLOG_CLF,
    TCPLOG,
    VARIABLES,
    check_mode,
    parse,
)
from poise.config.model import Capture, Mode, Option, Proxy, Where
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.httplog import HttpLogRecord, capture_headers, format_httplog
from poise.core.logformat import compile_http, compile_tcp
from poise.core.logline import NOSRV, LogExtras, TcpLogRecord, format_tcplog


@pytest.fixture
def utc_tz() -> Iterator[None]:
    yield from _in_tz("UTC")


@pytest.fixture
def kolkata_tz() -> Iterator[None]:
    yield from _in_tz("Asia/Kolkata")


def _in_tz(zone: str) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


# --- parsing --------------------------------------------------------------------------

NEEDS_REQ = "here because it needs 'HTTP request headers' which is not available here"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "%zz",
            "no such format variable 'zz'. If you wanted to emit the '%' character verbatim, "
            "you need to use '%%'",
        ),
        ("%Ci", "no such format variable 'Ci'"),
        ("%{+Q}5", "no such format variable '5'"),
        ("%CIx", "no such format variable 'CIx'"),
        ("%ci %{+Q}", "parse argument modifier without variable name near '%{+Q}'"),
        ("%ci%{+Q}", "parse argument modifier without variable name near '%{+Q}'"),
        ("%{+Q", "truncated line after '+Q'"),
        ("%{", "truncated line after ''"),
        ("abc%", "truncated line after '%'"),
        ("%ci%", "truncated line after '%'"),
        (
            "% x",
            "unexpected variable name near ' ' at position 1 line : '% x'. Maybe you want to "
            "write a single '%', use the syntax '%%'",
        ),
        ("%5", "unexpected variable name near '5' at position 1 line : '%5'"),
        ("%[src", "missing ']' after 'src'"),
        ("%[src]%[dst", "missing ']' after 'dst'"),
        (
            "%[req.ver]",
            "sample fetch <req.ver]> may not be reliably used here because it needs "
            "'HTTP request headers' which is not available here",
        ),
        ("%[path] %ci", f"sample fetch <path] %ci> may not be reliably used {NEEDS_REQ}"),
        ("%[req.hdr(host),lower]", f"<req.hdr(host),lower]> may not be reliably used {NEEDS_REQ}"),
        ("%[hdr(host)]", "'HTTP request headers' which is not available here"),
        ("%[res.hdr(x)]", "'HTTP response headers' which is not available here"),
        ("%[res.ver]", "'HTTP response headers' which is not available here"),
        ("%[nosuch] %ci", "expression <nosuch] %ci> : unknown fetch method 'nosuch'"),
        ("%[src,nosuch]", "expression <src,nosuch]> : unknown converter 'nosuch'"),
        ("%[]", "failed to parse sample expression <]> : missing fetch method"),
        ("%[capture.req.hdr]", "'capture.req.hdr' expects a capture index"),
    ],
)
def test_haproxy_refuses_these_and_says_so(text: str, message: str) -> None:
    with pytest.raises(Problem) as caught:
        parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "%{+Z}ci",  # unknown flags are ignored
        "%{Q}ci",  # so are flags without a sign
        "%{+Q,-X}ci",
        "%{}ci",
        "%(name)ci",  # '%' before another character is dropped
        "%[src]]",
        "%ci%%x",
        "%[status]",
        "%[always_true] %[str(a)] %[int(1)] %[src_port] %[dst] %[ssl_fc] %[ssl_fc_sni]",
        "%[method,lower] %[src,length] %[req.proto_http]",
        "%[capture.req.hdr(5)] %[capture.res.hdr(0)] %[capture.req.uri] %[capture.res.ver]",
        "%o",
        "%ID %Tu %Td %Th %lc %H %rt %ms %Tl %T %Ts %U %sslv %sslc",
        HTTPLOG,
        HTTPLOG_CLF,
        TCPLOG,
    ],
)
def test_haproxy_accepts_these(text: str) -> None:
    parse(text)


def test_http_only_variables_are_refused_in_tcp_mode() -> None:
    assert check_mode(parse("%ci %tsc %ST %hr %B %[method]"), http=False) is None
    for name in ("r", "HM", "CC", "TR", "trg", "Ti", "Tq", "Ta", "Tr", "tr", "trl"):
        assert name in HTTP_ONLY
        assert check_mode(parse(f"%ci %{name}"), http=False) == (
            f"format variable '{name}' is reserved for HTTP mode"
        )
        assert check_mode(parse(f"%ci %{name}"), http=True) is None
    assert HTTP_ONLY <= VARIABLES


# --- in the configuration ---------------------------------------------------------------

BASE = """defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""
BACKEND = "backend b\n    server s 127.0.0.1:80\n"


def frontend(text: str, base: str = BASE, backend: str = BACKEND) -> tuple[Proxy | None, list[str]]:
    config, diagnostics = parse_config([("l.cfg", base + text + backend)], {})
    found = [str(d) for d in diagnostics if d.severity is Severity.ERROR]
    return (config.proxies[0] if config is not None else None), found


def test_an_error_is_reported_at_its_line() -> None:
    _, found = frontend("frontend f\n    bind :80\n    log-format %zz\n    default_backend b\n")
    assert found == [
        "l.cfg:8: error: 'log-format': failed to parse log-format : no such format variable "
        "'zz'. If you wanted to emit the '%' character verbatim, you need to use '%%'"
    ]
    _, found = frontend('frontend f\n    bind :80\n    log-format ""\n    default_backend b\n')
    assert found == ["l.cfg:8: error: 'log-format': log-format expects an argument"]


def test_a_defaults_format_is_checked_against_each_proxys_mode() -> None:
    # haproxy -c: "Parsing [chk.cfg:3]: failed to parse log-format : format variable 'r'
    # is reserved for HTTP mode." (the line of the log-format, in the defaults section)
    base = BASE + '    log-format "%ci %r"\n'
    tcp_backend = BACKEND.replace("backend b\n", "backend b\n    mode tcp\n")
    _, found = frontend(
        "frontend f\n    mode tcp\n    bind :80\n    default_backend b\n", base, tcp_backend
    )
    assert found == [
        "l.cfg:6: error: 'log-format': failed to parse log-format : format variable 'r' is "
        "reserved for HTTP mode"
    ]
    proxy, found = frontend("frontend f\n    bind :80\n    default_backend b\n", base)
    assert not found and proxy is not None and proxy.log_format == "%ci %r"


def test_each_bad_format_is_reported_once_as_haproxy_does() -> None:
    # haproxy -c on the same text: "Parsing [bad.cfg:10]: ... no such format variable
    # 'zz'..." then "Parsing [bad.cfg:3]: ... format variable 'r' is reserved for HTTP mode"
    # (for fe2 only: fe replaced the defaults' format, if with a bad one).
    text = (
        'defaults\n    mode http\n    log-format "%ci %r"\n    timeout client 1s\n'
        "    timeout server 1s\n    timeout connect 1s\n"
        'frontend fe\n    mode tcp\n    bind :80\n    log-format "%ci %zz"\n'
        "    default_backend be\n"
        "frontend fe2\n    mode tcp\n    bind :81\n    default_backend be\n"
        "backend be\n    mode tcp\n    server s 127.0.0.1:1\n"
    )
    _, diagnostics = parse_config([("bad.cfg", text)], {})
    assert [str(d) for d in diagnostics] == [
        "bad.cfg:10: error: 'log-format': failed to parse log-format : no such format "
        "variable 'zz'. If you wanted to emit the '%' character verbatim, you need to use '%%'",
        "bad.cfg:3: error: 'log-format': failed to parse log-format : format variable 'r' is "
        "reserved for HTTP mode",
    ]


@pytest.mark.parametrize(
    ("defaults", "own", "log_format", "option"),
    [
        # Checked live: the last of `log-format`, `option httplog|tcplog` wins, the
        # proxy's own line over its defaults'.
        ("    option httplog\n", '    log-format "F %ci"\n', "F %ci", None),
        ('    log-format "D %ci"\n', "    option httplog\n", None, Option.HTTPLOG),
        ("", '    log-format "F %ci"\n    option httplog\n', None, Option.HTTPLOG),
        ("", '    option httplog\n    log-format "F %ci"\n', "F %ci", None),
        ('    log-format "D %ci"\n', "", "D %ci", None),
        ('    log-format "D %ci"\n', "    option tcplog\n", None, Option.TCPLOG),
        ("", "    option httplog clf\n", HTTPLOG_CLF, Option.HTTPLOG),
    ],
)
def test_the_last_format_wins(
    defaults: str, own: str, log_format: str | None, option: Option | None
) -> None:
    proxy, found = frontend(
        f"frontend f\n    bind :80\n{own}    default_backend b\n", BASE + defaults
    )
    assert not found and proxy is not None
    assert proxy.log_format == log_format
    logs = {Option.HTTPLOG, Option.TCPLOG} & proxy.options
    assert logs == ({option} if option else set())


def test_option_httplog_clf_in_tcp_mode_falls_back_to_tcplog() -> None:
    tcp_backend = BACKEND.replace("backend b\n", "backend b\n    mode tcp\n")
    text = "frontend f\n    mode tcp\n    bind :80\n    option httplog clf\n    default_backend b\n"
    config, diagnostics = parse_config([("l.cfg", BASE + text + tcp_backend)], {})
    assert config is not None
    f = config.proxies[0]
    assert (f.mode, f.log_format, Option.TCPLOG in f.options) == (Mode.TCP, None, True)
    assert [str(d) for d in diagnostics] == [
        "l.cfg:9: warning: 'option httplog': not usable with frontend 'f' (needs 'mode http'): "
        "falling back to 'option tcplog'"
    ]


# --- rendering: records carrying what HAProxy had, lines as HAProxy wrote them -------------

REQUEST_DATE = datetime(2026, 11, 21, 11, 33, 18, 128_000, tzinfo=UTC).timestamp()


EXTRAS = {f.name for f in fields(LogExtras)}


def http_record(**changes: object) -> HttpLogRecord:
    """The record of a request HAProxy logged; `changes` may name LogExtras fields."""
    record = HttpLogRecord(
        "127.0.0.1", 45086, REQUEST_DATE, "fe", "be", "web1", tr=0, tw=0, tc=0, tr_server=0,
        ta=0, status=200, bytes_read=80, actconn=1, feconn=1,
        request_line="GET /p/a?x=1&y=2 HTTP/1.1",
        request_captures=("127.0.0.1:27482", "curl/"), response_captures=("web",),
    )  # fmt: skip
    extras = LogExtras(
        frontend_ip="127.0.0.1", frontend_port=27485, backend_ip="127.0.0.1",
        backend_port=45012, server_ip="127.0.0.1", server_port=18081, bytes_uploaded=90,
        request_counter=2, pid=20717, hostname="vm",
    )  # fmt: skip
    extras = replace(extras, **{k: v for k, v in changes.items() if k in EXTRAS})  # type: ignore[arg-type]
    record = replace(record, **{k: v for k, v in changes.items() if k not in EXTRAS})  # type: ignore[arg-type]
    if "request" not in changes:
        extras.request = Request(
            "GET", "/p/a?x=1&y=2", "1.1", src=record.client_ip, src_port=record.client_port,
            dst=extras.frontend_ip or "", dst_port=extras.frontend_port or 0,
        )  # fmt: skip
    record.extras = extras
    return record


def render(text: str, record: HttpLogRecord | None = None) -> str:
    return compile_http(text).render(record or http_record())


def test_connection_variables(utc_tz: None) -> None:
    # haproxy 2.6.12: "A ci=127.0.0.1 cp=32954 fi=127.0.0.1 fp=27480 bi=127.0.0.1 ..."
    assert render(
        "A ci=%ci cp=%cp fi=%fi fp=%fp bi=%bi bp=%bp si=%si sp=%sp f=%f ft=%ft b=%b s=%s "
        "B=%B U=%U ST=%ST CC=%CC CS=%CS ts=%ts tsc=%tsc ac=%ac fc=%fc bc=%bc sc=%sc rc=%rc "
        "sq=%sq bq=%bq",
        http_record(client_port=32954, frontend_port=27480, backend_port=44968),
    ) == (
        "A ci=127.0.0.1 cp=32954 fi=127.0.0.1 fp=27480 bi=127.0.0.1 bp=44968 si=127.0.0.1 "
        "sp=18081 f=fe ft=fe b=be s=web1 B=80 U=90 ST=200 CC=- CS=- ts=-- tsc=---- ac=1 fc=1 "
        "bc=0 sc=0 rc=0 sq=0 bq=0"
    )


def test_timers_request_and_captures() -> None:
    assert render(
        "B Th=%Th Ti=%Ti TR=%TR Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta Tt=%Tt Tq=%Tq Td=%Td Tu=%Tu "
        "hr=%hr hs=%hs hrl=%hrl hsl=%hsl r=%r HM=%HM HU=%HU HP=%HP HPO=%HPO HQ=%HQ HV=%HV "
        "ID=%ID sslv=%sslv sslc=%sslc"
    ) == (
        "B Th=0 Ti=0 TR=0 Tw=0 Tc=0 Tr=0 Ta=0 Tt=0 Tq=0 Td=0 Tu=0 hr={127.0.0.1:27482|curl/} "
        "hs={web} hrl=127.0.0.1:27482 curl/ hsl=web r=GET /p/a?x=1&y=2 HTTP/1.1 HM=GET "
        "HU=/p/a?x=1&y=2 HP=/p/a HPO=/p/a HQ=?x=1&y=2 HV=HTTP/1.1 ID=- sslv=- sslc=-"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /p/a HTTP/1.1", "/p/a /p/a /p/a  HTTP/1.1"),
        (
            "GET http://example.com/abs/p?q=1 HTTP/1.1",
            "http://example.com/abs/p?q=1 http://example.com/abs/p /abs/p ?q=1 HTTP/1.1",
        ),
        ("OPTIONS * HTTP/1.1", "* *   HTTP/1.1"),
        ("<BADREQ>", "<BADREQ> <BADREQ> <BADREQ> <BADREQ> <BADREQ>"),
    ],
)
def test_the_request_line_parts(line: str, expected: str) -> None:
    # An empty %HQ or %HPO still counts as printed: the separators around it both print.
    assert render("%HU %HP %HPO %HQ %HV", http_record(request_line=line)) == expected


def test_a_bad_request(utc_tz: None) -> None:
    record = http_record(
        server_name=NOSRV, backend_name="fe", tr=-1, tw=-1, tc=-1, tr_server=-1, status=400,
        bytes_read=0, termination_state="PR--", request_line="<BADREQ>", request=None,
        request_captures=None, response_captures=None, backend_ip=None, backend_port=None,
        server_ip=None, server_port=None, bytes_uploaded=0,
    )  # fmt: skip
    assert render(
        "TR=%TR Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta Tt=%Tt Tq=%Tq Td=%Td Tu=%Tu hr=%hr hs=%hs hrl=%hrl "
        "hsl=%hsl r=%r HM=%HM HQ=%HQ bi=%bi bp=%bp si=%si sp=%sp b=%b s=%s B=%B U=%U tsc=%tsc "
        "m=%[method] %[capture.req.method] %[capture.req.hdr(0)]",
        record,
    ) == (
        "TR=-1 Tw=-1 Tc=-1 Tr=-1 Ta=0 Tt=0 Tq=-1 Td=-1 Tu=0 hr= hs= hrl= hsl= r=<BADREQ> "
        "HM=<BADREQ> HQ=<BADREQ> bi=- bp=- si=- sp=- b=fe s=<NOSRV> B=0 U=0 tsc=PR-- m=- - -"
    )


def test_dates_pid_and_counters(utc_tz: None) -> None:
    assert render(
        "C t=%t tr=%tr trg=%trg trl=%trl T=%T Tl=%Tl Ts=%Ts ms=%ms pid=%pid rt=%rt lc=%lc H=%H"
    ) == (
        "C t=21/Nov/2026:11:33:18.128 tr=21/Nov/2026:11:33:18.128 "
        "trg=21/Nov/2026:11:33:18 +0000 trl=21/Nov/2026:11:33:18 +0000 "
        "T=21/Nov/2026:11:33:18 +0000 Tl=21/Nov/2026:11:33:18 +0000 Ts=1795260798 ms=128 "
        "pid=20717 rt=2 lc=0 H=vm"
    )


def test_local_dates_carry_the_offset(kolkata_tz: None) -> None:
    # haproxy 2.6.12 run with TZ=Asia/Kolkata.
    date = datetime(2026, 11, 21, 11, 33, 32, 351_000, tzinfo=UTC).timestamp()
    assert render("%t|%Tl|%T|%trl|%ms", http_record(request_date=date)) == (
        "21/Nov/2026:17:03:32.351|21/Nov/2026:17:03:32 +0530|21/Nov/2026:11:33:32 +0000|"
        "21/Nov/2026:17:03:32 +0530|351"
    )


def test_quoting() -> None:
    line = render(
        "D %{+Q}ci %{+Q}cp %{+Q}fi %{+Q}f %{+Q}ft %{+Q}b %{+Q}s %{+Q}B %{+Q}ST %{+Q}CC %{+Q}ts "
        "%{+Q}tsc %{+Q}hr %{+Q}hs %{+Q}hrl %{+Q}hsl %{+Q}r %{+Q}HM %{+Q}HU %{+Q}HQ %{+Q}HV "
        "%{+Q}Ts %{+Q}ID %{+Q}[src] %{+Q}[ssl_fc_sni] %[ssl_fc_sni] %{-M}[ssl_fc_sni]| %{+Q}H "
        "%{+Q}si %{+Q}sp %{+Q}Tw",
        http_record(client_port=39092, frontend_name="fe4", request_captures=(
            "127.0.0.1:27484", "curl/")),
    )  # fmt: skip
    assert line == (
        'D "127.0.0.1" 39092 "127.0.0.1" "fe4" "fe4" "be" "web1" 80 200 "" -- ---- '
        '"{127.0.0.1:27484|curl/}" "{web}" "127.0.0.1:27484" "curl/" "web" '
        '"GET /p/a?x=1&y=2 HTTP/1.1" "GET" "/p/a?x=1&y=2" "?x=1&y=2" "HTTP/1.1" 1795260798 "" '
        '"127.0.0.1" "" - | "vm" "127.0.0.1" 18081 0'
    )


def test_hexadecimal_and_escapes() -> None:
    record = http_record(frontend_name="fe5", request_counter=4, log_counter=0)
    assert render(
        "E %{+X}ci %{+X}cp %{+X}fi %{+X}fp %{+X}bi %{+X}bp %{+X}si %{+X}sp %{+X}Ts %{+X}ms "
        "%{+X}pid %{+X}rt %{+X}lc %{+X}B %{+X}Tt %{+X}ST %{+X}[src] %{+X}[dst_port] %{+X}f "
        "%{+E}[str(x)] %{+E,+Q}r %{+E}HU %{+E}f",
        replace(record, request_date=record.request_date + 0.017),
    ) == (
        "E 7F000001 B01E 7F000001 6B5D 7F000001 AFD4 7F000001 46A1 6B01817E 91 50ED 0004 0000 "
        '80 0 200 127.0.0.1 27485 fe5 x "GET /p/a?x=1&y=2 HTTP/1.1" /p/a?x=1&y=2 fe5'
    )
    line = 'GET /e]s\\c"q HTTP/1.1'
    assert render("%{+E,+Q}r %{+E}HU", http_record(request_line=line)) == (
        '"GET /e\\]s\\\\c#22q HTTP/1.1" /e\\]s\\\\c#22q'
    )
    assert render("%{+X}ci", http_record(client_ip="::1")) == "0" * 31 + "1"


def test_separators_text_and_global_flags() -> None:
    # haproxy 2.6.12, the format "  F  %HQ %HQ  %ci %% %(name)ci %ci_x %[src]] ...  "
    assert render(
        "  F  %HQ %HQ  %ci %% %(name)ci %ci_x %[src]] %[method] %[always_true] %[int(5)] "
        "%[src_port] %[dst] %[src,length] %[method,lower] %{+Q}o %ci %f %{-Q}o %ci "
        "%{+Q,-Q}f %ID  ",
        http_record(client_port=56204, frontend_name="fe6"),
    ) == (
        "F ?x=1&y=2 ?x=1&y=2 127.0.0.1 % (name)ci 127.0.0.1_x 127.0.0.1] GET 1 5 56204 "
        '127.0.0.1 9 get "127.0.0.1" "fe6" 127.0.0.1 fe6 - '
    )


def test_capture_blocks_and_capture_fetches() -> None:
    # haproxy 2.6.12, `capture request header X-Empty len 5`, `... X-Missing len 5`,
    # `capture response header X-Backend len 30`; the request has an empty X-Empty.
    record = http_record(
        request_captures=("", None), response_captures=("web1",),
        request_line="GET /e HTTP/1.1", response_version="1.1",
    )  # fmt: skip
    assert render(
        "I %hr %hrl|%[capture.req.hdr(0)]|%[capture.req.hdr(1)]|%[capture.req.hdr(5)]|"
        "%[capture.res.hdr(0)]|%[capture.req.method]|%[capture.req.uri]|%[capture.req.ver]|"
        "%[capture.res.ver]|%[req.proto_http]|%[method]|%{+Q}[capture.req.hdr(1)]|"
        "%[capture.req.hdr(0),length]|%[always_false]|%[ssl_fc]|%[dst_port]|%[int(-3)]",
        record,
    ) == ('I {|}  -|-|-|-|web1|GET|/e|HTTP/1.1|HTTP/1.1|-|GET|""|0|0|0|27485|-3')


def test_no_capture_block_without_captures() -> None:
    record = http_record(request_captures=None, response_captures=None)
    assert render("%sq/%bq %hr %hs %{+Q}r", record) == '0/0 "GET /p/a?x=1&y=2 HTTP/1.1"'
    assert render("%sq/%bq %hr %hs %{+Q}r", replace(record, response_captures=("a|b",))) == (
        '0/0 {a#7Cb} "GET /p/a?x=1&y=2 HTTP/1.1"'
    )
    assert render("%hrl %hsl x", record) == "x"


def test_clf(utc_tz: None) -> None:
    # haproxy 2.6.12, `option httplog clf` with captures Host len 20, X-Missing len 5 and
    # response X-Backend len 30 (the client port and %ms of that request).
    record = http_record(
        client_port=43866, frontend_name="clf", bytes_read=107,
        request_date=REQUEST_DATE - 0.036, request_line="GET /cookie HTTP/1.1",
        request_captures=("example.com", None), response_captures=("web1",),
    )  # fmt: skip
    assert render(HTTPLOG_CLF, record) == (
        '127.0.0.1 - - [21/Nov/2026:11:33:18 +0000] "GET /cookie HTTP/1.1" 200 107 "" "" '
        '43866 092 "clf" "be" "web1" 0 0 0 0 0 ---- 1 1 0 0 0 0 0 "" "" "example.com" "" '
        '"web1"'
    )
    bad = replace(
        record, backend_name="clf", server_name=NOSRV, tr=-1, tw=-1, tc=-1, tr_server=-1,
        status=400, bytes_read=0, termination_state="PR--", request_line="<BADREQ>",
        request_captures=None, response_captures=None,
    )  # fmt: skip
    assert render(HTTPLOG_CLF, bad).endswith(
        '"<BADREQ>" 400 0 "" "" 43866 092 "clf" "clf" "<NOSRV>" -1 -1 -1 -1 0 PR-- 1 1 0 0 0 '
        '0 0 "" "" '
    )


def test_tcp_mode() -> None:
    # haproxy 2.6.12, mode tcp with `capture request header Host len 5`: the capture is
    # there and empty, %ST is -1, %tsc has no cookie flags, no method is known.
    record = TcpLogRecord(
        "127.0.0.1", 5, REQUEST_DATE, "tcpfe", "tbe", "web1", tw=0, tc=0, tt=3, actconn=1,
        feconn=1, request_captures=(None,), bytes_read=83,
        extras=LogExtras(frontend_ip="127.0.0.1", frontend_port=27486, bytes_uploaded=21),
    )  # fmt: skip
    line = compile_tcp(
        "%ci %f %b/%s %ts %tsc %ST %hr %hs %hrl %{+Q}[method] %[src] %ac/%fc/%sc/%rc %sq/%bq "
        "%ID %{+X}ci %{+Q}f %U %B %Td %Tu"
    ).render(record)
    assert line == (
        '127.0.0.1 tcpfe tbe/web1 -- ---- -1 {} - "" 127.0.0.1 1/1/0/0 0/0 - 7F000001 "tcpfe" '
        "21 83 3 3"
    )
    asap = replace(record, logasap=True, redispatched=True, retries=1)
    assert compile_tcp("%Tt %B %rc").render(asap) == "+3 +83 +1"


def test_a_format_is_compiled_once_and_says_what_it_uses() -> None:
    assert compile_http("%ci %pid") is compile_http("%ci %pid")
    assert compile_http("%ci %[src] %{+Q}pid").uses == frozenset({"ci", "pid", "[]"})


# --- HAProxy's formats are the fixed lines ------------------------------------------------

names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=10_000)
timers = st.integers(min_value=-1, max_value=100_000)
dates = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False)
header_values = st.one_of(st.none(), st.text(max_size=20))
captures = st.one_of(st.none(), st.lists(header_values, min_size=1, max_size=4).map(tuple))
request_lines = st.one_of(
    st.just("<BADREQ>"),
    st.builds(
        lambda m, u, v: f"{m} {u} HTTP/{v}",
        st.sampled_from(["GET", "POST", "HEAD"]),
        st.text(min_size=1, max_size=30).map(lambda s: "/" + s.replace(" ", "")),
        st.sampled_from(["1.0", "1.1"]),
    ),
)
addresses = st.sampled_from(["127.0.0.1", "::1", "10.0.1.2", "unix"])
states = st.text(st.sampled_from("-CDHLPQRSTcs"), min_size=2, max_size=2)


@given(
    st.builds(
        HttpLogRecord,
        client_ip=addresses, client_port=counts, request_date=dates, frontend_name=names,
        backend_name=names, server_name=names, tr=timers, tw=timers, tc=timers,
        tr_server=timers, ta=counts, status=st.integers(0, 599), bytes_read=counts,
        captured_request_cookie=st.one_of(st.just("-"), names),
        captured_response_cookie=st.one_of(st.just("-"), names),
        termination_state=st.builds(lambda a, b: a + b, states, states), actconn=counts,
        feconn=counts, beconn=counts, srv_conn=counts, retries=counts,
        redispatched=st.booleans(), srv_queue=counts, backend_queue=counts,
        request_line=request_lines, frontend_tls=st.booleans(),
        request_captures=captures, response_captures=captures,
    )
)  # fmt: skip
def test_option_httplog_is_its_log_format(record: HttpLogRecord) -> None:
    assert compile_http(HTTPLOG).render(record) == format_httplog(record)


@given(
    st.builds(
        TcpLogRecord,
        client_ip=addresses, client_port=counts, accept_date=dates, frontend_name=names,
        backend_name=names, server_name=names, tw=timers, tc=timers, tt=counts,
        bytes_read=counts, termination_state=states, actconn=counts, feconn=counts,
        beconn=counts, srv_conn=counts, retries=counts, redispatched=st.booleans(),
        srv_queue=counts, backend_queue=counts, logasap=st.booleans(),
        frontend_tls=st.booleans(),
    )
)  # fmt: skip
def test_option_tcplog_is_its_log_format(record: TcpLogRecord) -> None:
    assert compile_tcp(TCPLOG).render(record) == format_tcplog(record)


# --- captures ------------------------------------------------------------------------------


def test_captures_take_the_last_occurrence_stripped_and_cut() -> None:
    captures = (
        Capture("Host", 20, Where("c", 1)),
        Capture("user-agent", 5, Where("c", 2)),
        Capture("X-Missing", 10, Where("c", 3)),
        Capture("User-Agent", 40, Where("c", 4)),
    )
    headers = Headers(
        [("host", "example.com"), ("User-Agent", "first"), ("USER-AGENT", " second  \t")]
    )
    assert capture_headers(captures, headers) == ("example.com", "secon", None, "second")
    assert capture_headers(captures, None) == (None, None, None, None)


def test_the_httplog_line_shows_captures_encoded() -> None:
    # haproxy 2.6.12: `... 0/0 {example.com|a#7Cb#7Bc#7Dd#22e#23f#09g]\h|secon||} {web|}`
    record = http_record(
        request_captures=("example.com", 'a|b{c}d"e#f\tg]\\h', "secon", None, ""),
        response_captures=("web", None),
        request_line="GET /p/a?x=1&y=%22 HTTP/1.1",
    )
    assert format_httplog(record).endswith(
        "0/0 {example.com|a#7Cb#7Bc#7Dd#22e#23f#09g]\\h|secon||} {web|} "
        '"GET /p/a?x=1&y=%22 HTTP/1.1"'
    )
    assert format_httplog(http_record(request_line='GET /a#b"\x01\xe9 HTTP/1.1')).endswith(
        '"GET /a#23b#22#01#E9 HTTP/1.1"'
    )
