"""What the first seed needs from HTTP mode, through real sockets: WebSockets pass and stay
open, an inserted cookie keeps a client on its server (and moves it when that server
dies), and ACL routing and rules decide where a request goes."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from tests.io.harness import Stage
from tests.support import eventually, run
from tests.webapp import Client, request

BASE = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 300ms
    timeout server 300ms
    timeout tunnel 10s
    timeout http-request 2s
frontend fe
    bind 127.0.0.1:0
    default_backend be
"""


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        text = message if isinstance(message, str) else message.decode()
        await connection.send(f"echo: {text}")


def test_websocket_passes_and_outlives_the_client_timeout(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, ws_serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            poise = await stage.poise(BASE + f"backend be\n    server ws 127.0.0.1:{port}\n")
            url = f"ws://127.0.0.1:{poise.port('fe')}/agent"
            async with ws_connect(url) as ws:
                await ws.send("hello")
                assert await ws.recv() == "echo: hello"
                # Idle for longer than `timeout client`/`server` (300ms): the tunnel
                # timeout (10s) applies once the connection is a WebSocket.
                idle = asyncio.Event()
                asyncio.get_running_loop().call_later(0.8, idle.set)
                await idle.wait()
                await ws.send("still there?")
                assert await ws.recv() == "echo: still there?"
            line = (await stage.logs.wait_for(r'"GET /agent HTTP/1.1"'))[0]
            assert line.split()[5] == "101"

    run(loop_kind, main)


def test_a_malformed_upgrade_gets_400(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(BASE + f"backend be\n    server a 127.0.0.1:{app.port}\n")
            got = await request(
                poise.port("fe"),
                b"GET /agent HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            assert got.startswith(b"HTTP/1.1 400 ")
            assert app.seen == []

    run(loop_kind, main)


COOKIE_BACKEND = """backend be
    balance roundrobin
    option redispatch
    cookie POISEID insert indirect nocache maxidle 1d maxlife 1d
    server a 127.0.0.1:{a} cookie a
    server b 127.0.0.1:{b} cookie b
"""


def test_an_inserted_cookie_keeps_the_client_on_its_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            b = await stage.webapp("b")
            poise = await stage.poise(BASE + COOKIE_BACKEND.format(a=a.port, b=b.port))
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/")
            assert status == 200
            server = body.split()[0].decode()
            cookie = headers["set-cookie"]
            assert cookie.startswith(f"POISEID={server}|") and cookie.endswith("; path=/")
            value = cookie.split(";", 1)[0]
            for _ in range(10):
                _, headers, body = await client.get("/", headers=f"Cookie: {value}; other=1\r\n")
                assert body.split()[0].decode() == server
            client.close()
            chosen = a if server == "a" else b
            # `indirect`: the server never sees the persistence cookie, other cookies stay.
            assert [s.header("Cookie") for s in chosen.seen[1:]] == ["other=1"] * 10
            lines = await stage.logs.wait_for(r" fe be/", count=11)
            assert lines[0].split()[9] == "--NI"  # no cookie, one inserted
            assert lines[-1].split()[9] in ("--VN", "--VU")  # valid cookie

    run(loop_kind, main)


def test_a_cookie_naming_a_dead_server_is_redispatched_with_a_new_cookie(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            b = await stage.webapp("b")
            poise = await stage.poise(
                BASE.replace("timeout connect 1s", "timeout connect 100ms")
                + COOKIE_BACKEND.format(a=a.port, b=b.port)
            )
            await a.stop()  # a is gone; nothing checks it, so the connection is refused
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/", headers="Cookie: POISEID=a\r\n")
            client.close()
            assert (status, body) == (200, b"b /")
            assert headers["set-cookie"].startswith("POISEID=b|")

    run(loop_kind, main)


def test_a_cookie_naming_a_server_marked_down_is_ignored(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            b = await stage.webapp("b")
            poise = await stage.poise(
                BASE
                + COOKIE_BACKEND.format(a=a.port, b=b.port).replace(
                    " cookie a\n", " cookie a check inter 30ms fall 1 rise 1\n"
                )
            )
            await a.stop()
            server_a = poise.ctx.backends["be"].server("a")
            assert server_a is not None
            await eventually(lambda: not server_a.up, what="a marked down")
            client = await Client.connect(poise.port("fe"))
            _, headers, body = await client.get("/", headers="Cookie: POISEID=a\r\n")
            client.close()
            assert body == b"b /" and headers["set-cookie"].startswith("POISEID=b|")
            line = (await stage.logs.wait_for(r" fe be/b "))[0]
            assert line.split()[9] == "--DI"  # the cookie's server is down; a new one

    run(loop_kind, main)


ROUTED = """
frontend fe2
    bind 127.0.0.1:0
    acl is_api path_beg /api/
    acl is_health path /health
    http-request deny deny_status 403 if { path_beg /admin }
    http-request return status 200 content-type text/plain string "alive" if is_health
    http-request set-header X-Seen-By poise
    redirect prefix https://secure.example code 301 if { hdr(host) -i old.example }
    use_backend api if is_api
    default_backend web
backend api
    server api 127.0.0.1:{api}
backend web
    http-response set-header X-Served-By web
    server web 127.0.0.1:{web}
"""


def test_acls_route_and_rules_answer(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            api = await stage.webapp("api")
            web = await stage.webapp("web")
            empty = await stage.webapp("unused")
            text = BASE + f"backend be\n    server u 127.0.0.1:{empty.port}\n"
            routed = ROUTED.replace("{api}", str(api.port)).replace("{web}", str(web.port))
            poise = await stage.poise(text + routed)
            client = await Client.connect(poise.port("fe2"))
            assert (await client.get("/api/users"))[2] == b"api /api/users"
            status, headers, body = await client.get("/index.html")
            assert body == b"web /index.html" and headers["x-served-by"] == "web"
            assert web.seen[-1].header("X-Seen-By") == "poise"
            status, _, body = await client.get("/admin/panel")
            assert status == 403 and b"Forbidden" in body
            status, headers, body = await client.get("/health")
            assert (status, body) == (200, b"alive")
            client.close()
            got = await request(
                poise.port("fe2"), b"GET /a?b HTTP/1.1\r\nHost: OLD.example\r\n\r\n", timeout=0.5
            )
            assert got.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
            assert b"\r\nlocation: https://secure.example/a?b\r\n" in got
            assert all(s.target != "/admin/panel" for s in api.seen + web.seen)

    run(loop_kind, main)


def test_queue_and_connection_limits_apply_to_requests(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            poise = await stage.poise(
                BASE.replace("timeout server 300ms", "timeout server 5s")
                + f"backend be\n    timeout queue 2s\n    server a 127.0.0.1:{a.port} maxconn 1\n"
            )
            port = poise.port("fe")
            started = time.monotonic()
            slow = asyncio.create_task(request(port, b"GET /slow/300 HTTP/1.0\r\n\r\n"))
            await eventually(lambda: len(a.seen) == 1 or bool(a.connections))
            quick = await request(port, b"GET /quick HTTP/1.0\r\n\r\n")
            assert (await slow).endswith(b"a /slow/300")
            assert quick.endswith(b"a /quick")
            # The second request waited for the first to finish: one at a time on `a`.
            assert time.monotonic() - started >= 0.29
            assert [s.target for s in a.seen] == ["/slow/300", "/quick"]

    run(loop_kind, main)
