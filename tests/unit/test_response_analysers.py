"""The analysers on the way back (core/http/response_analysers.py), called directly: the
response read and checked, the http-response rules in HAProxy's order, the persistence
cookie on the response and the head the client gets."""

from __future__ import annotations

import pytest

from poise.config import model
from poise.config.haproxy import parse
from poise.config.model import Config
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.http import response_analysers as analysers
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.http.persistence import CookieMatch
from poise.core.http.validate import HttpProblem
from poise.core.server import ServerState

BASE = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
BASE += "    timeout server 1s\n"


def load(text: str) -> Config:
    config, diagnostics = parse([("r.cfg", BASE + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config


def proxies(text: str) -> tuple[Frontend, Backend]:
    config = load(text)
    f = config.proxy("f")
    b = config.proxy("b") or f
    assert f is not None and b is not None
    backend = Backend(b, [], lambda states: make_balancer(b.balance, states, False))
    return Frontend(f, None, None, 4096), backend


def request(method: str = "GET", version: str = "1.1") -> Request:
    return Request(method, "/", version, Headers([("Host", "h")]))


def response(head: bytes) -> Response:
    resp = analysers.read_response(head)
    assert isinstance(resp, Response), resp
    return resp


# --- read and checked -----------------------------------------------------------------------


def test_a_response_head_is_read_as_it_came() -> None:
    resp = response(b"HTTP/1.0 404 Not Here\r\nContent-Length: 3\r\nX-A: b\r\n\r\n")
    assert (resp.status, resp.reason, resp.version) == (404, "Not Here", "1.0")
    assert resp.headers.items == [("Content-Length", "3"), ("X-A", "b")]
    assert not resp.headers.modified


def test_a_response_head_httptools_refuses_is_a_reason() -> None:
    refused = analysers.read_response(b"HTTP/1.1 2000 OK\r\n\r\n")
    assert isinstance(refused, str) and refused


@pytest.mark.parametrize(
    ("method", "head", "expected"),
    [
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", ("length", 5, True, True)),
        ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         ("chunked", 0, True, True)),
        # The server closes its side: the client's stays.
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
         ("length", 5, False, True)),
        ("GET", b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", ("length", 5, False, True)),
        # A body that ends with the server's close ends both connections.
        ("GET", b"HTTP/1.1 200 OK\r\n\r\n", ("close", 0, False, False)),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", ("none", 0, True, True)),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", ("none", 0, True, True)),
    ],
)  # fmt: skip
def test_the_response_checks_say_how_the_body_ends_and_what_survives_it(
    method: str, head: bytes, expected: tuple[str, int, bool, bool]
) -> None:
    checked = analysers.check_response(request(method), response(head))
    assert isinstance(checked, tuple)
    framing, keep_server, keep_client = checked
    assert (framing.kind, framing.length, keep_server, keep_client) == expected


def test_a_response_whose_end_cannot_be_told_is_a_502() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    problem = analysers.check_response(request("CONNECT"), response(head))  # no tunnel
    assert isinstance(problem, HttpProblem) and problem.status == 502


# --- http-response rules ----------------------------------------------------------------------


def test_the_backends_response_rules_run_before_the_frontends() -> None:
    frontend, backend = proxies(
        "frontend f\n    bind :80\n    http-response add-header X-Order front\n"
        "    default_backend b\n"
        "backend b\n    http-response add-header X-Order back\n"
    )
    assert analysers.rule_programs(backend, frontend) == [backend.rules, frontend.rules]
    resp = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert analysers.response_rules(backend, frontend, request(), resp) is None
    assert resp.headers.get_all("x-order") == ["back", "front"]


def test_a_listen_sections_rules_run_once() -> None:
    frontend, backend = proxies(
        "listen f\n    bind :80\n    http-response add-header X-Once yes\n"
    )  # fmt: skip
    programs = analysers.rule_programs(backend, frontend)
    assert programs == [frontend.rules]
    assert analysers.rule_programs(None, frontend) == [frontend.rules]


def test_a_deny_in_the_backend_stops_the_response_before_the_frontends_rules() -> None:
    frontend, backend = proxies(
        "frontend f\n    bind :80\n    http-response add-header X-Front yes\n"
        "    default_backend b\n"
        "backend b\n    http-response deny if { status 500 }\n"
    )
    resp = response(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    verdict = analysers.response_rules(backend, frontend, request(), resp)
    assert verdict is not None and verdict.kind == "deny" and verdict.status == 502
    assert resp.headers.get("x-front") is None


# --- the persistence cookie -------------------------------------------------------------------


def test_the_persistence_cookie_is_inserted_and_its_flags_returned() -> None:
    cookie = model.Cookie("SRV", model.NOWHERE, "insert", indirect=True)
    address = model.Address("ipv4", "127.0.0.1", 8001)
    server = ServerState(model.Server("s1", address, model.NOWHERE, 1, cookie="s1"), "b")
    resp = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    flags = analysers.response_cookie(cookie, None, server, request(), resp, now=1795259371.0)
    assert flags == "NI"  # no cookie came, one was inserted
    assert resp.headers.get("set-cookie") == "SRV=s1; path=/"
    # A request that came with a valid cookie for that server gets none.
    resp = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    match = CookieMatch(server, "V")
    flags = analysers.response_cookie(cookie, match, server, request(), resp, now=1795259371.0)
    assert flags == "VN" and resp.headers.get("set-cookie") is None


# --- the client's head ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "keep", "head", "expected"),
    [
        # Nothing to change: the bytes as they came.
        ("1.1", True, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None),
        ("1.1", False, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None),
        # The server's close is not the client's.
        ("1.1", True, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        # The client's connection closes after this response: it is told so.
        ("1.1", False, b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        # An HTTP/1.0 client keeping its connection is told so.
        ("1.0", True, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"),
    ],
)  # fmt: skip
def test_the_client_head_says_what_poise_does_with_the_client_connection(
    version: str, keep: bool, head: bytes, expected: bytes | None
) -> None:
    out = analysers.client_head(head, request(version=version), response(head), keep)
    assert out == (head if expected is None else expected)


# Plain response heads (validate.plain_length takes them) in every layout a server may
# write: the edit for a closing client must give the bytes client_head's rebuild gives.
_PLAIN_HEADS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\nX: y\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nconnection: Keep-Alive\r\nConnection: keep-alive\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nDate: Tue, 08 Dec 2026 03:00:00 GMT\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer:nginx\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer:  nginx\r\nContent-Length:3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer: nginx \r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer:\tnginx\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Empty2: \r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 \r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK \r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 A: b\r\nX: a: \tb\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Connection: keep\r\nConnection-Extra: x\r\nContent-Length: 3\r\n\r\n",
]


@pytest.mark.parametrize("head", _PLAIN_HEADS)
def test_a_plain_head_for_a_closing_client_is_the_one_client_head_rebuilds(head: bytes) -> None:
    req = request()
    rebuilt = analysers.client_head(head, req, response(head), False)
    assert analysers.closing_plain_head(head, req) == rebuilt
    assert rebuilt.endswith(b"\r\nConnection: close\r\n\r\n")
