"""Compression against HAProxy 2.6: the same configuration run by `poise run` and by
`haproxy`, the same requests (Accept-Encoding values, methods, versions, user agents)
for responses of every kind the rules tell apart (types, statuses, ETags, encodings,
Cache-Control, framing), and each answer must carry the same headers, in the same order
(names compared without case: HAProxy sends them in lower case), and the same body
once decoded. The compressed bytes themselves differ: HAProxy 2.6 uses libslz."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
BODY = b"hello world, " * 300
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    compression algo gzip
    compression type text/ image/png multipart
    use_backend any if {{ path_beg /any }}
    default_backend typed
backend typed
    server s 127.0.0.1:{server}
backend any
    compression algo raw-deflate deflate identity
    server s 127.0.0.1:{server}
"""
LENGTH = f"Content-Length: {len(BODY)}\r\n"
RESPONSES = {
    "/html": "Content-Type: text/html; charset=utf-8\r\n" + LENGTH,
    "/etag": 'Content-Type: text/html\r\nETag: "abc"\r\n' + LENGTH,
    "/weak": 'Content-Type: text/html\r\nETag: W/"abc"\r\n' + LENGTH,
    "/badetag": "Content-Type: text/html\r\nETag: abc\r\n" + LENGTH,
    "/twoetags": 'Content-Type: text/html\r\nETag: "a"\r\nETag: "b"\r\n' + LENGTH,
    "/encoded": "Content-Type: text/html\r\nContent-Encoding: br\r\n" + LENGTH,
    "/notransform": "Content-Type: text/html\r\nCache-Control: public, no-transform\r\n" + LENGTH,
    "/multipart": "Content-Type: multipart/mixed\r\n" + LENGTH,
    "/png": "Content-Type: image/png\r\n" + LENGTH,
    "/json": "Content-Type: application/json\r\n" + LENGTH,
    "/notype": LENGTH,
    "/vary": "Content-Type: text/plain\r\nVary: Cookie\r\n" + LENGTH,
    "/chunked": "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n",
    "/empty": "Content-Type: text/html\r\nContent-Length: 0\r\n",
}
STATUSES = ("200 OK", "201 Created", "203 X", "206 Partial", "404 Not Found")
ACCEPT = (
    "",
    "Accept-Encoding: gzip\r\n",
    "Accept-Encoding: deflate, gzip;q=0.5\r\n",
    "Accept-Encoding: gzip;q=0, br\r\n",
    "Accept-Encoding: *\r\n",
    "Accept-Encoding: gzip\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 5.0; Windows)\r\n",
)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    method, target, _ = head.split(b" ", 2)
    path, _, status = target.decode().partition("?")
    headers = RESPONSES[path.removeprefix("/any")]
    body = BODY
    if "chunked" in headers:
        body = b"".join(b"%x\r\n%s\r\n" % (500, BODY[i : i + 500]) for i in range(0, 3500, 500))
        body += b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(BODY) - 3500, BODY[3500:])
    elif "Length: 0" in headers:
        body = b""
    line = f"HTTP/1.1 {status or '200 OK'}\r\n{headers}\r\n".encode()
    writer.write(line if method == b"HEAD" else line + body)
    await writer.drain()
    writer.close()


def requests() -> list[bytes]:
    found = []
    for path, accept in itertools.product(RESPONSES, ACCEPT):
        found.append(f"GET {path} HTTP/1.1\r\nHost: t\r\n{accept}Connection: close\r\n\r\n")
        found.append(f"GET /any{path} HTTP/1.1\r\nHost: t\r\n{accept}Connection: close\r\n\r\n")
    for status, accept in itertools.product(STATUSES, ACCEPT[1:3]):
        found.append(f"GET /html?{status} HTTP/1.1\r\nHost: t\r\n{accept}Connection: close\r\n\r\n")
    for method, version in (("HEAD", "1.1"), ("GET", "1.0"), ("POST", "1.1")):
        body = "Content-Length: 1\r\n\r\nx" if method == "POST" else "\r\n"
        found.append(
            f"{method} /html HTTP/{version}\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
            f"Connection: close\r\n{body}"
        )
    return [raw.encode() for raw in found]


def decoded(raw: bytes) -> str:
    """The response's head (names in lower case, no Date) and its decoded body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() != "date":
            headers.append(f"{name.lower()}:{value.strip()}")
    text = " | ".join([lines[0], *headers])
    if "transfer-encoding:chunked" in headers:
        data, rest = b"", body
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if not size:
                text += f" | trailers {rest.lower()!r}"  # HAProxy sends names in lower case
                break
            data, rest = data + rest[:size], rest[size + 2 :]
        body = data
    if "content-encoding:gzip" in headers:
        body = zlib.decompress(body, 31)
    elif "content-encoding:deflate" in headers:
        try:
            body = zlib.decompress(body)
        except zlib.error:
            body = zlib.decompress(body, -15)
    return f"{text} | body {len(body)} {body == BODY}"


async def exchange(command: list[str], tmp: Path, server: int) -> list[str]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, server=server))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(port)
        for raw in requests():
            got = await request(port, raw, until_close=True)
            asked = raw.decode().replace("\r\n", " ").strip()
            seen.append(f"{asked} -> {decoded(got)}")
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_the_same_responses_are_compressed_with_the_same_heads(loop_kind: str) -> None:
    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            ours, theirs = await both(exchange, port)
        finally:
            server.close()
        assert len(ours) == len(requests())
        assert sum("content-encoding:gzip" in line for line in ours) > 15
        assert sum("content-encoding:deflate" in line for line in ours) > 5
        for mine, reference in zip(ours, theirs, strict=True):
            assert mine == reference

    run(loop_kind, main, timeout=120)
