"""The link pass: names, references, mode rules and HAProxy's whole-configuration
warnings (each message here was compared with what `haproxy -c` 2.6 says)."""

from __future__ import annotations

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.haproxy_draft import ParsedConfig
from poise.config.link import link
from poise.config.model import Config, Mode, Option, Proxy

TIMEOUTS = """defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def diagnose(text: str, base: str = TIMEOUTS) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("l.cfg", base + text)], {})
    return config, [str(d) for d in diagnostics]


def errors(text: str, base: str = TIMEOUTS) -> list[str]:
    config, diagnostics = parse([("l.cfg", base + text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def line(n: int) -> str:
    """A line of the text after TIMEOUTS (4 lines)."""
    return f"l.cfg:{n + 4}"


def proxy(config: Config | None, name: str) -> Proxy:
    assert config is not None
    found = config.proxy(name)
    assert found is not None
    return found


def test_an_empty_configuration_links() -> None:
    config, diagnostics = link(ParsedConfig())
    assert (config.proxies, diagnostics) == ((), [])


def test_duplicate_proxy_names() -> None:
    found = errors(
        """
frontend f
    bind :80
    default_backend b
frontend f
    bind :81
    default_backend b
backend b
listen b
    bind :82
"""
    )
    assert found == [
        f"{line(5)}: error: frontend 'f' has the same name as frontend 'f' declared at {line(2)}",
        f"{line(9)}: error: listen 'b' has the same name as backend 'b' declared at {line(8)}",
    ]


def test_a_frontend_and_a_backend_may_share_a_name() -> None:
    config, diagnostics = diagnose(
        "frontend web\n    bind :80\n    default_backend web\nbackend web\n"
    )
    assert config is not None and diagnostics == []


def test_duplicate_server_names_and_ids() -> None:
    found = errors(
        """
backend b
    server s 10.0.0.1:80
    server s 10.0.0.2:80
    server t 10.0.0.3:80 id 5
    server u 10.0.0.4:80 id 5
"""
    )
    assert found == [
        f"{line(6)}: error: 'id': server id 5 is already used at {line(5)}",
        f"{line(4)}: error: 'server': backend 'b': another server named 's' was already "
        f"defined at {line(3)}",
    ]


def test_duplicate_proxy_ids() -> None:
    found = errors("backend a\n    id 3\nbackend b\n    id 3\n")
    assert found == [f"{line(4)}: error: 'id': proxy id 3 is already used at {line(2)}"]


def test_servers_are_numbered_around_custom_ids() -> None:
    config, _ = diagnose(
        "backend b\n    server a 10.0.0.1\n    server b 10.0.0.2 id 1\n    server c 10.0.0.3\n"
    )
    # HAProxy 2.6's numbers (`show servers state`): its counter moves on after every
    # server, custom id or not.
    assert [(s.name, s.id) for s in proxy(config, "b").servers] == [("a", 2), ("b", 1), ("c", 4)]
    config, _ = diagnose(
        "backend b\n    server a 10.0.0.1 id 7\n    server b 10.0.0.2\n"
        "    server c 10.0.0.3 id 2\n    server d 10.0.0.4\n    server e 10.0.0.5\n"
    )
    assert [s.id for s in proxy(config, "b").servers] == [7, 3, 2, 5, 6]


def test_unknown_backends_with_a_suggestion() -> None:
    found = errors(
        """
frontend f
    bind :80
    use_backend apis
    default_backend nothing_like_it
backend api
frontend g
    bind :81
    default_backend f
"""
    )
    assert found == [
        f"{line(4)}: error: 'use_backend': frontend 'f': no backend named 'apis'; "
        "did you mean 'api'?",
        f"{line(5)}: error: 'default_backend': frontend 'f': no backend named 'nothing_like_it'",
        f"{line(9)}: error: 'default_backend': frontend 'g': 'f' is a frontend, which has no "
        "servers",
    ]


def test_a_default_backend_from_defaults_is_reported_at_its_line() -> None:
    found = errors("frontend f\n    bind :80\n", base=TIMEOUTS + "    default_backend gone\n")
    assert found == ["l.cfg:5: error: 'default_backend': frontend 'f': no backend named 'gone'"]


def test_an_http_frontend_cannot_use_a_tcp_backend() -> None:
    found = errors(
        "frontend f\n    mode http\n    bind :80\n    default_backend b\nbackend b\n    mode tcp\n"
    )
    assert found[0] == (
        f"{line(4)}: error: 'default_backend': http frontend 'f' cannot use tcp backend 'b' "
        f"(at {line(5)}): their 'mode' must agree"
    )


def test_http_proxying_links() -> None:
    config, diagnostics = diagnose(
        "frontend f\n    mode http\n    bind :80\n    default_backend b\nbackend b\n    mode http\n"
        "    server a 10.0.0.1:80\n"
        "listen l\n    mode http\n    bind :81\n    server a 10.0.0.1:80\n"
    )
    assert diagnostics == []
    assert proxy(config, "f").default_backend == "b"
    assert proxy(config, "l").mode is Mode.HTTP


def test_an_http_frontend_that_only_redirects_is_served() -> None:
    config, diagnostics = diagnose(
        "frontend f\n    mode http\n    bind :80\n    redirect scheme https code 301\n"
        "    default_backend b\nbackend b\n    mode http\n"
    )
    assert diagnostics == []
    assert proxy(config, "f").redirects[0].code == 301


def test_a_tcp_frontend_may_hand_its_connections_to_an_http_backend() -> None:
    # HAProxy's implicit upgrade (net/upgrade.py; tests/io/test_upgrade.py).
    config, found = diagnose(
        "frontend f\n    bind :80\n    default_backend b\nbackend b\n    mode http\n"
    )
    assert found == []
    assert proxy(config, "b").mode is Mode.HTTP


def test_a_frontend_without_backend_is_taken_with_a_warning() -> None:
    # HAProxy 2.6 takes it silently; every request gets its 503 (tests/io/test_monitor_haproxy).
    config, found = diagnose("frontend f\n    bind :80\nfrontend h\n    bind :81\n    mode http\n")
    assert config is not None
    assert found == [
        f"{line(1)}: warning: frontend 'f' has no backend (no 'default_backend' or "
        "'use_backend'): every connection is closed",
        f"{line(3)}: warning: frontend 'h' has no backend (no 'default_backend' or "
        "'use_backend'): every request gets a 503",
    ]
    # A monitor URI is a reason to have none.
    config, found = diagnose("frontend m\n    bind :80\n    mode http\n    monitor-uri /up\n")
    assert config is not None and found == []
    config, _ = diagnose("listen l\n    bind :80\n")  # a listen section is its own backend
    assert config is not None


def test_missing_timeouts_are_warned_about_as_haproxy_does() -> None:
    _, diagnostics = diagnose(
        """
frontend f
    bind :80
    default_backend b
backend b
    server a 10.0.0.1:80
backend empty
backend tunnelled
    timeout connect 1s
    timeout tunnel 1h
    server a 10.0.0.1:80
""",
        base="",
    )
    warning = (
        "warning: missing timeouts for {}: without 'timeout client', 'timeout connect' and "
        "'timeout server' (non-zero) a stalled peer can hold a connection forever"
    )
    # A backend without servers is not warned about; in TCP mode `timeout tunnel` stands
    # in for `timeout server`.
    assert diagnostics == [
        "l.cfg:2: " + warning.format("frontend 'f'"),
        "l.cfg:5: " + warning.format("backend 'b'"),
    ]


def test_a_frontend_without_bind_is_warned_about() -> None:
    _, diagnostics = diagnose("frontend f\n    default_backend b\nbackend b\n")
    assert diagnostics == [
        f"{line(1)}: warning: frontend 'f' has no 'bind' line: declare it as a backend if that "
        "was intended"
    ]


def test_a_disabled_proxy_is_not_warned_about() -> None:
    _, diagnostics = diagnose("frontend f\n    disabled\n", base="")
    assert diagnostics == []


def test_http_options_in_tcp_proxies_as_haproxy_does() -> None:
    config, diagnostics = diagnose(
        """
frontend f
    mode tcp
    bind :80
    redirect location /
    default_backend b
backend b
    mode tcp
""",
        base=TIMEOUTS
        + "    mode http\n    option httplog\n    option forwardfor\n    option http-server-close\n"
        "    timeout http-request 10s\n",
    )
    assert diagnostics == [
        "l.cfg:6: warning: 'option httplog': not usable with frontend 'f' (needs 'mode http'): "
        "falling back to 'option tcplog'",
        "l.cfg:7: warning: 'option forwardfor': ignored for frontend 'f' as it requires HTTP mode",
        "l.cfg:14: warning: 'redirect': ignored for frontend 'f': redirects need 'mode http'",
        "l.cfg:7: warning: 'option forwardfor': ignored for backend 'b' as it requires HTTP mode",
    ]
    f, b = proxy(config, "f"), proxy(config, "b")
    assert (f.mode, set(f.options), f.redirects) == (Mode.TCP, {Option.TCPLOG}, ())
    assert b.options == set()  # httplog from defaults means nothing to a backend
    assert f.timeouts.http_request == 10_000  # kept, and meaningless, as in HAProxy
