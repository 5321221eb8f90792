"""`bind ... accept-proxy`: a client that writes its PROXY header by hand (v1 and v2, on
plain and TLS binds), a real HAProxy 2.6 sending `send-proxy-v2` to poise, and the
headers poise refuses, logged with HAProxy's line (haproxy 2.6.12, same config:
`127.0.0.1:35404 [07/Dec/2026:20:26:18.100] fe/1: Received something which does not look
like a PROXY protocol header`) and closed with a reset. Real sockets on 127.0.0.1; the
addresses inside the headers are documentation ranges that carry no traffic."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from poise.core import proxyproto as pp
from tests.io.harness import Stage
from tests.support import accepting, free_port, run
from tests.tlskit import Pki

HEAD = """
defaults
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""
GET = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
V1 = b"PROXY TCP4 198.51.100.7 198.51.100.1 40001 8443\r\n"
V2_6 = pp.v2_header(("2001:db8::7", 40002), ("2001:db8::1", 443))


async def exchange(
    port: int, data: bytes, source: str = "127.0.0.1", *, eof: bool = False
) -> bytes:
    """Send `data` at once (then an EOF with `eof`); everything answered until the
    connection closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(data)
    if eof:
        writer.write_eof()
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            answer += chunk
    except ConnectionResetError:
        answer += b"<reset>"
    finally:
        writer.close()
    return answer


def test_the_header_addresses_are_the_client(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            backend = await stage.backend("t")
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    bind 127.0.0.1:0 accept-proxy
    option forwardfor
    log-format "%ci:%cp %fi:%fp %b/%s"
    http-request deny if {{ src 198.51.100.66 }}
    server a 127.0.0.1:{app.port}
listen raw
    mode tcp
    bind 127.0.0.1:0 accept-proxy
    log-format "tcp %ci:%cp %fi:%fp"
    server t 127.0.0.1:{backend.port}
"""
            )
            web = poise.port("web")
            assert (await exchange(web, V1 + GET)).startswith(b"HTTP/1.1 200")
            assert app.seen[-1].header("X-Forwarded-For") == "198.51.100.7"
            await stage.logs.wait_for(r"198\.51\.100\.7:40001 198\.51\.100\.1:8443 web/a")
            assert (await exchange(web, V2_6 + GET)).startswith(b"HTTP/1.1 200")
            assert app.seen[-1].header("X-Forwarded-For") == "2001:db8::7"
            await stage.logs.wait_for(r"2001:db8::7:40002 2001:db8::1:443 web/a")
            # `src` is the header's: this client is denied, the one before was not.
            denied = b"PROXY TCP4 198.51.100.66 198.51.100.1 1 80\r\n"
            assert (await exchange(web, denied + GET)).startswith(b"HTTP/1.1 403")
            # A LOCAL command (a health check through a proxy) keeps the real addresses.
            local = pp.v2_header(None, None)
            assert (await exchange(web, local + GET, "127.0.0.9")).startswith(b"HTTP/1.1 200")
            assert app.seen[-1].header("X-Forwarded-For") == "127.0.0.9"
            # mode tcp: what follows the header reaches the server, byte for byte.
            answer = await exchange(poise.port("raw"), V1 + b"ping", eof=True)
            assert answer == b"t\nping"
            await stage.logs.wait_for(r"tcp 198\.51\.100\.7:40001 198\.51\.100\.1:8443")

    run(loop_kind, main)


def test_refused_headers_are_logged_and_reset(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(
                HEAD.replace("timeout client 5s", "timeout client 300ms")
                + f"""
frontend fe
    mode http
    bind 127.0.0.1:0 accept-proxy
    bind 127.0.0.1:0 accept-proxy name named
    default_backend be
frontend quiet
    mode http
    option dontlognull
    bind 127.0.0.1:0 accept-proxy
    default_backend be
backend be
    mode http
    server a 127.0.0.1:{app.port}
"""
            )
            port, named = poise.port("fe", 0), poise.port("fe", 1)
            cases = [
                (port, GET, "fe/1: Received something which does not look like a PROXY"),
                (named, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n", "fe/named: Received an inv"),
                (port, b"PROXY FOO\r\n", "fe/1: Received an unhandled protocol in the PROXY"),
                (port, b"PROX", "fe/1: Truncated PROXY protocol header received"),
                (port, b"", "fe/1: Timeout while waiting for PROXY protocol header"),
            ]
            for target, data, line in cases:
                assert await exchange(target, data) in (b"", b"<reset>")
                await stage.logs.wait_for(r"^127\.0\.0\.1:\d+ \[\d\d/\w{3}/[\d:.]+\] " + line)
            assert not app.seen  # nothing reached the server
            # A client that closes before sending anything: logged, except under
            # `option dontlognull`.
            for frontend in ("quiet", "fe"):
                _, writer = await asyncio.open_connection("127.0.0.1", poise.port(frontend))
                writer.close()
            await stage.logs.wait_for(r"fe/1: Connection closed while waiting for PROXY")
            assert not stage.logs.matching(r" quiet/1: ")
            assert poise.ctx.actconn == 0  # every refused connection counted out

    run(loop_kind, main)


def test_the_header_comes_before_tls(loop_kind: str, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    crt = pki.issue("www.pem", dns=["www.example"])

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    bind 127.0.0.1:0 accept-proxy ssl crt {crt}
    option forwardfor
    server a 127.0.0.1:{app.port}
"""
            )
            port = poise.port("web")
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(V1)
            sock.setblocking(False)
            context = pki.client()
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=context, server_hostname="www.example"
            )
            writer.write(GET)
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200"), answer
            assert app.seen[-1].header("X-Forwarded-For") == "198.51.100.7"
            # A failed handshake after a header is logged with the header's client.
            await exchange(port, V1 + b"not tls at all, just bytes\r\n\r\n")
            await stage.logs.wait_for(r"^198\.51\.100\.7:40001 \[.*\] web/1: ")

    run(loop_kind, main)


needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (make debs)"
)


@needs_haproxy
def test_haproxy_sends_proxy_v2_to_poise(loop_kind: str, tmp_path: Path) -> None:
    front = free_port()

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    bind 127.0.0.1:0 accept-proxy
    option forwardfor
    log-format "%ci:%cp %fi:%fp"
    server a 127.0.0.1:{app.port}
"""
            )
            cfg = tmp_path / "haproxy.cfg"
            cfg.write_text(
                f"""global
    log stderr format raw local0
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen edge
    bind 127.0.0.1:{front}
    server poise 127.0.0.1:{poise.port("web")} send-proxy-v2
"""
            )
            haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await accepting(front)
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", front, local_addr=("127.0.0.9", 0)
                )
                source_port = writer.get_extra_info("sockname")[1]
                writer.write(GET)
                answer = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 200"), answer
                assert app.seen[-1].header("X-Forwarded-For") == "127.0.0.9"
                await stage.logs.wait_for(rf"^127\.0\.0\.9:{source_port} 127\.0\.0\.1:{front}$")
            finally:
                haproxy.terminate()
                haproxy.wait(10)

    run(loop_kind, main)
