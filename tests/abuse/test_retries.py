"""A server that closes a reused connection without answering (issue 11, finding 4).

A request is sent again on a new connection only when RFC 9110 9.2.2 allows it: an
idempotent method with no body. Anything else gets what Debian's haproxy 2.6.12 gives it,
measured with this very server (it answers the first request of each connection and closes
the connection on the second, unanswered) and `http-reuse always`:

- a POST (Content-Length 0, or with a body) as a client connection's second request: sent
  once, and the client connection closed without an answer or a log line (HAProxy's
  `abort_keep_alive`: the client retries, as after any keep-alive race);
- a POST as a client connection's first request, on a pooled connection: sent once, 502,
  logged `SH--` with Tr -1.

HAProxy 2.6 sends nothing again, GET included (its default `retry-on` covers only failed
connects); poise sends an idempotent request once more, as the RFC allows.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.io.harness import Stage
from tests.rawserver import OK, RawServer
from tests.support import run

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    http-reuse always
    server s1 127.0.0.1:{port}
"""

FIRST = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"


def second_closes(connection: int, number: int, head: bytes) -> bytes | None:
    return None if number == 2 else OK


async def exchange(port: int, *requests: bytes) -> bytes:
    """Send each request after the previous one's 200; return what follows the last one
    until poise closes the connection (or 3s, far below `timeout server`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests[:-1]:
            writer.write(request)
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), 5)
        writer.write(requests[-1])
        data = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            except TimeoutError:
                break
            if not chunk:
                return data + b"<closed>"
            data += chunk
            if b"\r\n\r\nok" in data:
                break  # a 200 from the server: the request was sent again
        return data
    finally:
        writer.close()


POSTS = {
    "post-empty": b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "post-body": b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("name", list(POSTS))
def test_a_post_on_a_dead_reused_connection_is_sent_once_then_the_client_is_closed(
    loop_kind: str, name: str
) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer(second_closes) as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            got = await exchange(poise.port("fe"), FIRST, POSTS[name])
            assert got == b"<closed>"  # no answer, and not after `timeout server`
            posts = [r for r in server.requests if r[1].startswith(b"POST")]
            assert posts == [(1, POSTS[name])]  # once, with its body
            await stage.logs.wait_for(r"GET /first")
            assert not stage.logs.matching(r"POST /p")  # HAProxy logs nothing either

    run(loop_kind, main)


def test_a_post_first_on_its_client_connection_gets_502_sh(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer(second_closes) as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            assert (await exchange(poise.port("fe"), FIRST)).endswith(b"ok")
            await stage.logs.wait_for(r"GET /first")
            # A new client connection: its first request goes on the pooled connection.
            got = await exchange(poise.port("fe"), POSTS["post-body"])
            assert got.startswith(b"HTTP/1.1 502 "), got
            assert [r for r in server.requests if r[1].startswith(b"POST")] == [
                (1, POSTS["post-body"])
            ]
            line = (await stage.logs.wait_for(r"POST /p"))[0]
            # TR and Ta are milliseconds of this machine's time; no wait, no connect.
            assert re.search(r" \d+/0/0/-1/\d+ 502 .* SH-- ", line), line

    run(loop_kind, main)


IDEMPOTENT = {
    "get": b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n",
    "put-empty": b"PUT /again HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(IDEMPOTENT))
def test_an_idempotent_request_without_body_is_sent_again_on_a_new_connection(
    loop_kind: str, name: str
) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer(second_closes) as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            got = await exchange(poise.port("fe"), FIRST, IDEMPOTENT[name])
            assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"ok"), got
            again = [r for r in server.requests if b"/again" in r[1]]
            assert again == [(1, IDEMPOTENT[name]), (2, IDEMPOTENT[name])]
            line = (await stage.logs.wait_for(r"/again"))[0]
            assert " 200 " in line and " ---- " in line, line

    run(loop_kind, main)
