"""The stats page and the Prometheus exporter through a running poise on 127.0.0.1, with
real HTTP backends, under both event loops: the auth challenge, the page and its exports,
an admin form posted in pieces changing the model as `set server` does, a connection kept
alive across page requests, the page of a backend reached through a frontend, and
`use-service prometheus-exporter` next to normal traffic."""

from __future__ import annotations

import asyncio
import base64

from poise.core.server import AdminState
from tests.io.harness import Stage
from tests.support import eventually, run
from tests.webapp import Client, request

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    http-request use-service prometheus-exporter if {{ path /metrics }}
    use_backend monitor if {{ path_beg /monitor }}
    default_backend app
backend app
    server web1 127.0.0.1:{a} check inter 100ms
    server web2 127.0.0.1:{b} check inter 100ms
backend monitor
    stats enable
    stats uri /monitor
    http-request deny if {{ hdr(x-blocked) -m found }}
listen stats
    bind 127.0.0.1:0
    stats enable
    stats uri /haproxy?stats
    stats refresh 5s
    stats auth admin:secret
    stats realm Poise\\ Stats
    stats admin if TRUE
"""
AUTH = "Authorization: Basic " + base64.b64encode(b"admin:secret").decode() + "\r\n"


def test_the_page_needs_the_password(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            poise = await stage.poise(CONFIG.format(a=a.port, b=b.port))
            port = poise.port("stats")
            for target in ("/haproxy?stats", "/haproxy?stats;csv", "/haproxy?stats;json"):
                raw = await request(port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, _, body = raw.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
                assert b'\r\nwww-authenticate: Basic realm="Poise Stats"' in head
                assert b"web1" not in body
            client = await Client.connect(port)
            status, headers, body = await client.get("/haproxy?stats", AUTH)
            assert status == 200 and headers["refresh"] == "5"
            assert b'id="sv-app-web1"' in body and b'id="sv-app-web2"' in body
            # Kept alive: the next request on the same connection is answered too.
            status, headers, body = await client.get("/haproxy?stats;csv", AUTH)
            assert status == 200 and body.startswith(b"# pxname,svname,")
            client.close()

    run(loop_kind, main)


def test_an_admin_form_in_pieces_changes_the_model(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            poise = await stage.poise(CONFIG.format(a=a.port, b=b.port))
            app = poise.ctx.backends["app"]
            form = b"s=web2&action=maint&b=%232"
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("stats"))
            writer.write(
                b"POST /haproxy?stats HTTP/1.1\r\nHost: x\r\n"
                + AUTH.encode()
                + f"Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(form)}\r\n\r\n".encode()
                + form[:9]
            )
            await asyncio.sleep(0.05)
            assert app.server("web2").admin is AdminState.READY
            writer.write(
                form[9:] + b"GET /haproxy?stats;csv HTTP/1.1\r\nHost: x\r\n" + AUTH.encode()
            )
            writer.write(b"\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 303 See Other\r\n")
            assert b"\r\nlocation: /haproxy?stats;st=DONE\r\n" in head
            assert app.server("web2").admin is AdminState.MAINT
            # The pipelined request after the form is answered on the same connection.
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            csv = (await reader.readexactly(length)).decode()
            assert ",web2," in csv and "MAINT" in csv.split("app,web2,")[1].split("\n")[0]
            writer.close()
            # The balancer sends nothing more to web2.
            before = len(b.seen)
            for _ in range(4):
                client = await Client.connect(poise.port("fe"))
                status, _, body = await client.get("/")
                client.close()
                assert status == 200 and body == b"a /"
            assert len(b.seen) == before

    run(loop_kind, main)


def test_the_page_of_a_backend_and_the_exporter(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            poise = await stage.poise(CONFIG.format(a=a.port, b=b.port))
            client = await Client.connect(poise.port("fe"))
            status, _, body = await client.get("/")
            assert status == 200 and body in (b"a /", b"b /")
            status, headers, body = await client.get("/monitor;csv")
            assert status == 200 and b"app,web1," in body
            # The backend's own rules come before its page, as in HAProxy.
            status, _, _ = await client.get("/monitor", "X-Blocked: 1\r\n")
            assert status == 403
            await eventually(lambda: a.connections > 0)
            status, headers, body = await client.get("/metrics")
            assert status == 200
            assert headers["content-type"] == "text/plain; version=0.0.4"
            text = body.decode()
            assert "# TYPE haproxy_frontend_sessions_total counter\n" in text
            assert 'haproxy_server_status{proxy="app",server="web1",state="UP"} 1' in text
            assert 'haproxy_backend_sessions_total{proxy="app"}' in text
            status, _, _ = await client.get("/metrics?scope=nope")
            assert status == 400
            client.close()

    run(loop_kind, main)


def test_a_form_sent_after_100_continue(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            poise = await stage.poise(CONFIG.format(a=a.port, b=b.port))
            form = b"s=web1&action=drain&b=app"
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("stats"))
            writer.write(
                b"POST /haproxy?stats;norefresh HTTP/1.1\r\nHost: x\r\n"
                + AUTH.encode()
                + f"Expect: 100-continue\r\nContent-Length: {len(form)}\r\n\r\n".encode()
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(form)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert b"\r\nlocation: /haproxy?stats;st=DONE;norefresh\r\n" in head
            web1 = poise.ctx.backends["app"].server("web1")
            assert web1.admin is AdminState.DRAIN
            writer.close()

    run(loop_kind, main)
