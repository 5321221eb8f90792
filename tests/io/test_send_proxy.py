"""`send-proxy`, `send-proxy-v2`, `proxy-v2-options` and `check-send-proxy` on servers:
what a real server receives first, in TCP and HTTP mode (an HTTP server connection that
sent a header is that client's only, as HAProxy makes it private), through health checks,
from `add server`, and a real HAProxy 2.6 with `accept-proxy` reading poise's header.
Real sockets on 127.0.0.1; the backends parse the header with core/proxyproto.py."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from poise.core import proxyproto as pp
from poise.core.proxyproto import ProxyHeader
from tests.io.harness import Stage
from tests.support import accepting, eventually, free_port, run
from tests.tlskit import Pki

HEAD = """
defaults
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


class Proxied:
    """A server that reads a PROXY header first, then answers each HTTP request (or, in
    `tcp`, the connection) with the header's source address."""

    def __init__(self, http: bool, tls: ssl.SSLContext | None = None) -> None:
        self.http = http
        self.tls = tls  # TLS after the header (a `server ... ssl`)
        self.headers: list[ProxyHeader] = []
        self.raw: list[bytes] = []  # each connection's header bytes
        self.requests: list[tuple[int, str]] = []  # (connection, source) per request
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxied:
        self.tasks.add(asyncio.get_running_loop().create_task(self.accept()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        self.listener.close()

    async def accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self.listener)
            self.tasks.add(loop.create_task(self.handle(sock)))

    async def handle(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()

        async def exactly(size: int) -> bytes:
            got = b""
            while len(got) < size:
                chunk = await loop.sock_recv(sock, size - len(got))
                if not chunk:
                    raise ConnectionResetError
                got += chunk
            return got

        try:
            # Exactly the header's bytes, so that what follows (a ClientHello) is unread.
            data = await exactly(16)
            if data.startswith(b"PROXY "):
                while not data.endswith(b"\r\n"):
                    data += await exactly(1)
            else:
                data += await exactly(int.from_bytes(data[14:16], "big"))
        except ConnectionError:
            sock.close()
            return
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=self.tls
        )
        writer = asyncio.StreamWriter(transport, transport.get_protocol(), reader, loop)
        try:
            parsed = pp.parse(data)
            assert parsed is not None and not isinstance(parsed, pp.Refusal), (parsed, data)
            header, used = parsed
            number = len(self.headers)
            self.headers.append(header)
            self.raw.append(data[:used])
            source = f"{header.src[0]} {header.src[1]}" if header.src else "local"
            buffer = data[used:]
            if not self.http:
                writer.write(f"{source}\n".encode())
                await writer.drain()
                return
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = await reader.read(4096)
                    if not chunk:
                        return
                    buffer += chunk
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append((number, source))
                body = source.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def ask(port: int, source: str, data: bytes = b"") -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer.decode()


async def keep_alive(port: int, source: str, count: int) -> list[str]:
    """`count` requests on one connection; the bodies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    bodies = []
    for _ in range(count):
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        bodies.append((await reader.readexactly(length)).decode())
    writer.close()
    return bodies


def test_tcp_servers_get_the_client_in_v1_and_v2(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, Proxied(False) as one, Proxied(False) as two:
            poise = await stage.poise(
                HEAD
                + f"""
listen v1
    mode tcp
    bind 127.0.0.1:0
    server s 127.0.0.1:{one.port} send-proxy
listen v2
    mode tcp
    bind 127.0.0.1:0
    default-server send-proxy-v2 proxy-v2-options crc32c,authority,unique-id
    server s 127.0.0.1:{two.port}
"""
            )
            port1, port2 = poise.port("v1"), poise.port("v2")
            answer = await ask(port1, "127.0.0.9")
            assert answer.startswith("127.0.0.9 ")
            assert one.raw[0] == (
                f"PROXY TCP4 127.0.0.9 127.0.0.1 {answer.split()[1]} {port1}\r\n".encode()
            )
            answer = await ask(port2, "127.0.0.8")
            header = two.headers[0]
            assert header.version == 2 and header.src is not None
            assert header.src[0] == "127.0.0.8" and header.dst == ("127.0.0.1", port2)
            # crc32c first (verified by the parser), then an empty unique id; no SNI, so
            # no authority.
            assert [kind for kind, _ in header.tlvs] == [pp.CRC32C, pp.UNIQUE_ID]

    run(loop_kind, main)


def test_an_http_connection_that_sent_a_header_stays_its_clients(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, Proxied(True) as server:
            poise = await stage.poise(
                HEAD
                + f"""
listen web
    mode http
    http-reuse always
    bind 127.0.0.1:0
    server s 127.0.0.1:{server.port} send-proxy-v2
"""
            )
            port = poise.port("web")
            first = await keep_alive(port, "127.0.0.8", 2)
            second = await keep_alive(port, "127.0.0.9", 2)
            assert [b.split()[0] for b in first] == ["127.0.0.8", "127.0.0.8"]
            assert [b.split()[0] for b in second] == ["127.0.0.9", "127.0.0.9"]
            # Each client's requests on its own connection, whose header names it.
            assert [n for n, _ in server.requests] == [0, 0, 1, 1]

    run(loop_kind, main)


def test_ssl_tlv_and_tls_servers(loop_kind: str, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    crt = pki.issue("www.pem", dns=["www.example"])
    client_crt = pki.issue("client.pem", dns=["client.example"], client=True)

    async def main() -> None:
        tls_server = Proxied(False, pki.server(crt))
        async with Stage() as stage, Proxied(False) as server, tls_server:
            poise = await stage.poise(
                HEAD
                + f"""
listen tls
    mode tcp
    bind 127.0.0.1:0 ssl crt {crt} ca-file {pki.ca_pem} verify optional
    default-server proxy-v2-options ssl-cipher,authority,cert-sig,cert-key
    server s 127.0.0.1:{server.port} send-proxy-v2-ssl-cn
listen reencrypt
    mode tcp
    bind 127.0.0.1:0
    server s 127.0.0.1:{tls_server.port} ssl verify none send-proxy
"""
            )
            # An `ssl` server gets the header first, then the handshake.
            assert (await ask(poise.port("reencrypt"), "127.0.0.9")).startswith("127.0.0.9 ")
            assert tls_server.raw[0].startswith(b"PROXY TCP4 127.0.0.9 127.0.0.1 ")
            context = pki.client(client_crt)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", poise.port("tls"), ssl=context, server_hostname="www.example"
            )
            await asyncio.wait_for(reader.read(), 5)
            version = writer.get_extra_info("ssl_object").version()
            cipher = writer.get_extra_info("ssl_object").cipher()[0]
            writer.close()
            header = server.headers[0]
            assert header.authority == "www.example"  # the client's SNI
            ssl = header.ssl
            assert ssl is not None
            assert ssl.client == pp.CLIENT_SSL | pp.CLIENT_CERT_CONN | pp.CLIENT_CERT_SESS
            assert (ssl.verify, ssl.version, ssl.cipher) == (0, version, cipher)
            assert ssl.cn is not None and ssl.cn.startswith("client")
            # The bind's certificate, as haproxy 2.6.12 names it for the same file.
            assert (ssl.sig_alg, ssl.key_alg) == ("ecdsa-with-SHA256", "EC256")
            kinds = [value[0] for value in _subs(header.tlv(pp.SSL) or b"")]
            assert kinds == [
                pp.SSL_VERSION,
                pp.SSL_CN,
                pp.SSL_KEY_ALG,
                pp.SSL_SIG_ALG,
                pp.SSL_CIPHER,
            ]

    run(loop_kind, main)


def test_health_checks_send_the_header(loop_kind: str) -> None:
    async def main() -> None:
        async with (
            Stage() as stage,
            Proxied(False) as v2,
            Proxied(False) as v1,
            Proxied(False) as rules,
        ):
            check_port = free_port()
            poise = await stage.poise(
                HEAD
                + f"""
backend own
    mode tcp
    server s 127.0.0.1:{v2.port} check inter 100ms send-proxy-v2
backend forced
    mode tcp
    server s 127.0.0.1:{check_port} check inter 100ms port {v1.port} check-send-proxy
backend plain
    mode tcp
    server s 127.0.0.1:{v1.port} send-proxy check inter 100ms port {check_port}
backend rules
    mode tcp
    option tcp-check
    tcp-check connect port {rules.port} send-proxy
    server s 127.0.0.1:{check_port} send-proxy-v2 proxy-v2-options crc32c check inter 100ms
"""
            )
            # A send-proxy-v2 server checked on its own address: a LOCAL command.
            await eventually(lambda: len(v2.headers) >= 1, 5, "a check")
            assert v2.raw[0] == pp.V2_SIGNATURE + b"\x20\x00\x00\x00"
            # check-send-proxy, on another port: v1 naming the check's own connection.
            await eventually(lambda: len(v1.headers) >= 1, 5, "a check")
            header = v1.headers[0]
            assert header.version == 1 and header.dst == ("127.0.0.1", v1.port)
            # `tcp-check connect send-proxy`: the server's version and options (v2 LOCAL).
            await eventually(lambda: len(rules.headers) >= 1, 5, "a tcp-check")
            assert rules.headers[0].version == 2 and rules.headers[0].src is None
            assert rules.raw[0][16] == pp.CRC32C  # its TLVs (a LOCAL header's go unread)
            assert poise.ctx is not None

    run(loop_kind, main)


needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (make debs)"
)


@needs_haproxy
def test_haproxy_reads_poises_header(loop_kind: str, tmp_path: Path) -> None:
    hap = free_port()

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            cfg = tmp_path / "haproxy.cfg"
            cfg.write_text(
                f"""global
    log 127.0.0.1:{stage.logs.port} format raw local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen behind
    bind 127.0.0.1:{hap} accept-proxy
    log-format "haproxy saw %ci:%cp %fi:%fp"
    server a 127.0.0.1:{app.port}
"""
            )
            haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await accepting(hap)
                poise = await stage.poise(
                    HEAD
                    + f"""
listen front
    mode http
    bind 127.0.0.1:0
    server h 127.0.0.1:{hap} send-proxy-v2 proxy-v2-options crc32c
"""
                )
                port = poise.port("front")
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=("127.0.0.9", 0)
                )
                source_port = writer.get_extra_info("sockname")[1]
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 200"), answer
                await stage.logs.wait_for(
                    rf"haproxy saw 127\.0\.0\.9:{source_port} 127\.0\.0\.1:{port}$"
                )
            finally:
                haproxy.terminate()
                haproxy.wait(10)

    run(loop_kind, main)


def _subs(value: bytes) -> list[bytes]:
    """The sub-TLVs of an SSL TLV, in the order sent."""
    found, offset = [], 5
    while offset < len(value):
        size = int.from_bytes(value[offset + 1 : offset + 3], "big")
        found.append(value[offset : offset + 3 + size])
        offset += 3 + size
    return found
