"""`http-request tarpit`, `set-timeout`, `set-log-level` and `timeout tarpit` as the
parser reads them, with HAProxy 2.6's messages for what it refuses (haproxy -c on the
same lines)."""

from __future__ import annotations

import pytest

from poise.config import patterns
from poise.config.haproxy import parse
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request

BASE = """defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
listen l
    bind :80
    server s 127.0.0.1:1
"""


def errors(line: str, section: str = "listen l") -> list[str]:
    text = BASE.replace("listen l\n", f"{section}\n    {line}\n")
    if section.startswith("frontend"):
        text = text.replace("    server s 127.0.0.1:1\n", "")
    _, diagnostics = parse([("t.cfg", text)], {})
    return [str(d) for d in diagnostics if d.severity.value == "error"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "http-request set-log-level foo",
            "expects exactly 1 argument (log level name or 'silent').",
        ),
        ("http-request set-timeout server 1x", "unexpected character 'x' in rule"),
        ("http-request set-timeout server", "expects exactly 2 arguments"),
        ("http-request set-timeout client 1s", "supports 'server'/'tunnel' (got 'client')"),
        ("http-request tarpit deny_status 600", "Unexpected status code '600'"),
    ],
)
def test_refused_as_haproxy_refuses_them(line: str, message: str) -> None:
    found = errors(line)
    assert len(found) == 1 and message in found[0] and found[0].startswith("t.cfg:7:")


def test_set_timeout_needs_a_backend() -> None:
    found = errors("http-request set-timeout server 1s", "frontend f")
    assert len(found) == 1 and "proxy 'f' has no backend capability." in found[0]


def test_accepted_with_their_values() -> None:
    text = BASE + "    timeout tarpit 2s\n    http-request tarpit deny_status 429\n"
    text += "    http-request set-timeout tunnel 2m\n"
    text += "    http-request set-timeout server var(txn.t)\n"
    text += "    http-response set-log-level silent\n"
    config, diagnostics = parse([("t.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxies[0]
    assert proxy.timeouts.tarpit == 2000
    tarpit, tunnel, server = proxy.http_request_rules
    assert tarpit.reply is not None and tarpit.reply.status == 429
    assert (tunnel.name, tunnel.status) == ("tunnel", 120000)
    assert server.sample is not None and server.sample.fetch == "var"
    assert proxy.http_response_rules[0].name == "silent"


CAPTURES = """frontend f
    bind :80
    capture request header Host len 10
    declare capture request len 5
    http-request capture path len 3
    http-request capture path id 1
    declare capture response len 8
    http-response capture status id 0
    default_backend b
backend b
    http-request capture req.hdr(x) id 7
    server s 127.0.0.1:1
"""


def test_capture_slots_in_the_order_of_the_lines() -> None:
    config, diagnostics = parse([("t.cfg", BASE.partition("listen")[0] + CAPTURES)], {})
    assert config is not None, [str(d) for d in diagnostics]
    front, back = config.proxies
    assert [(c.name, c.length) for c in front.capture_request_headers] == [
        ("Host", 10),
        ("", 5),
        ("", 3),
    ]
    assert [r.status for r in front.http_request_rules] == [2, 1]
    assert [(c.name, c.length) for c in front.capture_response_headers] == [("", 8)]
    assert back.http_request_rules[0].status == 7  # a backend's id is checked at run time


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("declare capture request", "requires a capture length ('len')"),
        ("declare capture foo len 3", "requires a direction ('request' or 'response')"),
        ("declare capture request len x", "cannot parse the length 'x'"),
        ("http-response capture status len 3", "expects 'id', found 'len'."),
        (
            "http-request capture path id 9",
            "Proxy 'f': unable to find capture id '9' referenced by http-request capture rule.",
        ),
    ],
)
def test_captures_refused_as_haproxy_refuses_them(line: str, message: str) -> None:
    found = errors(line, "frontend f")
    assert len(found) == 1 and message in found[0], found


def test_a_backend_cannot_add_a_capture_slot() -> None:
    found = errors("http-request capture path len 3", "backend b2")
    assert len(found) == 1 and "proxy 'b2' has no frontend capability." in found[0]


@pytest.mark.parametrize(
    ("line", "section", "message"),
    [
        (
            "tcp-request content capture req.hdr(x) id 0",
            "frontend f",
            "'tcp-request content capture' : a positive 'len' argument is mandatory",
        ),
        (
            "tcp-request content capture req.hdr(x) len 3",
            "backend b2",
            "'tcp-request content capture' : proxy 'b2' has no frontend capability",
        ),
    ],
)
def test_tcp_content_capture_refused_as_haproxy_refuses_it(
    line: str, section: str, message: str
) -> None:
    found = errors(line, section)
    assert len(found) == 1 and message in found[0], found


def test_set_map_leaves_out_a_key_a_map_of_addresses_cannot_hold() -> None:
    text = BASE.partition("listen")[0] + (
        "frontend f\n    bind :80\n"
        "    http-request set-map(/m/ip.map) %[req.hdr(k)] new\n"
        "    http-request set-header X %[req.hdr(a),map_ip(/m/ip.map,none)]\n"
    )
    config, diagnostics = parse([("t.cfg", text)], {}, lambda path: b"10.0.0.0/8 ten\n")
    assert config is not None, [str(d) for d in diagnostics]
    program = rules.Rules(config.proxies[0])
    for key, address, expected in [
        ("not-an-address", "10.1.1.1", "ten"),
        ("192.0.2.0/24", "192.0.2.9", "new"),
        ("10.0.0.0/8", "10.1.1.1", "new"),
    ]:
        req = Request("GET", "/", "1.1", Headers([("k", key), ("a", address)]))
        assert rules.request_rules(program, req).kind == "continue"
        assert req.headers.get("x") == expected
    entries = patterns.REFERENCES["/m/ip.map"].entries
    assert [(e.key, e.value) for e in entries] == [("10.0.0.0/8", "new"), ("192.0.2.0/24", "new")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http-request set-map(/m) a", "'set-map' expects exactly 2 arguments"),
        ("http-request add-acl(/m)", "'add-acl' expects exactly 1 arguments"),
        ("http-request del-map(/m) a b", "expects either 'if' or 'unless' followed by"),
    ],
)
def test_map_actions_refused_as_haproxy_refuses_them(line: str, message: str) -> None:
    found = errors(line, "frontend f")
    assert len(found) == 1 and message in found[0], found


def test_normalize_uri_needs_the_experimental_directives_as_haproxy_26() -> None:
    found = errors("http-request normalize-uri path-merge-slashes", "frontend f")
    assert len(found) == 1 and found[0].startswith("t.cfg:7: error:")
    assert "'normalize-uri' action is experimental, must be allowed via a global " in found[0]
    text = "global\n    expose-experimental-directives\n" + BASE.partition("listen")[0]
    text += "frontend f\n    bind :80\n    http-request normalize-uri path-strip-dotdot full\n"
    text += "    http-request normalize-uri bogus\n"
    _, diagnostics = parse([("t.cfg", text)], {})
    assert [str(d) for d in diagnostics if d.severity.value == "error"] == [
        "t.cfg:11: error: 'http-request': unknown normalizer 'bogus'."
    ]


def test_every_action_the_parser_knows_is_one_of_the_models() -> None:
    from typing import get_args

    from poise.config import haproxy_http
    from poise.config.model_http import HttpAction

    assert set(haproxy_http._ARITY) <= set(get_args(HttpAction))


def test_a_capture_fetch_takes_a_slot_number() -> None:
    found = errors("http-request set-header X %[capture.req.hdr(x)]", "frontend f")
    assert len(found) == 1
    assert "fetch method 'capture.req.hdr' : failed to parse 'x' as type 'integer'" in found[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http-request wait-for-body", "'wait-for-body' expects a 'time' argument"),
        ("http-request wait-for-body time 1x", "unexpected character 'x'"),
        ("http-request wait-for-body time 1s at-least x", "invalid value 'x' for 'at-least'"),
        ("http-request wait-for-body time 1s size 3", "unexpected argument 'size'"),
    ],
)
def test_wait_for_body_refused_when_it_cannot_be_read(line: str, message: str) -> None:
    found = errors(line, "frontend f")
    assert len(found) == 1 and message in found[0], found
