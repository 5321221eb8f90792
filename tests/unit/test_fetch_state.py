"""The fetches that read the process (date, env, rand, uuid), the backends' state (nbsrv,
be_conn, queue, avg_queue, connslots, srv_is_up) and the URL's hash and authority
(base32, url_ip, url_port): values HAProxy 2.6.12 gave for the same requests and
backends, and its errors for the same lines."""

from __future__ import annotations

import re

import pytest

from poise.config.haproxy import parse
from poise.config.samples import parse_sample
from poise.core import proc
from poise.core.fetch import sample_values, to_str
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from tests.unit.admin_support import make_backend
from tests.unit.test_http_rules import BASE

BACKENDS = """backend bk
    server s1 127.0.0.1:1 maxconn 10 maxqueue 5
    server s2 127.0.0.1:2 maxconn 20 maxqueue 5 disabled
    server s3 127.0.0.1:3 backup maxconn 3 maxqueue 1
backend open
    server o 127.0.0.1:4
"""


def evaluate(expression: str, uri: str = "/p", host: str = "ex.com") -> str | None:
    req = Request("GET", uri, "1.1", Headers([("Host", host)]))
    found = sample_values(parse_sample(expression, "req"), "req")(req, None)
    return to_str(found[-1]) if found else None


@pytest.fixture
def backends() -> None:
    config, diagnostics = parse([("r.cfg", BASE + BACKENDS)], {})
    assert config is not None, [str(d) for d in diagnostics]
    for proxy in config.backends:
        make_backend(proxy)  # a Backend puts itself in proc.BACKENDS


def test_the_url_fetches_as_haproxy_gives_them() -> None:
    absolute = "http://10.2.3.4:8080/p"
    assert evaluate("base32", absolute, "10.2.3.4:8080") == "1533207450"
    assert evaluate("url_ip", absolute) == "10.2.3.4"
    assert evaluate("url_port", absolute) == "8080"
    assert evaluate("url_ip", "http://ex.com/p") is None
    assert evaluate("url_port", "http://ex.com/p") is None
    assert evaluate("url_ip", "/p") is None


def test_date_env_rand_and_uuid() -> None:
    proc.clock, proc.environ = (lambda: 1796667463.825), {"FOO": "bar"}
    try:
        assert evaluate("date") == "1796667463"
        assert evaluate("date(10,ms)") == "1796667463835"
        assert evaluate("date(-3)") == "1796667460"
        assert evaluate("env(FOO)") == "bar"
        assert evaluate("env(NOPE)") is None
    finally:
        proc.clock, proc.environ = proc._no_clock, {}
    assert {evaluate("rand(3)") for _ in range(200)} == {"0", "1", "2"}
    assert 0 <= int(evaluate("rand") or "-1") < 1 << 32
    found = evaluate("uuid")
    assert found is not None
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", found
    )


@pytest.mark.usefixtures("backends")
def test_backend_state_as_haproxy_counts_it() -> None:
    assert evaluate("nbsrv(bk)") == "1"  # s2 is disabled, s3 is a backup
    assert evaluate("be_conn(bk)") == "0"
    assert evaluate("queue(bk)") == "0"
    assert evaluate("avg_queue(bk)") == "0"
    assert evaluate("connslots(bk)") == "19"  # s1: 10 + 5, s3: 3 + 1
    assert evaluate("connslots(open)") == "-1"  # no maxconn: no meaning
    assert evaluate("srv_is_up(bk/s1)") == "1"
    assert evaluate("srv_is_up(bk/s2)") == "0"
    backend = proc.BACKENDS["bk"]
    s1 = backend.servers[0]
    s1.cur_sess, s1.queued = 4, 3
    assert evaluate("connslots(bk)") == "12"
    assert evaluate("queue(bk)") == "3"
    assert evaluate("avg_queue(bk)") == "3"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%[nbsrv(nope)]", "unable to find backend 'nope' referenced in arg 1 of sample fetch "
         "keyword 'nbsrv'."),
        ("%[srv_is_up(bk/nope)]", "unable to find server 'nope' in proxy 'bk', referenced in"),
        ("%[date(1,xs)]", "invalid args in fetch method 'date' : expects 's', 'ms' or 'us'"),
        ("%[rand(a)]", "fetch method 'rand' : failed to parse 'a' as type 'integer'"),
        ("%[uuid(3)]", "Unsupported UUID version: '3'."),
        ("%[nbsrv]", "without a backend name (the current backend) is not implemented yet"),
    ],
)  # fmt: skip
def test_bad_arguments(line: str, message: str) -> None:
    text = BASE + f"frontend f\n    bind :80\n    http-request set-header X {line}\n"
    text += "    default_backend bk\n" + BACKENDS
    _, diagnostics = parse([("r.cfg", text)], {})
    found = [str(d) for d in diagnostics if d.severity.value == "error"]
    assert found and message in found[0] and found[0].startswith("r.cfg:8:"), found
