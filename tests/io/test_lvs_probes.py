"""Keepalived's checkers (vrrp/lvs_probes.py) against real servers on 127.0.0.1: HTTP_GET's
status codes and digest (the MD5 that Keepalived's own `genhash` prints for the same page),
SSL_GET over real TLS, SMTP_CHECK, DNS_CHECK against a real DNS server, MISC_CHECK's exit
codes, dynamic weights and timeout, and TCP_CHECK's refused and silent servers."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import ssl
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from poise.config.keepalived import parse
from poise.config.keepalived_lvs_model import Checker
from poise.core.lvs import Result
from poise.vrrp.lvs import is_local
from poise.vrrp.lvs_probes import probe
from tests.dnsserver import DnsServer
from tests.support import free_port
from tests.tlskit import Pki
from tests.unit.keepalived_support import FakeSource

PAGES = {
    "/": (200, b"<html>hello from the real server</html>\n"),
    "/missing": (404, b"not here\n"),
    "/broken": (500, b"oops\n"),
}


def checker(block: str, port: int) -> Checker:
    text = (
        "virtual_server 198.51.100.10 80 {\n protocol TCP\n"
        f" real_server 127.0.0.1 {port} {{\n{block}\n }}\n}}\n"
    )
    config, diagnostics = parse("/k", FakeSource({"/k": text}))
    assert config is not None, [str(d) for d in diagnostics]
    return config.virtual_servers[0].real_servers[0].checkers[0]


async def web(
    requests: list[bytes], tls: ssl.SSLContext | None = None, silent: bool = False
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        if silent:
            await asyncio.sleep(5)
        path = head.split(b" ")[1].decode()
        status, body = PAGES.get(path, (404, b""))
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def url(path: str, extra: str = "") -> str:
    return f"url {{\n path {path}\n{extra}\n}}"


def test_http_get_status_codes_and_digest_as_genhash_computes_it() -> None:
    async def main() -> None:
        requests: list[bytes] = []
        server = await web(requests)
        port = port_of(server)
        async with server:
            genhash = await asyncio.create_subprocess_exec(
                "genhash", "-s", "127.0.0.1", "-p", str(port), "-u", "/",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await genhash.communicate()
            found = re.search(rb"\b([0-9a-f]{32})\b", out)
            assert found, out
            digest = found.group(1).decode()
            assert digest == hashlib.md5(PAGES["/"][1]).hexdigest()

            async def run(block: str) -> Result:
                return await probe(checker(f"HTTP_GET {{\n{block}\n}}", port))

            assert await run(url("/", f"digest {digest}")) == Result(True)
            assert (
                requests[-1]
                == (
                    f"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n"
                    f"Host: 127.0.0.1:{port}\r\n\r\n"
                ).encode()
            )
            wrong = await run(url("/", "digest 640205b7b0fc66c1ea91c463fac6334d"))
            assert wrong == Result(False, f"MD5 digest error, MD5SUM [{digest}]")
            assert await run(url("/missing")) == Result(False, "status_code [404]")
            assert await run(url("/missing", "status_code 200 404")) == Result(True)
            assert await run(url("/broken", "status_code 200-499")) == Result(
                False, "status_code [500]"
            )
            # Every url must pass; a virtualhost is the Host sent.
            both = url("/", "virtualhost www.example.test") + url("/broken")
            assert not (await run(both)).ok
            assert b"Host: www.example.test\r\n" in requests[-2]

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("genhash") is None, reason="genhash comes with keepalived")
def test_genhash_is_there() -> None:
    # The digest test above runs Keepalived's genhash: under CI (make debs) it must exist.
    assert shutil.which("genhash")


def test_ssl_get_over_real_tls_with_sni(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    bundle = pki.issue("rs.pem", ["rs.test"])
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(bundle))
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    async def main() -> None:
        requests: list[bytes] = []
        server = await web(requests, tls=context)
        port = port_of(server)
        async with server:
            plain = checker(f"SSL_GET {{\n{url('/')}\n}}", port)
            assert await probe(plain) == Result(True)  # no verification, as Keepalived
            sni = checker(f"SSL_GET {{\n{url('/')}\nvirtualhost rs.test\nenable_sni\n}}", port)
            assert await probe(sni) == Result(True)
            assert names == [None, "rs.test"]
            cleartext = checker(f"HTTP_GET {{\n{url('/')}\n}}", port)
            assert not (await probe(cleartext)).ok

    asyncio.run(main())


def test_tcp_check_refused_and_silent_servers() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        async with server:
            port = port_of(server)
            assert await probe(checker("TCP_CHECK {\n}", port)) == Result(True)
        refused = await probe(checker("TCP_CHECK {\n}", free_port()))
        assert refused == Result(False, "Connection refused")
        # An HTTP server that never answers: the check gives up at connect_timeout.
        requests: list[bytes] = []
        silent = await web(requests, silent=True)
        async with silent:
            block = f"HTTP_GET {{\n{url('/')}\nconnect_timeout 0.3\n}}"
            started = time.monotonic()
            assert await probe(checker(block, port_of(silent))) == Result(False, "timeout")
            assert time.monotonic() - started < 2

    asyncio.run(main())


def test_smtp_check_greeting_helo_and_quit() -> None:
    said: list[bytes] = []

    async def main(greeting: bytes) -> Result:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(greeting)
            line = await reader.readline()
            said.append(line)
            writer.write(b"250-mail.test\r\n250 OK\r\n")
            said.append(await reader.readline())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            block = 'SMTP_CHECK {\n helo_name "lb.test"\n}'
            return await probe(checker(block, port_of(server)))

    assert asyncio.run(main(b"220 mail.test ESMTP\r\n")) == Result(True)
    assert said == [b"HELO lb.test\r\n", b"QUIT\r\n"]
    assert asyncio.run(main(b"554 go away\r\n")) == Result(False, "greeting 554")


def test_dns_check_against_a_real_dns_server() -> None:
    with DnsServer() as dns:
        dns.set("www.test.", ["127.0.0.7"])
        port = int(dns.address.rsplit(":", 1)[1])
        good = checker("DNS_CHECK {\n type A\n name www.test\n}", port)
        assert asyncio.run(probe(good)) == Result(True)
        assert dns.queries == [("www.test.", "A")]
        dns.rcode("www.test.", dns.REFUSED)
        assert asyncio.run(probe(good)) == Result(False, "DNS RCODE 5")
        assert asyncio.run(probe(checker("DNS_CHECK {\n name nowhere.test\n}", port))) == Result(
            False, "DNS RCODE 3"
        )  # NXDOMAIN


def test_misc_check_exit_codes_dynamic_weight_and_timeout(tmp_path: Path) -> None:
    def misc(script: str, extra: str = "") -> Result:
        path = tmp_path / "check.sh"
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
        return asyncio.run(probe(checker(f"MISC_CHECK {{\n misc_path {path}\n{extra}\n}}", 80)))

    assert misc("exit 0") == Result(True)
    assert misc("exit 1") == Result(False, "exited with status 1")
    assert misc("exit 12") == Result(False, "exited with status 12")
    assert misc("exit 12", "misc_dynamic") == Result(True, weight=10)
    started = time.monotonic()
    assert misc("sleep 30 & sleep 30", "misc_timeout 1") == Result(False, "timed out after 1s")
    assert time.monotonic() - started < 5


def test_ha_suspend_sees_whether_an_address_is_on_this_node() -> None:
    assert is_local(ip_address("127.0.0.1"))
    assert is_local(ip_address("::1"))
    # TEST-NET-2 is never on the root namespace (DESIGN.md): a bind to it fails.
    assert not is_local(ip_address("198.51.100.250"))
