"""The HTTP keywords of haproxy.cfg (configuration.txt 4.2 and 7): ACLs and conditions,
http-request/http-response rules, redirects, cookies, error files, captures, HTTP checks,
`http-reuse`, `log-format`, the connection-mode options and layer 7 balancing.

Errors and warnings say what `haproxy -c` 2.6.12 says about the same lines (each case
was run through it); files named by the configuration are given by a reader, as load.py
gives them from disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.config import patterns
from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import (
    AclPattern,
    Algorithm,
    Balance,
    Capture,
    Config,
    Cookie,
    HttpCheck,
    HttpExpect,
    HttpReply,
    Mode,
    Option,
    Proxy,
    Where,
)
from poise.system.load import load_config

BASE = """defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""
GOOD_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nsorry"
FILES = {
    "/e/503.http": GOOD_RESPONSE,
    "/e/empty.http": b"",
    "/e/bad.http": b"garbage\n",
    "/e/chunked.http": b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "/e/short.http": b"HTTP/1.1 503 x\r\nContent-Length: 10\r\n\r\nno\n",
    "/p/paths.lst": b"# static paths\n/static\n  /images\n\n#/not\n",
    "/p/body.txt": b"hello",
}


def read_file(path: str) -> bytes:
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(2, "No such file or directory") from None


def diagnose(text: str, base: str = BASE) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("h.cfg", base + text)], {}, read_file)
    return config, [str(d) for d in diagnostics]


def parse_ok(text: str, base: str = BASE) -> Config:
    config, diagnostics = diagnose(text, base)
    assert config is not None, diagnostics
    return config


def errors(text: str, base: str = BASE) -> list[str]:
    config, diagnostics = parse([("h.cfg", base + text)], {}, read_file)
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def at(line: int) -> str:
    """A line of the text after BASE (5 lines)."""
    return f"h.cfg:{line + 5}"


def proxy(config: Config, name: str) -> Proxy:
    found = config.proxy(name)
    assert found is not None
    return found


FRONT = "frontend f\n    bind :80\n    default_backend b\n"
BACK = "backend b\n    server s 10.0.0.1:80\n"


# --- ACLs and conditions ---------------------------------------------------------------------


def test_acls_with_one_name_or_together_and_conditions_resolve_them() -> None:
    config = parse_ok(
        FRONT
        + "    acl static path_beg /static /images\n"
        + "    acl static path_end .css .js\n"
        + "    acl host hdr(host) -i example.com\n"
        + "    use_backend b if static host || { src 10.0.0.0/8 } or !TRUE\n"
        + BACK
    )
    f = proxy(config, "f")
    assert [a.name for a in f.acls] == ["static", "host"]
    static, host = f.acls
    assert [t.criterion for t in static.tests] == ["path_beg", "path_end"]
    assert [(t.sample.fetch, t.match) for t in static.tests] == [("path", "beg"), ("path", "end")]
    assert host.tests[0].patterns == (AclPattern("example.com", ignore_case=True),)
    condition = f.use_backends[0].condition
    assert condition is not None and not condition.unless
    first, second, third = condition.suites
    assert [(t.acl.name, t.negate) for t in first] == [("static", False), ("host", False)]
    assert first[0].acl is static  # the link pass shares the ACL object
    assert [(t.acl.name, t.acl.tests[0].sample.fetch) for t in second] == [("", "src")]
    assert [(t.acl.name, t.negate) for t in third] == [("TRUE", True)]


@pytest.mark.parametrize(
    ("criterion", "fetch", "args", "match"),
    [
        ("path", "path", (), "str"),
        ("path_reg", "path", (), "reg"),
        ("path_len", "path", (), "len"),
        ("url_beg", "url", (), "beg"),
        ("base_dom", "base", (), "dom"),
        ("hdr(host)", "req.hdr", ("host",), "str"),
        ("hdr_end(host,1)", "req.hdr", ("host", "1"), "end"),
        ("req.hdr(x)", "req.hdr", ("x",), "str"),
        ("req.fhdr(ua)", "req.fhdr", ("ua",), "str"),
        ("hdr_cnt(host)", "req.hdr_cnt", ("host",), "int"),
        ("urlp(id)", "url_param", ("id",), "str"),
        ("url_param(id,;)", "url_param", ("id", ";"), "str"),
        ("cook(SID)", "req.cook", ("SID",), "str"),
        ("req.cook_sub(SID)", "req.cook", ("SID",), "sub"),
        ("req.cook_cnt(SID)", "req.cook_cnt", ("SID",), "int"),
        ("src", "src", (), "ip"),
        ("dst_port", "dst_port", (), "int"),
        ("method", "method", (), "meth"),
        ("req.ver", "req.ver", (), "str"),
        ("ssl_fc", "ssl_fc", (), "bool"),
        ("ssl_fc_sni_end", "ssl_fc_sni", (), "end"),
        ("hdr_beg(host),lower", "req.hdr", ("host",), "str"),  # a converter: the type wins
    ],
)
def test_acl_criteria(criterion: str, fetch: str, args: tuple[str, ...], match: str) -> None:
    config = parse_ok(FRONT + f"    acl a {criterion} -- \n" + BACK)
    test = proxy(config, "f").acls[0].tests[0]
    assert (test.sample.fetch, test.sample.args, test.match) == (fetch, args, match)


def test_acl_flags_operators_and_pattern_files() -> None:
    config = parse_ok(
        FRONT
        + "    acl a path -m beg -f /p/paths.lst -i /Other\n"
        + "    acl b hdr_cnt(host) gt 1 eq 5 10:20 :3\n"
        + "    acl c path -m found\n"
        + "    acl d path -- -i\n"
        + BACK
    )
    a, b, c, d = proxy(config, "f").acls
    assert [(p.value, p.ignore_case) for p in a.tests[0].patterns] == [("/Other", True)]
    assert a.tests[0].files == (("/p/paths.lst", False),)
    assert [e.key for e in patterns.REFERENCES["/p/paths.lst"].entries] == ["/static", "/images"]
    assert [(p.value, p.operator) for p in b.tests[0].patterns] == [
        ("1", "gt"),
        ("5", "eq"),
        ("10:20", "eq"),
        (":3", "eq"),
    ]
    assert (c.tests[0].match, c.tests[0].patterns) == ("found", ())
    assert d.tests[0].patterns == (AclPattern("-i"),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("acl", "expects an ACL name and a criterion"),
        ("acl a/b path /", "character '/' is not permitted in acl name 'a/b'"),
        ("acl a nope /", "unknown fetch method 'nope'"),
        ("acl a paht /", "unknown fetch method 'paht'; did you mean 'path'?"),
        ("acl a http_auth(users)", "unable to find userlist 'users' referenced in arg 1"),
        ("acl a path,nope /", "unknown converter 'nope'"),
        ("acl a path,jwt_verify(a,b) /", "converter 'jwt_verify' is not implemented yet"),
        ("acl a hdr(a,b,c) x", "expects at most 2 argument(s)"),
        ("acl a hdr(host,x) x", "occurrence 'x' is not an integer"),
        ("acl a path -m nope /", "unknown matching method 'nope'"),
        ("acl a path -m", "'-m' expects an argument"),
        ("acl a path -x /", "'-x' is not a valid ACL option"),
        ("acl a path -f /p/missing.lst", "failed to open pattern file '/p/missing.lst'"),
        ("acl a src 10.0.0.300", "'10.0.0.300' is not a valid IPv4 or IPv6 address"),
        ("acl a src localhost", "host names are not resolved by poise"),
        ("acl a dst_port abc", "'abc' is not a valid integer or range"),
        ("acl a path_reg ^(x", "regex '^(x' is invalid"),
        ("use_backend b if { path /x", "missing closing '}' in condition"),
        ("use_backend b if { }", "missing fetch method in ACL expression ''"),
        ("use_backend b if nope", "no such ACL 'nope'"),
    ],
)
def test_bad_acls(line: str, message: str) -> None:
    found = errors(FRONT + f"    {line}\n" + BACK)
    assert len(found) == 1 and message in found[0], found
    assert found[0].startswith(f"{at(4)}: error: ")


def test_an_acl_is_declared_before_the_rules_that_use_it() -> None:
    # HAProxy: "error detected while parsing an 'http-request deny' condition : no such
    # ACL : 'later'".
    found = errors(FRONT + "    http-request deny if later\n    acl later path /later\n" + BACK)
    assert found == [
        f"{at(4)}: error: 'http-request': no such ACL 'later' here: it is declared at "
        f"{at(5)}, after this line (an ACL must be declared before the rules that use it)"
    ]


def test_the_acls_of_a_defaults_section_serve_its_own_rules_only() -> None:
    found = errors(
        "defaults d\n    mode http\n    acl dacl path /x\n    http-request deny if dacl\n"
        "frontend f from d\n    bind :80\n    use_backend b if dacl\n    default_backend b\n"
        "backend b from d\n",
        base="",
    )
    assert found[0] == "h.cfg:7: error: 'use_backend': no such ACL 'dacl'"
    # A frontend and a backend cannot both inherit rules from one defaults section.
    assert found[1].startswith(
        "h.cfg:9: error: frontends and backends cannot inherit from the same defaults "
        "section if it defines TCP/HTTP rules (defaults section at h.cfg:1"
    )


def test_rules_of_a_named_defaults_section_come_first() -> None:
    config = parse_ok(
        "defaults d\n    mode http\n    acl a path /a\n    http-request set-header X-D 1 if a\n"
        "defaults\n    mode http\n"
        "frontend f from d\n    bind :80\n    http-request set-header X-F 1\n"
        "    default_backend b\nbackend b\n",
        base="",
    )
    rules = proxy(config, "f").http_request_rules
    assert [r.name for r in rules] == ["X-D", "X-F"]
    condition = rules[0].condition
    assert condition is not None and condition.suites[0][0].acl.name == "a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults\n    acl a path /\n", "'acl' not allowed in anonymous 'defaults' section"),
        (
            "defaults\n    http-request deny\n",
            "'http-request' not allowed in anonymous 'defaults' section",
        ),
        (
            "defaults d1\n    http-request deny\ndefaults d2 from d1\n",
            "a defaults section cannot inherit from a defaults section defining TCP/HTTP rules",
        ),
    ],
)
def test_rules_in_defaults_sections(text: str, message: str) -> None:
    found = errors(text, base="")
    assert message in found[0], found


def test_acls_that_cannot_match_where_they_are_used_are_warned_about() -> None:
    _, diagnostics = diagnose(
        FRONT
        + "    acl s status 200\n"
        + "    http-request deny if s\n"
        + "    http-response deny if { hdr_beg(x) y } || METH_GET\n"
        + "    http-response deny if HTTP_1.1\n"
        + "    acl h hdr(host) -- \n"
        + BACK
    )
    assert diagnostics == [
        f"{at(5)}: warning: 'http-request': acl 's' will never match because it only involves "
        "keywords that are incompatible with 'frontend http-request header rule'",
        f"{at(6)}: warning: 'http-response': anonymous acl will never match because it uses "
        "keyword 'hdr_beg' which is incompatible with 'frontend http-response header rule'",
        f"{at(7)}: warning: 'http-response': acl 'HTTP_1.1' will never match because it only "
        "involves keywords that are incompatible with 'frontend http-response header rule'",
    ]


def test_an_acl_without_pattern_is_warned_about() -> None:
    _, diagnostics = diagnose(FRONT + "    acl h hdr(host)\n" + BACK)
    assert diagnostics == [
        f"{at(4)}: warning: 'acl': 'hdr(host)': no pattern to match against were provided, so "
        "this ACL will never match (add '--' if intended, or use '-m found' to check for "
        "existence)"
    ]


# --- http-request, http-response, redirect, use_backend -------------------------------------


def test_http_request_rules() -> None:
    config = parse_ok(
        FRONT
        + '    http-request set-header X-Client "%ci:%cp %[req.hdr(host),lower]"\n'
        + "    http-request add-header X-If if if TRUE\n"
        + "    http-request del-header X-Secret -m beg\n"
        + "    http-request replace-header Cookie foo=([^;]*);(.*) foo=\\1;\\2\n"
        + "    http-request replace-value X-F ^192\\.168\\.(.*)$ 172.16.\\1\n"
        + "    http-request allow if LOCALHOST\n"
        + "    http-request deny deny_status 429 unless { src 10.0.0.0/8 }\n"
        + "    http-request return status 404 content-type text/plain string nope hdr X-A %[path]\n"
        + "    http-request return errorfile /e/503.http if { path /down }\n"
        + "    http-request redirect location /new%[path] code 301 if { path_beg /old }\n"
        + BACK
    )
    rules = proxy(config, "f").http_request_rules
    assert [r.action for r in rules] == [
        "set-header",
        "add-header",
        "del-header",
        "replace-header",
        "replace-value",
        "allow",
        "deny",
        "return",
        "return",
        "redirect",
    ]
    set_header, add_header, del_header, replace_header, replace_value = rules[:5]
    assert set_header.value is not None
    assert [type(p).__name__ for p in set_header.value.parts] == [
        "FormatVar",
        "str",
        "FormatVar",
        "str",
        "Sample",
    ]
    assert (add_header.name, add_header.value and add_header.value.text) == ("X-If", "if")
    assert add_header.condition is not None
    assert (del_header.name, del_header.match) == ("X-Secret", "beg")
    assert (replace_header.regex, replace_header.value and replace_header.value.text) == (
        "foo=([^;]*);(.*)",
        "foo=\\1;\\2",
    )
    assert replace_value.regex == "^192\\.168\\.(.*)$"
    deny, ret, ret_file, redirect = rules[6:]
    assert deny.reply == HttpReply(429, default_errorfiles=True)
    assert ret.reply is not None and ret.reply.status == 404 and ret.reply.body == b"nope"
    assert [name for name, _ in ret.reply.headers] == ["X-A"]
    assert ret_file.reply is not None and ret_file.reply.errorfile == GOOD_RESPONSE
    assert redirect.redirect is not None and redirect.redirect.target_format is not None
    assert redirect.redirect.code == 301


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http-request", "expects an action (set-header, add-header"),
        ("http-request bogus", "unknown action 'bogus'"),
        ("http-request set-heade X 1", "unknown action 'set-heade'; did you mean 'set-header'?"),
        ("http-request set-nice 5", "action 'set-nice' is not implemented yet in poise"),
        ("http-request sc-inc-gpc(0,1)", "action 'sc-inc-gpc' is not implemented yet in poise"),
        ("http-response set-status 99", "expects an integer status code between 100 and 999"),
        ("http-response set-status 200 reasn x", "expects only 'reason' keyword after the"),
        ("http-request set-status 200", "unknown action 'set-status'"),
        ("http-request set-header X", "'set-header' expects exactly 2 arguments"),
        (
            "http-request add-header X a b",
            "'http-request add-header' expects either 'if' or 'unless' followed by a "
            "condition but found 'b'",
        ),
        ("http-request allow extra", "found 'extra'"),
        ("http-request set-header X %[nope]", "unknown fetch method 'nope'"),
        ("http-request set-header X %[path", "missing ']' after 'path'"),
        ("http-request set-header X %Q", "no such format variable 'Q'"),
        ("http-request set-header X %T", "log-format variable '%T' is not implemented yet"),
        ("http-request set-header X %[status]", "needs 'HTTP response'"),
        ("http-response set-header X %[path]", "needs 'HTTP request headers'"),
        ("http-request replace-header X a", "'replace-header' expects exactly 3 arguments"),
        ("http-request replace-header X (a b", "regex '(a' is invalid"),
        ("http-request del-header X -m nope", "'-m' expects 'str', 'beg', 'end', 'sub' or 'reg'"),
        ("http-request deny deny_status", "'deny_status' expects an argument"),
        ("http-request deny deny_status 418", "status code '418' not handled by default"),
        ("http-request deny deny_status 600", "Unexpected status code '600'"),
        ("http-request return status 100", "Unexpected status code '100'"),
        ("http-request return string x", "a content type must be defined"),
        ("http-request return file /p/missing", "error opening file '/p/missing'"),
        ("http-request return errorfile /e/bad.http", "'/e/bad.http': unable to parse headers"),
        (
            "http-request return content-type a string x file /p/body.txt",
            "unexpected 'file' argument, 'string' already defined",
        ),
        ("http-request return errorfiles errs", "unknown http-errors section 'errs' (poise"),
        ("http-request redirect location", "'location' expects a value"),
        ("http-request redirect prefix / code 304", "unsupported code 304"),
    ],
)
def test_bad_http_rules(line: str, message: str) -> None:
    found = errors(FRONT + f"    {line}\n" + BACK)
    assert len(found) == 1 and message in found[0], found


def test_if_and_unless_are_values_where_a_value_is_expected() -> None:
    config = parse_ok(
        FRONT
        + "    http-request return content-type text/plain string if if TRUE\n"
        + "    http-request del-header unless unless TRUE\n"
        + "    redirect location if code 301 if TRUE\n"
        + BACK
    )
    ret, delete = proxy(config, "f").http_request_rules
    assert ret.reply is not None and ret.reply.body == b"if" and ret.condition is not None
    assert delete.name == "unless" and delete.condition is not None
    assert delete.condition.suites[0][0].acl.name == "TRUE"
    redirect = proxy(config, "f").redirects[0]
    assert (redirect.target, redirect.code) == ("if", 301)


def test_return_replies() -> None:
    config = parse_ok(
        FRONT
        + "    http-request return\n"
        + "    http-request return status 204 content-type text/plain\n"
        + "    http-request return status 200 content-type text/plain file /p/body.txt\n"
        + '    http-request return content-type text/plain lf-string "p=%[path]"\n'
        + "    http-request return status 503 default-errorfiles\n"
        + "    http-response deny\n"
        + BACK
    )
    f = proxy(config, "f")
    empty, no_body, from_file, formatted, defaults = (r.reply for r in f.http_request_rules)
    assert empty == HttpReply(200)
    assert no_body == HttpReply(204)  # the content-type of an empty payload is dropped
    assert from_file == HttpReply(200, "text/plain", b"hello")
    assert formatted is not None and formatted.body_format is not None
    assert defaults == HttpReply(503, default_errorfiles=True)
    # A denied response gets 502 by default.
    assert f.http_response_rules[0].reply == HttpReply(502, default_errorfiles=True)


def test_rule_order_warnings_as_haproxy_gives_them() -> None:
    _, diagnostics = diagnose(
        FRONT
        + "    use_backend b if { path /u }\n"
        + "    redirect location / if { path /r }\n"
        + "    http-request set-header X 1\n"
        + BACK
    )
    assert diagnostics == [
        f"{at(5)}: warning: 'redirect': a 'redirect' rule placed after a 'use_backend' rule "
        "will still be processed before",
        f"{at(6)}: warning: 'http-request': a 'http-request' rule placed after a 'redirect' "
        "rule will still be processed before",
    ]


def test_conditional_redirects_and_use_backend() -> None:
    config = parse_ok(
        "frontend f\n    bind :80\n"
        "    redirect scheme https code 301 unless { ssl_fc }\n"
        "    use_backend api if { path_beg /api }\n"
        "    default_backend b\n" + BACK + "backend api\n"
    )
    f = proxy(config, "f")
    assert f.redirects[0].condition is not None and f.redirects[0].condition.unless
    assert f.use_backends[0].condition is not None


def test_in_tcp_mode_http_rules_are_ignored_and_use_backend_takes_conditions() -> None:
    config, diagnostics = diagnose(
        "frontend f\n    bind :80\n    http-request set-header X 1\n"
        "    http-response set-header X 1\n    default_backend b\n"
        "backend b\n    cookie S insert\n    balance uri\n    server s 10.0.0.1:80 cookie s\n",
        base=BASE.replace("mode http", "mode tcp"),
    )
    assert diagnostics == [
        f"{at(3)}: warning: 'http-request': 'http-request' rules ignored for frontend 'f' as "
        "they require HTTP mode",
        f"{at(4)}: warning: 'http-response': 'http-response' rules ignored for frontend 'f' as "
        "they require HTTP mode",
        f"{at(7)}: warning: 'cookie': cookie will be ignored for backend 'b' (needs 'mode http')",
        f"{at(8)}: warning: 'balance': Layer 7 hash not possible for backend 'b' (needs 'mode "
        "http'). Falling back to round robin",
        f"{at(9)}: warning: 'server': backend 'b': ignoring cookie for server 's' as HTTP mode "
        "is disabled",
    ]
    assert config is not None
    f, b = config.proxies
    assert (f.http_request_rules, f.http_response_rules) == ((), ())
    assert (b.cookie, b.servers[0].cookie, b.balance.algorithm) == (
        None,
        None,
        Algorithm.ROUNDROBIN,
    )
    config = parse_ok(
        "frontend f\n    bind :80\n    use_backend b if { req.ssl_sni -i a.test } || RDP_COOKIE\n"
        + BACK,
        base=BASE.replace("mode http", "mode tcp"),
    )
    (use,) = config.proxies[0].use_backends
    assert use.condition is not None and len(use.condition.suites) == 2


def test_a_frontend_that_only_answers_by_itself_needs_no_backend() -> None:
    config = parse_ok("frontend f\n    bind :80\n    http-request return status 200\n")
    assert proxy(config, "f").http_request_rules[0].action == "return"


# --- cookie, errorfile, capture, http-reuse, log-format ----------------------------------


def test_cookie() -> None:
    config = parse_ok(
        "backend b\n"
        "    cookie SRV insert indirect nocache postonly httponly secure domain .a.com "
        "domain b.com maxidle 30m maxlife 1d attr SameSite=None attr x\n"
        "    default-server cookie dflt\n"
        "    server s1 10.0.0.1:80 cookie s1\n"
        "    server s2 10.0.0.2:80\n"
    )
    b = proxy(config, "b")
    assert b.cookie == Cookie(
        "SRV",
        Where("h.cfg", 7),
        "insert",
        indirect=True,
        nocache=True,
        postonly=True,
        httponly=True,
        secure=True,
        domains=(".a.com", "b.com"),
        maxidle=1800,
        maxlife=86400,
        attrs=("SameSite=None", "x"),
    )
    assert [s.cookie for s in b.servers] == ["s1", "dflt"]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("S", Cookie("S", Where("h.cfg", 7))),
        ("S prefix indirect", Cookie("S", Where("h.cfg", 7), "prefix", indirect=True)),
        ("S insert preserve", Cookie("S", Where("h.cfg", 7), "insert", preserve=True)),
        ("S insert maxidle 500ms", Cookie("S", Where("h.cfg", 7), "insert", maxidle=1)),
        ("S insert maxlife 0", Cookie("S", Where("h.cfg", 7), "insert")),
        ("S rewrite maxidle 1h", Cookie("S", Where("h.cfg", 7), maxidle=3600)),
        ("S insert dynamic", Cookie("S", Where("h.cfg", 7), "insert", dynamic=True)),
    ],
)
def test_cookie_forms(words: str, expected: Cookie) -> None:
    config = parse_ok(f"backend b\n    cookie {words}\n")
    assert proxy(config, "b").cookie == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("", "'cookie' expects <cookie_name> as argument"),
        ("S insert rewrite", "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible"),
        ("S rewrite indirect", "cookie 'rewrite' and 'indirect' modes are incompatible"),
        ("S preserve", "cookie 'preserve' requires at least 'insert' or 'indirect'"),
        ("S insert maxidle", "'maxidle' expects <time> as argument"),
        ("S insert maxidle 1x", "unexpected character 'x'"),
        ("S insert domain", "'domain' expects <domain> as argument"),
        ("S insert attr a;b", "character '%x3B' is not permitted in attribute value"),
        ("S insert dynamic-x", "'cookie' supports 'rewrite'"),
        ("S bogus", "'cookie' supports 'rewrite', 'insert', 'prefix'"),
    ],
)
def test_bad_cookies(words: str, message: str) -> None:
    found = errors(f"backend b\n    cookie {words}\n")
    assert len(found) == 1 and message in found[0], found


def test_the_dynamic_cookie_key_comes_from_the_backend_or_its_defaults() -> None:
    config = parse_ok(
        "backend b\n    dynamic-cookie-key own\n    cookie S insert dynamic\n"
        "backend c\n    cookie S insert dynamic\n"
        "backend d\n    cookie S insert\n",
        base=BASE + "    dynamic-cookie-key inherited\n",
    )
    keys = [(p.cookie.dynamic, p.cookie.dynamic_key) for p in config.proxies if p.cookie]
    assert keys == [(True, "own"), (True, "inherited"), (False, None)]
    found = errors("backend b\n    dynamic-cookie-key\n")
    assert len(found) == 1 and "'dynamic-cookie-key' expects <secret_key>" in found[0], found


def test_a_cookie_domain_without_a_dot_is_warned_about() -> None:
    _, diagnostics = diagnose("backend b\n    cookie S insert domain localhost\n")
    assert diagnostics == [
        f"{at(2)}: warning: 'cookie': domain 'localhost' contains no embedded dot, this "
        "configuration may not work properly (see RFC6265#5.2.3)"
    ]


def test_errorfiles_are_read_and_inherited() -> None:
    config = parse_ok(
        "frontend f\n    bind :80\n    errorfile 503 /e/empty.http\n    default_backend b\n" + BACK,
        base=BASE + "    errorfile 503 /e/503.http\n    errorfile 403 /e/503.http\n",
    )
    f, b = config.proxies
    assert f.errorfile(503) == b"" and f.errorfile(403) == GOOD_RESPONSE
    assert b.errorfile(503) == GOOD_RESPONSE and b.errorfile(404) is None
    assert [e.status for e in b.errorfiles] == [403, 503]


def test_http_errors_sections_and_errorfiles_in_order() -> None:
    """`errorfile` and `errorfiles` lines apply in order (the defaults' first), the last
    one for a status winning; a section may come after the proxies that name it."""
    errs = "http-errors errs\n    errorfile 503 /e/empty.http\n    errorfile 403 /e/empty.http\n"
    config, found = diagnose(
        errs + "frontend f\n    bind :80\n    errorfile 403 /e/503.http\n"
        "    errorfiles errs 503 404\n    errorfiles later\n"
        "    http-request return status 403 errorfiles errs if { path /a }\n"
        "    http-request return status 500 errorfiles errs if { path /b }\n"
        "    default_backend b\n" + BACK + "http-errors later\n    errorfile 504 /e/503.http\n",
        base=BASE + "    errorfile 503 /e/503.http\n",
    )
    assert config is not None
    assert found == [
        f"{at(11)}: warning: 'return': status '500' referenced by an http reply not declared "
        "in http-errors section 'errs'",
        f"{at(8)}: warning: 'errorfiles': frontend 'f': status '404' not declared in "
        "http-errors section 'errs'",
    ]
    f = proxy(config, "f")
    assert [(e.status, e.content) for e in f.errorfiles] == [
        (403, GOOD_RESPONSE),  # errorfiles errs named 503 and 404 only
        (503, b""),
        (504, GOOD_RESPONSE),
    ]
    first, second = f.http_request_rules
    assert first.reply == HttpReply(403, errorfile=b"")
    assert second.reply == HttpReply(500)  # haproxy 2.6 sends an empty 500
    assert [e.status for e in proxy(config, "b").errorfiles] == [503]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http-errors\n", "missing name for http-errors section."),
        ("http-errors e\nhttp-errors e\n", "http-errors section 'e' already exists (declared at"),
        ("http-errors e\n    errorfile 418 /e/503.http\n", "status code '418' not handled"),
        ("http-errors e\n    bogus 1\n", "unknown keyword 'bogus' in 'http-errors' section"),
        ("backend b\n    errorfiles\n", "expects <name> as first argument."),
        ("backend b\n    errorfiles e 418\n", "errorfiles : status code '418' not handled."),
        ("backend b\n    errorfiles nope\n", "backend 'b': unknown http-errors section 'nope'"),
    ],
)
def test_bad_http_errors(text: str, message: str) -> None:
    found = errors(text)
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("503", "expects <status_code> and <file> as arguments"),
        ("418 /e/503.http", "status code '418' not handled"),
        ("abc /e/503.http", "status code '0' not handled"),
        ("503 /e/missing.http", "error opening file '/e/missing.http'"),
        ("503 /e/bad.http", "'/e/bad.http': unable to parse headers"),
        ("503 /e/chunked.http", "chunk-encoded payload not supported"),
        ("503 /e/short.http", "payload size does not match the announced content-length (3 != 10)"),
    ],
)
def test_bad_errorfiles(words: str, message: str) -> None:
    found = errors(f"backend b\n    errorfile {words}\n")
    assert len(found) == 1 and message in found[0], found


def test_errorfile_is_read_from_disk_by_the_loader(tmp_path: Path) -> None:
    page = tmp_path / "503.http"
    page.write_bytes(GOOD_RESPONSE)
    cfg = tmp_path / "h.cfg"
    cfg.write_text(BASE + f"backend b\n    errorfile 503 {page}\n    errorfile 504 {page}.no\n")
    config, diagnostics = load_config([str(cfg)], {})
    assert config is None
    assert [str(d) for d in diagnostics] == [
        f"{cfg}:8: error: 'errorfile': error opening file '{page}.no': No such file or directory"
    ]
    cfg.write_text(BASE + f"backend b\n    errorfile 503 {page}\n")
    config, _ = load_config([str(cfg)], {})
    assert config is not None and proxy(config, "b").errorfile(503) == GOOD_RESPONSE


def test_captures_http_reuse_and_log_format() -> None:
    config = parse_ok(
        "frontend f\n    bind :80\n    capture request header Host len 32\n"
        "    capture response header Location len 64\n"
        '    log-format "%ci:%cp [%tr] %ft %b/%s %ST %B %{+Q}r %[capture.req.hdr(0)]"\n'
        "    default_backend b\n"
        "backend b\n    http-reuse always\n"
    )
    f, b = config.proxies
    assert f.capture_request_headers == (Capture("Host", 32, Where("h.cfg", 8)),)
    assert f.capture_response_headers == (Capture("Location", 64, Where("h.cfg", 9)),)
    assert f.log_format is not None and f.log_format.startswith("%ci:%cp")
    assert (f.http_reuse, b.http_reuse) == ("safe", "always")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("capture request header Host", "'capture request' expects 'header' <header_name>"),
        ("capture request header X len 64 extra", "cannot handle unexpected argument 'extra'"),
        ("log-format", "log-format expects an argument"),
        ("log-format a b", "log-format expects only one argument"),
        ("log-format %Q", "no such format variable 'Q'"),
    ],
)
def test_bad_frontend_http_keywords(line: str, message: str) -> None:
    found = errors(FRONT + f"    {line}\n" + BACK)
    assert len(found) == 1 and message in found[0], found


def test_bad_http_reuse() -> None:
    found = errors("backend b\n    http-reuse sometimes\n")
    assert "'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'" in found[0]


# --- HTTP checks, balancing, connection modes -------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("option httpchk", HttpCheck(Where("h.cfg", 7))),
        ("option httpchk /health", HttpCheck(Where("h.cfg", 7), uri="/health")),
        ("option httpchk GET /health", HttpCheck(Where("h.cfg", 7), "GET", "/health")),
        (
            "option httpchk HEAD / HTTP/1.1",
            HttpCheck(Where("h.cfg", 7), "HEAD", "/", "HTTP/1.1"),
        ),
        (
            "option httpchk GET /x HTTP/1.1\\r\\nHost:\\ www",
            HttpCheck(Where("h.cfg", 7), "GET", "/x", "HTTP/1.1", (("Host", "www"),)),
        ),
        (
            "option httpchk\n    http-check send meth GET uri /h ver HTTP/1.1 hdr Host a "
            "hdr X b body hi\n    http-check expect ! rstatus ^5",
            HttpCheck(
                Where("h.cfg", 7),
                "GET",
                "/h",
                "HTTP/1.1",
                (("Host", "a"), ("X", "b")),
                "hi",
                HttpExpect("rstatus", "^5", negate=True),
            ),
        ),
        (
            "option httpchk GET /\n    http-check expect status 200-299,302",
            HttpCheck(Where("h.cfg", 7), "GET", "/", expect=HttpExpect("status", "200-299,302")),
        ),
    ],
)
def test_http_checks(lines: str, expected: HttpCheck) -> None:
    config = parse_ok(f"backend b\n    {lines}\n")
    assert proxy(config, "b").http_check == expected


def test_http_check_rules_without_httpchk_are_ignored_with_a_warning() -> None:
    config, diagnostics = diagnose("backend b\n    http-check expect status 200\n")
    assert config is not None and proxy(config, "b").http_check is None
    assert diagnostics == [
        f"{at(2)}: warning: 'http-check': backend 'b' uses http-check rules without 'option "
        "httpchk', so the rules are ignored"
    ]


def test_an_http_check_in_defaults_is_inherited_by_backends_only() -> None:
    config = parse_ok(
        FRONT + BACK,
        base=BASE + "    option httpchk GET /h\n    http-check expect string ok\n",
    )
    f, b = config.proxies
    assert f.http_check is None
    assert b.http_check is not None and b.http_check.expect == HttpExpect("string", "ok")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("http-check expect", "expects at least a matching pattern as arguments"),
        ("http-check expect ! string", "'string' expects a <pattern> as argument"),
        ("http-check expect status abc", "invalid character 'a' in the list of status codes"),
        ("http-check expect rstatus ^2(0", "regex '^2(0' is invalid"),
        ("http-check expect hdr name x", "'http-check expect hdr' is not implemented yet"),
        ("http-check expect min-recv 10 string x", "'min-recv' is not implemented yet"),
        ("http-check expect status 200\n    http-check expect string ok", "several"),
        ("http-check send meth GET\n    http-check send meth HEAD", "'http-check connect'"),
        ("http-check send uri-lf /%[src]", "'uri-lf' is not implemented yet"),
        ("http-check send hdr Host", "'hdr' expects <name> <value>"),
        ("option httpchk a b c d", "'option httpchk' cannot handle unexpected argument 'd'"),
        ("no option httpchk", "'no' is not supported for option 'httpchk'"),
    ],
)
def test_bad_http_checks(lines: str, message: str) -> None:
    found = errors(f"backend b\n    option httpchk\n    {lines}\n")
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("balance uri", Balance(Algorithm.URI)),
        ("balance url_param userid", Balance(Algorithm.URL_PARAM, argument="userid")),
        ("balance hdr(Host)", Balance(Algorithm.HDR, argument="Host")),
        ("balance hdr(host)\n    hash-type consistent", Balance(Algorithm.HDR, 2, argument="host")),
    ],
)
def test_layer_7_balancing(line: str, expected: Balance) -> None:
    config = parse_ok(f"backend b\n    {line}\n")
    balance = proxy(config, "b").balance
    assert (balance.algorithm, balance.argument) == (expected.algorithm, expected.argument)


def test_a_balance_argument_is_inherited_with_its_algorithm() -> None:
    config = parse_ok(
        "backend b\n    balance roundrobin\n", base=BASE + "    balance url_param u\n"
    )
    assert proxy(config, "b").balance == Balance(Algorithm.ROUNDROBIN)
    config = parse_ok("backend b\n", base=BASE + "    balance url_param u\n")
    assert proxy(config, "b").balance == Balance(Algorithm.URL_PARAM, argument="u")


@pytest.mark.parametrize(
    ("defaults", "own", "expected"),
    [
        ("", "option http-server-close", {Option.HTTP_SERVER_CLOSE}),
        ("option httpclose", "option http-keep-alive", {Option.HTTP_KEEP_ALIVE}),
        ("option http-keep-alive", "option httpclose", {Option.HTTPCLOSE}),
        ("option httpclose", "no option httpclose", set()),
        ("option http-server-close\n    option httpclose", "", {Option.HTTPCLOSE}),
    ],
)
def test_connection_mode_options_replace_each_other(
    defaults: str, own: str, expected: set[Option]
) -> None:
    config = parse_ok(f"backend b\n    {own}\n", base=BASE + f"    {defaults}\n")
    modes = {Option.HTTP_KEEP_ALIVE, Option.HTTP_SERVER_CLOSE, Option.HTTPCLOSE}
    assert proxy(config, "b").options & modes == expected


def test_persist_and_log_health_checks_are_backend_options() -> None:
    config = parse_ok(
        FRONT + BACK, base=BASE + "    option persist\n    option log-health-checks\n"
    )
    f, b = config.proxies
    assert Option.PERSIST not in f.options and Option.LOG_HEALTH_CHECKS not in f.options
    assert {Option.PERSIST, Option.LOG_HEALTH_CHECKS} <= b.options


def test_http_mode_with_backends_links() -> None:
    config = parse_ok(FRONT + BACK + "listen l\n    bind :81\n    server s 10.0.0.2:80\n")
    assert all(p.mode is Mode.HTTP for p in config.proxies)


def test_use_server_rules_name_their_servers() -> None:
    config = parse_ok(
        "backend b\n    acl api path_beg /api\n    use-server s2 if api\n"
        "    use-server s1 unless { src 10.0.0.0/8 }\n"
        "    server s1 10.0.0.1:80\n    server s2 10.0.0.2:80\n"
    )
    uses = proxy(config, "b").use_servers
    assert [(u.server, u.condition.unless) for u in uses] == [("s2", False), ("s1", True)]
    assert uses[0].condition.suites[0][0].acl.name == "api"  # the named ACL, resolved


@pytest.mark.parametrize(
    ("line", "message"),
    [  # haproxy 2.6.12's words on the same lines
        ("use-server", "'use-server' expects a server name."),
        ("use-server s1", "'use-server' requires either 'if' or 'unless' followed by a condition"),
        ("use-server s1 when TRUE", "requires either 'if' or 'unless'"),
        ("use-server zz if TRUE", "backend 'b': unable to find server 'zz' referenced in a "
         "'use-server' rule"),
    ],
)  # fmt: skip
def test_bad_use_server_lines(line: str, message: str) -> None:
    found = errors(f"backend b\n    {line}\n    server s1 10.0.0.1:80\n")
    assert len(found) == 1 and message in found[0], found
