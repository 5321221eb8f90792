"""More http-request/http-response actions through real sockets (issue 14):
`http-response set-status`, `http-response return` and `silent-drop`, with the status,
the bytes and the termination state HAProxy 2.6 logs for each (read from haproxy -db
on the same configuration: `299 ... ----` for a set status, `-1 0 ... PR--` for a
dropped request, `LH--` for a response replaced by `return`)."""

from __future__ import annotations

import asyncio

from tests.io.harness import Stage
from tests.support import run
from tests.webapp import Client

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
frontend fe
    bind 127.0.0.1:0
    http-request silent-drop if {{ path /drop }}
    http-request set-var(txn.path) path
    http-response set-status 299 if {{ var(txn.path) -m str /a }}
    http-response set-status 404 reason "Gone Away" if {{ var(txn.path) -m str /b }}
    http-response return status 202 content-type text/plain string "replaced" hdr X-A b \
        if {{ var(txn.path) -m str /c }}
    http-response silent-drop if {{ var(txn.path) -m str /d }}
    default_backend app
backend app
    server s 127.0.0.1:{port}
"""


def test_set_status_return_and_silent_drop(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(CONFIG.format(log="{log}", port=app.port))
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/a")
            assert (status, body) == (200 + 99, b"app /a")
            await stage.logs.wait_for(r' fe app/s .* 299 \d+ - - ---- .*"GET /a HTTP/1.1"')
            client.writer.write(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
            head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 404 Gone Away\r\n")
            assert await client.reader.readexactly(6) == b"app /b"
            status, headers, body = await client.get("/c")
            assert (status, body, headers["x-a"]) == (202, b"replaced", "b")
            assert headers["content-type"] == "text/plain"
            await stage.logs.wait_for(r' fe app/s .* 202 \d+ - - LH-- .*"GET /c HTTP/1.1"')
            # The connection is still good after a replaced response.
            status, _, body = await client.get("/e")
            assert (status, body) == (200, b"app /e")
            client.close()
            for path in ("/drop", "/d"):
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
                writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing sent
                writer.close()
            await stage.logs.wait_for(r' fe fe/<NOSRV> .* -1 0 - - PR-- .*"GET /drop HTTP/1.1"')
            # The server's status, as HAProxy logs it (HAProxy also counts the bytes of the
            # response it dropped; poise counts the bytes sent: 0).
            await stage.logs.wait_for(r' fe app/s .* 200 0 - - PR-- .*"GET /d HTTP/1.1"')

    run(loop_kind, main)
