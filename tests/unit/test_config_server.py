"""`bind`, `server` and `default-server` lines and their options (HAProxy's
configuration.txt 5.1 and 5.2)."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Address, Bind, Config, Option, Proxy, Server, Where

BASE = """
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def parse_ok(text: str) -> tuple[Config, list[str]]:
    config, diagnostics = parse([("s.cfg", BASE + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config, [str(d) for d in diagnostics]


def errors(text: str) -> list[str]:
    config, diagnostics = parse([("s.cfg", BASE + text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def at(line: int) -> Where:
    return Where("s.cfg", line + 5)


def only(config: Config) -> Proxy:
    assert len(config.proxies) == 1
    return config.proxies[0]


def test_bind_lines_give_one_bind_per_address_and_port() -> None:
    config, diagnostics = parse_ok(
        """
listen l
    bind :80,:443
    bind 10.0.0.1:8000-8001 name range backlog 128
    bind [::]:80 v6only
    bind 127.0.0.170:80 transparent
    bind 127.0.0.171:80 freebind noreuseport
    bind /run/l.sock
    bind :81 accept-proxy
    server a 10.0.0.1
"""
    )
    assert diagnostics == []
    assert only(config).binds == (
        Bind(Address("ipv4", "", 80), at(3)),
        Bind(Address("ipv4", "", 443), at(3)),
        Bind(Address("ipv4", "10.0.0.1", 8000), at(4), "range", backlog=128),
        Bind(Address("ipv4", "10.0.0.1", 8001), at(4), "range", backlog=128),
        Bind(Address("ipv6", "::", 80), at(5), v6only=True),
        Bind(Address("ipv4", "127.0.0.170", 80), at(6), freebind=True),
        Bind(Address("ipv4", "127.0.0.171", 80), at(7), freebind=True, reuseport=False),
        Bind(Address("unix", "/run/l.sock", None), at(8)),
        Bind(Address("ipv4", "", 81), at(9), accept_proxy=True),
    )


def test_bind_options_not_implemented_are_reported_one_by_one() -> None:
    found = errors(
        "frontend fe\n    bind :443 ssl crt /etc/x.pem alpn h2 defer-accept ecdhe prime256v1 "
        "bogus\n    default_backend be\nbackend be\n"
    )
    assert found == [
        f"{at(2)}: error: 'bind': option 'defer-accept' is not implemented yet in poise",
        f"{at(2)}: error: 'bind': option 'ecdhe' is not implemented yet in poise",
        f"{at(2)}: error: 'bind': unknown option 'bogus'",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bind", "'bind': expects an address"),
        ("bind 1.2.3.4", "missing port"),
        ("bind :80 backlog", "option 'backlog': expects a value"),
        ("bind :80 backlog 0", "option 'backlog': 0 is out of range (at least 1)"),
        ("bind :80 mode 600", "option 'mode' is not implemented yet"),
        ("bind :80 v6onyl", "unknown option 'v6onyl'; did you mean 'v6only'?"),
    ],
)
def test_bad_bind_lines(line: str, message: str) -> None:
    found = errors(f"frontend fe\n    {line}\n    default_backend be\nbackend be\n")
    assert message in found[0], found


def test_thread_bind_options_are_harmless() -> None:
    _, diagnostics = parse_ok(
        "frontend fe\n    bind :80 thread 1-2 process 1\n    default_backend be\nbackend be\n"
    )
    assert diagnostics == [
        f"{at(2)}: warning: 'bind': option '{name}' ignored: poise runs single-threaded per worker"
        for name in ("thread", "process")
    ]


def test_server_options() -> None:
    config, diagnostics = parse_ok(
        """
backend be
    server a 10.0.0.1:80 check port 8080 addr 10.0.0.100 inter 1s fastinter 500 \
downinter 3s rise 1 fall 2 weight 256 maxconn 10 maxqueue 5 id 7
    server b db.example.com backup disabled weight 0
    server c 10.0.0.3:80 check no-check enabled
"""
    )
    assert diagnostics == []
    a, b, c = only(config).servers
    assert a == Server(
        "a",
        Address("ipv4", "10.0.0.1", 80),
        at(3),
        id=7,
        forced_id=True,
        weight=256,
        maxconn=10,
        maxqueue=5,
        check=True,
        check_port=8080,
        check_addr="10.0.0.100",
        inter=1000,
        fastinter=500,
        downinter=3000,
        rise=1,
        fall=2,
    )
    # id 2: HAProxy's counter moved on past `a` (id 7) before numbering `b`.
    assert b == Server(
        "b", Address("ipv4", "db.example.com", None), at(4), id=2, weight=0, backup=True,
        disabled=True,
    )  # fmt: skip
    assert c == Server("c", Address("ipv4", "10.0.0.3", 80), at(5), id=3)


def test_server_defaults_are_haproxys() -> None:
    config, _ = parse_ok("backend be\n    server a 10.0.0.1:80\n")
    a = only(config).servers[0]
    assert (a.weight, a.inter, a.rise, a.fall, a.check, a.maxconn) == (1, 2000, 2, 3, False, 0)
    assert (a.fastinter, a.downinter, a.check_port, a.backup, a.disabled) == (
        None,
        None,
        None,
        False,
        False,
    )


def test_default_server_applies_to_the_servers_after_it() -> None:
    config, _ = parse_ok(
        """
backend be
    server a 10.0.0.1:80
    default-server check inter 5s weight 10
    server b 10.0.0.2:80
    server c 10.0.0.3:80 weight 20 no-check
    default-server rise 5
    server d 10.0.0.4:80
"""
    )
    a, b, c, d = only(config).servers
    assert (a.check, a.inter, a.weight, a.rise) == (False, 2000, 1, 2)
    assert (b.check, b.inter, b.weight, b.rise) == (True, 5000, 10, 2)
    assert (c.check, c.inter, c.weight, c.rise) == (False, 5000, 20, 2)
    assert (d.check, d.inter, d.weight, d.rise) == (True, 5000, 10, 5)


def test_server_options_not_implemented_are_reported_and_the_rest_is_read() -> None:
    found = errors(
        "backend be\n    server ag1 127.0.0.181:443 check inter 2s cookie ag1 ssl verify "
        "required ca-file /etc/ca.pem sni str(ag1.example.com) check-alpn h2 agent-check\n"
    )
    assert found == [
        f"{at(2)}: error: 'server': option '{name}' is not implemented yet in poise"
        for name in ("check-alpn", "agent-check")
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("server a 10.0.0.1 weight 257", "option 'weight': 257 is out of range (0 to 256)"),
        ("server a 10.0.0.1 inter 0", "option 'inter': must be greater than 0"),
        ("server a 10.0.0.1 fastinter 1x", "option 'fastinter': unexpected character 'x'"),
        ("server a 10.0.0.1 rise 0", "option 'rise': 0 is out of range (at least 1)"),
        ("server a 10.0.0.1 fall 0", "option 'fall': 0 is out of range (at least 1)"),
        ("server a 10.0.0.1 maxconn -1", "option 'maxconn': -1 is out of range (at least 0)"),
        ("server a 10.0.0.1 port 70000", "option 'port': 70000 is out of range"),
        ("server a 10.0.0.1 addr db", "option 'addr': expects an IPv4 or IPv6 address"),
        ("server a 10.0.0.1 id 0", "option 'id': 0 is out of range (at least 1)"),
        ("server a 10.0.0.1 inter", "option 'inter': expects a value"),
        ("server a 10.0.0.1 chek", "unknown option 'chek'; did you mean 'check'?"),
        ("server a", "expects a name and an address"),
        ("server a/b 10.0.0.1", "character '/' is not permitted in server name 'a/b'"),
        ("server a 10.0.0.1:99999", "server 'a': invalid port '99999'"),
        ("server a ::", "invalid IP address ':'"),
        ("default-server id 3", "'default-server': option 'id': only allowed on a 'server' line"),
    ],
)
def test_bad_server_lines(line: str, message: str) -> None:
    found = errors(f"backend be\n    {line}\n")
    assert len(found) == 1 and message in found[0], found


def test_a_per_bind_maxconn_is_not_implemented_yet() -> None:
    found = errors("frontend f\n    bind :80 maxconn 10\n    default_backend b\nbackend b\n")
    assert any("'maxconn'" in e and "not implemented" in e for e in found), found


def test_a_sockpair_server_carries_traffic_only() -> None:
    config, _ = parse_ok("backend be\n    server s1 sockpair@4 weight 5\n")
    assert only(config).servers[0].address == Address("sockpair", "4", None)
    problems = errors(
        "backend be\n    server s1 sockpair@4 check\n    server s2 sockpair@4 ssl verify none\n"
    )
    assert problems == [
        "s.cfg:7: error: 'server be/s1': health checks over sockpair@ are not implemented yet "
        "in poise",
        "s.cfg:8: error: 'server be/s2': 'ssl' over sockpair@ is not implemented yet in poise",
    ]


def test_proxy_protocol_flags_add_up_from_default_server() -> None:
    config, diagnostics = parse_ok(
        """
backend be
    default-server send-proxy-v2 proxy-v2-options crc32c,authority
    server a 10.0.0.1:80
    server b 10.0.0.2:80 no-send-proxy-v2 check-send-proxy
    server c 10.0.0.3:80 send-proxy-v2-ssl-cn proxy-v2-options ssl-cipher,unique-id
    server d 10.0.0.4:80
"""
    )
    assert diagnostics == []
    a, b, c, d = only(config).servers
    assert a.proxy_protocol == {"v2", "crc32c", "authority"} and not a.check_send_proxy
    # Without v2 the other flags stay: HAProxy then sends a v1 line.
    assert b.proxy_protocol == {"crc32c", "authority"} and b.check_send_proxy
    assert c.proxy_protocol == {
        "v2", "crc32c", "authority", "ssl", "cert-cn", "ssl-cipher", "unique-id"
    }  # fmt: skip
    assert d.proxy_protocol == a.proxy_protocol


def test_bad_proxy_v2_options() -> None:
    found = errors(
        "backend be\n    server a 10.0.0.1:80 proxy-v2-options ssl,bogus\n"
        "    server b 10.0.0.1:80 proxy-v2-options cert-key,cert-sig,nope\n"
    )
    assert found == [
        f"{at(2)}: error: 'server': option 'proxy-v2-options': 'bogus' : proxy v2 option "
        "not implemented.",
        f"{at(3)}: error: 'server': option 'proxy-v2-options': 'nope' : proxy v2 option "
        "not implemented.",
    ]


def test_tcp_keepalive_settings() -> None:
    config, diagnostics = parse_ok(
        """
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
    option tcpka
    clitcpka-idle 2m
    srvtcpka-cnt 5
listen l
    bind :80
    clitcpka-intvl 10s
    srvtcpka-idle 30
    server a 10.0.0.1:80
"""
    )
    assert diagnostics == []
    proxy = only(config)
    assert Option.TCPKA in proxy.options
    assert dict(proxy.tcpka) == {
        "clitcpka-idle": 120,
        "clitcpka-intvl": 10,
        "srvtcpka-cnt": 5,
        "srvtcpka-idle": 30,
    }
