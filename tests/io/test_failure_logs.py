"""Every failed connection is logged with where and why: HAProxy's traffic line on the
traffic targets, and poise's failure line (core/explain.py) at `notice` on the targets
that take no traffic lines (`log ... notice`), through a real syslog receiver.

One case per failure of issue 7: client aborted, TLS handshake failed (wrong version, plain
HTTP to a TLS port, a client certificate from an unknown CA), no server available,
connection refused by a server, server timeout, WebSocket upgrade refused by a server.
Real sockets on 127.0.0.1 only; every test runs under uvloop and the standard loop and
waits for the log line, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from poise.core.explain import FAILURE_LINE
from tests.io.harness import Stage
from tests.support import eventually, free_port, run
from tests.tlskit import Pki, unverified
from tests.webapp import request

# rfc3164 framing: the level shows in <PRI> (local0: 128 + level; info 134, notice 133).
HEAD = """
defaults
    log 127.0.0.1:{log} format rfc3164 local0
    log 127.0.0.1:{log} format rfc3164 local0 notice
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 0
"""
TRAFFIC = 134
NOTICE = 133


def message(line: str) -> tuple[int, str]:
    """(PRI, the message after the `tag[pid]: ` header) of a received datagram."""
    match = re.match(r"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ \S+\[\d+\]: (.*)$", line)
    assert match, line
    return int(match.group(1)), match.group(2)


async def failure(stage: Stage, pattern: str) -> str:
    """The failure line that matches `pattern` (waits for it), checked for level and form."""
    lines = await stage.logs.wait_for(r"\]: (?=.*" + pattern + r")\S+/\S+ \S+: failed ")
    pri, text = message(lines[0])
    assert pri == NOTICE, lines[0]
    assert FAILURE_LINE.match(text), text
    return text


def traffic(stage: Stage, pattern: str) -> list[str]:
    return [
        message(line)[1] for line in stage.logs.matching(pattern) if message(line)[0] == TRAFFIC
    ]


class Server:
    """A server that reads a request head and answers `answer` (None: never answers)."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.heads = 0  # request heads received
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = self.answer
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.heads += 1
            if answer is not None:
                writer.write(answer)
                await writer.drain()
            await reader.read()  # until the client (poise) closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def staged(body: Callable[[Stage], Awaitable[None]]) -> Callable[[], Coroutine[Any, Any, None]]:
    async def main() -> None:
        async with Stage() as stage:
            await body(stage)

    return main


def test_connection_refused_by_server(loop_kind: str) -> None:
    async def body(stage: Stage) -> None:
        dead = free_port()  # nothing listens there
        poise = await stage.poise(
            HEAD
            + f"""
listen tcp
    mode tcp
    option tcplog
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{dead}
listen web
    mode http
    option httplog
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{dead}
"""
        )
        await request(poise.port("tcp"), b"hello", until_close=True)
        text = await failure(stage, "tcp/tcp/gw1")
        assert re.fullmatch(
            rf"tcp/tcp/gw1 127\.0\.0\.1:\d+: failed while connecting: connection refused by "
            rf"server tcp/gw1 \(127\.0\.0\.1:{dead}\) \(SC\)",
            text,
        ), text
        # As HAProxy 2.6: the server tried is named, with no connect time (`be/s1 1/-1/1001`).
        assert traffic(stage, r" tcp tcp/gw1 \d+/-1/\d+ .* SC ")
        answer = await request(
            poise.port("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 503")
        text = await failure(stage, "web/web/gw1")
        # net/http.py does not keep the connect error yet: "failed" instead of "refused".
        assert re.search(
            rf"failed while connecting: (connection refused by|connection to) server "
            rf"web/gw1 \(127\.0\.0\.1:{dead}\)( failed)? \(SC--\)$",
            text,
        ), text

    run(loop_kind, staged(body))


def test_no_server_available(loop_kind: str) -> None:
    async def body(stage: Stage) -> None:
        poise = await stage.poise(
            HEAD
            + """
frontend fe
    mode http
    option httplog
    bind 127.0.0.1:0
    default_backend be
backend be
    mode http
    server gw1 127.0.0.1:1 disabled
    server gw2 127.0.0.1:2 disabled
"""
        )
        answer = await request(
            poise.port("fe"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 503")
        text = await failure(stage, "no server")
        assert re.fullmatch(
            r"fe/be/<NOSRV> 127\.0\.0\.1:\d+: failed while connecting: no server available in "
            r"backend be \(all in maintenance\) \(SC--\)",
            text,
        ), text
        assert traffic(stage, r" fe be/<NOSRV> .* 503 .* SC-- ")

    run(loop_kind, staged(body))


def test_server_timeout(loop_kind: str) -> None:
    async def body(stage: Stage) -> None:
        async with Server(None) as silent:
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    option httplog
    timeout server 200ms
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{silent.port}
"""
            )
            answer = await request(
                poise.port("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert answer.startswith(b"HTTP/1.1 504")
            text = await failure(stage, "timed out")
            assert text.endswith(
                f": failed while waiting for the response headers: server web/gw1 "
                f"(127.0.0.1:{silent.port}) timed out after 200ms waiting for response headers "
                f"(timeout server) (sH--)"
            ), text

    run(loop_kind, staged(body))


def test_client_aborted(loop_kind: str) -> None:
    async def body(stage: Stage) -> None:
        async with Server(None) as silent:
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    option httplog
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{silent.port}
"""
            )
            _, writer = await asyncio.open_connection("127.0.0.1", poise.port("web"))
            writer.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            # The request reached the server: now the client leaves without its answer, with
            # a reset (after a FIN alone poise still waits for the answer, as HAProxy does).
            await eventually(lambda: silent.heads == 1, 5, "the request at the server")
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            text = await failure(stage, "client aborted")
            assert text.endswith(
                f"failed while waiting for the response headers: client aborted while "
                f"waiting for server web/gw1 (127.0.0.1:{silent.port}) to answer (CH--)"
            ), text

    run(loop_kind, staged(body))


def test_websocket_upgrade_refused_by_server(loop_kind: str) -> None:
    async def body(stage: Stage) -> None:
        async with Server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") as refusing:
            poise = await stage.poise(
                HEAD
                + f"""
listen agents
    mode http
    option httplog
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{refusing.port}
"""
            )
            upgrade = (
                b"GET /agent HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("agents"))
            writer.write(upgrade)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 403")
            writer.close()
            text = await failure(stage, "WebSocket")
            assert re.fullmatch(
                rf"agents/agents/gw1 127\.0\.0\.1:\d+: failed at the WebSocket upgrade: "
                rf"WebSocket upgrade refused by server agents/gw1 "
                rf"\(127\.0\.0\.1:{refusing.port}\): it answered 403 \(----\)",
                text,
            ), text
            assert traffic(stage, r" agents agents/gw1 .* 403 .* ---- ")

    run(loop_kind, staged(body))


# -- a client's TLS handshake ----------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def tls_config(pki: Pki) -> str:
    cert = pki.issue("lb.pem", ["lb.test"])
    return (
        HEAD
        + f"""
frontend modern
    mode http
    option httplog
    bind 127.0.0.1:0 ssl crt {cert} ssl-min-ver TLSv1.3
    default_backend be
frontend mutual
    mode http
    option httplog
    bind 127.0.0.1:0 ssl crt {cert} ca-file {pki.ca_pem} verify required name agents
    default_backend be
backend be
    mode http
    server gw1 127.0.0.1:1 disabled
"""
    )


async def handshake(port: int, context: ssl.SSLContext) -> None:
    """A TLS handshake that poise refuses; the client's error is not the point here."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="lb.test"), 5
        )
    except (ssl.SSLError, ConnectionError):
        return
    # TLS 1.3: the client finished first; poise's refusal arrives on the first read.
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        await asyncio.wait_for(reader.read(100), 5)
    writer.close()


def test_tls_handshake_failures(loop_kind: str, tmp_path: Path, pki: Pki) -> None:
    stranger = Pki(tmp_path, "other", "Unknown CA").issue("agent.pem", ["agent.test"], client=True)

    async def body(stage: Stage) -> None:
        poise = await stage.poise(tls_config(pki))
        modern = poise.port("modern")

        old = unverified()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        await handshake(modern, old)
        text = await failure(stage, "unsupported protocol")
        assert re.fullmatch(
            r"modern/1 127\.0\.0\.1:\d+: failed during the TLS handshake: TLS handshake with "
            r"client failed: unsupported protocol \(the client's TLS versions are outside the "
            r"bind's ssl-min-ver/ssl-max-ver\)",
            text,
        ), text
        haproxy = traffic(stage, r"modern/1: ")
        assert re.fullmatch(
            r"127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] modern/1: "
            r"SSL handshake failure",
            haproxy[0],
        ), haproxy

        await request(modern, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        text = await failure(stage, "http request")
        assert text.endswith("http request (plain HTTP sent to a TLS port)"), text
        assert len(traffic(stage, r"modern/1: SSL handshake failure$")) == 2

        # This bind has a name: HAProxy writes it instead of the bind's number.
        client = unverified()
        client.load_cert_chain(str(stranger))
        await handshake(poise.port("mutual"), client)
        text = await failure(stage, "certificate verify failed")
        assert re.match(r"mutual/agents 127\.0\.0\.1:\d+: failed during the TLS handshake: ", text)
        assert "the bind's ca-file" in text
        assert traffic(stage, r"mutual/agents: SSL client certificate not trusted$")
        assert poise.ctx.actconn == 0  # no session was made for any of them

        # A probe (connect, then close): HAProxy's "closed during SSL handshake".
        _, writer = await asyncio.open_connection("127.0.0.1", modern)
        writer.close()
        await failure(stage, "the client closed the connection")
        assert traffic(stage, r"modern/1: Connection closed during SSL handshake$")

    run(loop_kind, staged(body))


def test_a_good_handshake_and_a_success_log_no_failure(loop_kind: str, pki: Pki) -> None:
    async def body(stage: Stage) -> None:
        app = await stage.webapp("web1")
        cert = pki.issue("lb.pem", ["lb.test"])
        poise = await stage.poise(
            HEAD
            + f"""
listen web
    mode http
    option httplog
    bind 127.0.0.1:0 ssl crt {cert}
    server web1 127.0.0.1:{app.port}
"""
        )
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", poise.port("web"), ssl=pki.client(), server_hostname="lb.test"
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
        await stage.logs.wait_for(r" web~? web/web1 .* 200 ")
        assert not stage.logs.matching(r": failed "), stage.logs.lines

    run(loop_kind, staged(body))


def test_server_certificate_for_another_name(loop_kind: str, pki: Pki) -> None:
    async def body(stage: Stage) -> None:
        gateway = pki.issue("rms.pem", ["rms.test"])  # the management server's certificate
        app = await stage.webapp("rms", tls=pki.server(gateway))
        poise = await stage.poise(
            HEAD
            + f"""
listen web
    mode http
    option httplog
    bind 127.0.0.1:0
    server gw1 127.0.0.1:{app.port} ssl verify required ca-file {pki.ca_pem} sni str(gw.test)
"""
        )
        answer = await request(
            poise.port("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 503")
        text = await failure(stage, "TLS handshake with server")
        assert text.endswith(
            f"failed while connecting: TLS handshake with server web/gw1 (127.0.0.1:{app.port}) "
            "failed: name mismatch: the certificate is for 'rms.test', not 'gw.test' (SC--)"
        ), text

    run(loop_kind, staged(body))
