"""HTTP mode through real sockets: keep-alive on both sides with connection reuse,
pipelining, bodies both ways (Content-Length and chunked), framing of HEAD/204/304,
100-continue, forwarding headers, and the errors poise answers itself (502, 503, 504).
Every test runs under uvloop and the standard asyncio loop."""

from __future__ import annotations

import time

from tests.io.harness import Stage
from tests.support import free_port, run
from tests.webapp import Client, WebApp, request

BASE = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 2s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
"""


def servers(*apps: WebApp, options: str = "") -> str:
    return "".join(f"    server {app.name} 127.0.0.1:{app.port}{options}\n" for app in apps)


def test_keep_alive_on_both_sides_reuses_the_server_connection(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            client = await Client.connect(poise.port("fe"))
            for i in range(5):
                status, _, body = await client.get(f"/n{i}")
                assert (status, body) == (200, f"a /n{i}".encode())
            client.close()
            assert a.connections == 1  # five requests, one server connection
            assert {s.connection for s in a.seen} == {1}
            lines = await stage.logs.wait_for(r" fe be/a ", count=5)
            fields = lines[0].split()
            assert fields[4].count("/") == 4 and fields[5] == "200"
            assert fields[9] == "----" and lines[0].endswith('"GET /n0 HTTP/1.1"')

    run(loop_kind, main)


def test_roundrobin_balances_each_request(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            b = await stage.webapp("b")
            poise = await stage.poise(BASE + "    balance roundrobin\n" + servers(a, b))
            client = await Client.connect(poise.port("fe"))
            names = [(await client.get("/"))[2].split()[0] for _ in range(6)]
            client.close()
            assert sorted(names) == [b"a"] * 3 + [b"b"] * 3

    run(loop_kind, main)


def test_pipelined_requests_are_answered_in_order(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            client = await Client.connect(poise.port("fe"))
            client.writer.write(
                b"GET /slow/100 HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /slow/20 HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            bodies = [(await client.response())[2] for _ in range(3)]
            client.close()
            assert bodies == [b"a /slow/100", b"a /fast", b"a /slow/20"]

    run(loop_kind, main)


def test_bodies_stream_both_ways_with_length_and_chunked(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            client = await Client.connect(poise.port("fe"))
            payload = bytes(range(256)) * 4096  # 1 MiB
            status, _, body = await client.get("/echo", method="POST", body=payload)
            assert (status, body) == (200, payload)
            client.writer.write(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"
            )
            status, _, body = await client.response()
            assert (status, body) == (200, b"wikipedia")
            status, headers, body = await client.get("/chunked")
            assert headers["transfer-encoding"] == "chunked" and body == b"hello world"
            status, _, body = await client.get("/after")  # the framing held
            assert body == b"a /after"
            client.close()

    run(loop_kind, main)


def test_head_204_and_304_responses_have_no_body(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            client = await Client.connect(poise.port("fe"))
            status, headers, _ = await client.get("/head", method="HEAD")
            assert status == 200 and headers["content-length"] == "1000"
            assert (await client.get("/status/204"))[0] == 204
            assert (await client.get("/status/304"))[0] == 304
            assert (await client.get("/next"))[2] == b"a /next"
            client.close()

    run(loop_kind, main)


def test_expect_100_continue_passes_the_interim_response(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            client = await Client.connect(poise.port("fe"))
            client.writer.write(
                b"POST /continue HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            status, _, _ = await client.response()
            assert status == 100
            client.writer.write(b"hello")
            status, _, body = await client.response()
            assert (status, body) == (200, b"a /continue")
            assert a.seen[-1].body == b"hello"
            client.close()

    run(loop_kind, main)


def test_forwardfor_and_hop_by_hop_headers(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(
                BASE.replace("option httplog", "option httplog\n    option forwardfor") + servers(a)
            )
            client = await Client.connect(poise.port("fe"))
            await client.get("/", headers="Connection: X-Private\r\nX-Private: secret\r\n")
            client.close()
            seen = a.seen[-1]
            assert seen.header("X-Forwarded-For") == "127.0.0.1"
            assert seen.header("X-Private") is None  # named by Connection: hop-by-hop
            assert seen.header("Connection") is None

    run(loop_kind, main)


def test_http_server_close_closes_the_server_side_only(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(
                BASE.replace("option httplog", "option httplog\n    option http-server-close")
                + servers(a)
            )
            client = await Client.connect(poise.port("fe"))
            for _ in range(3):
                assert (await client.get("/"))[0] == 200
            client.close()
            assert a.connections == 3  # a new server connection each time ...
            assert all(s.header("Connection") == "close" for s in a.seen)

    run(loop_kind, main)


def test_errors_poise_answers_itself(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            dead = free_port()
            poise = await stage.poise(
                BASE.replace("timeout server 5s", "timeout server 300ms")
                + servers(a)
                + "backend down\n    timeout connect 100ms\n    retries 1\n"
                f"    server d 127.0.0.1:{dead}\n"
                + "frontend f2\n    bind 127.0.0.1:0\n    default_backend down\n"
            )
            client = await Client.connect(poise.port("fe"))
            status, _, body = await client.get("/slow/2000")
            assert status == 504 and b"504 Gateway Time-out" in body
            status, _, body = await client.get("/garbage")
            assert status == 502 and b"502 Bad Gateway" in body
            assert (await client.get("/"))[0] == 200  # the client connection lives on
            client.close()
            other = await Client.connect(poise.port("f2"))
            status, _, body = await other.get("/")
            assert status == 503 and b"No server is available" in body
            other.close()
            assert (await stage.logs.wait_for(r" 504 "))[0].split()[9] == "sH--"
            assert (await stage.logs.wait_for(r" 503 "))[0].split()[9] == "SC--"

    run(loop_kind, main)


def test_request_timeout_is_408_and_nothing_is_forwarded(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(
                BASE.replace("timeout http-request 2s", "timeout http-request 200ms") + servers(a)
            )
            started = time.monotonic()
            got = await request(poise.port("fe"), b"GET / HTTP/1.1\r\nHost: t\r\n")
            assert got.startswith(b"HTTP/1.1 408 Request Time-out\r\n")
            assert 0.19 <= time.monotonic() - started < 3
            assert a.seen == []

    run(loop_kind, main)


def test_a_response_without_length_ends_with_the_connection(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            got = await request(poise.port("fe"), b"GET /nolength HTTP/1.1\r\nHost: t\r\n\r\n")
            assert got.endswith(b"a until close")
            assert b"\r\nConnection: close\r\n" in got  # the client is told, and closed

    run(loop_kind, main)


async def wait_logged(stage: Stage, pattern: str) -> str:
    return (await stage.logs.wait_for(pattern))[0]


def test_the_httplog_line(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            await request(
                poise.port("fe"), b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            line = await wait_logged(stage, r'"GET /x\?y=1 HTTP/1.1"')
            fields = line.split()
            assert fields[2:4] == ["fe", "be/a"]
            tr, tw, tc, tr_server, ta = (int(x) for x in fields[4].split("/"))
            assert tr >= 0 and tw >= 0 and tc >= 0 and tr_server >= 0 and ta >= tr_server
            assert fields[5] == "200" and int(fields[6]) > 0
            assert fields[7:10] == ["-", "-", "----"]

    run(loop_kind, main)


def test_a_refused_request_is_logged_with_its_reason(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            # The reason goes to the targets that take no traffic lines (`notice`).
            explained = "    log 127.0.0.1:{log} format raw local0 notice\n"
            text = BASE.replace("    option httplog\n", explained + "    option httplog\n")
            poise = await stage.poise(text + servers(a))
            got = await request(
                poise.port("fe"),
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            )
            assert got.startswith(b"HTTP/1.1 400 Bad request\r\n")
            line = (await stage.logs.wait_for(r": failed "))[0]
            assert line.startswith("fe/fe/<NOSRV> 127.0.0.1:")
            assert "Transfer-Encoding can't be present with Content-Length" in line, line
            assert (await stage.logs.wait_for(r" 400 "))[0].endswith(
                'PR-- 1/1/0/0/0 0/0 "<BADREQ>"'
            )
            assert a.seen == []

    run(loop_kind, main)


def test_connection_close_from_the_client_closes_after_the_response(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(BASE + servers(a))
            got = await request(
                poise.port("fe"),
                b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                until_close=True,
            )
            assert got.endswith(b"a /") and b"\r\nConnection: close\r\n" in got
            got = await request(poise.port("fe"), b"GET / HTTP/1.0\r\n\r\n", until_close=True)
            assert got.endswith(b"a /")

    run(loop_kind, main)
