"""Protocol health checks, the pure part: the `tcp-check` lines and check options as
`haproxy -c` 2.6.12 reads them (the error texts are its own where they say more), and the
verdicts core/tcpcheck.py gives on bytes, with HAProxy's step numbers and texts (the
same cases run against real servers in tests/io/test_tcp_checks.py)."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.config.model import Proxy
from poise.config.model_checks import CheckComment, CheckConnect, CheckExpect, CheckSend
from poise.core import health
from poise.core.tcpcheck import NEXT, Connect, Expect, Program, Send
from poise.core.tcpcheck_rules import program

BASE = """defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:8000
    default_backend be
"""


def diagnose(text: str, base: str = BASE) -> tuple[Proxy | None, list[str]]:
    config, diagnostics = parse([("t.cfg", base + text)], {})
    messages = [str(d) for d in diagnostics]
    if config is None:
        return None, messages
    return next(p for p in config.proxies if p.name == "be"), messages


def backend(rules: str, base: str = BASE) -> Proxy:
    proxy, messages = diagnose(f"backend be\n{rules}    server a 127.0.0.1:80 check\n", base)
    assert proxy is not None, messages
    return proxy


def error(rules: str) -> str:
    proxy, messages = diagnose(f"backend be\n{rules}    server a 127.0.0.1:80 check\n")
    assert proxy is None
    return messages[0]


def test_tcp_check_rules_are_read_in_order() -> None:
    proxy = backend(
        """    option tcp-check
    tcp-check comment hello
    tcp-check connect port 6379 linger comment "redis port"
    tcp-check send PING\\r\\n
    tcp-check send-binary 50494e470d0a comment bin
    tcp-check expect min-recv 7 ! rstring ^-ERR error-status L7STS on-error "not redis"
    tcp-check expect string +PONG
"""
    )
    check = proxy.tcp_check
    assert check is not None and check.protocol == "tcp-check"
    kinds = [type(rule) for rule in check.rules]
    assert kinds == [CheckComment, CheckConnect, CheckSend, CheckSend, CheckExpect, CheckExpect]
    connect, send, binary, negated = check.rules[1:5]
    assert isinstance(connect, CheckConnect) and connect.port == 6379 and connect.linger
    assert connect.comment == "redis port"
    assert isinstance(send, CheckSend) and send.data == b"PING\r\n"
    assert isinstance(binary, CheckSend) and binary.data == b"PING\r\n" and binary.comment == "bin"
    assert isinstance(negated, CheckExpect) and negated.negate and negated.min_recv == 7
    assert (negated.kind, negated.error_status, negated.on_error) == (
        "rstring",
        "L7STS",
        "not redis",
    )
    assert proxy.http_check is None


def test_the_last_check_option_wins_and_defaults_pass_rules_on() -> None:
    base = BASE + "defaults\n    mode tcp\n    option tcp-check\n    tcp-check send x\n"
    proxy = backend("", base)
    assert proxy.tcp_check is not None and len(proxy.tcp_check.rules) == 1
    # A section's own rules replace those of its defaults.
    proxy = backend("    tcp-check send y\n    tcp-check send z\n", base)
    assert proxy.tcp_check is not None
    assert [r.data for r in proxy.tcp_check.rules if isinstance(r, CheckSend)] == [b"y", b"z"]
    proxy = backend("    option httpchk\n", base)
    assert proxy.tcp_check is None and proxy.http_check is not None
    proxy = backend("    option httpchk\n    option redis-check\n")
    assert proxy.http_check is None
    assert proxy.tcp_check is not None and proxy.tcp_check.protocol == "redis-check"
    proxy = backend("    option mysql-check user haproxy pre-41\n")
    assert proxy.tcp_check is not None
    assert (proxy.tcp_check.user, proxy.tcp_check.variant) == ("haproxy", "pre-41")
    proxy = backend("    option smtpchk EHLO example.org\n")
    assert proxy.tcp_check is not None and proxy.tcp_check.command == "EHLO example.org"


def test_rules_without_the_option_are_ignored_with_haproxys_warning() -> None:
    proxy, messages = diagnose("backend be\n    tcp-check send x\n    server a 127.0.0.1:80\n")
    assert proxy is not None and proxy.tcp_check is None
    assert messages == [
        "t.cfg:10: warning: 'tcp-check': backend 'be' uses tcp-check rules without "
        "'option tcp-check', so the rules are ignored"
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "    option tcp-check\n    tcp-check send x\n    tcp-check connect\n",
            "first step MUST also be a 'connect', optionally preceded by a 'set-var', an "
            "'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset.",
        ),
        ("    tcp-check expect string\n", "'string' expects a <pattern> as argument."),
        ("    tcp-check expect foo bar\n", "but got 'foo' as argument."),
        ("    tcp-check send-binary zz\n", "'zz' invalid binary string (an hex digit is expected"),
        ("    tcp-check connect port 80 foo\n", "but got 'foo' as argument."),
        ("    option mysql-check user\n", "'option mysql-check user' expects <username>"),
        ("    option pgsql-check\n", "'option pgsql-check' expects 'user <username>'"),
        ("    tcp-check expect string x ok-status L9OK\n", "'ok-status' only supports"),
        ("    tcp-check expect rstring (\n", "regex '(' is invalid"),
        # What poise leaves out says so.
        ("    tcp-check set-var(check.x) int(1)\n", "not implemented yet in poise"),
        ("    tcp-check send-lf %[date]\n", "not implemented yet in poise"),
        ("    tcp-check connect via-socks4\n", "not implemented yet in poise"),
        ("    tcp-check expect custom x\n", "not implemented yet in poise"),
        ("    tcp-check expect string x status-code y\n", "not implemented yet in poise"),
    ],
)
def test_bad_rules_are_errors(rules: str, message: str) -> None:
    assert message in error(rules)


# -- verdicts ------------------------------------------------------------------------------


def pong_program() -> Program:
    proxy = backend(
        "    option tcp-check\n    tcp-check comment hello\n    tcp-check send PING\\r\\n\n"
        "    tcp-check expect string +PONG comment pongcheck\n"
    )
    assert proxy.tcp_check is not None
    return program(proxy.tcp_check)


def test_steps_are_numbered_as_haproxy_numbers_them() -> None:
    checks = pong_program()
    connect, send, expect = checks.steps
    assert isinstance(connect, Connect) and connect.implicit and connect.step == 0
    assert isinstance(send, Send) and send.step == 2 and send.data(0) == b"PING\r\n"
    assert isinstance(expect, Expect) and expect.step == 3 and expect.comment == "pongcheck"
    assert checks.where(connect) == " at initial connection step of tcp-check"
    assert checks.where(expect) == (
        " at step 3 of tcp-check (expect string '+PONG') comment: 'pongcheck'"
    )


def test_expect_waits_while_a_match_may_come() -> None:
    checks = pong_program()
    expect = checks.steps[2]
    assert isinstance(expect, Expect)
    assert checks.expect(expect, b"+PO", False, 1) is None  # shorter than the pattern
    assert checks.expect(expect, b"-ERR xx\r\n", False, 1) is None  # more may come
    assert checks.expect(expect, b"x+PONG\r\n", False, 1) is NEXT
    wrong = checks.expect(expect, b"-ERR xx\r\n", True, 7)
    assert wrong == health.CheckResult(
        False,
        "Layer7 invalid response",
        "TCPCHK did not match content '+PONG' at step 3 comment: pongcheck",
        7,
    )
    empty = checks.expect(expect, b"", True, 7)
    assert isinstance(empty, health.CheckResult)
    assert empty.info == "TCPCHK got an empty response at step 3 comment: 'pongcheck'"
    done = checks.finish(expect, b"+PONG\r\n", False, 3)
    assert done == health.CheckResult(True, "Layer7 check passed", "(tcp-check)", 3, 0)


def test_min_recv_and_negation_decide_without_waiting() -> None:
    proxy = backend("    option tcp-check\n    tcp-check expect min-recv 4 ! string ERR\n")
    assert proxy.tcp_check is not None
    checks = program(proxy.tcp_check)
    expect = checks.steps[1]
    assert isinstance(expect, Expect)
    assert checks.expect(expect, b"+OK", False, 0) is None
    assert checks.expect(expect, b"+OK\r\n", False, 0) is NEXT
    unwanted = checks.expect(expect, b"-ERR\r\n", False, 0)
    assert isinstance(unwanted, health.CheckResult)
    assert unwanted.info == "TCPCHK matched unwanted content 'ERR' at step 1"


def test_rbinary_matches_the_hex_of_the_answer() -> None:
    proxy = backend("    option ssl-hello-chk\n")
    assert proxy.tcp_check is not None
    checks = program(proxy.tcp_check)
    hello, expect = checks.steps[1:]
    assert isinstance(hello, Send) and isinstance(expect, Expect)
    sent = hello.data(0x01020304)
    assert sent[:3] == b"\x16\x03\x00" and len(sent) == 5 + 0x79 and sent[11:15] == b"\1\2\3\4"
    assert checks.expect(expect, b"\x15\x03\x01\x00\x02", False, 0) is NEXT
    passed = checks.finish(expect, b"", False, 0)
    assert (passed.reason, passed.info, passed.code) == ("Layer6 check passed", None, None)
    refused = checks.expect(expect, b"+PONG\r\n", False, 0)
    assert isinstance(refused, health.CheckResult)
    assert (refused.reason, refused.info) == ("Layer6 invalid response", None)


def test_mysql_error_packet_gives_code_and_text() -> None:
    proxy = backend("    option mysql-check user nosuch\n")
    assert proxy.tcp_check is not None
    checks = program(proxy.tcp_check)
    _, login, greeting, ok = checks.steps
    assert isinstance(login, Send) and isinstance(greeting, Expect) and isinstance(ok, Expect)
    assert login.data(0)[:4] == bytes([6 + 34, 0, 0, 1])
    hello = b"\x0a5.5.5-test\x00" + b"x" * 20
    first = len(hello).to_bytes(3, "little") + b"\x00" + hello
    assert checks.expect(greeting, first, False, 0) is NEXT
    error = b"\xff\x15\x04#28000Access denied"
    answer = first + len(error).to_bytes(3, "little") + b"\x02" + error
    assert checks.expect(ok, answer[:-3], False, 0) is None
    result = checks.expect(ok, answer, False, 0)
    assert result == health.CheckResult(
        False, "Layer7 wrong status", "#28000Access denied", 0, 1045
    )
    okay = b"\x00\x00\x00\x02\x00\x00\x00"
    success = checks.expect(ok, first + len(okay).to_bytes(3, "little") + b"\x02" + okay, False, 0)
    assert success == health.CheckResult(True, "Layer7 check passed", "5.5.5-test", 0, 0)
