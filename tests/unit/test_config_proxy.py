"""Keywords of `defaults`, `frontend`, `backend` and `listen` sections (HAProxy's
configuration.txt 4.2), and the keywords matrix of 4.1."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Diagnostic, Severity
from poise.config.haproxy import parse
from poise.config.model import (
    Algorithm,
    Balance,
    BalanceOptions,
    Capability,
    Config,
    HashFunction,
    HashType,
    LogTarget,
    Mode,
    Option,
    Proxy,
    Redirect,
    Timeouts,
    UseBackend,
    Where,
)

TIMEOUTS = """
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def parse_ok(text: str, base: str = TIMEOUTS) -> tuple[Config, list[str]]:
    config, diagnostics = parse([("p.cfg", base + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config, [str(d) for d in diagnostics]


def problems(text: str, base: str = TIMEOUTS) -> list[Diagnostic]:
    return parse([("p.cfg", base + text)], {})[1]


def errors(text: str, base: str = TIMEOUTS) -> list[str]:
    config, diagnostics = parse([("p.cfg", base + text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def proxy(config: Config, name: str) -> Proxy:
    found = config.proxy(name)
    assert found is not None
    return found


def at(line: int) -> Where:
    """A line of the text after TIMEOUTS (5 lines)."""
    return Where("p.cfg", line + 5)


TCP_PAIR = """
frontend fe
    bind :8080
    default_backend be
backend be
    server s1 10.0.0.1:80
"""


def test_a_tcp_frontend_and_backend() -> None:
    config, diagnostics = parse_ok(TCP_PAIR)
    assert diagnostics == []
    fe, be = config.proxies
    assert (fe.name, fe.capabilities, fe.mode, fe.id, fe.default_backend) == (
        "fe",
        Capability.FRONTEND,
        Mode.TCP,
        1,
        "be",
    )
    assert (be.name, be.capabilities, be.id, [s.name for s in be.servers]) == (
        "be",
        Capability.BACKEND,
        2,
        ["s1"],
    )
    assert config.frontends == (fe,) and config.backends == (be,)


def test_listen_is_both() -> None:
    config, _ = parse_ok("listen web\n    bind :80\n    server a 10.0.0.1:80\n")
    web = proxy(config, "web")
    assert web.capabilities is Capability.LISTEN and web.is_frontend and web.is_backend


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("", Balance()),
        ("balance roundrobin", Balance(Algorithm.ROUNDROBIN)),
        ("balance", Balance(Algorithm.ROUNDROBIN)),  # HAProxy 2.6 reads it so
        ("balance static-rr", Balance(Algorithm.STATIC_RR)),
        ("balance leastconn", Balance(Algorithm.LEASTCONN)),
        ("balance first", Balance(Algorithm.FIRST)),
        ("balance source", Balance(Algorithm.SOURCE)),
        ("balance random", Balance(Algorithm.RANDOM, draws=2)),
        ("balance random(5)", Balance(Algorithm.RANDOM, draws=5)),
        # HAProxy 2.6's defaults: sdbm; avalanche only with a bare `consistent`.
        ("hash-type consistent", Balance(hash_type=HashType.CONSISTENT, avalanche=True)),
        ("hash-type consistent sdbm", Balance(hash_type=HashType.CONSISTENT)),
        ("hash-type map-based", Balance(hash_type=HashType.MAP_BASED)),
        ("hash-type map-based sdbm", Balance(hash_type=HashType.MAP_BASED)),
        (
            "hash-type consistent djb2 avalanche",
            Balance(hash_type=HashType.CONSISTENT, hash_function=HashFunction.DJB2, avalanche=True),
        ),
        ("hash-type map-based wt6", Balance(hash_function=HashFunction.WT6)),
        (
            "hash-type consistent wt6\n    hash-type consistent crc32",
            Balance(hash_type=HashType.CONSISTENT, hash_function=HashFunction.CRC32),
        ),
        ("hash-type maglev", Balance(hash_type=HashType.MAGLEV)),
        ("balance rdp-cookie", Balance(Algorithm.RDP_COOKIE, argument="mstshash")),
        ("balance rdp-cookie(user)", Balance(Algorithm.RDP_COOKIE, argument="user")),
        (
            "mode http\n    balance uri depth 2 len 10 whole path-only",
            Balance(Algorithm.URI, options=BalanceOptions(True, True, 10, 2)),
        ),
        (
            "mode http\n    balance hdr(host) use_domain_only",
            Balance(Algorithm.HDR, argument="host", options=BalanceOptions(use_domain_only=True)),
        ),
    ],
)
def test_balance_and_hash_type(lines: str, expected: Balance) -> None:
    config, _ = parse_ok(f"backend be\n    {lines}\n    server a 10.0.0.1:80\n")
    assert proxy(config, "be").balance == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("balance rdp-cookie(", "rdp-cookie : missing cookie name."),
        ("balance rdp-cookie()", "rdp-cookie : missing cookie name."),
        ("balance rdp-cookiex", "rdp-cookie : missing cookie name."),
        ("balance hash req.hdr(host)", "'balance hash' is not implemented yet in poise"),
        ("balance uri depth 0", "uri : 'depth' expects a positive integer (got '0')."),
        ("balance uri len", "uri : 'len' expects a positive integer (got '')."),
        ("balance uri deep", "uri only accepts parameters 'len', 'depth', 'path-only', and"),
        ("balance hdr(host) domain", "hdr only accepts 'use_domain_only' modifier"),
        ("balance hdr()", "hdr requires an http header field name"),
        ("balance url_param u check_post", "option 'check_post' is not implemented yet"),
        ("balance hdr", "'balance hdr' needs a header name: hdr(NAME)"),
        ("balance url_param", "balance url_param requires an URL parameter name"),
        ("balance rundrobin", "unknown algorithm 'rundrobin'; did you mean 'roundrobin'?"),
        ("balance random(0)", "random(N) needs at least 1 draw"),
        ("balance roundrobin extra", "unexpected argument 'extra'"),
        ("hash-type consistent md5", "only supports 'sdbm', 'djb2', 'crc32', or 'wt6'"),
        ("hash-type consistent none", "only supports 'sdbm', 'djb2', 'crc32', or 'wt6'"),
        ("hash-type consistent avalanche", "only supports 'sdbm', 'djb2', 'crc32', or 'wt6'"),
        ("hash-type map-based sdbm x", "only supports 'avalanche' as a modifier"),
        ("hash-type maglev sdbm", "unexpected argument 'sdbm'"),
        ("hash-type ring", "unknown method 'ring'"),
        ("retries -1", "at least 0"),
    ],
)
def test_bad_balance_lines(line: str, message: str) -> None:
    found = errors(f"backend be\n    {line}\n")
    assert len(found) == 1 and message in found[0], found
    assert found[0].startswith(f"{at(2)}: error: ")


def test_timeouts_all_of_them() -> None:
    config, _ = parse_ok(
        """
listen l
    bind :80
    timeout connect 5s
    timeout client 1m
    timeout client-fin 2s
    timeout server 1m
    timeout server-fin 3s
    timeout queue 4000
    timeout tunnel 1h
    timeout check 10s
    timeout http-request 10s
    timeout http-keep-alive 2s
    server a 10.0.0.1:80
""",
        base="",
    )
    assert proxy(config, "l").timeouts == Timeouts(
        connect=5000,
        client=60_000,
        client_fin=2000,
        server=60_000,
        server_fin=3000,
        queue=4000,
        tunnel=3_600_000,
        check=10_000,
        http_request=10_000,
        http_keep_alive=2000,
    )


def test_a_zero_timeout_is_no_timeout() -> None:
    config, _ = parse_ok("backend be\n    timeout server 0\n")
    assert proxy(config, "be").timeouts.server is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("contimeout 5s", "removed from HAProxy; use 'timeout connect' instead"),
        ("clitimeout 5s", "removed from HAProxy; use 'timeout client' instead"),
        ("srvtimeout 5s", "removed from HAProxy; use 'timeout server' instead"),
        (
            "timeout conect 5s",
            "unknown 'timeout conect' in 'defaults' section; did you mean 'timeout connect'?",
        ),
        ("timeout", "expects one of: check, client"),
        ("timeout connect", "expects a duration"),
        ("timeout connect 5x", "unexpected character 'x'"),
        ("timeout connect 5s 6s", "unexpected argument '6s'"),
    ],
)
def test_bad_timeouts(line: str, message: str) -> None:
    found = errors(f"    {line}\n")
    assert len(found) == 1 and message in found[0], found


def test_options() -> None:
    config, diagnostics = parse_ok(
        """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
    option httplog
    option dontlognull
    option logasap
    option http-server-close
    option redispatch
    option allbackups
listen l
    bind :80
    redirect location /
""",
        base="",
    )
    assert diagnostics == []
    assert proxy(config, "l").options == {
        Option.HTTPLOG,
        Option.DONTLOGNULL,
        Option.LOGASAP,
        Option.HTTP_SERVER_CLOSE,
        Option.REDISPATCH,
        Option.ALLBACKUPS,
    }
    assert proxy(config, "l").redispatch == -1


@pytest.mark.parametrize(
    ("lines", "options", "redispatch"),
    [
        ("option redispatch 3", {Option.REDISPATCH}, 3),
        ("option redispatch -2", {Option.REDISPATCH}, -2),
        ("option redispatch 0", set(), None),
        ("option redispatch\n    no option redispatch", set(), None),
        ("option allbackups\n    default option allbackups", set(), None),
        ("option tcplog", {Option.TCPLOG}, None),
    ],
)
def test_option_forms(lines: str, options: set[Option], redispatch: int | None) -> None:
    config, _ = parse_ok(f"backend be\n    {lines}\n")
    be = proxy(config, "be")
    assert (set(be.options), be.redispatch) == (options, redispatch)


def test_no_option_in_a_proxy_undoes_the_defaults() -> None:
    config, _ = parse_ok(
        "defaults\n    option dontlognull\nfrontend fe\n    bind :80\n    no option dontlognull\n"
        "    default_backend be\nbackend be\n"
    )
    assert Option.DONTLOGNULL not in proxy(config, "fe").options


def test_tcplog_and_httplog_override_each_other() -> None:
    config, diagnostics = parse_ok(
        "frontend fe\n    mode http\n    bind :80\n    option tcplog\n    option httplog\n"
        "    redirect location /\n"
    )
    assert proxy(config, "fe").options == {Option.HTTPLOG}
    assert diagnostics == [
        f"{at(5)}: warning: 'option httplog': overrides 'option tcplog' written at {at(4)}"
    ]


def test_forwardfor_details() -> None:
    config, _ = parse_ok(
        "backend be\n    mode http\n"
        "    option forwardfor except 127.0.0.0/8 header X-Client if-none\n"
    )
    be = proxy(config, "be")
    assert Option.FORWARDFOR in be.options
    assert (be.forwardfor_except, be.forwardfor_header, be.forwardfor_if_none) == (
        "127.0.0.0/8",
        "X-Client",
        True,
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("no option forwardfor", "'no' is not supported for option 'forwardfor'"),
        ("no option httplog", "'no' is not supported for option 'httplog'"),
        ("option forwardfor except", "'except' expects a value"),
        ("option forwardfor always", "unexpected argument 'always'"),
        ("option dontlognull extra", "unexpected argument 'extra'"),
        ("option httplog clf extra", "unexpected argument 'extra'"),
        ("option spop-check", "this HAProxy option is not implemented yet in poise"),
        ("option httpchk GET / HTTP/1.1 x", "cannot handle unexpected argument 'x'"),
        (
            "option tcplg",
            "unknown 'option tcplg' in 'defaults' section; did you mean 'option tcplog'?",
        ),
        ("option redispatch x", "'x' is not an integer"),
        ("no timeout connect", "the 'no' prefix is not supported for 'timeout connect'"),
    ],
)
def test_bad_options(line: str, message: str) -> None:
    found = errors(f"    {line}\n")
    assert len(found) == 1 and message in found[0], found


def test_harmless_options_are_warnings() -> None:
    _, diagnostics = parse_ok(
        "    option splice-auto\n    option tcp-smart-accept\n    option http-no-delay\n"
    )
    assert diagnostics == [
        f"{at(1)}: warning: 'option splice-auto': ignored: poise does not splice",
        f"{at(2)}: warning: 'option tcp-smart-accept': ignored: poise leaves TCP_DEFER_ACCEPT "
        "to the system",
        f"{at(3)}: warning: 'option http-no-delay': ignored: poise always sends each buffer "
        "at once (TCP_NODELAY, no MSG_MORE)",
    ]


def test_logs_global_targets_and_no_log() -> None:
    text = """
global
    log 127.0.0.1 local2
defaults
    log global
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend a
backend b
    log stdout format raw local0
backend c
    no log
backend d
    no log
    log global
    log global
"""
    config, _ = parse_ok(text, base="")
    g = LogTarget("udp", "127.0.0.1", 514, "local2", Where("p.cfg", 3), format="local")
    own = LogTarget("stdout", "", 0, "local0", Where("p.cfg", 11), format="raw")
    assert [proxy(config, n).logs for n in "abcd"] == [(g,), (g, own), (), (g, g)]


def test_bad_log_lines_in_proxies() -> None:
    assert "'no log': unexpected argument 'global'" in errors("    no log global\n")[0]
    assert "'log': unexpected argument 'x'" in errors("    log global x\n")[0]


def test_redirects() -> None:
    config, diagnostics = parse_ok(
        """
frontend fe
    mode http
    bind :80
    redirect location https://view.domain.local
    redirect prefix https://example.com code 301 drop-query
    redirect code 308 scheme https append-slash
"""
    )
    assert diagnostics == []
    assert proxy(config, "fe").redirects == (
        Redirect("location", "https://view.domain.local", at(5)),
        Redirect("prefix", "https://example.com", at(6), 301, drop_query=True),
        Redirect("scheme", "https", at(7), 308, append_slash=True),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("redirect scheme https if !{ ssl_fc", "missing closing '}' in condition"),
        ("redirect location / unless x", "no such ACL 'x'"),
        ("redirect location / code 304", "unsupported code 304"),
        ("redirect location", "'location' expects a value"),
        ("redirect code 301", "expects 'location', 'prefix' or 'scheme'"),
        ("redirect prefix / set-cookie SEEN=1", "'set-cookie' is not implemented yet"),
        ("redirect prefix / bogus", "unexpected argument 'bogus'"),
    ],
)
def test_bad_redirects(line: str, message: str) -> None:
    found = errors(f"frontend fe\n    mode http\n    bind :80\n    {line}\n")
    assert message in found[0], found


def test_use_backend_and_default_backend() -> None:
    config, _ = parse_ok(
        "frontend fe\n    bind :80\n    use_backend b1\n    use_backend b2\n"
        "    default_backend b1\n"
        "backend b1\nbackend b2\n"
    )
    fe = proxy(config, "fe")
    assert fe.use_backends == (UseBackend("b1", at(3)), UseBackend("b2", at(4)))
    assert fe.default_backend == "b1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("use_backend b if { nope }", "unknown fetch method 'nope'"),
        ("use_backend b unless x", "no such ACL 'x'"),
        ("use_backend %[req.hdr(host)]", "dynamic backend names in mode tcp are not implemented"),
        ("use_backend", "expects a backend name"),
        ("default_backend a b", "unexpected argument 'b'"),
    ],
)
def test_bad_backend_choices(line: str, message: str) -> None:
    found = errors(f"frontend fe\n    bind :80\n    {line}\nbackend b\n")
    assert message in found[0], found


def test_frontend_settings_and_identity() -> None:
    config, _ = parse_ok(
        """
frontend fe
    bind :80
    maxconn 500
    backlog 64
    description public   entry
    id 7
    disabled
    default_backend be
backend be
    enabled
"""
    )
    fe = proxy(config, "fe")
    assert (fe.maxconn, fe.description, fe.id, fe.disabled) == (500, "public entry", 7, True)
    assert fe.binds[0].backlog == 64
    assert proxy(config, "be").disabled is False


def test_the_matrix_rules_defaults_sections() -> None:
    found = errors(
        "    bind :80\n    server s 1.2.3.4\n    redirect location /\n    description x\n"
        "    id 3\n    use_backend b\n"
    )
    assert found == [
        f"{at(n)}: error: '{k}': not allowed in a 'defaults' section"
        for n, k in enumerate(
            ["bind", "server", "redirect", "description", "id", "use_backend"], start=1
        )
    ]


def test_the_matrix_warns_about_a_missing_capability_as_haproxy_does() -> None:
    diagnostics = problems(
        """
frontend fe
    bind :80
    balance roundrobin
    timeout connect 5s
    retries 3
    option redispatch
    hash-type consistent
    default_backend be
backend be
    bind :81
    maxconn 30
    default_backend x
    timeout client 3s
    option dontlognull
    option httplog
"""
    )
    messages = [str(d) for d in diagnostics]
    fe_missing = "ignored because frontend 'fe' has no backend capability"
    be_missing = "ignored because backend 'be' has no frontend capability"
    assert messages == [
        f"{at(4)}: warning: 'balance': {fe_missing}",
        f"{at(5)}: warning: 'timeout connect': {fe_missing}",
        f"{at(6)}: warning: 'retries': {fe_missing}",
        f"{at(7)}: warning: 'option redispatch': {fe_missing}",
        f"{at(8)}: warning: 'hash-type': {fe_missing}",
        f"{at(11)}: warning: 'bind': {be_missing}",
        f"{at(12)}: warning: 'maxconn': {be_missing}",
        f"{at(13)}: warning: 'default_backend': {be_missing}",
        f"{at(14)}: warning: 'timeout client': {be_missing}",
        f"{at(15)}: warning: 'option dontlognull': {be_missing}",
        f"{at(16)}: warning: 'option httplog': {be_missing}",
    ]


def test_servers_need_a_backend_capability() -> None:
    found = errors("frontend fe\n    bind :80\n    server s 1.2.3.4\n    default-server check\n")
    assert found[:2] == [
        f"{at(3)}: error: 'server': not allowed because frontend 'fe' has no backend capability",
        f"{at(4)}: error: 'default-server': not allowed because frontend 'fe' has no backend "
        "capability",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("mode health", "unknown mode 'health'"),
        ("mode", "expects tcp or http"),
        ("maxconn lots", "'lots' is not an integer"),
        ("id 0", "at least 1"),
        ("disabled now", "unexpected argument 'now'"),
        ("description", "expects a text"),
        ("bind-process all", None),
    ],
)
def test_other_bad_lines(line: str, message: str | None) -> None:
    diagnostics = problems(
        f"frontend fe\n    bind :80\n    {line}\n    default_backend be\nbackend be\n"
    )
    if message is None:  # a warning only
        assert all(d.severity is Severity.WARNING for d in diagnostics)
    else:
        assert message in str(diagnostics[0]), diagnostics


def test_stats_realm_of_several_words_keeps_the_first_as_haproxy_does() -> None:
    # Measured: haproxy 2.6.12 answers `WWW-Authenticate: Basic realm="Haproxy"`.
    config, diagnostics = parse_ok(
        "listen st\n    mode http\n    bind :8404\n    stats enable\n"
        "    stats realm Haproxy Statistics\n"
    )
    page = config.proxies[0].stats
    assert page is not None and page.realm == "Haproxy"
    assert diagnostics == [
        "p.cfg:10: warning: 'stats realm': only the first word is the realm, as in HAProxy: "
        "'Haproxy' (escape the spaces or quote it to have them all)"
    ]
