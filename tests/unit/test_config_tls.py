"""The TLS words of haproxy.cfg (configuration.txt 5.1, 5.2 and the global `ssl-default-*`)
as the parser and the link pass read them: what each sets, what HAProxy refuses and poise
refuses the same way, and the global defaults laid under binds and servers."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.haproxy_draft import Problem
from poise.config.haproxy_tls import version_range
from poise.config.model import Config, CrtSource, Mode, TlsVersions

BASE = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def parse_ok(text: str, head: str = "") -> tuple[Config, list[str]]:
    config, diagnostics = parse([("t.cfg", head + BASE + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config, [str(d) for d in diagnostics]


def errors(text: str, head: str = "") -> list[str]:
    config, diagnostics = parse([("t.cfg", head + BASE + text)], {})
    assert config is None
    return [d.message for d in diagnostics if d.severity is Severity.ERROR]


FRONT = "frontend fe\n    bind 127.0.0.1:443 {}\n    default_backend be\nbackend be\n"


def test_a_tls_bind_with_every_option() -> None:
    config, warnings = parse_ok(
        FRONT.format(
            "ssl crt a.pem crt-list list.txt crt certs/ strict-sni alpn h2,http/1.1 "
            "ssl-min-ver TLSv1.3 ciphers ECDHE-RSA-AES128-GCM-SHA256 "
            "ciphersuites TLS_AES_128_GCM_SHA256 ca-file ca.pem verify optional "
            "no-tls-tickets prefer-client-ciphers"
        )
    )
    tls = config.proxies[0].binds[0].tls
    assert tls is not None
    assert tls.certificates == (
        CrtSource("crt", "a.pem"),
        CrtSource("crt-list", "list.txt"),
        CrtSource("crt", "certs/"),
    )
    assert tls.strict_sni
    assert tls.alpn == ("http/1.1",)  # h2 left out in an HTTP frontend
    assert tls.versions == TlsVersions(min="TLSv1.3")
    assert tls.ciphers == "ECDHE-RSA-AES128-GCM-SHA256"
    assert tls.ciphersuites == "TLS_AES_128_GCM_SHA256"
    assert (tls.ca_file, tls.verify) == ("ca.pem", "optional")
    assert tls.tickets is False and tls.prefer_client_ciphers is True
    assert warnings == [
        "t.cfg:8: warning: 'bind': 'h2' left out of the ALPN list: poise speaks HTTP/1.1 "
        "(HTTP/2 is not implemented yet), so clients fall back to http/1.1"
    ]


def test_a_tcp_bind_keeps_h2_in_its_alpn_list() -> None:
    config, _ = parse_ok(
        "frontend fe\n    mode tcp\n    bind :443 ssl crt a.pem alpn h2,http/1.1\n"
        "    default_backend be\nbackend be\n    mode tcp\n"
    )
    tls = config.proxies[0].binds[0].tls
    assert tls is not None and tls.alpn == ("h2", "http/1.1")


def test_bind_mistakes_are_refused_as_haproxy_refuses_them() -> None:
    assert errors(FRONT.format("ssl")) == [
        "no SSL certificate specified for bind '127.0.0.1:443' (use 'crt')"
    ]
    assert errors(FRONT.format("ssl crt a.pem verify required")) == [
        "verify is enabled but no CA file specified for bind '127.0.0.1:443' (use 'ca-file')"
    ]
    assert errors(FRONT.format("ssl crt a.pem verify sometimes")) == [
        "option 'verify': expects none, optional or required, not 'sometimes'"
    ]
    assert errors(FRONT.format("ssl crt a.pem ssl-min-ver SSLv3")) == [
        "option 'ssl-min-ver': SSLv3 is not supported by poise (TLSv1.2 and TLSv1.3 by default)"
    ]
    assert errors(FRONT.format("ssl crt a.pem no-tlsv12 no-tlsv13")) == [
        "no TLS version left between TLSv1.2 and TLSv1.3"
    ]
    _, warnings = parse_ok(FRONT.format("crt a.pem"))
    assert warnings == [
        "t.cfg:8: warning: 'bind': 'crt' has no effect without 'ssl': '127.0.0.1:443' "
        "accepts clear connections"
    ]


def test_version_ranges() -> None:
    assert version_range(TlsVersions()) == ("TLSv1.2", "TLSv1.3")
    assert version_range(TlsVersions(disabled=frozenset({"TLSv1.2"}))) == ("TLSv1.3", "TLSv1.3")
    assert version_range(TlsVersions(min="TLSv1.0", max="TLSv1.2")) == ("TLSv1.0", "TLSv1.2")
    with pytest.raises(Problem, match=r"hole between TLSv1\.1 and TLSv1\.3"):
        version_range(TlsVersions(min="TLSv1.1", disabled=frozenset({"TLSv1.2"})))


def test_global_defaults_and_bases_go_under_the_binds() -> None:
    head = (
        "global\n    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
        "    ssl-default-bind-ciphersuites TLS_AES_256_GCM_SHA384\n"
        "    ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets\n"
        "    crt-base /etc/certs\n    ca-base /etc/ca\n"
    )
    config, _ = parse_ok(
        "frontend fe\n    bind :443 ssl crt a.pem crt /abs/b.pem crt-list l.txt ca-file ca.pem "
        "verify required\n"
        "    bind :8443 ssl crt c.pem ciphers ECDHE-RSA-AES256-GCM-SHA384 ssl-min-ver TLSv1.2\n"
        "    default_backend be\nbackend be\n",
        head,
    )
    first, second = (bind.tls for bind in config.proxies[0].binds)
    assert first is not None and second is not None
    assert [c.path for c in first.certificates] == ["/etc/certs/a.pem", "/abs/b.pem", "l.txt"]
    # crt-base goes before a crt-list's relative lines, not before its own path (HAProxy).
    assert first.certificates[2].base == "/etc/certs"
    assert first.ca_file == "/etc/ca/ca.pem"
    assert first.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert first.ciphersuites == "TLS_AES_256_GCM_SHA384"
    assert first.versions.min == "TLSv1.3" and first.tickets is False
    assert second.ciphers == "ECDHE-RSA-AES256-GCM-SHA384"
    assert second.versions.min == "TLSv1.2"


SERVER = "backend be\n    server gw 10.0.0.1:443 {}\n"


def test_a_tls_server_with_every_option() -> None:
    config, _ = parse_ok(
        SERVER.format(
            "ssl verify required ca-file ca.pem sni str(gw.test) verifyhost gw.test "
            "crt client.pem alpn http/1.1 ssl-max-ver TLSv1.2 ciphers ECDHE-RSA-AES128-GCM-SHA256 "
            "no-tls-tickets check check-sni check.test"
        )
    )
    server = config.proxies[0].servers[0]
    tls = server.tls
    assert tls is not None
    assert server.ssl and server.check_ssl and server.check_sni == "check.test"
    assert (tls.verify, tls.ca_file, tls.verifyhost, tls.crt) == (
        "required",
        "ca.pem",
        "gw.test",
        "client.pem",
    )
    assert tls.sni is not None and (tls.sni.fetch, tls.sni.args) == ("str", ("gw.test",))
    assert tls.alpn == ("http/1.1",) and tls.versions.max == "TLSv1.2" and not tls.tickets


def test_ssl_sends_the_checks_over_tls_unless_port_or_addr_sends_them_elsewhere() -> None:
    config, _ = parse_ok(
        "backend be\n    default-server ssl verify none check\n"
        "    server a 10.0.0.1:443\n    server b 10.0.0.2:443 port 80\n"
        "    server c 10.0.0.3:443 addr 10.0.0.9 check-ssl\n    server d 10.0.0.4:80 no-ssl\n"
        "    server e 10.0.0.5:80 no-ssl check-ssl\n"
    )
    servers = config.proxies[0].servers
    assert [(s.name, s.ssl, s.check_ssl) for s in servers] == [
        ("a", True, True),
        ("b", True, False),
        ("c", True, True),
        ("d", False, False),
        ("e", False, True),
    ]
    assert servers[3].tls is None
    assert servers[4].tls is not None and servers[4].tls.verify == "none"


def test_server_verify_is_required_by_default_as_in_haproxy() -> None:
    [message] = errors(SERVER.format("ssl"))
    assert message.startswith(
        "'server be/gw': verify is enabled by default but no CA file specified. If you're "
        "running on a LAN"
    )
    assert errors(SERVER.format("ssl verify required")) == [
        "'server be/gw': verify is enabled but no CA file specified (use 'ca-file')"
    ]
    config, _ = parse_ok(SERVER.format("ssl"), head="global\n    ssl-server-verify none\n")
    tls = config.proxies[0].servers[0].tls
    assert tls is not None and tls.verify == "none"
    assert errors(SERVER.format("ssl verify maybe"))[0] == (
        "option 'verify': expects none or required, not 'maybe'"
    )


def test_default_server_tls_words_add_up_and_can_be_undone() -> None:
    config, _ = parse_ok(
        "backend be\n    default-server ssl ca-file ca.pem verifyhost any.test\n"
        "    server a 10.0.0.1:443 sni str(a.test)\n"
        "    server b 10.0.0.2:443 no-verifyhost ca-file other.pem\n",
        head="global\n    ca-base /etc/ca\n    ssl-default-server-options ssl-min-ver TLSv1.3\n",
    )
    a, b = config.proxies[0].servers
    assert a.tls is not None and b.tls is not None
    assert (a.tls.ca_file, a.tls.verifyhost, a.tls.versions.min) == (
        "/etc/ca/ca.pem",
        "any.test",
        "TLSv1.3",
    )
    assert (b.tls.ca_file, b.tls.verifyhost) == ("/etc/ca/other.pem", None)


def test_an_sni_expression_must_be_available_where_it_is_used() -> None:
    config, _ = parse_ok(SERVER.format("ssl verify none sni req.hdr(host)"))
    tls = config.proxies[0].servers[0].tls
    assert tls is not None and tls.sni is not None and tls.sni.fetch == "req.hdr"
    config, _ = parse_ok(
        "backend be\n    mode tcp\n    server gw 10.0.0.1:443 ssl verify none sni ssl_fc_sni\n"
    )
    assert config.proxies[0].mode is Mode.TCP
    assert errors(
        "backend be\n    mode tcp\n    server gw 10.0.0.1:443 ssl verify none sni req.hdr(host)\n"
    ) == [
        "'server be/gw': 'sni req.hdr(host)' needs HTTP request headers, which a 'mode tcp' "
        "backend does not have"
    ]
    assert errors(SERVER.format("ssl verify none sni nosuch()")) == [
        "option 'sni': unknown fetch method 'nosuch'"
    ]


def test_global_tls_keywords() -> None:
    assert errors("", head="global\n    ssl-server-verify sometimes\n") == [
        "expects none or required, not 'sometimes'"
    ]
    assert errors("", head="global\n    ssl-default-bind-options no-ca-names\n") == [
        "option 'no-ca-names' is not implemented yet in poise"
    ]
    config, _ = parse_ok("", head="global\n    tune.ssl.cachesize 0\n    crt-base /c\n")
    assert (config.global_.tls.cache_size, config.global_.tls.crt_base) == (0, "/c")
    assert errors("", head="global\n    tune.ssl.cachesize -1\n") == [
        "-1 is out of range (at least 0)"
    ]
    _, warnings = parse_ok("", head="global\n    tune.ssl.default-dh-param 2048\n")
    assert warnings == [
        "t.cfg:2: warning: 'tune.ssl.default-dh-param': ignored: poise uses DHE only with the "
        "parameters of 'ssl-dh-param-file' or of the certificate file"
    ]
    config, _ = parse_ok(
        "", head="global\n    default-path origin /o\n    ssl-dh-param-file dh.pem\n"
    )
    assert config.global_.tls.dh_param_file == "/o/dh.pem"
    assert errors("", head="global\n    ssl-dh-param-file\n") == ["expects a file name"]
