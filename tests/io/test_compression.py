"""HTTP compression through real sockets (issue 14): curl --compressed and Python's
http.client with zlib read what poise compresses from real backends; a body is
compressed as it streams (the client decodes the first part while the server still
holds the rest); a client that asks for nothing, or a response HAProxy leaves alone, goes
through as it came, on the same keep-alive connection."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import zlib

from tests.io.harness import Stage
from tests.rawserver import RawServer
from tests.support import run
from tests.webapp import Client

BODY = b"<p>hello compression</p>\n" * 400
BASE = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def html(connection: int, number: int, head: bytes) -> bytes:
    kind = b"image/png" if b" /png " in head else b"text/html; charset=utf-8"
    return (
        b'HTTP/1.1 200 OK\r\nContent-Type: %s\r\nETag: "v1"\r\nContent-Length: %d\r\n\r\n'
        % (kind, len(BODY))
        + BODY
    )


def config(port: int, lines: str = "") -> str:
    return (
        BASE + "frontend fe\n    bind 127.0.0.1:0\n    compression algo gzip deflate\n"
        f"    compression type text/html text/plain\n{lines}    default_backend app\n"
        f"backend app\n    server s 127.0.0.1:{port}\n"
    )


def test_real_clients_read_gzip_and_deflate(loop_kind: str) -> None:
    assert shutil.which("curl"), "curl is installed by `make debs`"

    def with_http_client(port: int, encoding: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/page", headers={"Accept-Encoding": encoding})
            resp = conn.getresponse()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, headers, resp.read()  # http.client undoes the chunking
        finally:
            conn.close()

    async def main() -> None:
        async with Stage() as stage, RawServer(html) as server:
            poise = await stage.poise(config(server.port))
            port = poise.port("fe")
            status, headers, body = await asyncio.to_thread(with_http_client, port, "gzip")
            assert status == 200 and headers["content-encoding"] == "gzip"
            assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
            assert headers["vary"] == "Accept-Encoding" and headers["etag"] == 'W/"v1"'
            assert zlib.decompress(body, 31) == BODY
            status, headers, body = await asyncio.to_thread(with_http_client, port, "deflate")
            assert headers["content-encoding"] == "deflate" and zlib.decompress(body) == BODY
            curl = await asyncio.create_subprocess_exec(
                "curl", "-sS", "--compressed", "-D", "-", f"http://127.0.0.1:{port}/page",
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(curl.communicate(), 10)
            head, _, body = out.partition(b"\r\n\r\n")
            assert curl.returncode == 0 and body == BODY
            # curl offers "deflate, gzip, ...": the first one poise has, at equal q-values.
            assert b"\r\nContent-Encoding: deflate" in head

    run(loop_kind, main)


def test_a_body_is_compressed_as_it_streams(loop_kind: str) -> None:
    """The server sends the first chunk and waits: the client must decode that part
    before the server sends the rest (nothing waits for the whole body)."""
    first, rest = b"first part " * 300, b"and the rest " * 300
    more = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(first), first)
        )
        await more.wait()
        writer.write(b"%x\r\n%s\r\n0\r\nX-Digest: 42\r\n\r\n" % (len(rest), rest))
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        try:
            async with Stage() as stage:
                poise = await stage.poise(config(server.sockets[0].getsockname()[1]))
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
                writer.write(b"GET /s HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert b"Content-Encoding: gzip" in head
                decoder = zlib.decompressobj(31)
                got = b""
                while len(got) < len(first):  # the first part, while the server waits
                    size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 5), 16)
                    got += decoder.decompress((await reader.readexactly(size + 2))[:-2])
                assert got == first and not more.is_set()
                more.set()
                while size:
                    size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 5), 16)
                    chunk = await reader.readexactly(size + 2) if size else b""
                    got += decoder.decompress(chunk[:-2])
                assert got + decoder.flush() == first + rest and decoder.eof
                trailers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert trailers == b"X-Digest: 42\r\n\r\n"
                writer.close()
        finally:
            server.close()

    run(loop_kind, main)


def test_what_is_not_compressed_goes_through_as_it_came(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, RawServer(html) as server:
            poise = await stage.poise(config(server.port, "    compression offload\n"))
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/page", "Accept-Encoding: gzip\r\n")
            assert headers["content-encoding"] == "gzip" and zlib.decompress(body, 31) == BODY
            # offload: the server never sees the client's Accept-Encoding.
            assert b"accept-encoding" not in server.requests[-1][1].lower()
            # The same connection: no Accept-Encoding, an image, an old browser.
            old = "User-Agent: Mozilla/4.0 (compatible; MSIE 5.0)\r\n"
            for extra, target in (
                ("", "/page"),
                ("Accept-Encoding: gzip\r\n", "/png"),
                (f"Accept-Encoding: gzip\r\n{old}", "/page"),
            ):
                status, headers, body = await client.get(target, extra)
                assert (status, body) == (200, BODY) and "content-encoding" not in headers
                assert headers["content-length"] == str(len(BODY)) and headers["etag"] == '"v1"'
            assert server.connections == 1
            client.close()

    run(loop_kind, main)
