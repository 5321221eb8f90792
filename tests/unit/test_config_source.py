"""`source ADDR[:PORT] [usesrc ...] [interface NAME]`, in a backend (or defaults, listen)
and as a server option (HAProxy's configuration.txt 4.2 and 5.2)."""

from __future__ import annotations

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Config, Source

BASE = """
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def parse_ok(text: str) -> Config:
    config, diagnostics = parse([("s.cfg", BASE + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    assert diagnostics == []
    return config


def errors(text: str) -> list[str]:
    config, diagnostics = parse([("s.cfg", BASE + text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def sources(config: Config, proxy: str) -> dict[str, Source | None]:
    (found,) = [p for p in config.proxies if p.name == proxy]
    return {s.name: s.source for s in found.servers}


def test_a_backend_source_applies_to_its_servers_and_a_servers_own_wins() -> None:
    config = parse_ok(
        """
backend b
    source 0.0.0.0 usesrc clientip
    server a 10.0.0.1:80
    server b 10.0.0.2:80 source 10.0.0.7:2000 usesrc client weight 3
    server c 10.0.0.3:80 source 10.0.0.8 usesrc 10.0.0.9:1234 interface eth1 check
defaults d2
    timeout connect 1s
    timeout client 1s
    timeout server 1s
    source 10.0.0.9
backend c
    server a 10.0.0.1:80
    server v6 [2001:db8::1]:80 source 2001:db8::2
    server none 10.0.0.1:81 source ::
"""
    )
    assert sources(config, "b") == {
        "a": Source("0.0.0.0", usesrc="clientip"),
        "b": Source("10.0.0.7", 2000, usesrc="client"),
        "c": Source("10.0.0.8", 0, "address", "10.0.0.9", 1234, "eth1"),
    }
    (b,) = [p for p in config.proxies if p.name == "b"]
    assert b.servers[1].weight == 3 and b.servers[2].check  # options after `source` read
    assert sources(config, "c") == {
        "a": Source("10.0.0.9"),
        "v6": Source("2001:db8::2"),
        "none": Source("::"),
    }


def test_what_source_does_not_take_is_an_error_naming_the_line() -> None:
    found = errors(
        """
backend b
    source 10.0.0.1 usesrc hdr_ip(x-forwarded-for,-1)
    source nowhere
    source 10.0.0.1:1000-2000
    source 10.0.0.1 usesrc
    source 10.0.0.1 extra
    source 2001:db8::1 usesrc 10.0.0.1
    server a 10.0.0.1:80 source
"""
    )
    assert found == [
        "s.cfg:8: error: 'source': 'usesrc hdr_ip(...)' is not implemented yet in poise"
        " (use 'usesrc clientip' or an address)",
        "s.cfg:9: error: 'source': 'source' expects an IPv4 or IPv6 address, not 'nowhere'",
        "s.cfg:10: error: 'source': a port range in 'source 10.0.0.1:1000-2000' is not"
        " implemented yet in poise",
        "s.cfg:11: error: 'source': 'usesrc' expects an argument",
        "s.cfg:12: error: 'source': only supports optional keywords 'interface' and 'usesrc', not"
        " 'extra'",
        "s.cfg:13: error: 'source': 'usesrc' address and 'source' address must be of the"
        " same family",
        "s.cfg:14: error: 'server': option 'source': expects <addr>[:<port>] [usesrc ...]"
        " [interface <name>]",
    ]
