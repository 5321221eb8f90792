"""The `global` section (HAProxy's configuration.txt section 3)."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Diagnostic, Severity
from poise.config.haproxy import parse
from poise.config.model import Address, Config, LogTarget, StatsSocket, Where


def parse_ok(text: str) -> tuple[Config, list[Diagnostic]]:
    config, diagnostics = parse([("g.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config, diagnostics


def errors(text: str) -> list[str]:
    config, diagnostics = parse([("g.cfg", text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def test_process_settings() -> None:
    config, diagnostics = parse_ok(
        """
global
    maxconn 4000
    daemon
    pidfile /var/run/haproxy.pid
    user haproxy
    group haproxy
    chroot /var/lib/haproxy
    hard-stop-after 30s
    spread-checks 5
    node lb-1.example
    nbthread 1
    description the  front door
    stats timeout 1m
"""
    )
    assert diagnostics == []
    g = config.global_
    assert (g.maxconn, g.daemon, g.pidfile, g.chroot) == (
        4000,
        True,
        "/var/run/haproxy.pid",
        "/var/lib/haproxy",
    )
    assert (g.user, g.group, g.uid, g.gid) == ("haproxy", "haproxy", None, None)
    assert g.user_where == Where("g.cfg", 6) and g.group_where == Where("g.cfg", 7)
    assert (g.hard_stop_after, g.spread_checks, g.node) == (30_000, 5, "lb-1.example")
    assert g.description == "the front door"
    assert g.stats_timeout == 60_000
    assert g.where == Where("g.cfg", 2)


def test_defaults_when_unset() -> None:
    config, _ = parse_ok("global\n")
    g = config.global_
    # maxconn 0: worked out from the descriptor limit at start-up (core/limits.py).
    assert (g.maxconn, g.daemon, g.stats_timeout, g.logs, g.stats_sockets) == (
        0,
        False,
        10_000,
        (),
        (),
    )


def test_numeric_uid_gid() -> None:
    config, _ = parse_ok("global\n    uid 102\n    gid 105\n")
    assert (config.global_.uid, config.global_.gid) == (102, 105)


def test_a_setting_written_twice_keeps_the_first_as_haproxy_does() -> None:
    config, diagnostics = parse_ok(
        "global\n    maxconn 10\n    maxconn 20\n    user a\n    uid 5\n    group b\n    gid 6\n"
    )
    assert config.global_.maxconn == 10
    assert (config.global_.user, config.global_.uid) == ("a", None)
    assert (config.global_.group, config.global_.gid) == ("b", None)
    assert [str(d) for d in diagnostics] == [
        "g.cfg:3: warning: 'maxconn': already specified at g.cfg:2; this line is ignored",
        "g.cfg:5: warning: 'uid': already specified at g.cfg:4; this line is ignored",
        "g.cfg:7: warning: 'gid': already specified at g.cfg:6; this line is ignored",
    ]


def test_global_sections_may_repeat() -> None:
    config, _ = parse_ok("global\n    daemon\nglobal\n    maxconn 7\n")
    assert config.global_.daemon and config.global_.maxconn == 7


def where(line: int) -> Where:
    return Where("g.cfg", line)


def test_log_targets() -> None:
    config, diagnostics = parse_ok(
        """
global
    log 127.0.0.1 local2
    log stdout format raw local0
    log /dev/log local0 info notice
    log udp@10.0.0.1:1514 len 2048 format rfc5424 daemon warning
    log stderr format short local7 debug
"""
    )
    assert diagnostics == []
    assert config.global_.logs == (
        LogTarget("udp", "127.0.0.1", 514, "local2", where(3), format="local"),
        LogTarget("stdout", "", 0, "local0", where(4), format="raw"),
        LogTarget("unix", "/dev/log", 0, "local0", where(5), "info", "notice", "local"),
        LogTarget("udp", "10.0.0.1", 1514, "daemon", where(6), "warning", None, "rfc5424", 2048),
        LogTarget("stderr", "", 0, "local7", where(7), "debug", None, "short"),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("log 127.0.0.1 local9", "unknown log facility 'local9'; did you mean 'local7'?"),
        ("log 127.0.0.1 len 79 local0", "invalid log length '79'"),
        ("log stdout format json local0", "unknown log format 'json'"),
        ("log stdout local0 loud", "unknown log level 'loud'"),
        ("log stdout local0 info notice debug", "unexpected argument 'debug'"),
        ("log stdout", "expects an address and a facility"),
        ("log stdout len", "'len' expects a value"),
        ("log stdout sample 1:2 local0", "'sample') is not implemented yet"),
        ("log bad!name local0", "invalid"),
        ("log global", "'log global' is for proxies"),
    ],
)
def test_bad_log_lines(line: str, message: str) -> None:
    problems = errors(f"global\n    {line}\n")
    assert len(problems) == 1
    assert problems[0].startswith("g.cfg:2: error: 'log': ")
    assert message in problems[0]


def test_stats_sockets() -> None:
    config, diagnostics = parse_ok(
        """
global
    stats socket /run/poise/admin.sock mode 600 level admin
    stats socket ipv4@127.0.0.1:9999 level user
    stats socket /var/lib/haproxy/stats
    stats socket fd@3 level admin
    stats socket /run/haproxy/s mode 660 level admin expose-fd listeners user haproxy group 7
"""
    )
    assert diagnostics == []
    assert config.global_.stats_sockets == (
        StatsSocket(Address("unix", "/run/poise/admin.sock", None), where(3), 0o600, "admin"),
        StatsSocket(Address("ipv4", "127.0.0.1", 9999), where(4), None, "user"),
        StatsSocket(Address("unix", "/var/lib/haproxy/stats", None), where(5), None, "operator"),
        StatsSocket(Address("fd", "3", None), where(6), None, "admin"),  # from the parent
        StatsSocket(
            Address("unix", "/run/haproxy/s", None),
            where(7),
            0o660,
            "admin",
            expose_fd=True,
            user="haproxy",
            group="7",
        ),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("stats socket /x mode 999", "'stats socket': option 'mode': expects an octal number"),
        ("stats socket /x level root", "'stats socket': option 'level': expects user, operator"),
        ("stats socket /x expose-fd all", "'expose-fd' only supports 'listeners' (got 'all')"),
        ("stats socket /x uid haproxy", "option 'uid': 'uid' : expects a numeric value"),
        ("stats socket", "'stats socket' expects an address or a path"),
        ("stats socket :80-90", "exactly one address"),
        ("stats socket sockpair@3", "'sockpair@' is not implemented yet in poise (fd@ is)"),
        ("stats socket fd@x", "file descriptor 'x' is not a valid integer in 'fd@x'"),
        ("stats timeout 1.5s", "unexpected character '.'"),
        ("stats maxconn 10", "'stats maxconn' is not implemented yet"),
        ("stats foo", "unknown 'stats foo'"),
        ("nbthread 0", "'nbthread': value must be between 1 and 64 (was 0)"),
        ("nbthread 65", "'nbthread': value must be between 1 and 64 (was 65)"),
        ("nbthread two", "passed a missing or unparsable integer value in 'two'"),
        ("cpu-map 1", "'cpu-map': expects a process number  ('all', 'odd', 'even', a number"),
        ("cpu-map 1/65 0", "'65' is not a valid number/range. It supports numbers from 1 to 64."),
        ("cpu-map 0 0", "'0' is not a valid number/range. It supports numbers from 1 to 64."),
        ("cpu-map x 0", "'cpu-map': 'x' is not a valid number/range."),
        ("cpu-map 1/1 x", "'cpu-map': 'x' is not a CPU range."),
        ("cpu-map 1/1 1024", "'cpu-map': supports CPU numbers from 0 to 1023."),
        ("cpu-map auto:1/1-3 0-1", "PROC/THREAD range and CPU sets must have the same size"),
        ("cpu-map auto:1-2/1-2 0-3", "PROC/THREAD range and CPU sets must have the same size"),
        ("spread-checks 60", "60 is out of range (0 to 50)"),
        ("node", "expects a name"),
        ("node a/b", "expects a name"),
        ("pidfile", "expects a file name"),
        ("daemon now", "unexpected argument 'now'"),
        ("maxconn 0", "at least 1"),
        ("hard-stop-after 1x", "unexpected character 'x'"),
        ("nbproc 2", "removed from HAProxy; use 'nbthread' instead"),
        ("tune.lua.maxmem 16", "this HAProxy keyword is not implemented yet in poise"),
        ("tune.maxaccept 0", "expects -1 or a strictly positive integer"),
        ("lua-load /x.lua", "this HAProxy keyword is not implemented yet in poise"),
        ("deamon", "unknown keyword in 'global' section; did you mean 'daemon'?"),
        ("bind :80", "unknown keyword in 'global' section (it belongs in a defaults"),
    ],
)
def test_bad_global_lines(line: str, message: str) -> None:
    problems = errors(f"global\n    {line}\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith("g.cfg:2: error: ")
    assert message in problems[0]


def test_harmless_keywords_are_warnings_that_say_why() -> None:
    _, diagnostics = parse_ok("global\n    ulimit-n 65536\n    nosplice\n    quiet\n")
    assert [str(d) for d in diagnostics] == [
        "g.cfg:2: warning: 'ulimit-n': ignored: poise sets its file descriptor limit from "
        "maxconn, as HAProxy does without it",
        "g.cfg:3: warning: 'nosplice': ignored: poise does not splice through pipes",
        "g.cfg:4: warning: 'quiet': ignored: poise prints its startup messages regardless",
    ]


def test_global_noreuseport_applies_to_every_bind() -> None:
    config, _ = parse_ok(
        """
global
    noreuseport
defaults
    timeout client 1s
frontend f
    bind :80
    bind :81
    redirect location /
    mode http
"""
    )
    assert [b.reuseport for b in config.proxies[0].binds] == [False, False]


def test_tune_keywords_have_a_meaning_or_say_why_not() -> None:
    config, diagnostics = parse_ok("global\n    tune.maxaccept 500\n")
    assert config.global_.maxaccept == 500 and diagnostics == []
    config, diagnostics = parse_ok(
        "global\n    tune.bufsize 32768\n    tune.maxrewrite 8192\n"
        "    tune.ssl.default-dh-param 2048\n    tune.h2.initial-window-size 65536\n"
    )
    assert [(d.severity, d.where.line) for d in diagnostics] == [
        (Severity.WARNING, 2),
        (Severity.WARNING, 3),
        (Severity.WARNING, 4),
        (Severity.WARNING, 5),
    ]
    assert "16384" in str(diagnostics[0]) and "HTTP/2" in str(diagnostics[3])


def test_environment_variables_in_unquoted_addresses() -> None:
    """HAProxy expands `$VAR` and `${VAR}` in every address it parses (env_expand() in
    str2sa_range()): stats sockets, log targets and nameservers too."""
    text = """global
    stats socket ${RUN}/admin.sock level admin
    log $LOGHOST:514 local0
resolvers dns
    nameserver ns1 ${NS}:53
"""
    env = {"RUN": "/run/haproxy", "LOGHOST": "127.0.0.2", "NS": "127.0.0.3"}
    config, diagnostics = parse([("g.cfg", text)], env)
    assert config is not None, [str(d) for d in diagnostics]
    assert config.global_.stats_sockets[0].address == Address(
        "unix", "/run/haproxy/admin.sock", None
    )
    assert config.global_.logs[0].address == "127.0.0.2"
    assert config.resolvers[0].nameservers[0].host == "127.0.0.3"


def test_zero_warning_refuses_a_configuration_with_warnings_as_haproxy_does() -> None:
    quiet = "global\n    zero-warning\ndefaults\n    mode http\n"
    config, diagnostics = parse_ok(quiet)
    assert config is not None and diagnostics == []
    noisy = quiet + "frontend f\n    bind 127.0.0.1:8080\n    default_backend b\n"
    noisy += "backend b\n    server s 127.0.0.1:8081\n"
    assert errors(noisy) == [
        "g.cfg:2: error: 'zero-warning': Some warnings were found and 'zero-warning' is set. "
        "Aborting."
    ]
    assert errors("global\n    zero-warning now\n") == [
        "g.cfg:2: error: 'zero-warning': 'zero-warning' cannot handle unexpected argument 'now'."
    ]
