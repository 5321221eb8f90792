"""The seed configurations parse as they are: the tutorial's haproxy.cfg with exactly the
warnings `haproxy -c` gives, and agent-gateway.cfg with errors only for what poise does not
implement yet."""

from __future__ import annotations

import re
from pathlib import Path

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Address, Algorithm, HttpExpect, Mode, Option

SEEDS = Path(__file__).parents[2] / "examples"


def load(name: str) -> tuple[str, str]:
    path = SEEDS / name
    return str(path), path.read_text()


def test_the_tutorial_haproxy_cfg() -> None:
    filename, text = load("haproxy.cfg")
    config, diagnostics = parse([(filename, text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    # The three warnings HAProxy 2.6 prints for this file, at the same lines.
    assert [(d.severity, d.where.line, d.keyword) for d in diagnostics] == [
        (Severity.WARNING, 29, "option httplog"),
        (Severity.WARNING, 32, "option forwardfor"),
        (Severity.WARNING, 32, "option forwardfor"),
    ]
    g = config.global_
    assert (g.maxconn, g.daemon, g.user, g.group, g.chroot) == (
        4000,
        True,
        "haproxy",
        "haproxy",
        "/var/lib/haproxy",
    )
    assert [(t.kind, t.address, t.port, t.facility) for t in g.logs] == [
        ("udp", "127.0.0.1", 514, "local2")
    ]
    assert g.stats_sockets[0].address == Address("unix", "/var/lib/haproxy/stats", None)

    unsecured, secured, view = config.proxies
    assert (unsecured.name, unsecured.mode, unsecured.maxconn) == ("unsecured", Mode.HTTP, 3000)
    assert [str(b.address) for b in unsecured.binds] == ["127.0.0.170:80"]
    assert unsecured.redirects[0].target == "https://view.domain.local"
    assert unsecured.forwardfor_except == "127.0.0.0/8"
    # `bind 127.0.0.170:443 #ssl crt ./haproxy-cert.pem` is a plain bind: the rest is a comment.
    assert [str(b.address) for b in secured.binds] == ["127.0.0.170:443"]
    assert (secured.mode, secured.default_backend) == (Mode.TCP, "view")
    assert secured.options == {Option.TCPLOG, Option.DONTLOGNULL}
    assert (view.mode, view.balance.algorithm, view.retries, view.redispatch) == (
        Mode.TCP,
        Algorithm.SOURCE,
        3,
        -1,
    )
    assert (view.timeouts.connect, view.timeouts.server, view.timeouts.check) == (
        10_000,
        60_000,
        10_000,
    )
    for server, host in zip(view.servers, ("127.0.0.165", "127.0.0.166"), strict=True):
        assert server.address == Address("ipv4", host, 443)
        assert (server.weight, server.check, server.check_port) == (1, True, 443)
        assert (server.inter, server.rise, server.fall) == (2000, 2, 5)
    # Its `stats socket` makes HAProxy's CLI frontend take id 1 (as HAProxy 2.6 numbers them).
    assert [p.id for p in config.proxies] == [2, 3, 4]
    assert [s.id for s in view.servers] == [1, 2]


# What agent-gateway.cfg asks for and poise does not do yet: TLS (bind ssl/crt, server
# ssl/verify/ca-file/sni). Everything else (HTTP proxying, the cookie, the HTTP check, the
# redirect with its ACL condition) is read.
NOT_IMPLEMENTED = re.compile(r"option '(ssl|crt|verify|ca-file|sni)' is not implemented yet")


def test_agent_gateway_cfg_reads_its_tls_words() -> None:
    filename, text = load("agent-gateway.cfg")
    config, diagnostics = parse([(filename, text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    assert not diagnostics
    agents, gateways = config.proxies
    clear, secure = agents.binds
    assert clear.tls is None
    assert secure.tls is not None
    assert [(c.kind, c.path) for c in secure.tls.certificates] == [
        ("crt", "/etc/poise/certs/loadbalancedag.pem")
    ]
    for server, name in zip(gateways.servers, ("ag1", "ag2"), strict=True):
        assert server.ssl and server.check_ssl and server.tls is not None
        assert server.tls.verify == "required"
        assert server.tls.ca_file == "/etc/poise/ca.pem"
        assert server.tls.sni is not None
        assert server.tls.sni.args == (f"{name}.yourenvironment.com",)


def test_agent_gateway_cfg_without_tls_gives_the_http_settings() -> None:
    filename, text = load("agent-gateway.cfg")
    # The seed as it would read with TLS aside (the lines poise cannot serve yet cut).
    text = text.replace(" ssl crt /etc/poise/certs/loadbalancedag.pem", "")
    text = re.sub(r" ssl verify required ca-file \S+ sni \S+", "", text)
    config, diagnostics = parse([(filename, text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    agents, gateways = config.proxies
    assert agents.mode is Mode.HTTP and agents.default_backend == "agent_gateways"
    (rule,) = agents.http_request_rules
    assert rule.action == "redirect" and rule.redirect is not None
    redirect = rule.redirect
    assert (redirect.kind, redirect.target, redirect.code) == ("scheme", "https", 301)
    assert rule.condition is not None and rule.condition.unless
    ((term,),) = rule.condition.suites
    assert term.acl.tests[0].sample.fetch == "ssl_fc"
    cookie = gateways.cookie
    assert cookie is not None
    assert (cookie.name, cookie.mode, cookie.indirect, cookie.nocache) == (
        "POISEID",
        "insert",
        True,
        True,
    )
    assert (cookie.maxidle, cookie.maxlife) == (86_400, 86_400)
    assert [s.cookie for s in gateways.servers] == ["ag1", "ag2"]
    check = gateways.http_check
    assert check is not None
    assert (check.method, check.uri, check.version) == ("GET", "/health", "HTTP/1.0")
    assert check.expect == HttpExpect("status", "200")
