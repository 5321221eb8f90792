"""Diagnostics: every problem at FILE:LINE with its keyword, parsing goes on after each,
unknown words get the nearest keyword, HAProxy keywords poise lacks are named as such."""

from __future__ import annotations

import pytest

from poise.config import keywords
from poise.config.conditions import Facts
from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Where


def diagnostics(text: str, name: str = "e.cfg", env: dict[str, str] | None = None) -> list[str]:
    return [str(d) for d in parse([(name, text)], env or {})[1]]


def test_every_error_is_reported_and_parsing_goes_on() -> None:
    config, found = parse(
        [
            (
                "e.cfg",
                "global\n    deamon\n    maxconn x\ndefaults\n    timeout connect 1s\n"
                "    mode htp\nlisten l\n    bind :80\n    sever a 10.0.0.1\n"
                "    server b 10.0.0.2\n",
            )
        ],
        {},
    )
    assert config is None
    errors = [d for d in found if d.severity is Severity.ERROR]
    assert [(d.where, d.keyword) for d in errors] == [
        (Where("e.cfg", 2), "deamon"),
        (Where("e.cfg", 3), "maxconn"),
        (Where("e.cfg", 6), "mode"),
        (Where("e.cfg", 9), "sever"),
    ]
    assert str(errors[0]) == (
        "e.cfg:2: error: 'deamon': unknown keyword in 'global' section; did you mean 'daemon'?"
    )


@pytest.mark.parametrize(
    ("section", "word", "suggestion"),
    [
        ("global", "pidfil", "pidfile"),
        ("global", "hard-stop-afer", "hard-stop-after"),
        ("backend b", "balanse", "balance"),
        ("backend b", "sever", "server"),
        ("frontend f", "defualt_backend", "default_backend"),
        ("frontend f", "bnd", "bind"),
        ("defaults", "timout", "timeout"),
    ],
)
def test_unknown_keywords_suggest_the_nearest(section: str, word: str, suggestion: str) -> None:
    found = diagnostics(f"{section}\n    {word} x\n")
    kind = section.split(maxsplit=1)[0]
    assert found[0] == (
        f"e.cfg:2: error: '{word}': unknown keyword in '{kind}' section; "
        f"did you mean '{suggestion}'?"
    )


def test_an_unknown_keyword_far_from_all_gets_no_suggestion() -> None:
    assert diagnostics("backend b\n    xyzzy\n") == [
        "e.cfg:2: error: 'xyzzy': unknown keyword in 'backend' section"
    ]


@pytest.mark.parametrize(
    ("section", "line", "keyword"),
    [
        ("backend b", "http-check connect", "http-check connect"),
        ("frontend f", "capture cookie SRV len 32", "capture cookie"),
        ("frontend f", "errorloc 503 http://example.com/", "errorloc"),
        ("frontend f", "unique-id-format %ci", "unique-id-format"),
        ("listen l", "stats http-request deny", "stats http-request"),
        ("global", "grace 1s", "grace"),
    ],
)
def test_haproxy_keywords_not_implemented_say_so(section: str, line: str, keyword: str) -> None:
    found = diagnostics(f"{section}\n    {line}\n")
    assert found[0] == (
        f"e.cfg:2: error: '{keyword}': this HAProxy keyword is not implemented yet in poise"
    )


def test_unimplemented_sections_are_reported_once_and_skipped() -> None:
    found = diagnostics("mailers m\n    mailer x 1.1.1.1:25\nring r\n    size 32764\n")
    assert found == [
        "e.cfg:1: error: 'mailers': this HAProxy section is not implemented yet in poise",
        "e.cfg:3: error: 'ring': this HAProxy section is not implemented yet in poise",
    ]


def test_conditional_blocks_and_messages_as_haproxy_reads_them() -> None:
    """Each line here is what haproxy 2.6.12 -c prints for the same file (its NOTICE is
    poise's notice); `streq(a, a)` compares "a" with " a": the words are joined by one
    space before the expression is read."""
    text = """global
.if streq(a,a) && !defined(NOPE_X)
    .notice "notice one"
.elif 1
    .warning "never"
.else
    .alert "never2"
.endif
.if version_atleast(2.6) || feature(NOPE)
    .notice "version ok"
.endif
.if version_before(2.6.12)
    .notice "before"
.endif
.if feature(OPENSSL) && openssl_version_atleast(1.1.1)
    .notice ssl ok here
.endif
.if streq(a, a)
    .notice "space kept"
.else
    .notice "space differs"
.endif
.if (0 || 1) && !(0)
    .diag "diag line"
    .notice "parens"
.endif
.if defined(HOME)
    .warning "home"
.endif
.if 0
    nosuchkeyword at all
.endif
"""
    config, found = parse([("e.cfg", text)], {"HOME": "/root"}, facts=Facts(openssl=(3, 0, 11)))
    assert config is None
    assert [str(d) for d in found] == [
        "e.cfg:3: notice: 'notice one'.",
        "e.cfg:10: notice: 'version ok'.",
        "e.cfg:16: error: Unexpected argument 'ok' for '.notice'. Use quotes if the message "
        "should contain spaces.",
        "e.cfg:21: notice: 'space differs'.",
        "e.cfg:25: notice: 'parens'.",
        "e.cfg:28: warning: 'home'.",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (".if 1\ndefaults\n", "e.cfg:2: error: non-terminated '.if' block."),
        (".endif\n", "e.cfg:1: error: lone '.endif' with no matching '.if'."),
        (
            ".if foo(1)\n.endif\n",
            "e.cfg:1: error: unparsable conditional expression 'foo(1)' in '.if' at position 1",
        ),
        (
            ".if 1\n.else\n.else\n.endif\n",
            "e.cfg:3: error: '.else' after '.else' is not permitted.",
        ),
    ],
)
def test_bad_conditional_blocks(text: str, message: str) -> None:
    assert diagnostics(text)[:1] == [message]


def test_lexing_errors_come_in_line_order_with_the_others() -> None:
    found = diagnostics('global\n    deamon\n    pidfile "/x\n    nodee a\n')
    assert [f.split(": ")[0] for f in found] == ["e.cfg:2", "e.cfg:3", "e.cfg:4"]
    assert found[1] == "e.cfg:3: error: unmatched quote at column 13"


def test_each_file_starts_a_section() -> None:
    config, found = parse(
        [("a.cfg", "global\n    daemon\n"), ("b.cfg", "    maxconn 10\nglobal\n    maxconn 20\n")],
        {},
    )
    assert config is None
    assert [str(d) for d in found] == [
        "b.cfg:1: error: 'maxconn': outside of any section: each file starts with a section "
        "keyword (global, defaults, frontend, backend or listen)"
    ]


def test_an_empty_argument_ends_the_line_as_in_haproxy() -> None:
    _, found = parse(
        [
            (
                "e.cfg",
                'defaults\n    timeout connect "" 5s\nbackend b\n    server a 10.0.0.1 "" check\n',
            )
        ],
        {},
    )
    assert [str(d) for d in found[:2]] == [
        "e.cfg:2: warning: 'timeout': argument 3 is empty, which ends the line as in HAProxy: "
        "the words after it are ignored",
        "e.cfg:2: error: 'timeout connect': expects a duration",
    ]
    assert "e.cfg:4: warning: 'server': argument 4 is empty" in str(found[2])


def test_environment_variables_reach_the_parser() -> None:
    config, found = parse(
        [
            (
                "e.cfg",
                'global\n    node "${NODE-lb1}"\nlisten l\n    bind "${ADDR}:${PORT}"\n'
                '    server a "${BACKEND}:80"\n',
            )
        ],
        {"ADDR": "127.0.0.1", "PORT": "8080", "BACKEND": "10.0.0.9"},
    )
    assert config is not None, [str(d) for d in found]
    assert config.global_.node == "lb1"
    assert str(config.proxies[0].binds[0].address) == "127.0.0.1:8080"
    assert str(config.proxies[0].servers[0].address) == "10.0.0.9:80"


def test_the_keyword_tables_hold_together() -> None:
    # Every keyword the matrix marks as negatable is an option of the matrix.
    assert keywords.NEGATABLE_OPTIONS <= keywords.OPTION_NAMES
    # Harmless keywords are HAProxy's.
    assert set(keywords.HARMLESS_GLOBAL) <= keywords.GLOBAL_KEYWORDS
    assert set(keywords.HARMLESS_OPTIONS) <= keywords.OPTION_NAMES
    assert set(keywords.HARMLESS_BIND) <= set(keywords.BIND_OPTIONS)
    # The five sections poise reads are not in the unimplemented list.
    assert not keywords.SECTIONS & keywords.UNIMPLEMENTED_SECTIONS
    assert keywords.suggest("roundrobn", ["roundrobin", "leastconn"]) == "roundrobin"
    assert keywords.suggest("zzz", ["roundrobin"]) is None


def test_control_bytes_in_a_message_are_escaped_so_it_stays_one_line() -> None:
    found = diagnostics(
        'global\n    bogus\x1b[31m "a\\nb\\rc" \x7f\u202e\nfrontend "f\\x01"\n    bind :80\n'
    )
    assert found[0] == "e.cfg:2: error: 'bogus\\x1b[31m': unknown keyword in 'global' section"
    assert all(line.isprintable() for line in found)
    assert any("f\\x01" in line for line in found), found


def test_addresses_expand_variables_even_unquoted_as_haproxy_does() -> None:
    # HAProxy 2.6 expands `$VAR` / `${VAR}` in every bind and server address (str2sa_range
    # calls env_expand), quoted or not; an unset one is empty. A server without a port
    # then uses the port the client connected to (`show servers state`: srv_port 0), with
    # no warning; a bind without a port is refused ("missing port specification").
    text = (
        "defaults\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
        "listen l\n    bind :${PORT}\n    bind 127.0.0.2:$PORT\n"
        "    server a 127.0.0.1:${UNSET}\n    server b $HOST:${PORT}\n"
        '    server c "127.0.0.1:${UNSET}"\n    server-template t 2 ${HOST}${UNSET}\n'
    )
    config, found = parse([("e.cfg", text)], {"PORT": "8080", "HOST": "10.0.0.9"})
    assert config is not None, [str(d) for d in found]
    (proxy,) = config.proxies
    assert [str(b.address) for b in proxy.binds] == [":8080", "127.0.0.2:8080"]
    assert [(s.address.host, s.address.port) for s in proxy.servers] == [
        ("127.0.0.1", None),
        ("10.0.0.9", 8080),
        ("127.0.0.1", None),
        ("10.0.0.9", None),
        ("10.0.0.9", None),
    ]
    assert not found
    _, found = parse([("e.cfg", text)], {"HOST": "10.0.0.9"})
    assert [str(d) for d in found if d.severity is Severity.ERROR] == [
        "e.cfg:6: error: 'bind': missing port in ':' (from ':${PORT}': is an environment "
        "variable unset?)",
        "e.cfg:7: error: 'bind': missing port in '127.0.0.2:' (from '127.0.0.2:$PORT': is an "
        "environment variable unset?)",
    ]
    _, found = parse([("e.cfg", text)], {"PORT": "8080"})
    # `$HOST:${PORT}` without HOST is `:8080`: a transparent server, which HAProxy takes.
    errors = [d for d in found if d.severity is Severity.ERROR]
    assert len(errors) == 1, [str(d) for d in found]
    assert str(errors[0]) == (
        "e.cfg:11: error: 'server-template': server-template 't': '${HOST}${UNSET}' resolves "
        "to an empty address (environment variable missing?)"
    )
