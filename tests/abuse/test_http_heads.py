"""Oversized request heads, sent in one write and in small ones (issue 11, finding 5).

HAProxy's limits hold however the bytes arrive: a head must fit tune.bufsize less
tune.maxrewrite (15 KB) and carry at most 100 header fields (tune.http.maxhdr 101).
Measured with Debian's haproxy 2.6.12, every head below sent in one write: 10,000 fields
(119 KB), a 100 KB URI, heads of 16, 32 and 60 KB and 101 fields are all answered 400
(logged `PR--` `<BADREQ>`) and nothing reaches the server; 100 fields and a 15,000-byte head
pass. (HAProxy's exact byte limit also counts its internal overhead: 15,273 bytes for a
2-field head; poise's is 15,360 bytes for any head.)
"""

from __future__ import annotations

import asyncio

import pytest

from tests.io.harness import Stage
from tests.rawserver import RawServer
from tests.support import run

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:{port}
"""


def fields(count: int) -> bytes:
    """A GET with `count` header fields, Host included."""
    lines = b"".join(b"X-F%d: v\r\n" % n for n in range(count - 1))
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + lines + b"\r\n"


def sized(total: int) -> bytes:
    """A GET whose head is `total` bytes long."""
    start = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: "
    return start + b"a" * (total - len(start) - 4) + b"\r\n\r\n"


REFUSED = {
    "10000-fields": fields(10_000),
    "101-fields": fields(101),
    "100k-uri": b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "16k-head": sized(16 * 1024),
    "32k-head": sized(32 * 1024),
    "60k-head": sized(60 * 1024),
    "15361-bytes": sized(15 * 1024 + 1),
}
PASSED = {"100-fields": fields(100), "15000-bytes": sized(15_000)}


async def send(port: int, raw: bytes, piece: int) -> bytes:
    """Send `raw` in writes of `piece` bytes; return the answer up to the close (or the
    first complete 200)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for at in range(0, len(raw), piece):
            writer.write(raw[at : at + piece])
            await writer.drain()
        data = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            data += chunk
            if data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok"):
                break
        return data
    except ConnectionResetError:
        return data  # the rest of a large head was still coming when poise closed
    finally:
        writer.close()


@pytest.mark.parametrize("piece", [1 << 20, 1024], ids=["one-write", "1k-writes"])
@pytest.mark.parametrize("name", list(REFUSED))
def test_an_oversized_head_is_400_and_never_forwarded(
    loop_kind: str, name: str, piece: int
) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            got = await send(poise.port("fe"), REFUSED[name], piece)
            assert got.startswith(b"HTTP/1.1 400 "), got[:100]
            line = (await stage.logs.wait_for(r"<BADREQ>"))[0]
            assert " 400 " in line and " PR-- " in line, line
            assert server.requests == []

    run(loop_kind, main)


@pytest.mark.parametrize("name", list(PASSED))
def test_a_head_within_the_limits_is_forwarded(loop_kind: str, name: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer() as server:
            poise = await stage.poise(CONFIG.replace("{port}", str(server.port)))
            got = await send(poise.port("fe"), PASSED[name], 1 << 20)
            assert got.startswith(b"HTTP/1.1 200 "), got[:100]
            assert [raw for _, raw in server.requests] == [PASSED[name]]

    run(loop_kind, main)
