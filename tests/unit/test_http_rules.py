"""http-request, redirect, http-response and use_backend rules evaluated on requests
(core/http/rules.py), and the responses they generate.

Every expected response below is what a live HAProxy 2.6.12 sent on 127.0.0.1 for the
same configuration line and request (captured with a raw socket), byte for byte."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.config.model import Config, Proxy
from poise.config.samples import parse_log_format
from poise.core import template
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.fetch import compile_format
from poise.core.frontend import Frontend
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response

BASE = """defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""
FILES = {
    # An errorfile with no Content-Length and Connection: close.
    "/e/503.http": b"HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body>Sorry</body></html>\n",
    "/e/a.http": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\nX-Custom: Yes\r\n\r\nno\n",
    "/e/b.http": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\nConnection: close\r\n"
    b"X-Custom: Yes\r\n\r\nno\n",
    "/e/c.http": b"HTTP/1.0 403 Forbidden\r\nContent-Length: 3\r\nX-Custom: Yes\r\n\r\nno\n",
    "/e/e.http": b"HTTP/1.1 403 Forbidden\r\nX-Custom: Yes\r\n\r\n",
    "/e/f.http": b"HTTP/1.1 403 Nope Nope\r\nContent-Length: 3\r\nSet-Cookie: a=b\r\n"
    b"set-cookie: c=d\r\n\r\nno\n",
    "/e/lf.http": b"HTTP/1.1 403 Forbidden\nContent-Length: 3\n\nno\n",
    "/e/nr.http": b"HTTP/1.1 403\r\nContent-Length: 3\r\nX-Sp:    padded   \r\n\r\nno\n",
    "/e/empty.http": b"",
}


def read(path: str) -> bytes:
    """FILES, as the disk: a file not there is an OSError (the parser reads
    /etc/resolv.conf for the implicit resolvers section, and does without it)."""
    if path not in FILES:
        raise FileNotFoundError(path)
    return FILES[path]


def load(text: str) -> Config:
    config, diagnostics = parse([("r.cfg", BASE + text)], {}, read)
    assert config is not None, [str(d) for d in diagnostics]
    return config


def frontend(lines: str) -> Proxy:
    config = load("frontend f\n    bind :80\n" + lines + "    default_backend b\nbackend b\n")
    found = config.proxy("f")
    assert found is not None
    return found


def request(
    uri: str = "/",
    *headers: tuple[str, str],
    method: str = "GET",
    version: str = "1.1",
) -> Request:
    return Request(
        method,
        uri,
        version,
        Headers([("Host", "h"), *headers]),
        src="127.0.0.1",
        src_port=43796,
        dst="127.0.0.1",
        dst_port=80,
    )


PAGE_403 = (
    b"<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n"
    b"</body></html>\n"
)
HEAD_403 = (
    b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
    b"content-type: text/html\r\n"
)


# --- deny ----------------------------------------------------------------------------------


def test_deny_answers_with_haproxys_page_and_keeps_the_connection() -> None:
    verdict = rules.request_rules(rules.Rules(frontend("    http-request deny\n")), request())
    assert verdict == rules.Verdict(
        "deny", 403, HEAD_403 + b"\r\n" + PAGE_403, False, "http-request deny at r.cfg:8", "PR--"
    )


@pytest.mark.parametrize(
    ("version", "connection", "expected", "close"),
    [
        ("1.0", None, b"connection: close\r\n", True),
        ("1.0", "keep-alive", b"connection: keep-alive\r\n", False),
        ("1.1", "close", b"connection: close\r\n", True),
        ("1.1", "keep-alive", b"", False),
    ],
)
def test_the_connection_header_of_a_deny(
    version: str, connection: str | None, expected: bytes, close: bool
) -> None:
    headers = [("Connection", connection)] if connection else []
    verdict = rules.request_rules(
        rules.Rules(frontend("    http-request deny\n")), request("/", *headers, version=version)
    )
    assert verdict.response == HEAD_403 + expected + b"\r\n" + PAGE_403
    assert verdict.close is close


def test_deny_status_pages() -> None:
    verdict = rules.request_rules(
        rules.Rules(frontend("    http-request deny deny_status 429\n")), request()
    )
    assert verdict.response == (
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>429 Too Many Requests</h1>\nYou have "
        b"sent too many requests in a given amount of time.\n</body></html>\n"
    )
    # HAProxy's 400 and 408 pages close the connection.
    verdict = rules.request_rules(
        rules.Rules(frontend("    http-request deny deny_status 400\n")), request()
    )
    assert verdict.close and verdict.response is not None
    assert verdict.response.startswith(
        b"HTTP/1.1 400 Bad request\r\ncontent-length: 90\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\nconnection: close\r\n\r\n"
    )


def test_deny_with_a_payload() -> None:
    proxy = frontend("    http-request deny status 401 content-type text/plain string nope\n")
    verdict = rules.request_rules(rules.Rules(proxy), request())
    assert verdict.response == (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\nnope"
    )
    assert verdict.kind == "deny"


def test_deny_uses_the_proxys_errorfile() -> None:
    proxy = frontend("    errorfile 503 /e/503.http\n    http-request deny deny_status 503\n")
    verdict = rules.request_rules(rules.Rules(proxy), request())
    assert verdict.response == (
        b"HTTP/1.1 503 Service Unavailable\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\nconnection: close\r\n\r\n<html><body>Sorry</body></html>\n"
    )
    assert verdict.close and verdict.status == 503


def test_the_answer_to_head_has_no_body() -> None:
    verdict = rules.request_rules(
        rules.Rules(frontend("    http-request deny\n")), request(method="HEAD")
    )
    assert verdict.response == HEAD_403 + b"\r\n"


# --- return ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "uri", "expected"),
    [
        ("http-request return", "/", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
        ("http-request return status 204", "/", b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            "http-request return status 404 content-type text/plain string hello "
            'hdr X-A "v %[path]" hdr X-B b',
            "/ret1",
            b"HTTP/1.1 404 Not Found\r\nx-a: v /ret1\r\nx-b: b\r\ncontent-length: 5\r\n"
            b"content-type: text/plain\r\n\r\nhello",
        ),
        (
            'http-request return status 200 content-type "text/plain" '
            'lf-string "p=%[path] q=%[query]"',
            "/retlf?a=b",
            b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\ncontent-type: text/plain\r\n\r\n"
            b"p=/retlf q=a=b",
        ),
        (
            "http-request return status 302",
            "/",
            b"HTTP/1.1 302 Moved Temporarily\r\ncontent-length: 0\r\n\r\n",
        ),
        (
            "http-request return status 418",
            "/",
            b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 0\r\n\r\n",
        ),
        (
            "http-request return status 599",
            "/",
            b"HTTP/1.1 599 Server Error\r\ncontent-length: 0\r\n\r\n",
        ),
    ],
)
def test_return(line: str, uri: str, expected: bytes) -> None:
    verdict = rules.request_rules(rules.Rules(frontend(f"    {line}\n")), request(uri))
    assert (verdict.kind, verdict.response, verdict.close, verdict.termination) == (
        "reply",
        expected,
        False,
        "LR--",
    )


# The errorfiles of FILES, for requests (HTTP version, Connection header): what HAProxy sent
# and whether it closed the connection.
ERRORFILE_CASES = [
    ("a", "1.0", None, b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"connection: close\r\n\r\nno\n", True),
    ("a", "1.0", "keep-alive", b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\n"
     b"x-custom: Yes\r\nconnection: keep-alive\r\n\r\nno\n", False),
    ("a", "1.1", "close", b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"connection: close\r\n\r\nno\n", True),
    ("a", "1.1", None, b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"\r\nno\n", False),
    ("b", "1.1", None, b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"connection: close\r\n\r\nno\n", True),
    ("c", "1.0", None, b"HTTP/1.0 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"\r\nno\n", True),
    ("c", "1.0", "keep-alive", b"HTTP/1.0 403 Forbidden\r\ncontent-length: 3\r\n"
     b"x-custom: Yes\r\nconnection: keep-alive\r\n\r\nno\n", False),
    ("c", "1.1", "close", b"HTTP/1.0 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"\r\nno\n", True),
    ("c", "1.1", None, b"HTTP/1.0 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n"
     b"connection: keep-alive\r\n\r\nno\n", False),
    ("e", "1.1", None, b"HTTP/1.1 403 Forbidden\r\nx-custom: Yes\r\nconnection: close\r\n"
     b"\r\n", True),
    ("f", "1.1", None, b"HTTP/1.1 403 Nope Nope\r\ncontent-length: 3\r\nset-cookie: a=b\r\n"
     b"set-cookie: c=d\r\n\r\nno\n", False),
    ("lf", "1.1", None, b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\n\r\nno\n", False),
    ("nr", "1.1", None, b"HTTP/1.1 403 \r\ncontent-length: 3\r\nx-sp: padded\r\n\r\nno\n", False),
    ("empty", "1.1", None, b"", True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "version", "connection", "expected", "close"), ERRORFILE_CASES)
def test_return_errorfile(
    name: str, version: str, connection: str | None, expected: bytes, close: bool
) -> None:
    proxy = frontend(f"    http-request return status 403 errorfile /e/{name}.http\n")
    headers = [("Connection", connection)] if connection else []
    verdict = rules.request_rules(rules.Rules(proxy), request("/", *headers, version=version))
    assert (verdict.response, verdict.close) == (expected, close)


# --- redirects ------------------------------------------------------------------------------


def test_http_request_redirect_with_a_log_format_target() -> None:
    proxy = frontend("    http-request redirect location /new%[path] code 301 if { path_beg /r }\n")
    verdict = rules.request_rules(rules.Rules(proxy), request("/r/x"))
    assert verdict.response == (
        b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /new/r/x\r\n\r\n"
    )
    assert rules.request_rules(rules.Rules(proxy), request("/other")) is rules.CONTINUE


def test_a_redirect_to_an_http_10_client_that_keeps_the_connection() -> None:
    proxy = frontend("    http-request redirect location /z\n")
    verdict = rules.request_rules(
        rules.Rules(proxy), request("/", ("Connection", "keep-alive"), version="1.0")
    )
    assert verdict.response == (
        b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /z\r\ncache-control: no-cache\r\n"
        b"connection: keep-alive\r\n\r\n"
    )


def test_the_seed_redirect_unless_ssl_fc() -> None:
    proxy = frontend("    http-request redirect scheme https code 301 unless { ssl_fc }\n")
    plain = rules.request_rules(rules.Rules(proxy), request("/login?x=1", ("Host", "lb.example")))
    assert plain.status == 301 and plain.response is not None
    assert b"location: https://h/login?x=1\r\n" in plain.response
    tls = request("/login")
    tls.ssl = True
    assert rules.request_rules(rules.Rules(proxy), tls) is rules.CONTINUE


def test_allow_ends_the_http_request_rules_but_not_the_redirects() -> None:
    # HAProxy 2.6: `allow` skips the deny after it, the redirect still applies.
    proxy = frontend(
        "    http-request allow if { path /allowed }\n"
        "    http-request deny if { path /allowed }\n"
        "    redirect location /redirected if { path /allowed }\n"
    )
    verdict = rules.request_rules(rules.Rules(proxy), request("/allowed"))
    assert verdict.response == (
        b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /redirected\r\n"
        b"cache-control: no-cache\r\n\r\n"
    )


def test_option_httpclose_on_a_frontend_closes_after_a_generated_response() -> None:
    proxy = frontend("    option httpclose\n    http-request return status 200\n")
    verdict = rules.request_rules(rules.Rules(proxy), request())
    assert verdict.close
    assert verdict.response == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    assert rules.request_rules(
        rules.Rules(frontend("    http-request return\n")), request(), close=True
    ).close


# --- header edits ----------------------------------------------------------------------------


def test_header_edits_in_order() -> None:
    proxy = frontend(
        '    http-request set-header X-Seen "%[req.hdr(x-seen)]+1"\n'
        "    http-request add-header X-Client %ci:%cp\n"
        "    http-request del-header X-Secret -m beg\n"
        "    http-request del-header x-drop\n"
        "    http-request replace-header Cookie foo=([^;]*);(.*) foo=\\1;ip=%fi;\\2\n"
        "    http-request replace-header User-Agent curl foo\n"
        "    http-request replace-value X-Forwarded-For ^192\\.168\\.(.*)$ 172.16.\\1\n"
    )
    req = request(
        "/",
        ("X-Seen", "0"),
        ("X-Secret-A", "1"),
        ("x-secret", "2"),
        ("X-Drop", "3"),
        ("Cookie", "foo=foobar; expires=Tue, 14-Jun-2016 01:40:45 GMT;"),
        ("User-Agent", "curl/7.47.0"),
        ("X-Forwarded-For", "192.168.10.1,192.168.13.24 ,  10.0.0.37"),
    )
    assert rules.request_rules(rules.Rules(proxy), req) is rules.CONTINUE
    assert req.headers.items == [
        ("Host", "h"),
        # configuration.txt's examples of replace-header, and HAProxy's own result for
        # replace-value (a replaced value loses the blanks around it).
        ("Cookie", "foo=foobar;ip=127.0.0.1; expires=Tue, 14-Jun-2016 01:40:45 GMT;"),
        ("User-Agent", "foo"),
        ("X-Forwarded-For", "172.16.10.1,172.16.13.24,  10.0.0.37"),
        ("X-Seen", "0+1"),
        ("X-Client", "127.0.0.1:43796"),
    ]
    assert req.headers.modified


def test_replacement_strings() -> None:
    import re

    match = re.search("(a)(b)?", "a")
    assert match is not None
    assert template.expand(r"\1-\2-\3-\x41-\\-\q", match) == "a---A-\\-q"


def test_conditions_on_header_rules() -> None:
    proxy = frontend(
        "    acl api path_beg /api\n"
        "    http-request set-header X-Api 1 if api METH_GET\n"
        "    http-request set-header X-Not-Api 1 unless api\n"
    )
    req = request("/api/x")
    rules.request_rules(rules.Rules(proxy), req)
    assert req.headers.get("x-api") == "1" and req.headers.get("x-not-api") is None
    req = request("/api/x", method="POST")
    rules.request_rules(rules.Rules(proxy), req)
    assert req.headers.get("x-api") is None


# --- responses ------------------------------------------------------------------------------


def test_response_rules() -> None:
    config = load(
        "frontend f\n    bind :80\n    default_backend b\n"
        "backend b\n"
        "    http-response set-header X-Seen 1\n"
        "    http-response del-header Server\n"
        "    http-response replace-header Location ^http://(.*) https://\\1\n"
        "    http-response deny if { status 500 }\n"
    )
    backend = config.proxy("b")
    assert backend is not None
    req = request()
    resp = Response(302, "Found", "1.1", Headers([("Server", "x"), ("Location", "http://h/a")]))
    assert rules.response_rules(rules.Rules(backend), req, resp) is rules.CONTINUE
    assert resp.headers.items == [("Location", "https://h/a"), ("X-Seen", "1")]
    failed = Response(500, "Internal Server Error", "1.1")
    verdict = rules.response_rules(rules.Rules(backend), req, failed)
    # HAProxy 2.6: a denied response is replaced by its 502 page, the connection stays.
    assert verdict == rules.Verdict(
        "deny",
        502,
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>502 Bad Gateway</h1>\nThe server "
        b"returned an invalid or incomplete response.\n</body></html>\n",
        False,
        "http-response deny at r.cfg:13",
        "PH--",  # as HAProxy 2.6 logs it: a proxy's answer in the response headers phase
    )


# --- backend selection, connection modes, the API for others ---------------------------------


def test_select_backend() -> None:
    config = load(
        "frontend f\n    bind :80\n"
        "    acl api path_beg /api\n"
        "    use_backend api if api { hdr(host) -i api.example }\n"
        "    use_backend static if { path_end .css }\n"
        "    default_backend web\n"
        "frontend g\n    bind :81\n    use_backend api if { path /api }\n"
        "    http-request return\n"
        "listen l\n    bind :82\n    use_backend api if { path /api }\n"
        "backend api\nbackend static\nbackend web\n"
    )
    f, g, listen = (config.proxy(name) for name in "fgl")
    assert f is not None and g is not None and listen is not None
    assert rules.select_backend(rules.Rules(f), request("/api/x", ("Host", "API.example"))) == "api"
    assert rules.select_backend(rules.Rules(f), request("/api/x")) == "web"
    assert rules.select_backend(rules.Rules(f), request("/a.css")) == "static"
    assert rules.select_backend(rules.Rules(g), request("/x")) is None
    assert rules.select_backend(rules.Rules(listen), request("/api")) == "api"
    assert rules.select_backend(rules.Rules(listen), request("/")) == "l"


@pytest.mark.parametrize(
    ("front", "back", "expected"),
    [
        ("", "", "keep-alive"),
        ("option http-keep-alive", "", "keep-alive"),
        ("option http-server-close", "", "server-close"),
        ("", "option http-server-close", "server-close"),
        ("", "option httpclose", "server-close"),
        ("option httpclose", "option http-keep-alive", "close"),
    ],
)
def test_http_mode(front: str, back: str, expected: str) -> None:
    config = load(
        f"frontend f\n    bind :80\n    {front}\n    default_backend b\nbackend b\n    {back}\n"
    )
    f, b = config.proxies
    # What net/http.py reads: the client side closes on the frontend's flag, the server
    # side on the frontend's or the backend's.
    fe = Frontend(f, None, None, 4096)
    be = Backend(b, [], lambda states: make_balancer(b.balance, states, False))
    closes = (fe.closes_client, fe.closes_server or be.closes_server)
    modes = {(False, False): "keep-alive", (False, True): "server-close", (True, True): "close"}
    assert modes[closes] == expected


def test_a_proxy_without_rules_costs_nothing() -> None:
    proxy = frontend("")
    assert rules.request_rules(rules.Rules(proxy), request()) is rules.CONTINUE
    resp = Response(200, "OK", "1.1")
    assert rules.response_rules(rules.Rules(proxy), request(), resp) is rules.CONTINUE


def test_condition_holds_and_compile_format() -> None:
    proxy = frontend("    use_backend b if { path_beg /x } !{ src 10.0.0.0/8 }\n")
    condition = proxy.use_backends[0].condition
    assert condition is not None
    assert rules.condition_holds(condition, request("/x/y"))
    assert not rules.condition_holds(condition, request("/y"))
    template = parse_log_format("%ci %[path]", "req")
    assert compile_format(template, "req")(request("/p"), None) == "127.0.0.1 /p"
    resp = Response(404, "Not Found", "1.1")
    assert compile_format(parse_log_format("%[status]", "res"), "res")(request(), resp) == "404"


def test_error_reply_prefers_the_backends_errorfile_then_the_frontends() -> None:
    config = load(
        "frontend f\n    bind :80\n    errorfile 504 /e/a.http\n    default_backend b\n"
        "backend b\n    errorfile 503 /e/503.http\n"
    )
    f, b = config.proxies
    response, close = rules.error_reply((rules.Rules(b), rules.Rules(f)), 503, request())
    assert close and response.startswith(b"HTTP/1.1 503 Service Unavailable\r\ncache-control")
    response, close = rules.error_reply((rules.Rules(b), rules.Rules(f)), 504, request())
    assert (response, close) == (
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nx-custom: Yes\r\n\r\nno\n",
        False,
    )
    response, close = rules.error_reply(
        (rules.Rules(b), rules.Rules(f)), 502, request(version="1.0")
    )
    assert close and response.startswith(
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\nconnection: close\r\n\r\n<html>"
    )
