"""The analysers on the way in (core/http/request_analysers.py), called directly: the
request head read and checked, and the switching rules that choose the backend."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.config.model import Config
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.http import request_analysers as analysers
from poise.core.http.heads import MAX_FIELDS
from poise.core.http.message import Request
from poise.core.server import ServerState
from poise.core.txn import Conn

BASE = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
BASE += "    timeout server 1s\n"


def connection() -> Conn:
    conn = Conn()
    conn.client_ip, conn.client_port, conn.dst_ip, conn.dst_port = "192.0.2.7", 40000, "::1", 80
    conn.ssl, conn.sni = True, "example.test"
    return conn


def read(raw: bytes) -> Request:
    req = analysers.read_request(raw, connection())
    assert isinstance(req, Request), req
    return req


def test_a_request_head_is_read_with_its_connections_facts() -> None:
    conn = connection()
    req = analysers.read_request(b"\r\nGET /a?b HTTP/1.0\r\nHost: h\r\nX-A: 1\r\n\r\n", conn)
    assert isinstance(req, Request)
    assert (req.method, req.uri, req.version) == ("GET", "/a?b", "1.0")
    assert req.headers.items == [("Host", "h"), ("X-A", "1")]
    assert (req.src, req.src_port, req.dst, req.dst_port) == ("192.0.2.7", 40000, "::1", 80)
    assert (req.ssl, req.sni) == (True, "example.test")
    assert req.conn is conn  # the `sess` variables live on the connection


def test_a_method_llhttp_does_not_know_is_read_as_sent() -> None:
    req = read(b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (req.method, req.uri) == ("BREW", "/pot")


def test_what_httptools_refuses_is_a_reason() -> None:
    refused = analysers.read_request(
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", connection()
    )
    assert isinstance(refused, str) and refused.startswith("malformed request: ")


def test_more_header_fields_than_haproxy_takes_are_refused() -> None:
    fields = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_FIELDS + 1))
    raw = b"GET / HTTP/1.1\r\n" + fields + b"\r\n"
    assert analysers.read_request(raw, connection()) == "too many header fields"
    fields = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_FIELDS))
    assert isinstance(analysers.read_request(b"GET / HTTP/1.1\r\n" + fields + b"\r\n",
                                             connection()), Request)  # fmt: skip


def load(text: str) -> Config:
    config, diagnostics = parse([("r.cfg", BASE + text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config


def backend(config: Config, name: str) -> Backend:
    proxy = config.proxy(name)
    assert proxy is not None
    return Backend(proxy, [], lambda states: make_balancer(proxy.balance, states, False))


def test_the_switching_rules_choose_the_backend() -> None:
    config = load(
        "frontend f\n    bind :80\n    use_backend api if { path_beg /api }\n"
        "    use_backend %[req.hdr(x-to)] if { req.hdr(x-to) -m found }\n"
        "    default_backend web\n"
        "backend api\nbackend web\n"
    )
    backends = {name: backend(config, name) for name in ("api", "web")}
    proxy = config.proxy("f")
    assert proxy is not None
    frontend = Frontend(proxy, backends["web"], None, 4096)
    chosen = analysers.select_backend(frontend, read(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n"),
                                      backends)  # fmt: skip
    assert chosen is backends["api"]
    plain = read(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert analysers.select_backend(frontend, plain, backends) is backends["web"]
    # A log-format name that names no backend gives the default one.
    named = read(b"GET /x HTTP/1.1\r\nHost: h\r\nX-To: nowhere\r\n\r\n")
    assert analysers.select_backend(frontend, named, backends) is backends["web"]


def test_a_listen_section_is_its_own_backend_and_no_rule_holding_is_none() -> None:
    config = load(
        "listen l\n    bind :80\nfrontend f\n    bind :81\n    use_backend l if { path_beg /l }\n"
    )
    own = backend(config, "l")
    listen, routed = config.proxy("l"), config.proxy("f")
    assert listen is not None and routed is not None
    req = read(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert analysers.select_backend(Frontend(listen, own, None, 4096), req, {"l": own}) is own
    # No default_backend, and no use_backend condition holds: no backend (a 503).
    assert analysers.select_backend(Frontend(routed, None, None, 4096), req, {"l": own}) is None


# --- the head for the server ------------------------------------------------------------------


def pair(front: str, back: str) -> tuple[Frontend, Backend]:
    config = load(
        f"frontend f\n    bind :80\n{front}    default_backend b\n"
        f"backend b\n{back}    server s1 127.0.0.1:8001 cookie s1\n"
    )
    proxy, routed = config.proxy("b"), config.proxy("f")
    assert proxy is not None and routed is not None
    servers = [ServerState(server, "b") for server in proxy.servers]
    chosen = Backend(proxy, servers, lambda states: make_balancer(proxy.balance, states, False))
    return Frontend(routed, chosen, None, 4096), chosen


def test_a_head_nothing_changes_goes_to_the_server_as_it_came() -> None:
    frontend, backend = pair("", "")
    raw = b"GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
    req = read(raw)
    assert analysers.server_headers(req, frontend, backend, "192.0.2.7", False) is True
    assert analysers.request_head(raw, req) is raw


def test_the_server_head_drops_hop_by_hop_headers_and_adds_what_poise_does() -> None:
    frontend, backend = pair("    option forwardfor\n", "    option http-server-close\n")
    raw = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\r\n"
    req = read(raw)
    assert analysers.server_headers(req, frontend, backend, "192.0.2.7", False) is False
    assert analysers.request_head(raw, req) == (
        b"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n"
    )


def test_an_http_10_request_kept_alive_says_so_and_an_upgrade_keeps_its_own() -> None:
    frontend, backend = pair("", "")
    raw = b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"
    req = read(raw)
    assert analysers.server_headers(req, frontend, backend, "192.0.2.7", False) is True
    assert analysers.request_head(raw, req).endswith(b"Connection: keep-alive\r\n\r\n")
    raw = (
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    req = read(raw)
    # An upgraded connection is not reused, and its Connection and Upgrade go through.
    assert analysers.server_headers(req, frontend, backend, "192.0.2.7", True) is False
    assert analysers.request_head(raw, req) is raw


def test_the_persistence_cookie_names_the_server_and_leaves_the_request() -> None:
    frontend, backend = pair("", "    cookie SRV insert indirect\n")
    cookie = backend.proxy.cookie
    assert cookie is not None
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: SRV=s1; other=1\r\n\r\n"
    req = read(raw)
    match = analysers.request_persistence(cookie, backend, req, 1795259371.0)
    assert match.server is backend.servers[0] and match.status == "V"
    # `indirect`: the server does not see poise's cookie.
    assert req.headers.get("cookie") == "other=1"
    analysers.server_headers(req, frontend, backend, "192.0.2.7", False)
    assert b"SRV=" not in analysers.request_head(raw, req)


# `Connection: close` requests in every layout a client may write, and edits after the
# Connection line is out: the spliced head must be the bytes of the rebuilt one.
_CLOSING = [
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nconnection: Close\r\nHost: h\r\nUser-Agent: wrk\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, x-hop\r\nX-Hop: 1\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nKeep-Alive: 5\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost:h\r\nConnection: close\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h \r\nConnection: close\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection:close\r\nX:\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a:\tb\r\nConnection: close\r\n\r\n", ""),
    (b"\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", ""),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "    option forwardfor\n"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nCookie: SRV=s1\r\n\r\n",
     "    cookie SRV indirect\n"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "back"), _CLOSING)
def test_a_connection_line_spliced_out_gives_the_rebuilt_head(raw: bytes, back: str) -> None:
    frontend, backend = pair("", back)
    req = read(raw)
    analysers.server_headers(req, frontend, backend, "192.0.2.7", False)
    if backend.proxy.cookie is not None:
        analysers.request_persistence(backend.proxy.cookie, backend, req, 0.0)
    rebuilt = f"{req.method} {req.uri} HTTP/{req.version}\r\n".encode() + req.headers.encode()
    assert analysers.request_head(raw, req) == rebuilt + b"\r\n"
    assert b"onnection" not in rebuilt


def test_a_head_with_its_connection_line_out_is_spliced_until_another_edit() -> None:
    frontend, backend = pair("", "")
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX: 1\r\n\r\n"
    req = read(raw)
    analysers.server_headers(req, frontend, backend, "192.0.2.7", False)
    assert req.headers.spliced is req.headers.items
    assert analysers.request_head(raw, req) == raw.replace(b"Connection: close\r\n", b"")
    req.headers.add("X-Late", "1")
    assert req.headers.spliced is None
    assert analysers.request_head(raw, req).endswith(b"X: 1\r\nX-Late: 1\r\n\r\n")
