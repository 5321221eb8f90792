"""Layer-4 rules: `tcp-request connection|session|content`, `tcp-response content` and
their inspect-delay as haproxy.cfg writes them (config/haproxy_tcp.py, link_tcp.py), and
as they decide (core/tcprules.py) on bytes held (core/payload.py), without sockets.

Messages are those of `haproxy -c` 2.6.12 on the same lines where it has one; the rules'
behaviour follows configuration.txt 4.2 (content rules wait while a condition cannot tell,
then decide on final contents) and HAProxy's three-valued ACL logic (acl_exec_cond)."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.config.model import Config, Proxy
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.payload import Held
from poise.core.tcprules import Decision, TcpRuleSets, condition3, run_rules
from poise.core.txn import Conn
from tests.unit.test_payload import client_hello

BASE = """defaults d
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 1s
"""


def diagnose(text: str, base: str = BASE) -> tuple[Config | None, list[str]]:
    config, found = parse([("t.cfg", base + text)], {})
    return config, [str(d) for d in found]


def proxy(text: str) -> Proxy:
    config, found = diagnose(text)
    assert config is not None, found
    return config.proxies[0]


def request(data: bytes = b"", final: bool = False, src: str = "10.0.0.1") -> Request:
    conn = Conn()
    conn.held = Held()
    conn.held.req, conn.held.final = data, final
    return Request("", "", "1.1", Headers(), src, 40000, "10.0.0.9", 443, conn=conn)


FRONT = "frontend f from d\n    bind :443\n"
BACK = "    default_backend b\nbackend b from d\n    server s 10.0.0.2:443\n"


# --- reading the configuration -------------------------------------------------------------


def test_rules_are_gathered_by_hook_and_the_inspect_delay_is_inherited() -> None:
    text = (
        FRONT + "    tcp-request connection reject if { src 10.9.0.0/16 }\n"
        "    tcp-request session accept\n"
        "    tcp-request content accept if { req.ssl_hello_type 1 }\n"
        "    tcp-request content reject\n" + BACK
    )
    config, found = diagnose(text, BASE + "    tcp-request inspect-delay 5s\n")
    assert config is not None, found
    f = config.proxies[0]
    rules = f.tcp_rules
    assert [r.action for r in rules.connection] == ["reject"]
    assert [r.action for r in rules.session] == ["accept"]
    assert [r.action for r in rules.content] == ["accept", "reject"]
    assert f.timeouts.inspect == 5000


def test_inspect_delay_is_refused_in_an_anonymous_defaults_section() -> None:
    _, found = diagnose(
        FRONT + BACK, base="defaults\n    mode tcp\n    tcp-request inspect-delay 5s\n"
    )
    assert found[0] == (
        "t.cfg:3: error: 'tcp-request inspect-delay': tcp-request inspect-delay is not allowed "
        "in anonymous 'defaults' sections"
    )


def test_a_sample_unknown_where_the_rule_runs_is_haproxys_warning() -> None:
    _, found = diagnose(
        FRONT + "    tcp-request connection reject if { req.ssl_sni -i a }\n"
        "    tcp-request session reject if { req.len gt 3 }\n" + BACK
    )
    assert found == [
        "t.cfg:8: warning: 'tcp-request connection': anonymous acl will never match in "
        "'tcp-request connection' because it uses keyword 'req.ssl_sni' which is incompatible "
        "with 'frontend tcp-request connection rule'",
        "t.cfg:9: warning: 'tcp-request session': anonymous acl will never match in "
        "'tcp-request session' because it uses keyword 'req.len' which is incompatible with "
        "'frontend tcp-request session rule'",
    ]


def test_a_connection_rule_after_a_session_rule_is_haproxys_warning() -> None:
    _, found = diagnose(
        FRONT + "    tcp-request session accept\n    tcp-request connection accept\n" + BACK
    )
    assert found == [
        "t.cfg:9: warning: 'tcp-request connection': a 'tcp-request' rule placed after a "
        "'tcp-request session' rule will still be processed before."
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("tcp-request content track-sc3 src", "unknown action 'track-sc3'"),
        # HAProxy 2.6's messages (tests/io/test_expect_proxy.py runs the rule).
        (
            "tcp-request connection expect-proxy layer7",
            "'tcp-request connection expect-proxy' only supports 'layer4' in frontend 'f' "
            "(got 'layer7')",
        ),
        (
            "tcp-request connection expect-proxy layer4 foo",
            "'tcp-request connection expect-proxy' only accepts 'if' or 'unless', in "
            "frontend 'f' (got 'foo')",
        ),
        (
            "tcp-request session expect-proxy layer4",
            "'expect-proxy layer4' is not allowed in 'tcp-request session' rules",
        ),
        ("tcp-request content set-nice 5", "'set-nice' is not implemented"),
        ("tcp-request content close", "unknown action 'close'"),
        ("tcp-request content acept", "unknown action 'acept'; did you mean 'accept'"),
        ("tcp-request content accept when x", "expects either 'if' or 'unless'"),
        ("tcp-request content", "expects an action"),
        ("tcp-request content accept if { req.payload(0) -m found }", "at least 2 argument"),
        ("tcp-request content accept if { req.payload_lv(0,5) -m found }", "length must be 1"),
        ("tcp-request content accept if { req.payload(0,2) -m bin 1g }", "not a valid binary"),
    ],
)
def test_bad_rules_say_why(line: str, message: str) -> None:
    _, found = diagnose(FRONT + f"    {line}\n" + BACK)
    assert found and message in found[0] and found[0].startswith("t.cfg:8: error:"), found


def test_track_sc_needs_a_table_in_the_proxy_it_names() -> None:
    _, found = diagnose(FRONT + "    tcp-request connection track-sc0 src\n" + BACK)
    assert found == [
        "t.cfg:8: error: no table in proxy 'f' referenced in rule 'tcp-request connection "
        "track-sc0'."
    ]
    _, found = diagnose(FRONT + "    tcp-request connection track-sc1 src table t\n" + BACK)
    assert found == [
        "t.cfg:8: error: unable to find table 't' referenced in rule 'tcp-request connection "
        "track-sc1'."
    ]


# --- deciding -------------------------------------------------------------------------------


def content(text: str) -> TcpRuleSets:
    return TcpRuleSets(proxy(FRONT + "    tcp-request inspect-delay 5s\n" + text + BACK))


def test_sni_routing_rules_wait_for_a_whole_hello_then_accept() -> None:
    rules = content("    tcp-request content accept if { req_ssl_hello_type 1 }\n").content
    hello = client_hello("a.example")
    assert run_rules(rules, request(hello[:20])) == (Decision.WAIT, 0)
    assert run_rules(rules, request(hello))[0] is Decision.ACCEPT
    # Not TLS: the condition fails at once, no rule decides: accepted (the default).
    assert run_rules(rules, request(b"SSH-2.0-x\r\n"))[0] is Decision.ACCEPT
    # A silent client: once inspect-delay is over the contents are final, nothing waits.
    assert run_rules(rules, request(b"", final=True))[0] is Decision.ACCEPT


def test_a_reject_after_the_hello_test_refuses_what_is_not_tls() -> None:
    rules = content(
        "    tcp-request content accept if { req.ssl_hello_type 1 }\n"
        "    tcp-request content reject\n"
    ).content
    assert run_rules(rules, request(b"GET / HTTP/1.1\r\n"))[0] is Decision.REJECT
    assert run_rules(rules, request(b""))[0] is Decision.WAIT
    assert run_rules(rules, request(b"", final=True))[0] is Decision.REJECT


def test_req_len_does_not_fail_while_the_buffer_grows() -> None:
    # configuration.txt: "wait for either 5s or 36 bytes in the buffer".
    rules = content(
        "    tcp-request content accept if { req_len ge 36 }\n    tcp-request content reject\n"
    ).content
    assert run_rules(rules, request(b"x" * 10))[0] is Decision.WAIT
    assert run_rules(rules, request(b"x" * 36))[0] is Decision.ACCEPT
    assert run_rules(rules, request(b"x" * 10, final=True))[0] is Decision.REJECT


def test_wait_end_holds_until_the_delay_is_over() -> None:
    rules = content("    tcp-request content accept if WAIT_END\n    tcp-request content reject\n")
    assert run_rules(rules.content, request(b"data"))[0] is Decision.WAIT
    assert run_rules(rules.content, request(b"data", final=True))[0] is Decision.ACCEPT


def test_three_valued_logic_or_pass_wins_and_fail() -> None:
    f = proxy(
        FRONT + "    tcp-request content accept if { req.len gt 100 } || { src 10.0.0.1 }\n" + BACK
    )
    cond = f.tcp_rules.content[0].condition
    assert cond is not None
    holds = condition3(cond, "req")
    assert holds(request(b"x")) is True  # MISS or PASS: PASS
    assert holds(request(b"x", src="10.0.0.7")) is None  # MISS or FAIL: MISS
    assert holds(request(b"x", final=True, src="10.0.0.7")) is False
    f = proxy(
        FRONT + "    tcp-request content accept if { req.len gt 100 } { src 10.0.0.1 }\n" + BACK
    )
    cond = f.tcp_rules.content[0].condition
    assert cond is not None
    holds = condition3(cond, "req")
    assert holds(request(b"x", src="10.0.0.7")) is False  # MISS and FAIL: FAIL
    assert holds(request(b"x")) is None  # MISS and PASS: MISS
    f = proxy(FRONT + "    tcp-request content accept unless { req.len gt 100 }\n" + BACK)
    cond = f.tcp_rules.content[0].condition
    assert cond is not None
    assert condition3(cond, "req")(request(b"x")) is None  # a negated MISS stays MISS


def test_payload_and_binary_matching_route_ssh() -> None:
    rules = content(
        "    tcp-request content reject if { req.payload(0,7) -m bin 5353482d322e30 }\n"
    ).content
    assert run_rules(rules, request(b"SSH-2.0-OpenSSH_9\r\n"))[0] is Decision.REJECT
    assert run_rules(rules, request(b"SSH"))[0] is Decision.WAIT
    assert run_rules(rules, request(b"GET / HTTP/1.0\r\n"))[0] is Decision.ACCEPT


def test_variables_set_by_rules_are_kept_and_read() -> None:
    rules = TcpRuleSets(
        proxy(
            FRONT
            + "    tcp-request connection set-var(sess.net) str(inside) if { src 10.0.0.0/8 }\n"
            "    tcp-request content reject unless { var(sess.net) -m str inside }\n" + BACK
        )
    )
    inside, outside = request(b"x", final=True), request(b"x", final=True, src="192.0.2.1")
    for req in (inside, outside):
        run_rules(rules.connection, req)
    assert run_rules(rules.content, inside)[0] is Decision.ACCEPT
    assert run_rules(rules.content, outside)[0] is Decision.REJECT


def test_the_rules_resume_at_the_rule_that_waited() -> None:
    rules = content(
        "    tcp-request content set-var(txn.n) int(1)\n"
        "    tcp-request content accept if { req.len ge 4 }\n"
    ).content
    req = request(b"ab")
    assert run_rules(rules, req) == (Decision.WAIT, 1)
    assert req.vars == {"txn.n": 1}
    assert req.conn is not None and req.conn.held is not None
    req.conn.held.req = b"abcd"
    assert run_rules(rules, req, 1) == (Decision.ACCEPT, 1)


def test_ssl_version_patterns_are_dotted() -> None:
    rules = content("    tcp-request content reject if { req.ssl_ver 3.0:3.1 }\n").content
    tls10 = b"\x16\x03\x01\x00\x30"
    tls12 = b"\x16\x03\x03\x00\x30"
    assert run_rules(rules, request(tls10))[0] is Decision.REJECT
    assert run_rules(rules, request(tls12))[0] is Decision.ACCEPT
