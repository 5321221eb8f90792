"""`defaults` sections: a proxy starts from the last defaults section before it, or from
the one `from` names; named defaults may chain (HAProxy's configuration.txt 4)."""

from __future__ import annotations

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Config, Mode, Option, Proxy, Where


def parse_ok(text: str) -> Config:
    config, diagnostics = parse([("d.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config


def errors(text: str) -> list[str]:
    config, diagnostics = parse([("d.cfg", text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def proxy(config: Config, name: str) -> Proxy:
    found = config.proxy(name)
    assert found is not None
    return found


def test_the_last_defaults_before_a_proxy_applies() -> None:
    config = parse_ok(
        """
defaults
    mode tcp
    timeout connect 1s
    retries 5
backend one
defaults
    timeout connect 2s
backend two
    timeout connect 3s
"""
    )
    one, two = proxy(config, "one"), proxy(config, "two")
    assert (one.mode, one.timeouts.connect, one.retries) == (Mode.TCP, 1000, 5)
    # A defaults section without `from` starts from scratch, not from the previous one.
    assert (two.mode, two.timeouts.connect, two.retries) == (Mode.TCP, 3000, 3)


def test_a_proxy_before_any_defaults_has_the_builtin_settings() -> None:
    config = parse_ok("backend be\ndefaults\n    retries 9\n")
    assert proxy(config, "be").retries == 3


def test_from_names_a_defaults_section_and_defaults_chain() -> None:
    config = parse_ok(
        """
defaults base
    mode http
    timeout connect 5s
    option dontlognull
    default-server inter 3s
defaults tcp from base
    mode tcp
    timeout server 1m
defaults last
backend web from base
    server a 10.0.0.1:80
backend db from tcp
    server b 10.0.0.2:5432
    timeout connect 2s
backend plain
"""
    )
    web, db, plain = proxy(config, "web"), proxy(config, "db"), proxy(config, "plain")
    assert (web.mode, web.timeouts.connect, web.timeouts.server) == (Mode.HTTP, 5000, None)
    assert (db.mode, db.timeouts.connect, db.timeouts.server) == (Mode.TCP, 2000, 60_000)
    assert web.servers[0].inter == db.servers[0].inter == 3000
    assert (plain.mode, plain.timeouts.connect) == (Mode.TCP, None)


def test_a_frontend_inherits_options_and_default_backend() -> None:
    config = parse_ok(
        """
defaults
    mode tcp
    option dontlognull
    option tcplog
    default_backend be
    maxconn 3000
    timeout client 1s
    timeout connect 1s
    timeout server 1s
frontend fe
    bind :80
frontend fe2
    bind :81
    default_backend other
    maxconn 10
backend be
backend other
"""
    )
    fe, fe2 = proxy(config, "fe"), proxy(config, "fe2")
    assert fe.options == {Option.DONTLOGNULL, Option.TCPLOG}
    assert (fe.default_backend, fe.maxconn) == ("be", 3000)
    assert (fe2.default_backend, fe2.maxconn) == ("other", 10)
    # A backend takes neither frontend-only settings nor frontend-only options.
    be = proxy(config, "be")
    assert (be.default_backend, be.maxconn, set(be.options)) == (None, None, {Option.TCPLOG})


def test_default_server_lines_of_defaults_and_proxy_combine() -> None:
    config = parse_ok(
        """
defaults
    default-server check inter 4s weight 5
backend be
    default-server inter 1s
    server a 10.0.0.1:80
    server b 10.0.0.2:80 weight 7
"""
    )
    a, b = proxy(config, "be").servers
    assert (a.check, a.inter, a.weight) == (True, 1000, 5)
    assert (b.check, b.inter, b.weight) == (True, 1000, 7)


def test_from_errors() -> None:
    text = """
frontend early from later
    bind :80
    default_backend b1
defaults later
defaults dup
defaults dup
backend b1 from dup
backend b2 from nowhere
backend b3 from
"""
    assert errors(text) == [
        "d.cfg:2: error: 'frontend': defaults section 'later' not found for frontend 'early'",
        "d.cfg:8: error: 'backend': ambiguous defaults section name 'dup' (at d.cfg:6 and d.cfg:7)",
        "d.cfg:9: error: 'backend': defaults section 'nowhere' not found for backend 'b2'",
        "d.cfg:10: error: 'backend': 'from' expects the name of a defaults section",
    ]


def test_a_defaults_section_used_both_explicitly_and_implicitly_is_refused() -> None:
    found = errors(
        """
defaults base
    timeout connect 1s
backend a from base
backend b
"""
    )
    assert found == [
        "d.cfg:5: error: 'backend': defaults section 'base' (at d.cfg:2) is used both "
        "explicitly (with 'from') and implicitly (as the last defaults section): add a last "
        "defaults section for implicit use, or always name it with 'from'"
    ]
    found = errors("defaults base\nbackend a\nbackend b from base\n")
    assert found[0].startswith("d.cfg:3: error: 'from': defaults section 'base'")


def test_section_names() -> None:
    assert errors("frontend\n") == [
        "d.cfg:1: error: 'frontend': a name is required in frontend name '' "
        "(letters, digits, '-', '_', '.', ':')"
    ]
    assert "character '/' is not permitted in backend name 'a/b'" in errors("backend a/b\n")[0]
    assert "unexpected argument 'b'" in errors("backend a b\n")[0]
    assert "unexpected argument 'x'" in errors("global x\n")[0]
    config = parse_ok("defaults\nbackend web-1.example:80_x\n")
    assert config.proxies[0].name == "web-1.example:80_x"


def test_a_bad_section_line_skips_its_section_quietly() -> None:
    found = errors("backend a/b\n    bogus keyword\nbackend ok\n")
    assert len(found) == 1


def test_a_bad_from_still_reads_its_section() -> None:
    found = errors("backend b from nowhere\n    bogus keyword\n")
    assert len(found) == 2 and "'bogus'" in found[1]


def test_ids_and_where() -> None:
    config = parse_ok("defaults\nbackend a\nbackend b\n    id 1\nbackend c\n")
    assert [(p.name, p.id, p.where) for p in config.proxies] == [
        ("a", 2, Where("d.cfg", 2)),
        ("b", 1, Where("d.cfg", 3)),
        ("c", 4, Where("d.cfg", 5)),  # as HAProxy 2.6 numbers it (show stat: iid 4)
    ]
