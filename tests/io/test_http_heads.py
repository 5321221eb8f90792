"""Heads HAProxy 2.6 takes that a strict parser would not, and servers that misbehave
(issue 11, finding 6; issue 22, point 3), through the running proxy with raw bytes.

The reference is Debian's haproxy 2.6.12, measured on the same bytes with the same kind of
server (tests/rawserver.py):

- `BAN`, `FOO` (with a body) and lowercase `get` are forwarded as they came (RFC 9110 9.1:
  a method is any token).
- Bare LF line ends (all of them, or some) are accepted, and the head reaches the server
  rewritten with CRLF.
- A server answering `this is not http` and closing: 502, logged `PH--`; one closing in the
  middle of a valid status line and headers: 502, logged `SH--`.
- A WebSocket upgrade with a body is forwarded as a plain request with its body, without its
  Upgrade header; one without a body keeps `Connection: Upgrade` and gets no
  `Connection: close` beside it.
- A response head with 100 header fields is forwarded; with 101, the client gets 502 and
  the log `PH--` (tune.http.maxhdr applies to responses too).
- A HEAD answered with a body the server should not have sent: the client gets the head
  only, the next request on the same client connection gets its 200 (HAProxy closes that
  server connection: the next request goes on a new one).
"""

from __future__ import annotations

import asyncio

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
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:{port}
"""


async def response(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    """One response as it came (its body framed by Content-Length), or b"<closed>"."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except asyncio.IncompleteReadError:
        return b"<closed>"
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:])
    body = b"" if head_only else await asyncio.wait_for(reader.readexactly(length), 5)
    return head + body


async def ask(port: int, *pieces: bytes, head_only: bool = False) -> bytes:
    """Send each piece after the previous one's response; return the responses, with
    b"<closed>" when poise closed the connection after the last one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b""
    try:
        for number, piece in enumerate(pieces):
            writer.write(piece)
            data += await response(reader, head_only and number == 0)
        if data.startswith(b"HTTP/1.1 4"):
            data += await response(reader)
        return data
    finally:
        writer.close()


async def through(
    stage: Stage, server: RawServer, *pieces: bytes, head_only: bool = False
) -> bytes:
    poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
    return await ask(poise.port("fe"), *pieces, head_only=head_only)


METHODS = {
    "BAN": b"BAN /cache HTTP/1.1\r\nHost: a\r\n\r\n",
    "FOO": b"FOO /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "get": b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
}


@pytest.mark.parametrize("name", list(METHODS))
def test_any_method_token_is_forwarded(loop_kind: str, name: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            got = await through(stage, server, METHODS[name])
            assert got.startswith(b"HTTP/1.1 200 OK"), got
            assert [raw for _, raw in server.requests] == [METHODS[name]]
            line = (await stage.logs.wait_for(rf'"{name} /'))[0]
            assert " 200 " in line and " ---- " in line, line

    run(loop_kind, main)


BARE_LF = {
    "all": b"GET / HTTP/1.1\nHost: a\nX-A: b\n\n",
    "some": b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
    "empty-line": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\n",
}


@pytest.mark.parametrize("name", list(BARE_LF))
def test_bare_lf_line_ends_are_forwarded_rewritten_with_crlf(loop_kind: str, name: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            got = await through(stage, server, BARE_LF[name])
            assert got.startswith(b"HTTP/1.1 200 OK"), got
            forwarded = [raw for _, raw in server.requests]
            assert forwarded == [b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n"]

    run(loop_kind, main)


def test_a_bare_lf_head_then_a_pipelined_request_are_both_answered(loop_kind: str) -> None:
    """The head ends at its first empty line, LF or CRLF: what follows is the next request,
    and its body stays a body."""

    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            post = b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\nx\r\n\r\nyz!"
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"GET /1 HTTP/1.1\nHost: a\n\n" + post)
            data = b""
            while data.count(b"\r\n\r\nok") < 2:
                data += await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
            forwarded = [raw for _, raw in server.requests]
            assert forwarded == [b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", post]

    run(loop_kind, main)


def test_a_bare_cr_is_still_refused(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            got = await through(stage, server, b"GET / HTTP/1.1\nHost: a\nX: a\rb\n\n")
            assert got.startswith(b"HTTP/1.1 400 ") and got.endswith(b"<closed>"), got
            assert server.requests == []
            await stage.logs.wait_for(r" 400 .* PR-- .*<BADREQ>")

    run(loop_kind, main)


GARBAGE = {
    "garbage": (b"this is not http\n", "PH--"),
    "cut-short": (b"HTTP/1.1 200 OK\r\nContent-Le", "SH--"),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_a_server_answering_garbage_gets_502_ph(loop_kind: str, name: str) -> None:
    sent, term = GARBAGE[name]

    def answer(connection: int, number: int, head: bytes) -> bytes | None:
        return sent

    async def main() -> None:
        async with Stage() as stage, RawServer(answer, close_after=True) as server:
            got = await through(stage, server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert got.startswith(b"HTTP/1.1 502 "), got
            line = (await stage.logs.wait_for(r'"GET / '))[0]
            assert " 502 " in line and f" {term} " in line, line

    run(loop_kind, main)


@pytest.mark.parametrize("fields", [100, 101])
@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_a_response_head_over_100_fields_gets_502(
    loop_kind: str, fields: int, length: bool
) -> None:
    framing = b"Content-Length: 2\r\n" if length else b"Transfer-Encoding: chunked\r\n"
    body = b"ok" if length else b"2\r\nok\r\n0\r\n\r\n"
    more = b"".join(b"X-%d: v\r\n" % i for i in range(fields - 1))
    sent = b"HTTP/1.1 200 OK\r\n" + framing + more + b"\r\n" + body

    def answer(connection: int, number: int, head: bytes) -> bytes | None:
        return sent

    async def main() -> None:
        async with Stage() as stage, RawServer(answer) as server:
            got = await through(stage, server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            line = (await stage.logs.wait_for(r'"GET / '))[0]
            if fields == 100:
                assert got.startswith(b"HTTP/1.1 200 ") and b"X-98: v\r\n\r\n" in got, got
                assert " 200 " in line, line
            else:
                assert got.startswith(b"HTTP/1.1 502 "), got
                assert " 502 " in line and " PH-- " in line, line

    run(loop_kind, main)


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def test_an_upgrade_with_a_body_is_forwarded_as_a_plain_request(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            raw = UPGRADE + b"Content-Length: 5\r\n\r\nhello"
            got = await through(stage, server, raw)
            assert got.startswith(b"HTTP/1.1 200 OK"), got
            [(_, forwarded)] = server.requests
            head = forwarded.lower()
            assert forwarded.endswith(b"\r\n\r\nhello"), forwarded
            assert b"upgrade: websocket" not in head and b"connection:" not in head, head

    run(loop_kind, main)


def test_an_upgrade_is_forwarded_without_connection_close(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            got = await through(stage, server, UPGRADE + b"\r\n")
            assert got.startswith(b"HTTP/1.1 200 OK"), got  # the server refused it
            assert [raw for _, raw in server.requests] == [UPGRADE + b"\r\n"]

    run(loop_kind, main)


def test_a_head_answered_with_a_body_does_not_spoil_the_next_request(loop_kind: str) -> None:
    def answer(connection: int, number: int, head: bytes) -> bytes | None:
        if head.startswith(b"HEAD "):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"  # a body: wrong
        return OK

    async def main() -> None:
        async with Stage() as stage, RawServer(answer) as server:
            got = await through(
                stage,
                server,
                b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
                b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
                head_only=True,
            )
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            assert got == head + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", got
            # That server connection was closed: the next request went on a new one.
            assert [c for c, _ in server.requests] == [1, 2]
            line = (await stage.logs.wait_for(r'"GET /next '))[0]
            assert " 200 " in line, line

    run(loop_kind, main)


def test_a_closing_head_answered_with_a_body_is_logged_once(loop_kind: str) -> None:
    """The body wrongly sent after a HEAD response comes in the head's read; the client
    asked to close, so the session ends with that response: one log line, not two."""

    def answer(connection: int, number: int, head: bytes) -> bytes | None:
        if head.startswith(b"HEAD "):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"  # a body: wrong
        return OK

    async def main() -> None:
        async with Stage() as stage, RawServer(answer) as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            head = b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            got = await ask(poise.port("fe"), head, head_only=True)
            assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
            # A request after it: its line comes after any line of the HEAD's.
            await ask(poise.port("fe"), b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
            await stage.logs.wait_for(r'"GET /next ')
            assert len(stage.logs.matching(r'"HEAD / ')) == 1, stage.logs.matching("")

    run(loop_kind, main)
