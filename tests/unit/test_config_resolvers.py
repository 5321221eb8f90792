"""The `resolvers` section, the DNS options of `server` lines (`init-addr`, `resolvers`,
`resolve-prefer`, `resolve-net`, `resolve-opts`) and `server-template` (HAProxy's
configuration.txt 4.2, 5.2 and 5.3), with HAProxy 2.6's defaults and FILE:LINE errors."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Config, Hold, Nameserver, Resolvers, Server, Where

HEAD = """resolvers dns
    nameserver ns1 127.0.0.1:53
"""
BASE = """
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend be
"""


def parse_text(text: str, read_file: object = None) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("r.cfg", text)], {}, read_file)  # type: ignore[arg-type]
    return config, [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def section(lines: str) -> Resolvers:
    config, problems = parse_text(HEAD + lines)
    assert config is not None, problems
    return config.resolvers[0]


def servers(lines: str, head: str = HEAD) -> tuple[Server, ...]:
    config, problems = parse_text(head + BASE + lines)
    assert config is not None, problems
    proxy = config.proxy("be")
    assert proxy is not None
    return proxy.servers


def errors(text: str) -> list[str]:
    config, problems = parse_text(text)
    assert config is None
    return problems


def test_defaults_are_haproxys() -> None:
    got = section("")
    assert got == Resolvers(
        "dns", Where("r.cfg", 1), (Nameserver("ns1", "127.0.0.1", 53, Where("r.cfg", 2)),)
    )
    assert (got.resolve_retries, got.timeout_resolve, got.timeout_retry) == (3, 1000, 1000)
    assert got.hold == Hold(valid=10_000, nx=30_000, timeout=30_000, refused=30_000, other=30_000)
    assert got.hold.obsolete == 0 and got.accepted_payload_size == 512


def test_every_keyword() -> None:
    got = section(
        "    nameserver ns2 tcp@[::1]:5353\n"
        "    nameserver ns3 udp@127.0.0.2:53\n"
        "    resolve_retries 5\n"
        "    timeout resolve 100ms\n"
        "    timeout retry 2s\n"
        "    hold valid 1s\n"
        "    hold nx 2s\n"
        "    hold timeout 3s\n"
        "    hold refused 4s\n"
        "    hold other 5s\n"
        "    hold obsolete 6s\n"
        "    accepted_payload_size 8192\n"
    )
    assert [(n.name, n.host, n.port, n.tcp) for n in got.nameservers] == [
        ("ns1", "127.0.0.1", 53, False),
        ("ns2", "::1", 5353, True),
        ("ns3", "127.0.0.2", 53, False),
    ]
    assert (got.resolve_retries, got.timeout_resolve, got.timeout_retry) == (5, 100, 2000)
    assert got.hold == Hold(1000, 2000, 3000, 4000, 5000, 6000)
    assert got.accepted_payload_size == 8192


def test_parse_resolv_conf_reads_the_system_file() -> None:
    def read_file(path: str) -> bytes:
        assert path == "/etc/resolv.conf"
        return b"search example\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver\n"

    config, problems = parse_text("resolvers sys\n    parse-resolv-conf\n", read_file)
    assert config is not None, problems
    assert [(n.name, n.host, n.port) for n in config.resolvers[0].nameservers] == [
        ("10.0.0.53", "10.0.0.53", 53),
        ("fe80::1", "fe80::1", 53),
    ]


BACKEND = "backend b\n    server s app.test:80 resolvers default\n"


def test_an_undeclared_default_section_comes_from_resolv_conf_as_in_haproxy() -> None:
    # HAProxy 2.6 creates `resolvers default` from /etc/resolv.conf (its nameservers, the
    # other settings a section's defaults), for a server to name.
    def read_file(path: str) -> bytes:
        assert path == "/etc/resolv.conf"
        return b"nameserver 10.0.0.53\nnameserver bogus\n"

    config, problems = parse_text(BACKEND, read_file)
    assert config is not None and problems == [], problems
    [default] = config.resolvers
    assert default.name == "default"
    assert [(n.name, n.host, n.port) for n in default.nameservers] == [
        ("10.0.0.53", "10.0.0.53", 53)
    ]
    # A declared one wins; none is made without a readable file or a nameserver in it.
    config, _ = parse_text(HEAD.replace("resolvers dns", "resolvers default") + BACKEND, read_file)
    assert config is not None and [r.name for r in config.resolvers] == ["default"]
    assert config.resolvers[0].nameservers[0].name == "ns1"

    def unreadable(path: str) -> bytes:
        raise FileNotFoundError(path)

    for reader in (unreadable, lambda path: b"search example\n"):
        config, problems = parse_text(BACKEND, reader)
        assert config is None
        assert any("no resolvers section named 'default'" in p for p in problems), problems
        config, problems = parse_text("backend b\n    server s 127.0.0.1:80\n", reader)
        assert config is not None and config.resolvers == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bogus 1", "'bogus': unknown keyword in 'resolvers' section"),
        ("nameserver ns9", "'nameserver': expects <name> and <addr>:<port> as arguments"),
        ("nameserver ns9 127.0.0.1", "'nameserver': missing or invalid port in '127.0.0.1'"),
        ("nameserver ns9 bad!name:53", "'bad!name' is neither an IP address nor a host name"),
        ("nameserver ns1 127.0.0.2:53", "nameserver 'ns1' has same name as another nameserver"),
        ("hold forever 1s", "'hold': unknown <event> 'forever'"),
        ("hold valid", "'hold': expects an <event>"),
        ("timeout query 1s", "'timeout': expects 'retry' or 'resolve' and <time> as arguments"),
        ("timeout retry 0", "'timeout': must be greater than 0"),
        ("accepted_payload_size 100", "must be between 512 and 65535 inclusive (was 100)"),
        ("resolve_retries 0", "'resolve_retries'"),
        ("resolution_pool_size 10", "not implemented yet in poise"),
        ("parse-resolv-conf", "failed to open /etc/resolv.conf"),
    ],
)
def test_errors_name_file_line_and_keyword(line: str, message: str) -> None:
    problems = errors(HEAD + "    " + line + "\n")
    assert any(p.startswith("r.cfg:3: error: ") and message in p for p in problems), problems


def test_section_errors() -> None:
    assert errors("resolvers dns\n") == [
        "r.cfg:1: error: 'resolvers': resolvers 'dns' has no nameserver: add 'nameserver ID "
        "ADDR:PORT' or 'parse-resolv-conf'"
    ]
    twice = errors(HEAD + HEAD)
    assert any(
        "r.cfg:3:" in p and "same name as another resolvers (declared at r.cfg:1)" in p
        for p in twice
    )
    assert any("r.cfg:1:" in p and "invalid resolvers name" in p for p in errors("resolvers a/b\n"))


def test_a_section_ends_at_the_next_one() -> None:
    got = servers("    server gw gw.test:80 resolvers dns\n")
    assert got[0].resolvers == "dns"


def test_server_dns_options_and_their_defaults() -> None:
    plain, dns = servers(
        "    server plain gw.test:80\n"
        "    server dns gw.test:80 resolvers dns resolve-prefer ipv4 "
        "resolve-net 10.0.0.0/8,fd00::/8 resolve-opts allow-dup-ip,ignore-weight "
        "init-addr none,libc,10.0.0.1\n"
    )
    assert plain.init_addr == ("last", "libc")
    assert (plain.resolvers, plain.resolve_prefer, plain.resolve_net) == (None, None, ())
    assert dns.init_addr == ("none", "libc", "10.0.0.1")
    assert (dns.resolvers, dns.resolve_prefer) == ("dns", "ipv4")
    assert dns.resolve_net == ("10.0.0.0/8", "fd00::/8")
    assert dns.resolve_opts == frozenset({"allow-dup-ip", "ignore-weight"})


def test_default_server_passes_dns_options_on() -> None:
    (gw,) = servers(
        "    default-server init-addr last,libc,none resolvers dns resolve-prefer ipv6\n"
        "    server gw gw.test:80\n"
    )
    assert (gw.init_addr, gw.resolvers, gw.resolve_prefer) == (
        ("last", "libc", "none"),
        "dns",
        "ipv6",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("init-addr dns", "option 'init-addr': unknown method 'dns'"),
        ("init-addr libc,libc", "option 'init-addr': method 'libc' given twice"),
        ("resolve-prefer ipv5", "option 'resolve-prefer': expects 'ipv4' or 'ipv6'"),
        ("resolve-net 10.0.0.300/8", "option 'resolve-net': invalid network"),
        ("resolve-opts allow-dup-ip,prevent-dup-ip", "contradict each other"),
        ("resolve-opts fast", "option 'resolve-opts': unknown resolve option 'fast'"),
        ("resolvers", "option 'resolvers': expects a value"),
    ],
)
def test_server_option_errors(options: str, message: str) -> None:
    problems = errors(HEAD + BASE + f"    server gw gw.test:80 {options}\n")
    assert any(p.startswith("r.cfg:9: error: 'server': ") and message in p for p in problems), (
        problems
    )


def test_resolvers_must_name_a_section() -> None:
    problems = errors(HEAD + BASE + "    server gw gw.test:80 resolvers dsn\n")
    assert problems == [
        "r.cfg:9: error: 'server be/gw': no resolvers section named 'dsn'; did you mean 'dns'?"
    ]


def test_an_srv_name_needs_resolvers() -> None:
    problems = errors(HEAD + BASE + "    server gw _http._tcp.gw.test\n")
    assert problems == [
        "r.cfg:9: error: 'server be/gw': the SRV record '_http._tcp.gw.test' needs 'resolvers'"
    ]


def test_server_template_numbers_its_servers() -> None:
    got = servers(
        "    server-template web 3 web.test:8080 resolvers dns check\n"
        "    server-template app 5-6 app.test\n"
    )
    assert [(s.name, s.id, s.template, s.address.host, s.address.port) for s in got] == [
        ("web1", 1, "web", "web.test", 8080),
        ("web2", 2, "web", "web.test", 8080),
        ("web3", 3, "web", "web.test", 8080),
        ("app5", 4, "app", "app.test", None),
        ("app6", 5, "app", "app.test", None),
    ]
    assert all(s.check and s.resolvers == "dns" for s in got[:3])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("server-template web", "expects a prefix, a number or range and an address"),
        ("server-template web x web.test", "invalid number or range 'x'"),
        ("server-template web 3-1 web.test", "invalid range '3-1'"),
        ("server-template web 2 /run/web.sock", "expects a DNS name, not a unix socket"),
        ("server-template web 2 web.test id 4", "'id' is not allowed"),
    ],
)
def test_server_template_errors(line: str, message: str) -> None:
    problems = errors(HEAD + BASE + f"    {line}\n")
    assert any(p.startswith("r.cfg:9: error: ") and message in p for p in problems), problems


def test_server_template_is_refused_in_a_frontend() -> None:
    text = (
        HEAD
        + BASE.replace("backend be", "frontend fe\n    bind :80")
        + ("    server-template web 2 web.test\n")
    )
    assert any("no backend capability" in p for p in errors(text))
