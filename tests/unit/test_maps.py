"""Maps and ACL pattern files (configuration.txt 7.3.1 `map`, 7.1 `-f`/`-M`): how the
files are read, how each match method finds a key (trees: the longest; lists: the
first), and how a change to a file's reference (the runtime API's) is seen by the next
lookup."""

from __future__ import annotations

import pytest

from poise.config import patterns
from poise.config.haproxy import parse
from poise.core.fetch import compile_format
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from tests.unit.test_http_rules import BASE

FILES = {
    "/m/hosts.map": b"# this is a comment and is ignored\n"
    b"   2.22.246.0/23    United Kingdom      \n"
    b"example.com be_a\nwww.example.com be_www\nexample.com be_dup\nnoval\n",
    "/m/ips.map": b"10.0.0.0/8 net8\n10.1.0.0/16 net16\n10.1.2.3 host\n::1 six\n",
    "/m/prefix.map": b"/ root\n/api api\n/api/v2 v2\n/api/v2/x x\n",
    "/m/int.map": b"1:9 small\n10 ten\n:0 negative\n100: big\n",
    "/m/reg.map": b"^/a/([0-9]+) id-\\1\n^/a b-any\n",
    "/m/dom.map": b"example.com dom\n",
    "/m/paths.acl": b"/static\n  /images\n# no\n",
    "/m/badip.map": b"example.com x\n",
    "/m/badreg.map": b"a( x\n",
}


def read(path: str) -> bytes:
    if path not in FILES:
        raise FileNotFoundError(2, "No such file or directory")
    return FILES[path]


def program(lines: str) -> rules.Rules:
    text = BASE + "frontend f\n    bind :80\n" + lines + "    default_backend b\nbackend b\n"
    config, diagnostics = parse([("r.cfg", text)], {}, read)
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxy("f")
    assert proxy is not None
    return rules.Rules(proxy)


def errors(lines: str) -> list[str]:
    text = BASE + "frontend f\n    bind :80\n" + lines + "    default_backend b\nbackend b\n"
    _, diagnostics = parse([("r.cfg", text)], {}, read)
    return [str(d) for d in diagnostics if d.severity.value == "error"]


def shown(
    expression: str, path: str = "/", host: str = "example.com", src: str = "10.1.2.3"
) -> str:
    prog = program(f"    http-request set-header X-R <%[{expression}]>\n")
    req = Request(
        "GET", path, "1.1", Headers([("Host", host)]), src=src, src_port=1, dst="127.0.0.1"
    )
    rules.request_rules(prog, req)
    value = req.headers.get("x-r")
    assert value is not None
    return value[1:-1]


def test_a_map_file_is_read_as_haproxy_documents_it() -> None:
    program("    http-request set-header X %[src,map(/m/hosts.map)]\n")
    entries = [(e.key, e.value) for e in patterns.REFERENCES["/m/hosts.map"].entries]
    assert entries == [
        ("2.22.246.0/23", "United Kingdom"),
        ("example.com", "be_a"),
        ("www.example.com", "be_www"),
        ("example.com", "be_dup"),
        ("noval", ""),
    ]


@pytest.mark.parametrize(
    ("expression", "kwargs", "expected"),
    [
        ("req.hdr(host),map(/m/hosts.map)", {}, "be_a"),  # the first of duplicates
        ("req.hdr(host),map_str(/m/hosts.map,none)", {"host": "nope"}, "none"),
        ("req.hdr(host),map(/m/hosts.map)", {"host": "nope"}, ""),  # no default: no value
        ("req.hdr(host),map(/m/hosts.map)", {"host": "noval"}, ""),
        ("path,map_beg(/m/prefix.map)", {"path": "/api/v2/y"}, "v2"),  # the longest prefix
        ("path,map_beg(/m/prefix.map)", {"path": "/apix"}, "api"),
        ("path,map_beg(/m/prefix.map)", {"path": "/other"}, "root"),
        ("src,map_ip(/m/ips.map)", {}, "host"),
        ("src,map_ip(/m/ips.map)", {"src": "10.1.9.9"}, "net16"),
        ("src,map_ip(/m/ips.map)", {"src": "10.9.9.9"}, "net8"),
        ("src,map_ip(/m/ips.map,out)", {"src": "192.0.2.1"}, "out"),
        ("src,map_ip(/m/ips.map)", {"src": "::1"}, "six"),
        ("req.hdr(x-n),map_int(/m/int.map,-)", {}, ""),  # no input: no default either
        ("int(5),map_int(/m/int.map)", {}, "small"),
        ("int(10),map_int(/m/int.map)", {}, "ten"),
        ("int(-3),map_int(/m/int.map)", {}, "negative"),
        ("int(1000),map_int(/m/int.map)", {}, "big"),
        ("path,map_reg(/m/reg.map)", {"path": "/a/12"}, "id-\\1"),
        ("path,map_regm(/m/reg.map)", {"path": "/a/12"}, "id-12"),
        ("path,map_regm(/m/reg.map)", {"path": "/ab"}, "b-any"),
        ("req.hdr(host),map_dom(/m/dom.map)", {"host": "www.example.com"}, "dom"),
        ("req.hdr(host),map_end(/m/dom.map)", {"host": "wwwexample.com"}, "dom"),
        ("req.hdr(host),map_sub(/m/dom.map)", {"host": "a.example.com.b"}, "dom"),
        ("int(10),map_int_int(/m/int.map,7)", {}, "0"),  # "ten" as an integer
        ("str(x),map_str_int(/m/int.map,7)", {}, "7"),
    ],
)
def test_map_lookups(expression: str, kwargs: dict[str, str], expected: str) -> None:
    assert shown(expression, **kwargs) == expected


def test_an_acl_file_is_shared_and_its_changes_are_seen_at_the_next_request() -> None:
    prog = program(
        "    acl static path_beg -f /m/paths.acl\n"
        "    acl known req.hdr(host) -M -f /m/hosts.map\n"
        "    http-request set-header X-Static 1 if static\n"
        "    http-request set-header X-Known 1 if known\n"
    )

    def seen(path: str, host: str = "x") -> tuple[bool, bool]:
        req = Request("GET", path, "1.1", Headers([("Host", host)]))
        rules.request_rules(prog, req)
        return "x-static" in req.headers.index(), "x-known" in req.headers.index()

    assert seen("/images/a.png", "example.com") == (True, True)
    assert seen("/admin", "www.example.com") == (False, True)
    ref = patterns.REFERENCES["/m/paths.acl"]
    ref.add("/admin", None)
    assert seen("/admin") == (True, False)
    ref.entries = [e for e in ref.entries if e.key != "/images"]
    ref.changed()
    assert seen("/images/a.png") == (False, False)


def test_a_map_change_is_seen_by_the_converter() -> None:
    prog = program("    http-request set-header X %[req.hdr(host),map(/m/hosts.map,none)]\n")
    ref = patterns.REFERENCES["/m/hosts.map"]
    ref.add("new.org", "be_new")
    req = Request("GET", "/", "1.1", Headers([("Host", "new.org")]))
    rules.request_rules(prog, req)
    assert req.headers.get("x") == "be_new"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "http-request set-header X %[src,map(/m/none.map)]",
            "failed to open map file '/m/none.map'",
        ),
        ("acl a path -f /m/none.acl", "failed to open pattern file '/m/none.acl'"),
        (
            "http-request set-header X %[src,map_ip(/m/badip.map)]",
            "'example.com' is not a valid IPv4 or IPv6 address in file '/m/badip.map'",
        ),
        ("http-request set-header X %[path,map_reg(/m/badreg.map)]", "regex 'a(' is invalid"),
        ("acl a src -f /m/hosts.map", "is not a valid IPv4 or IPv6 address"),
        ("http-request set-header X %[src,map]", "invalid arg 1 in converter 'map'"),
    ],
)
def test_bad_pattern_files_are_refused_at_their_line(line: str, message: str) -> None:
    found = errors(f"    {line}\n")
    assert found and message in found[0] and found[0].startswith("r.cfg:8:"), found


def test_compile_format_reads_the_published_maps() -> None:
    program("    http-request set-header X %[req.hdr(host),map(/m/hosts.map)]\n")
    assert "/m/hosts.map" in patterns.REFERENCES and compile_format is not None


def test_use_backend_with_a_log_format_name_falls_back_to_the_default() -> None:
    text = (
        BASE + "frontend f\n    bind :80\n"
        "    use_backend %[req.hdr(host),lower,map(/m/hosts.map,be_none)]\n"
        "    default_backend be_default\n"
        "backend be_a\nbackend be_default\nbackend be_none\n"
    )
    config, diagnostics = parse([("r.cfg", text)], {}, read)
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxy("f")
    assert proxy is not None
    prog = rules.Rules(proxy)

    def backend(host: str) -> str | None:
        return rules.select_backend(prog, Request("GET", "/", "1.1", Headers([("Host", host)])))

    assert backend("Example.COM") == "be_a"
    assert backend("nowhere") == "be_none"
    assert backend("www.example.com") == "be_default"  # be_be_www does not exist


def test_a_dynamic_backend_name_is_not_checked_at_load_but_its_expression_is() -> None:
    found = errors("    use_backend %[req.hdr(host),nosuch]\n")
    assert found and "unknown converter 'nosuch'" in found[0]
