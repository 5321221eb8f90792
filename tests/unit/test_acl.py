"""ACL fetches, matching methods and conditions (configuration.txt 7), and log-format
strings, evaluated on requests.

The expected values of the fetches were read from a live HAProxy 2.6.12 answering
`http-request return ... lf-string "%[fetch]|..."` to the same requests; the dom/dir
examples are configuration.txt 7.1.3's own."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.acl_parse import parse_condition, parse_test
from poise.config.model import NOWHERE, Acl, AclTerm, AclTest, Condition
from poise.config.samples import Scope, parse_log_format
from poise.core.acl import compile_condition, compile_test
from poise.core.fetch import compile_format, path_of, split_values
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response


def request(
    uri: str = "/",
    *headers: tuple[str, str],
    method: str = "GET",
    version: str = "1.1",
    src: str = "127.0.0.1",
    ssl: bool = False,
    sni: str | None = None,
) -> Request:
    return Request(
        method,
        uri,
        version,
        Headers(list(headers)),
        src=src,
        src_port=43796,
        dst="127.0.0.1",
        dst_port=8080,
        ssl=ssl,
        sni=sni,
    )


def acl(line: str) -> AclTest:
    return parse_test(line.split(), NOWHERE)


def matches(line: str, req: Request, resp: Response | None = None) -> bool:
    return compile_test(acl(line), "res" if resp is not None else "req")(req, resp)


def fmt(text: str, req: Request, resp: Response | None = None) -> str:
    scope: Scope = "res" if resp is not None else "req"
    return compile_format(parse_log_format(text, scope), scope)(req, resp)


HAPROXY_REQUEST = request(
    "/zzz?a=1&p=x%20y&p=2;q=3",
    ("Host", "Ex.com"),
    ("X-M", "a, b"),
    ("X-M", "c"),
    ("Cookie", "d=1; c=first"),
    ("Cookie", "c=second"),
    ("X-N", "12abc"),
    ("Connection", "close"),
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("%[req.hdr(x-m)]", "c"),
        ("%[req.hdr(x-m,1)]", "a"),
        ("%[hdr(x-m,-2)]", "b"),
        ("%[req.fhdr(x-m)]", "c"),
        ("%[req.hdr_cnt(x-m)]", "3"),
        ("%[hdr_cnt]", "8"),
        ("%[req.cook(c)]", "second"),
        ("%[req.cook]", "1"),
        ("%[req.cook_cnt(c)]", "2"),
        ("%[url_param(p)]", "x%20y"),
        ("%[url_param]", "1"),
        ("%[url_param(q,;)]", "3"),
        ("%[base]", "Ex.com/zzz"),
        ("%[query]", "a=1&p=x%20y&p=2;q=3"),
        ("%[method]|%[req.ver]", "GET|1.1"),
        ("%[src]|%[ssl_fc]", "127.0.0.1|0"),
        ("%{+Q}[path]", "/zzz"),  # HAProxy 2.6 does not quote a sample in a header value
        ("%ci|%fi|%{+Q}ci", '127.0.0.1|127.0.0.1|"127.0.0.1"'),
        ("%[path,upper]|%[str(lit)]|%[int(42)]|%[always_true]", "/ZZZ|lit|42|1"),
        ("%[req.hdr_val(x-n)]|%[path,length]", "12|4"),
        (
            "100%% %HM %HU %HP %HQ %HV",
            "100% GET /zzz?a=1&p=x%20y&p=2;q=3 /zzz ?a=1&p=x%20y&p=2;q=3 HTTP/1.1",
        ),
    ],
)
def test_samples_as_haproxy_gives_them(expression: str, expected: str) -> None:
    assert fmt(expression, HAPROXY_REQUEST) == expected


@pytest.mark.parametrize(
    ("uri", "host", "expected"),
    [
        (
            "http://host.example/p/q?x=1",
            "host.example",
            "/p/q|http://host.example/p/q?x=1|host.example/p/q|x=1",
        ),
        ("http://host.example", "host.example", "|http://host.example|host.example|"),
        ("*", "host.example", "|*|host.example|"),
        ("/a?b=1&&=2&c", None, "/a|/a?b=1&&=2&c|/a|b=1&&=2&c"),
    ],
)
def test_the_parts_of_a_uri(uri: str, host: str | None, expected: str) -> None:
    req = request(uri, *([("Host", host)] if host else []))
    assert fmt("%[path]|%[url]|%[base]|%[query]", req) == expected


def test_path_of() -> None:
    assert [path_of(u) for u in ("/a?b", "http://h/a?b", "http://h", "*", "h:443")] == [
        "/a",
        "/a",
        None,
        None,
        None,
    ]


def test_header_values_split_at_commas_outside_quotes() -> None:
    assert split_values('a, "b,c" ,d') == ["a", '"b,c"', "d"]
    assert split_values("") == [""]


@pytest.mark.parametrize(
    ("line", "uri", "expected"),
    [
        ("path /api", "/api?x", True),
        ("path /api", "/api/", False),
        ("path -i /API", "/api", True),
        ("path_beg /static /images", "/images/a.png", True),
        ("path_beg -i /STATIC", "/static/x", True),
        ("path_end .css .js", "/a.js", True),
        ("path_end .css", "/a.JS", False),
        ("path_sub adm", "/x/admin", True),
        ("path_reg ^/user/[0-9]+$", "/user/42", True),
        ("path_reg -i ^/USER", "/user/42", True),
        ("path_len 4", "/abc", True),
        ("path_len gt 3", "/ab", False),
        ("url_beg /", "/x", True),
        ("url *", "*", True),
        ("url_reg ^[^/:]*://", "http://h/x", True),
        ("path -m found", "*", False),
        ("query -m found", "/x?", True),
        ("query -m found", "/x", False),
        ("urlp(id) 42", "/?a=1&id=42", True),
        ("urlp(id) -m int gt 40", "/?id=42", True),
    ],
)
def test_request_line_acls(line: str, uri: str, expected: bool) -> None:
    assert matches(line, request(uri)) is expected


# configuration.txt 7.1.3's examples of "-m dom" and "-m dir", as HAProxy 2.6.12 runs them:
# the doc also lists "dc-eu.example:80" for dom (it is not a delimited part of the URL, and
# HAProxy does not match it) and says "png" is no subdir of the path (HAProxy matches it).
URL = "http://www1.dc-eu.example.com:80/blah"
DOM_YES = ["http", "www1", ".www1", "dc-eu", "example", "com", "80", "dc-eu.example", "blah"]
DOM_YES += [":www1:"]
DIR_PATH = "/images/png/logo/32x32.png"
DIR_YES = ["/images", "/images/png", "images/png", "/png/logo", "logo/32x32.png", "32x32.png"]
DIR_YES += ["png"]


@pytest.mark.parametrize("pattern", DOM_YES)
def test_domain_match_examples(pattern: str) -> None:
    assert matches(f"url -m dom {pattern}", request(URL)), pattern


@pytest.mark.parametrize("pattern", ["eu", "dc", "dc-eu.example:80"])
def test_domain_match_counter_examples(pattern: str) -> None:
    assert not matches(f"url -m dom {pattern}", request(URL))


@pytest.mark.parametrize(
    ("pattern", "expected"), [(p, True) for p in DIR_YES] + [("32x32", False), ("png/l", False)]
)
def test_subdir_match_examples(pattern: str, expected: bool) -> None:
    assert matches(f"path_dir {pattern}", request(DIR_PATH)) is expected


@pytest.mark.parametrize(
    ("line", "headers", "expected"),
    [
        ("hdr(host) -i example.com", [("Host", "EXAMPLE.com")], True),
        ("hdr(host) example.com", [("Host", "EXAMPLE.com")], False),
        ("hdr_beg(host) www.", [("Host", "www.x")], True),
        ("hdr_end(host) -i .example.com", [("Host", "A.Example.Com")], True),
        ("hdr_dom(host) example", [("Host", "www.example.com:8080")], True),
        ("hdr_sub(user-agent) curl", [("User-Agent", "a curl/8")], True),
        ("hdr(x) b", [("X", "a, b")], True),  # every comma-separated value is tried
        ("hdr(x,1) b", [("X", "a, b")], False),
        ("hdr(x,-1) b", [("X", "a, b")], True),
        ("req.fhdr(x) b", [("X", "a, b")], False),
        ("req.fhdr(x) -m sub b", [("X", "a, b")], True),
        ("hdr_cnt(x) 3", [("X", "a, b"), ("x", "c")], True),
        ("req.fhdr_cnt(x) 2", [("X", "a, b"), ("x", "c")], True),
        ("hdr_cnt(x) eq 0", [], True),
        ("hdr(host) -m found", [("Host", "")], True),
        ("hdr(host) -m found", [], False),
        ("hdr_len(host) 3", [("Host", "abc")], True),
        ("hdr_val(content-length) gt 0", [("Content-Length", "12")], True),
        ("hdr_ip(x-forwarded-for) 10.0.0.0/8", [("X-Forwarded-For", "1.2.3.4, 10.1.2.3")], True),
        ("hdr_ip(x-real-ip) 10.0.0.1", [("X-Real-IP", "10.0.0.1:5555")], True),
        ("req.cook(SID) abc", [("Cookie", "a=1; SID=abc")], True),
        ("req.cook(SID) -m found", [("Cookie", "SID=")], True),
        ("cook_beg(SID) ab", [("Cookie", "SID=zz"), ("Cookie", "SID=abc")], True),
        ("req.cook_cnt(SID) 2", [("Cookie", "SID=1; SID=2")], True),
        ("req.cook_val(n) ge 5", [("Cookie", "n=7")], True),
    ],
)
def test_header_and_cookie_acls(line: str, headers: list[tuple[str, str]], expected: bool) -> None:
    assert matches(line, request("/", *headers)) is expected


@pytest.mark.parametrize(
    ("line", "src", "expected"),
    [
        ("src 127.0.0.1", "127.0.0.1", True),
        ("src 127.0.0.1/8 ::1", "127.1.2.3", True),
        ("src 10.12", "10.0.0.12", True),  # HAProxy's abbreviated dotted form
        ("src 192.168.1/22", "192.168.0.1", True),
        ("src 10.0.0.0/255.0.0.0", "10.9.9.9", True),
        ("src 10.0.0.0/8", "11.0.0.1", False),
        ("src 10.0.0.0/8", "::ffff:10.1.2.3", True),  # IPv4-mapped
        ("src 10.0.0.0/8", "2002:a01:203::1", True),  # 6to4
        ("src ::ffff:10.0.0.0/104", "10.1.2.3", True),  # IPv4 seen as ::ffff:a.b.c.d
        ("src 2001:db8::/32", "2001:db8::5", True),
        ("src 2001:db8::/32", "2001:db9::5", False),
        ("src 10.0.0.1", "unix", False),
        ("src -m beg 127.", "127.0.0.1", True),
    ],
)
def test_ip_acls(line: str, src: str, expected: bool) -> None:
    assert matches(line, request(src=src)) is expected


@pytest.mark.parametrize(
    ("line", "method", "expected"),
    [
        ("method GET HEAD", "HEAD", True),
        ("method get", "GET", False),  # a known method matches exactly
        ("method -i get", "GET", False),
        ("method PROPFIND", "PROPFIND", True),
        ("method -i propfind", "PROPFIND", True),
        ("method propfind", "PROPFIND", False),
    ],
)
def test_the_method_acl(line: str, method: str, expected: bool) -> None:
    assert matches(line, request(method=method)) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dst_port 8080", True),
        ("dst_port 1024:", True),
        ("dst_port :1023", False),
        ("dst_port 80 8000:9000", True),
        ("src_port lt 1024", False),
        ("src_port ge 1024", True),
        ("ssl_fc", True),
        ("ssl_fc -m int 1", True),
        ("ssl_fc_sni -i LB.example.com", True),
        ("ssl_fc_sni_end .com", True),
        ("req.ver 1.1", True),
        ("always_false", False),
        ("always_true", True),
        ("dst_port -m bool", True),
        ("str(abc) -m len 3", True),
        ("int(0) -m bool", False),
        ("path", False),  # no pattern: never matches (HAProxy warns)
    ],
)
def test_connection_and_typed_acls(line: str, expected: bool) -> None:
    req = request(ssl=True, sni="lb.example.com")
    assert matches(line, req) is expected


def test_response_fetches_and_scopes() -> None:
    req = request("/x", ("Host", "h"))
    resp = Response(503, "Service Unavailable", "1.1", Headers([("Set-Cookie", "S=a; Path=/")]))
    assert matches("status 500:599", req, resp)
    assert matches("res.hdr(set-cookie) -m beg S=", req, resp)
    assert matches("res.cook(S) a", req, resp)
    assert matches("res.ver 1.1", req, resp)
    assert matches("method GET", req, resp)  # the method is still known
    # What HAProxy cannot know where it is used never matches.
    assert not matches("path /x", req, resp)
    assert not matches("status 503", req)
    assert fmt("%[status] %[hdr(set-cookie)] %[method]", req, resp) == "503 S=a; Path=/ GET"


def condition(words: str, acls: dict[str, bool]) -> Condition:
    """A condition whose named ACLs are always_true or always_false."""
    parsed = parse_condition(words.split(), NOWHERE)
    suites = tuple(
        tuple(
            AclTerm(
                term.acl
                if term.acl.tests
                else Acl(
                    term.acl.name,
                    (acl("always_true" if acls[term.acl.name] else "always_false"),),
                    NOWHERE,
                ),
                term.negate,
            )
            for term in suite
        )
        for suite in parsed.suites
    )
    return Condition(parsed.unless, suites, NOWHERE)


def holds(words: str, **acls: bool) -> bool:
    return compile_condition(condition(words, acls), "req")(request(), None)


def test_conditions() -> None:
    assert holds("if a b", a=True, b=True)
    assert not holds("if a b", a=True, b=False)
    assert holds("if a b || c", a=True, b=False, c=True)
    assert holds("if a b or c", a=False, b=False, c=True)
    # HAProxy compares the word with strcasecmp: `OR` and `Or` are the same operator.
    assert holds("if a OR c", a=False, c=True)
    assert not holds("if a Or c", a=False, c=False)
    assert holds("if !a", a=False)
    assert holds("if ! a", a=False)
    assert not holds("unless a", a=True)
    assert holds("if { path / }")
    assert holds("if a !{ path /x }", a=True)
    # HAProxy 2.6: an empty condition never holds (`if` alone is false, `unless` true), an
    # empty suite is dropped (`if a or`), a lone `!` is ignored.
    assert not holds("if")
    assert holds("unless")
    assert not holds("if a or", a=False)
    assert not holds("if !")


NAMES = ["a", "b", "c", "d"]


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), min_size=1, max_size=3),
        max_size=4,
    ),
    st.booleans(),
    st.fixed_dictionaries({name: st.booleans() for name in NAMES}),
)
def test_conditions_are_a_disjunction_of_conjunctions(
    suites: list[list[tuple[str, bool]]], unless: bool, values: dict[str, bool]
) -> None:
    words = " or ".join(" ".join(("!" if neg else "") + name for name, neg in s) for s in suites)
    expected = any(all(values[name] != neg for name, neg in s) for s in suites)
    text = ("unless " if unless else "if ") + words
    assert holds(text, **values) is (expected != unless)


@given(
    st.text(alphabet="abAB/.-", max_size=12),
    st.lists(st.text(alphabet="abAB/.-", min_size=1, max_size=4), min_size=1, max_size=3),
    st.sampled_from(["str", "beg", "end", "sub"]),
    st.booleans(),
)
def test_string_matching_against_a_reference(
    value: str, patterns: list[str], method: str, icase: bool
) -> None:
    line = f"hdr(x) -m {method} {'-i ' if icase else ''}-- " + " ".join(patterns)
    test = parse_test(line.split(), NOWHERE)
    subject, wanted = (value.lower(), [p.lower() for p in patterns]) if icase else (value, patterns)
    reference: Callable[[str], bool] = {
        "str": lambda p: subject == p,
        "beg": subject.startswith,
        "end": subject.endswith,
        "sub": lambda p: p in subject,
    }[method]
    expected = any(reference(p) for p in wanted)
    assert compile_test(test, "req")(request("/", ("X", value)), None) is expected


def _dom_reference(subject: str, pattern: str, delimiters: str) -> bool:
    """configuration.txt 7.1.3: the pattern, without its leading and trailing delimiters,
    is a delimited part of the subject."""
    word = pattern.strip(delimiters)
    for start in range(len(subject) - len(word) + 1):
        end = start + len(word)
        if subject[start:end] != word:
            continue
        if (start == 0 or subject[start - 1] in delimiters) and (
            end == len(subject) or subject[end] in delimiters
        ):
            return True
    return False


@given(
    st.text(alphabet="ab./:?", max_size=12),
    st.text(alphabet="ab./", min_size=1, max_size=5),
    st.sampled_from(["dom", "dir"]),
)
def test_dom_and_dir_against_a_reference(subject: str, pattern: str, method: str) -> None:
    if not pattern.strip("/?.:" if method == "dom" else "/?") or pattern.startswith("-"):
        return
    test = parse_test(["hdr(x)", "-m", method, "--", pattern], NOWHERE)
    delimiters = "/?.:" if method == "dom" else "/?"
    got = compile_test(test, "req")(request("/", ("X", subject)), None)
    # HAProxy trims the header value's blanks; the alphabet has none.
    assert got is _dom_reference(subject, pattern, delimiters)


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32), st.ip_addresses(v=4))
def test_ipv4_networks_against_ipaddress(
    network: ipaddress.IPv4Address, bits: int, address: ipaddress.IPv4Address
) -> None:
    net = ipaddress.IPv4Network(f"{network}/{bits}", strict=False)
    assert matches(f"src {net}", request(src=str(address))) is (address in net)


@given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=128), st.ip_addresses(v=6))
def test_ipv6_networks_against_ipaddress(
    network: ipaddress.IPv6Address, bits: int, address: ipaddress.IPv6Address
) -> None:
    net = ipaddress.IPv6Network(f"{network}/{bits}", strict=False)
    assert matches(f"src {net}", request(src=str(address))) is (address in net)


def test_a_fetch_table_entry_has_an_implementation() -> None:
    from poise.config.model import Sample
    from poise.config.samples import FETCHES
    from poise.core.fetch import fetch_values

    for name, spec in FETCHES.items():
        args = ("1",) * spec.min_args
        fetch_values(Sample(name, args))  # raises AssertionError when missing


def test_regexes_are_searched_not_anchored() -> None:
    assert matches("hdr_reg(ua) curl", request("/", ("UA", "x curl/8")))
    assert re.search("curl", "x curl/8")
