"""`http-request tarpit`, `set-timeout server|tunnel` and `http-request|http-response
set-log-level` through real sockets, with the answers and log lines HAProxy 2.6 gives
for the same configuration (read from haproxy -db side by side): a tarpitted request is
answered after `timeout tarpit` with 500 (or its deny_status) on a connection that
stays open, logged `-1/<held>/-1/-1/<held> 500 ... PT--`; `set-log-level err` sends
the line at priority 131 (local0.err), `silent` sends none, an http-response rule
changes the level after the response."""

from __future__ import annotations

import asyncio
import time

from tests.io.harness import Stage
from tests.support import run
from tests.webapp import Client, request

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tarpit 200ms
frontend fe
    bind 127.0.0.1:0
    http-request tarpit if {{ path /t }}
    http-request set-log-level err if {{ path /err }}
    http-request set-log-level silent if {{ path /quiet }}
    http-response set-log-level warning if {{ status 404 }}
    default_backend app
backend app
    timeout tarpit 100ms
    http-request tarpit deny_status 403 if {{ path /bt }}
    http-request set-timeout server 150ms if {{ url_param(short) -m found }}
    http-request set-timeout server int(2000) if {{ url_param(long) -m found }}
    server s 127.0.0.1:{port}
"""


def test_tarpit_set_timeout_and_set_log_level(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(CONFIG.format(log="{log}", port=app.port))
            client = await Client.connect(poise.port("fe"))
            started = time.monotonic()
            status, headers, _ = await client.get("/t")
            assert status == 500 and time.monotonic() - started >= 0.2
            assert "connection" not in headers  # kept: the next request follows
            await stage.logs.wait_for(
                r"<134>.* fe fe/<NOSRV> -1/\d{3}/-1/-1/\d{3} 500 \d+ - - PT-- .*\"GET /t HTTP"
            )
            status, _, _ = await client.get("/bt")  # the backend's rule, its timeout
            assert status == 403
            await stage.logs.wait_for(r" fe app/<NOSRV> -1/\d+/-1/-1/\d+ 403 \d+ - - PT-- ")
            status, _, body = await client.get("/err")
            assert (status, body) == (200, b"app /err")
            await stage.logs.wait_for(r'<131>.* fe app/s .* 200 .*"GET /err HTTP')
            assert (await client.get("/quiet"))[0] == 200
            assert (await client.get("/status/404"))[0] == 404
            await stage.logs.wait_for(r'<132>.* fe app/s .* 404 .*"GET /status/404 HTTP')
            # `timeout server 5s`, made 150 ms for this request: 504, sH.
            status, _, _ = await client.get("/slow/600?short=1")
            assert status == 504
            await stage.logs.wait_for(r' 504 \d+ - - sH-- .*"GET /slow/600\?short=1 HTTP')
            client.close()
            client = await Client.connect(poise.port("fe"))
            status, _, body = await client.get("/slow/300?long=1")  # an expression, in ms
            assert (status, body) == (200, b"app /slow/300?long=1")
            client.close()
            await stage.logs.wait_for(r'"GET /slow/300\?long=1 HTTP')
            assert stage.logs.matching("/quiet") == []

    run(loop_kind, main)


def test_a_tarpitted_client_that_leaves_is_logged_when_the_tarpit_ends(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(CONFIG.format(log="{log}", port=app.port))
            _, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
            writer.close()
            # As HAProxy 2.6: the tarpit runs its course, then the line says PT-- 500.
            await stage.logs.wait_for(r" fe fe/<NOSRV> -1/\d{3}/-1/-1/\d{3} 500 \d+ - - PT-- ")

    run(loop_kind, main)


HINTS = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    http-request early-hint Link "</style.css>; rel=preload; as=style"
    http-request early-hint Link "</script.js>; rel=preload; as=script" if {{ path /two }}
    http-request set-header X-A 1
    http-request early-hint X-Late %[path]
    http-request deny if {{ path /deny }}
    default_backend app
backend app
    server s 127.0.0.1:{port}
"""
# What HAProxy 2.6 sent for the same configuration, each rule its own 103.
STYLE = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n"
SCRIPT = b"HTTP/1.1 103 Early Hints\r\nlink: </script.js>; rel=preload; as=script\r\n\r\n"


def late(path: bytes) -> bytes:
    return b"HTTP/1.1 103 Early Hints\r\nx-late: " + path + b"\r\n\r\n"


def test_early_hints_come_before_the_answer_one_per_rule(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(HINTS.format(port=app.port))
            port = poise.port("fe")
            for path, before, final in [
                (b"/one", STYLE + late(b"/one"), b"HTTP/1.1 200 "),
                (b"/two", STYLE + SCRIPT + late(b"/two"), b"HTTP/1.1 200 "),
                (b"/deny", STYLE + late(b"/deny"), b"HTTP/1.1 403 "),
            ]:
                raw = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path
                got = await request(port, raw, until_close=True)
                assert got.startswith(before + final), got
            # None to an HTTP/1.0 client.
            got = await request(port, b"GET /one HTTP/1.0\r\nHost: x\r\n\r\n", until_close=True)
            assert got.startswith(b"HTTP/1.1 200 "), got

    run(loop_kind, main)
