"""Variables (configuration.txt `http-request set-var`, the `var` fetch): how haproxy.cfg
writes them (the errors are HAProxy 2.6.12's for the same lines) and what the rules do with
them on a request and its response."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.core import variables
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.txn import Conn
from tests.unit.test_http_rules import BASE, frontend, request


def program(lines: str) -> rules.Rules:
    return rules.Rules(frontend(lines))


def errors(line: str) -> list[str]:
    text = BASE + f"frontend f\n    bind :80\n    {line}\n    default_backend b\nbackend b\n"
    _, diagnostics = parse([("r.cfg", text)], {}, lambda path: b"")
    return [d.message for d in diagnostics if d.severity.value == "error"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http-request set-var(foo.y) str(ab)", "invalid variable name 'foo.y'. A variable name"),
        ("http-request set-var(txn.) str(ab)", "invalid variable name 'txn.'"),
        ("http-request set-var(txn.x-y) str(a)", "invalid syntax at char '-y)'"),
        ("http-request set-var(txn.y,ifbogus) str(ab)", 'unknown condition "ifbogus".'),
        ("http-request set-var(txn.y,ifset", "incomplete argument after action"),
        ("http-request set-var(txn.z)", "missing fetch method."),
        ("http-request set-var(txn.z) str(a) foo", "expects either 'if' or 'unless'"),
        ("http-request unset-var(txn.z) str(a)", "expects either 'if' or 'unless'"),
        ("http-request set-var(txn.z) var(txn)", "invalid args in fetch method 'var'"),
        ("http-request set-var(txn.z) status", "extracts information from 'HTTP response'"),
        ("http-response set-var(txn.z) path", "from 'HTTP request headers'"),
        ("acl a var(txn.x) foo", "matching method must be specified first (using '-m')"),
    ],
)
def test_bad_variables_are_refused_as_haproxy_refuses_them(line: str, message: str) -> None:
    found = errors(line)
    assert found and message in found[0], found


@pytest.mark.parametrize(
    "line",
    [
        "http-request set-var(txn.z,ifgt,iflt,ifset,ifexists) str(a)",
        "http-request set-var(check.z) str(a)",
        "http-request set-var-fmt(txn.z)",
        "http-request set-var(sess.a.b) str(a)",
        "acl a var(txn.x) -m str foo",
        "http-response set-var(res.a) status",
    ],
)
def test_variables_haproxy_accepts(line: str) -> None:
    assert errors(line) == []


def run_request(program: rules.Rules, req: Request) -> rules.Verdict:
    return rules.request_rules(program, req)


def test_set_var_keeps_the_value_and_its_type_for_the_transaction() -> None:
    program_ = program(
        "    http-request set-var(txn.host) req.hdr(host),lower\n"
        "    http-request set-var(txn.port) dst_port\n"
        "    http-request set-var-fmt(txn.from) %[src]:%[src_port]\n"
        "    http-request set-header X-Host %[var(txn.host)]/%[var(txn.port)]/%[var(txn.from)]\n"
        "    http-request set-header X-None <%[var(txn.none)]><%[var(txn.none,dflt)]>\n"
        "    http-request deny if { var(txn.port) -m int 81 }\n"
    )
    req = request("/", ("X-A", "b"))
    req.headers = Headers([("Host", "WWW.Example")])
    assert run_request(program_, req) is rules.CONTINUE
    assert req.headers.get("x-host") == "www.example/80/127.0.0.1:43796"
    assert req.headers.get("x-none") == "<><dflt>"
    assert req.vars == {"txn.host": "www.example", "txn.port": 80, "txn.from": "127.0.0.1:43796"}


def test_a_request_without_variables_allocates_nothing() -> None:
    req = request("/")
    run_request(program("    http-request set-header X-A %[var(txn.a)]\n"), req)
    assert req.vars is None


def test_unset_var_and_the_conditions_of_set_var() -> None:
    program_ = program(
        "    http-request set-var(txn.a) int(5)\n"
        "    http-request set-var(txn.a,ifgt) int(3)\n"  # 5 > 3: set
        "    http-request set-var(txn.a,iflt) int(1)\n"  # 3 < 1 fails: kept
        "    http-request set-var(txn.b,ifexists) str(x)\n"  # b does not exist
        "    http-request set-var(txn.c,ifnotempty) req.fhdr(x-empty)\n"
        "    http-request set-var(txn.f,ifempty) req.fhdr(x-empty)\n"
        "    http-request set-var-fmt(txn.d,ifnotexists) new\n"
        "    http-request set-var-fmt(txn.d,ifnotexists) newer\n"
        "    http-request set-var(txn.e) str(gone)\n"
        "    http-request unset-var(txn.e)\n"
    )
    req = request("/", ("X-Empty", ""))
    run_request(program_, req)
    assert req.vars == {"txn.a": 3, "txn.d": "new", "txn.f": ""}


def test_sess_variables_live_with_the_connection() -> None:
    conn = Conn()
    program_ = program(
        "    http-request set-header X-Seen %[var(sess.seen)]\n"
        "    http-request set-var(sess.seen) path unless { var(sess.seen) -m found }\n"
    )
    first, second = request("/first"), request("/second")
    first.conn = second.conn = conn
    run_request(program_, first)
    run_request(program_, second)
    assert conn.vars == {"sess.seen": "/first"} and first.vars is None
    assert second.headers.get("x-seen") == "/first"


def test_proc_variables_are_shared_by_every_request() -> None:
    variables.PROC.clear()
    program_ = program("    http-request set-var(proc.last) path\n")
    run_request(program_, request("/one"))
    other = program("    http-request set-header X-Last %[var(proc.last)]\n")
    req = request("/two")
    run_request(other, req)
    assert req.headers.get("x-last") == "/one"
    variables.PROC.clear()


def test_req_variables_are_not_seen_by_response_rules_but_txn_ones_are() -> None:
    proxy = frontend(
        "    http-request set-var(req.a) str(r)\n"
        "    http-request set-var(txn.b) str(t)\n"
        "    http-response set-var(res.c) status\n"
        "    http-response set-header X-Seen <%[var(req.a)]><%[var(txn.b)]><%[var(res.c)]>\n"
    )
    program_ = rules.Rules(proxy)
    req = request("/")
    run_request(program_, req)
    resp = Response(200, "OK", "1.1", Headers([]))
    assert rules.response_rules(program_, req, resp) is rules.CONTINUE
    assert resp.headers.get("x-seen") == "<><t><200>"
