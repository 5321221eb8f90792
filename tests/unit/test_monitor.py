"""`monitor-uri` and `monitor fail`: parsed and linked as `haproxy -c` 2.6.12 takes them
(its texts), and the analyser that answers them (core/http/request_analysers.monitor)
called directly. tests/io/test_monitor_haproxy.py compares the answers on the wire."""

from __future__ import annotations

from poise.config.haproxy import parse
from poise.config.model import Config, Monitor
from poise.core.frontend import Frontend
from poise.core.http import request_analysers as analysers
from poise.core.http import rules
from poise.core.http.message import Request
from poise.core.txn import Conn

BASE = "defaults unnamed\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
BASE += "    timeout server 1s\n"


def load(text: str) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("m.cfg", BASE + text)], {})
    return config, [str(d) for d in diagnostics]


def monitor_of(text: str, name: str = "f") -> Monitor | None:
    config, problems = load(text)
    assert config is not None, problems
    proxy = config.proxy(name)
    assert proxy is not None
    return proxy.monitor


def test_monitor_uri_and_its_fail_conditions() -> None:
    monitor = monitor_of(
        "frontend f\n    bind :80\n    monitor-uri /a\n    monitor-uri /alive\n"
        "    acl dead nbsrv(b) lt 1\n    monitor fail if dead\n    monitor fail unless TRUE\n"
        "    default_backend b\nbackend b\n"
    )
    assert monitor is not None
    assert monitor.uri == "/alive"  # the last line wins
    assert [cond.unless for cond in monitor.fail] == [False, True]
    assert monitor.fail[0].suites[0][0].acl.name == "dead"  # resolved by the link pass


def test_monitor_uri_comes_from_defaults_but_not_into_a_backend() -> None:
    text = "defaults d from\n    monitor-uri /up\n"
    text += "frontend f from d\n    bind :80\n    default_backend b\nbackend b from d\n"
    monitor = monitor_of(text.replace("from\n", "from unnamed\n", 1))
    assert monitor is not None and monitor.uri == "/up"
    config, problems = load(text.replace("from\n", "from unnamed\n", 1))
    assert config is not None and config.proxy("b") is not None
    backend = config.proxy("b")
    assert backend is not None and backend.monitor is None
    assert not problems


def test_haproxys_errors_and_warnings() -> None:
    _, problems = load(
        "defaults d\n    mode http\n    monitor fail if TRUE\n"
        "frontend f\n    bind :80\n    monitor-uri\n    monitor-uri /a /b\n"
        "    monitor fail\n    monitor fail when TRUE\n    monitor-net 10.0.0.0/8\n"
        "    default_backend b\n"
        "backend b\n    monitor-uri /x\n"
        "listen t\n    mode tcp\n    bind :81\n    monitor-uri /t\n"
        "frontend g\n    bind :82\n    monitor fail if TRUE\n    default_backend b\n"
    )
    expected = [
        "m.cfg:8: error: 'monitor fail': not allowed in a 'defaults' section",
        "m.cfg:11: error: 'monitor-uri': 'monitor-uri' expects an URI.",
        "m.cfg:12: error: 'monitor-uri': 'monitor-uri' cannot handle unexpected argument '/b'.",
        "m.cfg:13: error: 'monitor fail': 'monitor fail' requires either 'if' or 'unless' "
        "followed by a condition.",
        "m.cfg:14: error: 'monitor fail': 'monitor fail' requires either 'if' or 'unless' "
        "followed by a condition.",
        "m.cfg:15: error: 'monitor-net': removed from HAProxy; use 'http-request return "
        "status 200 if { src 10.0.0.0/8 }' instead",
        "m.cfg:18: warning: 'monitor-uri': ignored because backend 'b' has no frontend capability",
        "m.cfg:22: warning: 'monitor-uri': ignored for listen 't' as it requires HTTP mode",
        "m.cfg:25: warning: 'monitor fail': has no effect without 'monitor-uri'",
    ]
    for line in expected:
        assert line in problems, (line, problems)


def frontend(text: str) -> Frontend:
    config, problems = load(text)
    assert config is not None, problems
    proxy = config.proxy("f")
    assert proxy is not None
    return Frontend(proxy, None, None, 4096)


def request(target: str, version: str = "1.1", method: str = "GET") -> Request:
    req = analysers.read_request(
        f"{method} {target} HTTP/{version}\r\nHost: h\r\n\r\n".encode(), Conn()
    )
    assert isinstance(req, Request), req
    return req


def test_the_monitor_uri_is_answered_200_and_counted_as_intercepted() -> None:
    fe = frontend("frontend f\n    bind :80\n    monitor-uri /alive\n")
    verdict = analysers.monitor(fe, request("/alive"), close=False)
    assert verdict.kind == "reply" and verdict.status == 200 and not verdict.log
    assert verdict.response is not None
    assert verdict.response.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 58\r\n")
    assert verdict.response.endswith(b"<h1>200 OK</h1>\nService ready.\n</body></html>\n")
    assert not verdict.close and fe.intercepted == 1
    # The path and query, in an absolute-form target too; not another path or query.
    assert analysers.monitor(fe, request("http://h/alive"), close=False).status == 200
    assert analysers.monitor(fe, request("/alive?x"), close=False) is rules.CONTINUE
    assert analysers.monitor(fe, request("/alive/"), close=False) is rules.CONTINUE
    assert fe.intercepted == 2
    # HTTP/1.0 closes, HEAD has no body.
    closing = analysers.monitor(fe, request("/alive", "1.0"), close=True)
    assert closing.close and closing.response is not None
    assert b"connection: close\r\n" in closing.response
    head = analysers.monitor(fe, request("/alive", method="HEAD"), close=False).response
    assert head is not None and head.endswith(b"text/html\r\n\r\n")


def test_a_uri_without_a_slash_is_compared_with_the_whole_target() -> None:
    fe = frontend("frontend f\n    bind :80\n    monitor-uri http://h/alive\n")
    assert analysers.monitor(fe, request("http://h/alive"), close=False).status == 200
    assert analysers.monitor(fe, request("/alive"), close=False) is rules.CONTINUE


def test_monitor_fail_answers_503_when_a_condition_holds() -> None:
    text = "frontend f\n    bind :80\n    monitor-uri /alive\n    monitor fail if {{ {} }}\n"
    down = frontend(text.format("path /alive"))
    verdict = analysers.monitor(down, request("/alive"), close=False)
    assert verdict.status == 503 and verdict.response is not None
    assert verdict.response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    up = frontend(text.format("always_false"))
    assert analysers.monitor(up, request("/alive"), close=False).status == 200
    unless = frontend(text.format("always_false").replace(" if ", " unless "))
    assert analysers.monitor(unless, request("/alive"), close=False).status == 503
