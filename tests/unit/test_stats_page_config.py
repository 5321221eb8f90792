"""The `stats` keywords of proxy sections and `http-request use-service`, parsed and linked
as HAProxy 2.6 does (texts checked with `haproxy -c` 2.6.12)."""

from __future__ import annotations

import pytest

from poise.config import model
from poise.config.haproxy import parse

DEFAULTS = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def load(text: str) -> tuple[model.Config | None, list[str]]:
    config, diagnostics = parse([("t.cfg", DEFAULTS + text)], {})
    return config, [str(d) for d in diagnostics]


def page_of(text: str, proxy: str = "s") -> model.StatsPage | None:
    config, problems = load(text)
    assert config is not None, problems
    assert not [p for p in problems if ": error:" in p], problems
    found = config.proxy(proxy)
    assert found is not None
    return found.stats


def test_stats_enable_gives_haproxy_s_defaults() -> None:
    page = page_of("listen s\n    bind :8000\n    stats enable\n")
    assert page is not None
    assert page.uri == "/haproxy?stats"
    assert page.realm == "HAProxy Statistics"
    assert page.users == () and page.admin == () and page.refresh == 0
    assert not page.hide_version and not page.show_legends


def test_every_stats_keyword_enables_the_page() -> None:
    for line in (
        "stats uri /x",
        "stats realm R",
        "stats auth a:b",
        "stats refresh 5s",
        "stats hide-version",
        "stats show-legends",
        "stats scope .",
        "stats admin if TRUE",
        "stats show-node",
        "stats show-desc",
    ):
        assert page_of(f"listen s\n    bind :8000\n    {line}\n") is not None, line
    assert page_of("listen s\n    bind :8000\n    server a 127.0.0.1:1\n") is None


def test_the_settings_of_a_full_page() -> None:
    page = page_of(
        "listen s\n    bind :8000\n    acl local src 127.0.0.1\n"
        "    stats uri /admin?stats\n    stats realm Poise\\ Stats\n"
        "    stats auth admin:AdMiN123\n    stats auth ops:x:y\n    stats refresh 1500ms\n"
        "    stats admin if local\n    stats scope .\n    stats scope app\n"
        "    stats hide-version\n    stats show-legends\n"
        "    stats show-node lb-eu-1\n    stats show-desc Master node for Europe\n"
    )
    assert page is not None
    assert page.uri == "/admin?stats"
    assert page.realm == "Poise Stats"
    assert page.users == (("admin", "AdMiN123"), ("ops", "x:y"))
    assert page.refresh == 2  # seconds, rounded up
    assert len(page.admin) == 1 and page.admin[0].suites[0][0].acl.name == "local"
    assert page.scope == ("s", "app")  # "." is the section itself
    assert page.hide_version and page.show_legends
    assert page.show_node == "lb-eu-1"
    assert page.show_desc == "Master node for Europe"


def test_a_proxy_without_stats_lines_keeps_its_defaults_page() -> None:
    config, problems = load(
        "defaults d\n    mode http\n    timeout client 5s\n    stats uri /d\n    stats refresh 3s\n"
        "frontend a from d\n    bind :8000\n"
        "frontend b from d\n    bind :8001\n    stats realm Own\n"
    )
    assert config is not None, problems
    a, b = config.proxy("a"), config.proxy("b")
    assert a is not None and b is not None
    assert a.stats is not None and a.stats.uri == "/d" and a.stats.refresh == 3
    # HAProxy detaches a proxy with its own `stats` line from its defaults' settings.
    assert b.stats is not None and b.stats.uri == "/haproxy?stats" and b.stats.refresh == 0
    assert b.stats.realm == "Own"


def test_a_frontend_with_only_a_stats_page_is_valid() -> None:
    page = page_of("frontend s\n    bind :8000\n    stats enable\n")
    assert page is not None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("stats admin", "'stats admin' requires either 'if' or 'unless' followed by a condition."),
        (
            "stats admin TRUE",
            "'stats admin' requires either 'if' or 'unless' followed by a condition.",
        ),
        ("stats auth", "'auth' needs a user:password account."),
        ("stats realm", "'realm' needs an realm name."),
        ("stats uri", "'uri' needs an URI prefix."),
        ("stats refresh 5x", "unexpected character 'x'"),
        ("stats enable now", "unexpected argument 'now'"),
        ("stats http-request deny", "not implemented yet in poise"),
        ("stats bogus", "unknown 'stats bogus' in 'listen' section"),
        ("stats admin if NOPE", "no such ACL 'NOPE'"),
    ],
)
def test_bad_stats_lines_are_errors_at_their_line(line: str, message: str) -> None:
    _, problems = load(f"listen s\n    bind :8000\n    {line}\n")
    errors = [p for p in problems if ": error:" in p]
    assert errors and message in errors[0], problems
    assert errors[0].startswith("t.cfg:9: error: "), errors


def test_stats_admin_is_refused_in_a_defaults_section() -> None:
    _, problems = load("defaults d\n    stats admin if TRUE\n")
    assert any("not allowed in a 'defaults' section" in p for p in problems), problems


def test_stats_auth_without_a_colon_is_an_empty_password_with_a_warning() -> None:
    config, problems = load("listen s\n    bind :8000\n    stats auth admin\n")
    assert config is not None
    page = config.proxies[0].stats
    assert page is not None and page.users == (("admin", ""),)
    assert any("warning: 'stats auth': no ':' in 'admin'" in p for p in problems), problems


def test_stats_in_tcp_mode_is_ignored_with_haproxy_s_warning() -> None:
    config, problems = load("listen s\n    mode tcp\n    bind :8000\n    stats enable\n")
    assert config is not None and config.proxies[0].stats is None
    assert any(
        "warning: 'stats': ignored for listen 's' as it requires HTTP mode" in p for p in problems
    ), problems


def test_use_service_prometheus_exporter() -> None:
    config, problems = load(
        "frontend f\n    bind :8000\n"
        "    http-request use-service prometheus-exporter if { path /metrics }\n"
    )
    assert config is not None, problems
    (rule,) = config.proxies[0].http_request_rules
    assert rule.action == "use-service" and rule.name == "prometheus-exporter"
    assert rule.condition is not None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http-request use-service foo", "'foo' unknown service name."),
        ("http-request use-service", "'use-service' expects exactly 1 arguments"),
        (
            "http-request use-service prometheus-exporter foo",
            "expects either 'if' or 'unless' followed by a condition but found 'foo'",
        ),
        ("http-request use-service lua.hello", "Lua services are not implemented in poise"),
    ],
)
def test_bad_use_service_lines(line: str, message: str) -> None:
    _, problems = load(f"frontend f\n    bind :8000\n    {line}\n")
    assert any(message in p for p in problems), problems


def test_use_service_in_a_backend_is_not_implemented_yet() -> None:
    _, problems = load(
        "frontend f\n    bind :8000\n    default_backend b\n"
        "backend b\n    http-request use-service prometheus-exporter\n"
        "    server a 127.0.0.1:1\n"
    )
    assert any("'use-service' in a backend is not implemented yet" in p for p in problems)
