"""`poise doctor -f`: the static checks of a configuration (doctor/static.py), each with a
configuration that passes and one that fails for the reason the seed set-up failed (the
management server in the pool, cookies where TLS is not terminated, WebSockets cut by
`timeout client`, no health checks, no persistence, `balance source` behind a NAT). Real
configuration text, loaded by the real loader from a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.config.diagnostics import Diagnostic
from poise.config.model import Config
from poise.doctor.report import Check, Status
from poise.doctor.static import (
    bind_addresses,
    config_checks,
    cookie_servers,
    duration,
    idle_close_cause,
    source_nat_check,
)
from poise.system.load import load_config, resolve_servers

DEFAULTS = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""
# The balancer's host: its own address and a VIP (the seed's LoadBalancedAG record).
HOST = frozenset({"10.0.0.5", "10.0.0.100", "127.0.0.1", "::1"})


def load(tmp_path: Path, text: str) -> tuple[Config, list[Diagnostic]]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(DEFAULTS + text)
    config, diagnostics = load_config([str(path)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config, diagnostics


def checks(tmp_path: Path, text: str, name: str) -> list[Check]:
    config, diagnostics = load(tmp_path, text)
    addrs, problems = resolve_servers(config)
    assert problems == []
    found = config_checks(config, addrs, HOST, diagnostics)
    return [check for check in found if check.name == name]


def statuses(found: list[Check]) -> list[Status]:
    return [check.status for check in found]


# --- config.self-server --------------------------------------------------------------------

AGENT_GATEWAYS = """
frontend agents
    bind 10.0.0.100:443
    default_backend gateways
backend gateways
    cookie SERVERID insert
    timeout tunnel 1h
{servers}
"""


def gateways(*servers: str) -> str:
    return AGENT_GATEWAYS.format(servers="\n".join(f"    {s}" for s in servers))


def test_pool_of_other_hosts_passes(tmp_path: Path) -> None:
    text = gateways("server ag1 10.0.0.11:443 check cookie a", "server ag2 10.0.0.12:443 check")
    found = checks(tmp_path, text, "config.self-server")
    assert statuses(found) == [Status.PASS]


def test_server_on_the_bind_address_loops(tmp_path: Path) -> None:
    text = gateways("server ag1 10.0.0.11:443 check", "server vip 10.0.0.100:443 check")
    [check] = checks(tmp_path, text, "config.self-server")
    assert check.status is Status.FAIL
    assert check.saw == (
        "server gateways/vip (10.0.0.100:443) is this balancer's own address: "
        "requests would loop back into poise"
    )


@pytest.mark.parametrize("server", ["127.0.0.1:443", "10.0.0.5:443", "10.0.0.5"])
def test_wildcard_bind_loops_for_any_local_address(tmp_path: Path, server: str) -> None:
    """`bind :443` listens on every IPv4 address of the host, loopback included; a server
    written without a port is reached on the port the client connected to."""
    text = f"""
frontend agents
    bind :443
    default_backend gateways
backend gateways
    server ag1 10.0.0.11:443 check
    server self {server} check
"""
    found = checks(tmp_path, text, "config.self-server")
    assert statuses(found) == [Status.FAIL]
    assert "gateways/self" in found[0].saw


def test_dual_stack_wildcard_bind_takes_ipv4_too(tmp_path: Path) -> None:
    text = """
frontend agents
    bind :::443
    default_backend gateways
backend gateways
    server self 10.0.0.5:443 check
"""
    assert statuses(checks(tmp_path, text, "config.self-server")) == [Status.FAIL]


def test_management_server_left_in_the_pool_warns(tmp_path: Path) -> None:
    """The seed: the Agent Gateway installed on the management server, which is also the
    balancer's host, used as one of the pool's gateways."""
    text = gateways("server ag1 10.0.0.11:443 check", "server rms 10.0.0.5:8443 check")
    [check] = checks(tmp_path, text, "config.self-server")
    assert check.status is Status.WARN
    assert "gateways/rms (10.0.0.5:8443) is on the balancer's own host" in check.saw
    assert "ag1" in check.saw
    assert "keep the management server out of the pool" in check.advice


def test_local_server_on_a_bound_port_warns(tmp_path: Path) -> None:
    """The balancer binds 443 on its VIP only: the host's own 443 is another service."""
    text = gateways("server rms 10.0.0.5:443 check")
    [check] = checks(tmp_path, text, "config.self-server")
    assert check.status is Status.WARN
    assert "on port 443 that a frontend binds on other addresses" in check.saw


def test_single_local_application_passes(tmp_path: Path) -> None:
    """A balancer in front of an application on its own host is a deliberate set-up."""
    text = gateways("server app 127.0.0.1:8080 check")
    assert statuses(checks(tmp_path, text, "config.self-server")) == [Status.PASS]


# --- config.tcp-cookie ---------------------------------------------------------------------

PASSTHROUGH = """
frontend agents
    mode tcp
    bind :443
    default_backend gateways
backend gateways
    mode tcp
    {persistence}
    server ag1 10.0.0.11:443 check {cookie1}
    server ag2 10.0.0.12:443 check {cookie2}
"""


def test_cookie_in_mode_tcp_fails(tmp_path: Path) -> None:
    text = PASSTHROUGH.format(
        persistence="cookie SERVERID insert", cookie1="cookie a", cookie2="cookie b"
    )
    [check] = checks(tmp_path, text, "config.tcp-cookie")
    assert check.status is Status.FAIL
    assert "backend gateways is mode tcp and has a cookie line" in check.saw
    assert "ag1, ag2" in check.saw
    assert "mode http" in check.advice
    assert "bind ... ssl crt" in check.advice
    assert "balance source" in check.advice


def test_cookie_in_defaults_reaches_a_tcp_backend(tmp_path: Path) -> None:
    text = """
defaults tcp
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    cookie SERVERID insert
frontend agents from tcp
    bind :443
    default_backend gateways
backend gateways from tcp
    server ag1 10.0.0.11:443 check
"""
    assert statuses(checks(tmp_path, text, "config.tcp-cookie")) == [Status.FAIL]


def test_tcp_without_cookie_passes(tmp_path: Path) -> None:
    text = PASSTHROUGH.format(persistence="balance source", cookie1="", cookie2="")
    [check] = checks(tmp_path, text, "config.tcp-cookie")
    assert check.status is Status.PASS
    assert check.saw == "no cookie in mode tcp (gateways)"


def test_http_cookie_is_not_a_tcp_cookie(tmp_path: Path) -> None:
    text = gateways("server ag1 10.0.0.11:443 check cookie a")
    found = checks(tmp_path, text, "config.tcp-cookie")
    assert [(c.status, c.saw) for c in found] == [(Status.PASS, "no mode tcp backend")]


def test_tcp_cookie_needs_the_load_diagnostics(tmp_path: Path) -> None:
    """The link pass drops a cookie in mode tcp, so without its warnings nothing is said."""
    text = PASSTHROUGH.format(persistence="cookie SERVERID insert", cookie1="", cookie2="")
    config, _ = load(tmp_path, text)
    found = config_checks(config, resolve_servers(config)[0], HOST)
    assert all(check.name != "config.tcp-cookie" for check in found)


# --- config.tunnel-timeout -----------------------------------------------------------------

WEBSOCKETS = """
frontend agents
    bind :8443
    default_backend gateways
backend gateways
    {timeouts}
    server ag1 10.0.0.11:443 check
"""


def test_websocket_without_timeout_tunnel_warns(tmp_path: Path) -> None:
    [check] = checks(tmp_path, WEBSOCKETS.format(timeouts=""), "config.tunnel-timeout")
    assert check.status is Status.WARN
    assert check.saw == (
        "frontend agents -> backend gateways: no timeout tunnel, so a WebSocket idle "
        "longer than timeout client (30s) is closed"
    )
    assert "timeout tunnel 1h" in check.advice


def test_the_shorter_of_client_and_server_closes_first(tmp_path: Path) -> None:
    text = WEBSOCKETS.format(timeouts="timeout server 10s")
    [check] = checks(tmp_path, text, "config.tunnel-timeout")
    assert check.status is Status.WARN
    assert "timeout server (10s)" in check.saw


@pytest.mark.parametrize(("tunnel", "shown"), [("1h", "1h"), ("86400s", "1d"), ("90s", "90s")])
def test_timeout_tunnel_passes_and_says_its_value(tmp_path: Path, tunnel: str, shown: str) -> None:
    text = WEBSOCKETS.format(timeouts=f"timeout tunnel {tunnel}")
    [check] = checks(tmp_path, text, "config.tunnel-timeout")
    assert check.status is Status.PASS
    assert check.saw == f"frontend agents -> backend gateways: timeout tunnel {shown}"


def test_long_client_and_server_timeouts_pass(tmp_path: Path) -> None:
    text = WEBSOCKETS.format(timeouts="timeout server 10m")
    text = text.replace("bind :8443", "bind :8443\n    timeout client 5m")
    [check] = checks(tmp_path, text, "config.tunnel-timeout")
    assert check.status is Status.PASS
    assert "timeout client (5m)" in check.saw


def test_a_listen_section_is_its_own_backend(tmp_path: Path) -> None:
    text = "listen agents\n    bind :8443\n    server ag1 10.0.0.11:443 check\n"
    [check] = checks(tmp_path, text, "config.tunnel-timeout")
    assert check.status is Status.WARN
    assert check.saw.startswith("frontend agents: no timeout tunnel")


def test_tls_passed_through_in_mode_tcp_is_cut_by_timeout_client(tmp_path: Path) -> None:
    """The seed's agents keep a WebSocket open inside TLS: in mode tcp the whole connection
    is a tunnel from the start, and `timeout client` closes it when quiet."""
    text = PASSTHROUGH.format(persistence="balance source", cookie1="", cookie2="")
    [check] = checks(tmp_path, text, "config.tunnel-timeout")
    assert check.status is Status.WARN
    assert check.saw == (
        "frontend agents -> backend gateways: no timeout tunnel, so a connection (a "
        "WebSocket passed through) idle longer than timeout client (30s) is closed"
    )


def test_tcp_with_timeout_tunnel_passes(tmp_path: Path) -> None:
    persistence = "balance source\n    timeout tunnel 1d"
    text = PASSTHROUGH.format(persistence=persistence, cookie1="", cookie2="")
    found = checks(tmp_path, text, "config.tunnel-timeout")
    assert [(c.status, c.saw) for c in found] == [
        (Status.PASS, "frontend agents -> backend gateways: timeout tunnel 1d")
    ]


# --- config.health-checks ------------------------------------------------------------------


def test_pool_without_checks_warns(tmp_path: Path) -> None:
    text = gateways("server ag1 10.0.0.11:443 check", "server ag2 10.0.0.12:443")
    [check] = checks(tmp_path, text, "config.health-checks")
    assert check.status is Status.WARN
    assert check.saw.startswith("backend gateways: ag2 without `check` (1 of 2 servers)")
    assert "check" in check.advice


@pytest.mark.parametrize(
    "servers",
    [
        ("server ag1 10.0.0.11:443 check", "server ag2 10.0.0.12:443 check"),
        ("server ag1 10.0.0.11:443",),
        ("default-server check", "server ag1 10.0.0.11:443", "server ag2 10.0.0.12:443"),
    ],
)
def test_checked_pools_pass(tmp_path: Path, servers: tuple[str, ...]) -> None:
    assert statuses(checks(tmp_path, gateways(*servers), "config.health-checks")) == [Status.PASS]


# --- config.persistence --------------------------------------------------------------------


def pool(persistence: str, *servers: str) -> str:
    return f"""
frontend agents
    bind :8443
    default_backend gateways
backend gateways
    timeout tunnel 1h
    {persistence}
""" + "".join(f"    {s}\n" for s in servers)


TWO = ("server ag1 10.0.0.11:443 check", "server ag2 10.0.0.12:443 check")


def test_pool_without_persistence_warns(tmp_path: Path) -> None:
    [check] = checks(tmp_path, pool("balance roundrobin", *TWO), "config.persistence")
    assert check.status is Status.WARN
    assert "balance roundrobin and no cookie" in check.saw
    assert "cookie SERVERID insert" in check.advice
    assert "maxlife 1d" in check.advice


def test_cookie_without_server_values_warns(tmp_path: Path) -> None:
    text = pool("cookie SERVERID insert", TWO[0] + " cookie ag1", TWO[1])
    [check] = checks(tmp_path, text, "config.persistence")
    assert check.status is Status.WARN
    assert "cookie SERVERID but ag2 have no `cookie VALUE`" in check.saw


@pytest.mark.parametrize(
    "persistence",
    ["cookie SERVERID insert indirect nocache maxlife 1d", "balance source", "balance hdr(X-Id)"],
)
def test_sticky_pools_pass(tmp_path: Path, persistence: str) -> None:
    servers = [f"{s} cookie {s.split()[1]}" for s in TWO]
    text = pool(persistence, *servers)
    assert statuses(checks(tmp_path, text, "config.persistence")) == [Status.PASS]


def test_single_server_and_tcp_pools_are_not_judged(tmp_path: Path) -> None:
    text = (
        pool("balance roundrobin", TWO[0])
        + """
frontend raw
    mode tcp
    bind :9443
    default_backend raw_pool
backend raw_pool
    mode tcp
    server r1 10.0.0.31:443 check
    server r2 10.0.0.32:443 check
"""
    )
    assert statuses(checks(tmp_path, text, "config.persistence")) == [Status.PASS]


# --- the seed's whole set-up -------------------------------------------------------------------


def test_the_seed_set_up_as_first_written(tmp_path: Path) -> None:
    """TLS passed through with a cookie, no tunnel timeout, the management server in the
    pool, one gateway unchecked: every classic failure at once."""
    text = """
frontend agents
    bind 10.0.0.100:443
    default_backend gateways
backend gateways
    mode tcp
    cookie SERVERID insert
    server ag1 10.0.0.11:443 check cookie ag1
    server rms 10.0.0.5:443 cookie rms
frontend enrol
    bind 10.0.0.100:8444
    default_backend enrolment
backend enrolment
    server rms1 10.0.0.21:8444 check
    server rms2 10.0.0.22:8444 check
"""
    text = text.replace("frontend agents\n", "frontend agents\n    mode tcp\n")
    config, diagnostics = load(tmp_path, text)
    found = config_checks(config, resolve_servers(config)[0], HOST, diagnostics)
    summary = {(check.name, check.status) for check in found}
    assert summary == {
        ("config.self-server", Status.WARN),
        ("config.tcp-cookie", Status.FAIL),
        ("config.tunnel-timeout", Status.WARN),
        ("config.health-checks", Status.WARN),
        ("config.persistence", Status.WARN),
    }


# --- the facts the live checks compare against -------------------------------------------


def test_bind_addresses(tmp_path: Path) -> None:
    text = """
frontend a
    bind :443
    bind 10.0.0.100:443
    bind :::443
    bind 10.0.0.100:80
    default_backend be
backend be
    server s1 10.0.0.11:443
"""
    config, _ = load(tmp_path, text)
    assert bind_addresses(config, 443) == ["0.0.0.0", "10.0.0.100", "::"]
    assert bind_addresses(config, 80) == ["10.0.0.100"]
    assert bind_addresses(config, 8080) == []


def test_cookie_servers(tmp_path: Path) -> None:
    text = """
frontend a
    bind :80
    default_backend be
    use_backend other if { path_beg /other }
backend be
    cookie SERVERID insert
    server s1 10.0.0.11:80 cookie one
    server s2 10.0.0.12:80 cookie two
    server s3 10.0.0.13:80
backend other
    cookie JSESSION prefix
    server t1 10.0.0.14:80 cookie t1
backend plain
    server u1 10.0.0.15:80
"""
    config, _ = load(tmp_path, text)
    assert cookie_servers(config) == {
        "SERVERID": {"one": "be/s1", "two": "be/s2"},
        "JSESSION": {"t1": "other/t1"},
    }


IDLE = """
frontend ws
    bind :8443
    timeout http-keep-alive 10s
    default_backend be
backend be
    {tunnel}
    server s1 10.0.0.11:80
"""


@pytest.mark.parametrize(
    ("tunnel", "seconds", "cause"),
    [
        (
            "",
            30.2,
            "timeout client 30s (frontend ws) and timeout server 30s (backend be) closed it: "
            "with no timeout tunnel it applies to a WebSocket; set timeout tunnel 1h",
        ),
        (
            "timeout server 2m",
            30.2,
            "timeout client 30s (frontend ws) closed it: with no timeout tunnel it applies "
            "to a WebSocket; set timeout tunnel 1h",
        ),
        ("timeout tunnel 1h", 3600.4, "timeout tunnel 1h (backend be) closed it"),
        ("timeout tunnel 1h", 10.1, "timeout http-keep-alive 10s (frontend ws) closed it"),
    ],
)
def test_idle_close_cause(tmp_path: Path, tunnel: str, seconds: float, cause: str) -> None:
    config, _ = load(tmp_path, IDLE.format(tunnel=tunnel))
    assert idle_close_cause(config, 8443, seconds) == cause


def test_idle_close_with_no_matching_timeout(tmp_path: Path) -> None:
    config, _ = load(tmp_path, IDLE.format(tunnel="timeout tunnel 1h"))
    said = idle_close_cause(config, 8443, 300)
    assert said.startswith("no configured timeout matches 300s (timeout tunnel 1h, ")
    assert "firewall/NAT" in said
    assert idle_close_cause(config, 9999, 30) == "no frontend binds port 9999"


NAT = """
frontend agents
    bind :443
    default_backend gateways
backend gateways
    balance {balance}
    timeout tunnel 1h
    server ag1 10.0.0.11:443 check
    server ag2 10.0.0.12:443 check
"""


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        ("100.64.12.7", "203.0.113.10", "carrier-grade NAT"),
        ("10.20.0.7", "203.0.113.10", "a private address reaching the public 203.0.113.10"),
        ("fd00::7", "2001:db8::10", "a private address"),
    ],
)
def test_source_balance_behind_nat_warns(
    tmp_path: Path, source: str, target: str, why: str
) -> None:
    config, _ = load(tmp_path, NAT.format(balance="source"))
    check = source_nat_check(config, 443, source, target)
    assert check is not None
    assert check.name == "config.source-nat"
    assert check.status is Status.WARN
    assert why in check.saw
    assert "they all land on one server" in check.saw
    assert "cookie" in check.advice


@pytest.mark.parametrize(
    ("source", "target"),
    [("10.20.0.7", "10.0.0.100"), ("198.51.100.7", "203.0.113.10"), ("127.0.0.1", "127.0.0.1")],
)
def test_source_balance_without_nat_passes(tmp_path: Path, source: str, target: str) -> None:
    config, _ = load(tmp_path, NAT.format(balance="source"))
    check = source_nat_check(config, 443, source, target)
    assert check is not None
    assert check.status is Status.PASS


def test_source_nat_is_irrelevant_without_balance_source(tmp_path: Path) -> None:
    config, _ = load(tmp_path, NAT.format(balance="roundrobin"))
    assert source_nat_check(config, 443, "100.64.12.7", "203.0.113.10") is None
    assert source_nat_check(config, 80, "100.64.12.7", "203.0.113.10") is None


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(30_000, "30s"), (3_600_000, "1h"), (86_400_000, "1d"), (90_000, "90s"), (1500, "1500ms")],
)
def test_duration_in_haproxy_units(ms: int, shown: str) -> None:
    assert duration(ms) == shown


def test_idle_close_in_mode_tcp_has_no_http_timeouts(tmp_path: Path) -> None:
    text = PASSTHROUGH.format(persistence="timeout server 2m", cookie1="", cookie2="")
    config, _ = load(tmp_path, text)
    assert idle_close_cause(config, 443, 30.3) == (
        "timeout client 30s (frontend agents) closed it: with no timeout tunnel it applies "
        "to a WebSocket; set timeout tunnel 1h"
    )
    assert idle_close_cause(config, 443, 10) == (
        "no configured timeout matches 10s (timeout client 30s, timeout server 2m): "
        "the server, the client or a firewall/NAT idle timer closed it"
    )
