"""`option http-buffer-request` in the pure stream (core/http/body_wait.py) with an explicit
clock, the chunk decoder and the body fetches (core/request_body.py), and the option's
place in the configuration. The same behaviour against HAProxy 2.6 on real sockets:
tests/e2e/test_buffer_request_differential.py."""

from __future__ import annotations

from poise.config.haproxy import parse
from poise.config.model import Option
from poise.config.samples import parse_sample
from poise.core.fetch import sample_values
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.request_body import decode_chunks
from tests.unit.test_http_stream import OK, World

# The backend's option: the frontend's rules have run, the backend's wait for the body.
BUFFERED = """    option http-buffer-request
    http-request set-header X-Len %[req.body_len]
    http-request set-header X-A %[req.body_param(a)]
    http-request deny if { req.body -m sub evil }
"""


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)


def test_the_rules_run_once_the_body_is_in_and_see_it() -> None:
    w = World(BUFFERED)
    w.client(post(b"a=1&b=22"))
    w.client(b"a=1&")
    assert w.port.conns == [] and w.dispatch.state is not None
    w.client(b"b=22")
    conn = w.dispatch.up()
    assert b"X-Len: 8\r\nX-A: 1\r\n\r\na=1&b=22" in bytes(conn.data)
    w.server(OK)
    assert bytes(w.port.client) == OK and w.terms() == ["--"]


def test_the_wait_is_bounded_from_the_end_of_the_head_not_from_the_last_read() -> None:
    w = World(BUFFERED)
    w.client(post(b"a=1&b=22"))  # t=100.01; `timeout http-request 2s`
    for _ in range(3):
        w.client(b"a", after=0.5)  # a byte every half second
    w.until(102.0)
    assert w.port.client == b""
    w.until(102.02)
    assert w.port.client.startswith(b"HTTP/1.1 408 ")
    assert w.terms() == ["cR"] and w.port.logged[0].t_head == -1


def test_a_refused_body_is_dropped_and_the_next_request_is_served() -> None:
    w = World(BUFFERED)
    w.client(post(b"a=evil") + b"a=evil" + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    assert bytes(w.port.client).startswith(b"HTTP/1.1 403 ")
    conn = w.dispatch.up()
    assert conn.data.startswith(b"GET /next HTTP/1.1\r\n")
    w.server(OK)
    assert w.terms() == ["PR", "--"]


def test_expect_100_continue_is_answered_by_the_balancer() -> None:
    w = World(BUFFERED)
    w.client(post(b"a=2", b"Expect: 100-continue\r\n"))
    assert bytes(w.port.client) == b"HTTP/1.1 100 Continue\r\n\r\n"
    w.client(b"a=2")
    conn = w.dispatch.up()
    assert b"expect" not in bytes(conn.data).lower() and conn.data.endswith(b"\r\n\r\na=2")


def test_a_client_that_leaves_before_its_body_is_logged_cr() -> None:
    w = World(BUFFERED)
    w.client(post(b"a=2") + b"a")
    assert w.stream.client_eof() is False
    assert w.terms() == ["CR"] and w.port.logged[0].status == -1 and w.port.client == b""


def test_chunks_decoded_as_far_as_they_go() -> None:
    body = b"3\r\na=1\r\n4;ext=1\r\n&b=2\r\n0\r\nX-T: 1\r\n\r\nGET"
    assert decode_chunks(body, len(body)) == (b"a=1&b=2", 7, len(body) - 3)
    # Cut inside the second chunk: its announced size counts whole.
    assert decode_chunks(body, 18) == (b"a=1&", 7, -1)
    assert decode_chunks(b"zz\r\nab", 10) == (b"", 0, -1)  # malformed: stops
    assert decode_chunks(b"0\r\n\r\n", 5) == (b"", 0, 5)


def values(text: str, req: Request) -> list[object]:
    return list(sample_values(parse_sample(text, "req"), "req")(req, None))


def test_the_body_fetches() -> None:
    req = Request("POST", "/", "1.1", Headers([("host", "h")]))
    assert values("req.body", req) == [] and values("req.body_len", req) == []
    req.body, req.body_size = "a=1&b=%41+c&a=3&flag", 40
    assert values("req.body_len", req) == [20] and values("req.body_size", req) == [40]
    assert values("req.body_param(a)", req) == ["1", "3"]
    assert values("req.body_param(b)", req) == ["%41+c"]  # left encoded, as HAProxy
    assert values("req.body_param", req) == ["1", "%41+c", "3"]
    assert values("req.body,length", req) == [20]


def test_the_option_in_a_tcp_proxy_is_ignored_with_haproxys_warning() -> None:
    text = "defaults\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
    text += "listen l\n    mode tcp\n    bind :81\n    option http-buffer-request\n"
    text += "    server s 127.0.0.1:1\n"
    config, diagnostics = parse([("t.cfg", text)], {})
    assert config is not None and Option.HTTP_BUFFER_REQUEST not in config.proxies[0].options
    assert [str(d) for d in diagnostics] == [
        "t.cfg:8: warning: 'option http-buffer-request': ignored for listen 'l' as it "
        "requires HTTP mode"
    ]


def test_a_body_not_waited_for_closes_the_connection_after_a_rule_answers() -> None:
    # Before, the body of a denied request was read as the next request (a 400, or
    # worse, a request nobody sent); HAProxy reads it away, poise closes.
    w = World("    http-request deny if { path /p }\n")
    w.client(post(b"GET /x HTTP/1.1\r\n\r\n") + b"GET /x HTTP/1.1\r\n\r\n")
    assert bytes(w.port.client).startswith(b"HTTP/1.1 403 ")
    assert b"connection: close" in bytes(w.port.client).lower()
    assert w.terms() == ["PR"] and w.port.closed is not None and w.port.conns == []


def test_wait_for_body_lets_the_later_rules_see_the_body_only() -> None:
    w = World(
        "    http-request set-header X-Before %[req.body_len]\n"
        "    http-request wait-for-body time 1s at-least 3\n"
        "    http-request set-header X-After %[req.body_len]\n"
    )
    w.client(post(b"a=1&b=22"))
    w.client(b"a=")
    assert w.dispatch.state is not None and w.port.conns == []
    w.client(b"1&b")  # 5 bytes: enough, and all of them are read
    conn = w.dispatch.up()
    assert b"X-Before: \r\nX-After: 5\r\n\r\na=1&b" in bytes(conn.data)
