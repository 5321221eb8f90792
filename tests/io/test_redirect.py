"""A redirect-only HTTP frontend (the seed's `unsecured`), byte for byte as HAProxy 2.6
answers: the expected bytes below were captured from Debian's haproxy 2.6.12 with the
same configuration."""

from __future__ import annotations

import asyncio
import re

from tests.io.harness import LogReceiver, Poise
from tests.support import run

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout client 5s
    timeout connect 5s
    timeout server 5s
    timeout http-request 300ms
frontend unsecured
    bind 127.0.0.1:0
    redirect location https://view.domain.local
frontend s
    bind 127.0.0.1:0
    redirect scheme https code 307
frontend p
    bind 127.0.0.1:0
    redirect prefix /x drop-query append-slash code 303
frontend pre
    bind 127.0.0.1:0
    redirect prefix https://x.example code 301
"""

FOUND = (
    b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: https://view.domain.local\r\n"
    b"cache-control: no-cache\r\n\r\n"
)
TIMEOUT = (
    b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>408 Request "
    b"Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n"
)
BAD = (
    b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request"
    b"</h1>\nYour browser sent an invalid request.\n</body></html>\n"
)


async def exchange(port: int, data: bytes, wait: float = 0.5) -> tuple[bytes, bool]:
    """Send `data`, read until the server closes or `wait` passes; (bytes, closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    closed = False
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                closed = True
                break
            received += chunk
    except TimeoutError:
        pass
    writer.close()
    return received, closed


def test_redirects_as_haproxy_does(loop_kind: str) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        async with Poise(CONFIG.format(log=logs.port)) as poise:
            port = poise.port
            # Keep-alive: the connection stays open (until `timeout http-request`, 300ms,
            # which is also the keep-alive timeout here).
            got = await exchange(
                port("unsecured"), b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n", wait=0.15
            )
            assert got == (FOUND, False)
            got = await exchange(
                port("unsecured"),
                b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            )
            assert got == (FOUND[:-2] + b"connection: close\r\n\r\n", True)
            got = await exchange(port("s"), b"GET /a?q HTTP/1.1\r\nHost: h:8080\r\n\r\n")
            assert got[0] == (
                b"HTTP/1.1 307 Temporary Redirect\r\ncontent-length: 0\r\n"
                b"location: https://h:8080/a?q\r\ncache-control: no-cache\r\n\r\n"
            )
            got = await exchange(port("p"), b"GET /a?q HTTP/1.1\r\nHost: h\r\n\r\n")
            assert got[0] == (
                b"HTTP/1.1 303 See Other\r\ncontent-length: 0\r\nlocation: /x/a/\r\n"
                b"cache-control: no-cache\r\n\r\n"
            )
            got = await exchange(port("pre"), b"GET /a?b=1 HTTP/1.0\r\n\r\n")
            assert got == (
                b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\n"
                b"location: https://x.example/a?b=1\r\nconnection: close\r\n\r\n",
                True,
            )
            lines = await logs.wait_for(r" unsecured unsecured/<NOSRV> ", count=2)
            # %B is the bytes sent on the wire (103); HAProxy logs the size of its internal
            # message representation for responses it generates itself (106 here).
            fields = lines[0].split()
            # TR/Tw/Tc/Tr/Ta: no queue, no server connection, no server response (-1).
            assert re.fullmatch(r"\d+/-1/-1/-1/\d+", fields[4]), fields[4]
            assert fields[5:9] == ["302", str(len(FOUND)), "-", "-"]
            assert lines[0].endswith('LR-- 1/1/0/0/0 0/0 "GET /a?b=1 HTTP/1.1"')
        logs.close()

    run(loop_kind, main)


def test_pipelined_requests_are_answered_in_order(loop_kind: str) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        async with Poise(CONFIG.format(log=logs.port)) as poise:
            two = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n"
            got = await exchange(poise.port("unsecured"), two, wait=0.15)
            assert got == (FOUND + FOUND, False)
            await logs.wait_for(r'"GET /c HTTP/1.1"')
        logs.close()

    run(loop_kind, main)


def test_slow_or_malformed_requests_get_408_and_400(loop_kind: str) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        async with Poise(CONFIG.format(log=logs.port)) as poise:
            port = poise.port("unsecured")
            # An incomplete head within `timeout http-request` (300ms): slowloris.
            assert await exchange(port, b"GET /a HTTP/1.1\r\nHost: h\r\n", 2) == (TIMEOUT, True)
            assert await exchange(port, b"", 2) == (TIMEOUT, True)
            assert await exchange(port, b"GARBAGE\r\n\r\n", 2) == (BAD, True)
            timeout_line = (await logs.wait_for(r" 408 "))[0]
            assert " cR-- " in timeout_line and timeout_line.endswith('"<BADREQ>"')
            bad_line = (await logs.wait_for(r" 400 "))[0]
            assert " PR-- " in bad_line
            # After a request was answered, an idle keep-alive connection closes silently.
            got = await exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 2)
            assert got == (FOUND, True)
        logs.close()

    run(loop_kind, main)
