"""Layer-4 rules through real sockets (configuration.txt 4.2): SNI routing of TLS passed
through untouched (real TLS clients, real TLS backends, each presenting its own
certificate), routing on the first bytes (`req.payload`, ALPN), inspect-delay bounding a
silent client, `tcp-request connection|session reject` as HAProxy 2.6 does them (reset or
close, no log line), a content reject logged PR, and `balance rdp-cookie` choosing by the
cookie once content rules waited for it. Every test runs under uvloop and asyncio."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.support import ask_from, eventually, run
from tests.tlskit import Pki, tls_open

BASE = """
defaults d
    mode tcp
    log 127.0.0.1:{log} format raw local0
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


async def https_get(port: int, pki: Pki, sni: str, alpn: list[str] | None = None) -> bytes:
    """GET / over TLS to `port`, verifying the certificate for `sni`; the response body."""
    context = pki.client()
    if alpn:
        context.set_alpn_protocols(alpn)
    reader, writer = await tls_open(port, context, sni)
    writer.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return response.partition(b"\r\n\r\n")[2]


def test_sni_routing_of_passed_through_tls(loop_kind: str, pki: Pki) -> None:
    a_cert = pki.issue("a.pem", ["a.example"])
    b_cert = pki.issue("b.pem", ["b.example"])

    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a", tls=pki.server(a_cert))
            b = await stage.webapp("b", tls=pki.server(b_cert))
            poise = await stage.poise(
                BASE + "frontend fe from d\n    bind 127.0.0.1:0\n"
                "    tcp-request inspect-delay 5s\n"
                "    tcp-request content accept if { req_ssl_hello_type 1 }\n"
                "    use_backend bb if { req.ssl_sni -i b.example }\n"
                "    use_backend ba if { req.ssl_sni -i A.EXAMPLE }\n"
                "    default_backend ba\n"
                f"backend ba from d\n    server a 127.0.0.1:{a.port}\n"
                f"backend bb from d\n    server b 127.0.0.1:{b.port}\n"
            )
            port = poise.port("fe")
            # Each backend's certificate only verifies for its own name: the handshake
            # itself proves the bytes reached the right server untouched.
            assert await https_get(port, pki, "a.example") == b"a /"
            assert await https_get(port, pki, "b.example") == b"b /"
            assert await https_get(port, pki, "a.example") == b"a /"
            lines = await stage.logs.wait_for(r" fe bb/b ")
            assert " -- " in lines[0]

    run(loop_kind, main)


def test_alpn_and_payload_routing(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("acme.pem", ["x.example"])

    async def main() -> None:
        async with Stage() as stage:
            acme = await stage.webapp("acme", tls=pki.server(cert))
            web = await stage.webapp("web", tls=pki.server(cert))
            ssh = await stage.backend("ssh", greet=False)
            poise = await stage.poise(
                BASE + "frontend fe from d\n    bind 127.0.0.1:0\n"
                "    tcp-request inspect-delay 2s\n"
                "    acl is_ssh req.payload(0,7) -m bin 5353482d322e30\n"
                "    tcp-request content accept if { req.ssl_hello_type 1 } || is_ssh\n"
                "    use_backend bacme if { req.ssl_alpn acme-tls/1 }\n"
                "    use_backend bssh if is_ssh\n"
                "    default_backend bweb\n"
                f"backend bacme from d\n    server acme 127.0.0.1:{acme.port}\n"
                f"backend bweb from d\n    server web 127.0.0.1:{web.port}\n"
                f"backend bssh from d\n    server ssh 127.0.0.1:{ssh.port}\n"
            )
            port = poise.port("fe")
            assert await https_get(port, pki, "x.example", ["acme-tls/1", "h2"]) == b"acme /"
            assert await https_get(port, pki, "x.example", ["http/1.1"]) == b"web /"
            # An SSH client speaks first; the echo backend answers with what it got.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b"SSH-2.0-OpenSSH_9.2\r\n"
            writer.close()

    run(loop_kind, main)


def test_inspect_delay_bounds_a_silent_client(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            backend = await stage.backend("s")
            poise = await stage.poise(
                BASE + "frontend fe from d\n    bind 127.0.0.1:0\n"
                "    tcp-request inspect-delay 300ms\n"
                "    tcp-request content accept if { req.ssl_hello_type 1 }\n"
                "    tcp-request content reject\n"
                "    default_backend be\n"
                "frontend open from d\n    bind 127.0.0.1:0\n"
                "    tcp-request inspect-delay 300ms\n"
                "    tcp-request content accept if { req.ssl_hello_type 1 }\n"
                "    default_backend be\n"
                f"backend be from d\n    server s 127.0.0.1:{backend.port}\n"
            )
            # Silent: the rules wait for a hello, then the delay ends it (rejected).
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            waited = time.monotonic() - started
            writer.close()
            assert 0.25 <= waited < 3, waited
            line = (await stage.logs.wait_for(r" fe fe/<NOSRV> "))[0]
            assert " PR " in line
            # Garbage that is no hello: refused at once, no waiting.
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff" + b"\x00" * 20)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started < 0.25
            writer.close()
            # Without a reject rule, the silent client is let through when the delay ends.
            started = time.monotonic()
            assert await ask_name(poise.port("open")) == "s"
            assert time.monotonic() - started >= 0.25

    run(loop_kind, main)


async def ask_name(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return line.decode().strip()


def test_connection_and_session_rejects_are_not_logged(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            backend = await stage.backend("s")
            poise = await stage.poise(
                BASE + "frontend fc from d\n    bind 127.0.0.1:0\n"
                "    tcp-request connection reject if { src 127.0.0.2 }\n"
                "    default_backend be\n"
                "frontend fs from d\n    bind 127.0.0.1:0\n"
                "    tcp-request connection set-var(sess.who) src\n"
                "    tcp-request session reject if { var(sess.who) -m ip 127.0.0.3 }\n"
                "    default_backend be\n"
                f"backend be from d\n    server s 127.0.0.1:{backend.port}\n"
            )
            assert await ask_from("127.0.0.1", poise.port("fc")) == "s"
            with pytest.raises(ConnectionResetError):
                await ask_from("127.0.0.2", poise.port("fc"))
            assert await ask_from("127.0.0.1", poise.port("fs")) == "s"
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", poise.port("fs"), local_addr=("127.0.0.3", 0)
            )
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed (FIN), not reset
            writer.close()
            await stage.logs.wait_for(r" fs be/s ")
            await eventually(lambda: poise.ctx.actconn == 0)
            assert not [line for line in stage.logs.lines if "127.0.0.2" in line]
            assert not [line for line in stage.logs.lines if "127.0.0.3" in line]

    run(loop_kind, main)


def rdp_hello(user: str) -> bytes:
    """An RDP client's X.224 Connection Request with its routing cookie (MS-RDPBCGR
    2.2.1.1), sent in two parts as a slow client would."""
    cookie = f"Cookie: mstshash={user}\r\n".encode()
    x224 = bytes([6 + len(cookie), 0xE0, 0, 0, 0, 0, 0]) + cookie
    return bytes([3, 0]) + (4 + len(x224)).to_bytes(2, "big") + x224


def test_rdp_cookie_balancing_waits_for_the_cookie(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            servers = ""
            for i in range(4):
                backend = await stage.backend(f"s{i}")
                servers += f"    server s{i} 127.0.0.1:{backend.port}\n"
            poise = await stage.poise(
                BASE + "listen rdp from d\n    bind 127.0.0.1:0\n"
                "    tcp-request inspect-delay 2s\n"
                "    tcp-request content accept if RDP_COOKIE\n"
                "    balance rdp-cookie\n" + servers
            )

            async def server_of(user: str) -> str:
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("rdp"))
                hello = rdp_hello(user)
                writer.write(hello[:14])
                await writer.drain()
                await asyncio.sleep(0)  # the rest comes in a second segment
                writer.write(hello[14:])
                line = await asyncio.wait_for(reader.readline(), 5)
                writer.close()
                return line.decode().strip()

            users = [f"user{i}" for i in range(8)]
            first = {user: await server_of(user) for user in users}
            again = {user: await server_of(user) for user in users}
            assert first == again
            assert len(set(first.values())) >= 2

    run(loop_kind, main)


class Greeter:
    """A server that speaks first (as SMTP, SSH, databases do), then echoes."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.port = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> Greeter:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.greeting)
            while data := await reader.read(65536):
                writer.write(data)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def test_tcp_response_rules_accept_close_and_reject(loop_kind: str) -> None:
    async def main() -> None:
        bad, good = await Greeter(b"bad greeting\n").start(), await Greeter(b"ok\n").start()
        try:
            async with Stage() as stage:
                poise = await stage.poise(
                    BASE + "listen rej from d\n    bind 127.0.0.1:0\n"
                    "    tcp-response inspect-delay 1s\n"
                    "    tcp-response content reject if { res.payload(0,3) -m bin 626164 }\n"
                    f"    server s 127.0.0.1:{bad.port}\n"
                    "listen clo from d\n    bind 127.0.0.1:0\n"
                    "    tcp-response inspect-delay 1s\n"
                    "    tcp-response content close if { res.len gt 0 }\n"
                    f"    server s 127.0.0.1:{good.port}\n"
                    "listen wait from d\n    bind 127.0.0.1:0\n"
                    "    tcp-response inspect-delay 300ms\n"
                    "    tcp-response content accept if { res.len gt 100 }\n"
                    f"    server s 127.0.0.1:{good.port}\n"
                )
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("rej"))
                assert await asyncio.wait_for(reader.read(), 5) == b""  # nothing forwarded
                writer.close()
                line = (await stage.logs.wait_for(r" rej rej/s "))[0]
                assert " 13 PD " in line  # the held bytes are counted, as HAProxy does
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("clo"))
                assert await asyncio.wait_for(reader.read(), 5) == b"ok\n"  # then closed
                writer.close()
                # res.len never reaches 100: the response waits for the delay, then goes.
                started = time.monotonic()
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("wait"))
                assert await asyncio.wait_for(reader.readline(), 5) == b"ok\n"
                assert 0.25 <= time.monotonic() - started < 3
                writer.write(b"ping\n")  # the relay goes on as usual afterwards
                assert await asyncio.wait_for(reader.readline(), 5) == b"ping\n"
                writer.close()
        finally:
            bad.close()
            good.close()

    run(loop_kind, main)


def test_http_mode_runs_the_layer4_rules_too(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            http = BASE.replace("mode tcp", "mode http").replace("option tcplog", "option httplog")
            poise = await stage.poise(
                http + "frontend fe from d\n    bind 127.0.0.1:0\n"
                "    tcp-request connection reject if { src 127.0.0.2 }\n"
                "    tcp-request content reject if { path /forbidden }\n"
                "    default_backend be\n"
                "backend be from d\n"
                "    tcp-request content reject if { req.hdr(x-bad) -m found }\n"
                f"    server app 127.0.0.1:{app.port}\n"
            )
            port = poise.port("fe")

            async def get(path: str, extra: str = "", source: str = "127.0.0.1") -> bytes:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(source, 0)
                )
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode()
                )
                try:
                    return await asyncio.wait_for(reader.read(), 5)
                finally:
                    writer.close()

            assert (await get("/")).startswith(b"HTTP/1.1 200")
            assert await get("/forbidden") == b""  # closed, no response (HAProxy 2.6)
            assert await get("/", "x-bad: 1\r\n") == b""
            with pytest.raises(ConnectionResetError):
                await get("/", source="127.0.0.2")
            # As haproxy 2.6.12 logs them: no request time, no byte; <BADREQ> for the
            # frontend's rule, which runs before its HTTP analysers. (haproxy writes the
            # missing status as -1, poise as 0 for every response never sent.)
            # The total time is whatever the connection took (0 or 1 ms on a quiet machine).
            shape = re.compile(r" -1/-1/-1/-1/\d+ 0 0 - - PR-- ")
            line = (await stage.logs.wait_for(r" fe fe/<NOSRV> "))[0]
            assert shape.search(line) and line.endswith('"<BADREQ>"'), line
            line = (await stage.logs.wait_for(r" fe be/<NOSRV> "))[0]
            assert shape.search(line) and line.endswith('"GET / HTTP/1.1"'), line
            assert app.connections == 1

    run(loop_kind, main)
