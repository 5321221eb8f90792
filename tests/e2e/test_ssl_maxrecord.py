"""`tune.ssl.maxrecord` through `poise run` and `haproxy` on the same configuration: a
client reads an 8000-byte response over TLS 1.3 and measures the records on the wire (it
speaks TLS through memory buffers, so it sees every record header). With `maxrecord
1024` no record carries more than 1024 bytes of data, from either; without it, records
are larger than 4000 bytes, from either."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from poise.certs import ca
from tests.e2e.side_by_side import both, running
from tests.support import run
from tests.tlskit import NOW

pytestmark = pytest.mark.e2e
CONFIG = """\
global
{maxrecord}
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl crt {crt}
    default_backend be
backend be
    server s 127.0.0.1:{server}
"""
BODY = b"x" * 8000
# TLS 1.3 adds to a record's data its inner content type (1 byte) and the AEAD tag (16).
OVERHEAD = 17


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    await writer.drain()
    writer.close()


async def largest_record(port: int) -> int:
    """The most data an application-data record of the response carried."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="t")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    wire = b""
    plain = b""

    async def pump() -> None:
        nonlocal wire
        data = await asyncio.wait_for(reader.read(65536), 5)
        if not data:
            raise ConnectionError("closed")
        wire += data
        incoming.write(data)

    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                await pump()
        writer.write(outgoing.read())
        tls.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        writer.write(outgoing.read())
        while not plain.endswith(BODY):
            try:
                plain += tls.read(65536)
            except ssl.SSLWantReadError:
                await pump()
    finally:
        writer.close()
    sizes, offset = [], 0
    while offset + 5 <= len(wire):
        kind, length = wire[offset], int.from_bytes(wire[offset + 3 : offset + 5], "big")
        if kind == 23:  # application_data (TLS 1.3 hides the real type inside)
            sizes.append(length - OVERHEAD)
        offset += 5 + length
    return max(sizes)


async def largest(command: list[str], tmp: Path, maxrecord: str, crt: Path, server: int) -> int:
    config = CONFIG.format(maxrecord=maxrecord, crt=crt, server=server)
    async with running(command, tmp, config) as balancer:
        return await largest_record(balancer.port)


def test_maxrecord_as_haproxy(loop_kind: str, tmp_path: Path) -> None:
    root, root_key = ca.create_ca("Record Test CA", NOW)
    cert, key = ca.issue(root, root_key, NOW, dns=["t"])
    crt = tmp_path / "site.pem"
    crt.write_bytes(ca.cert_pem(cert) + ca.key_pem(key))

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            limited = await both(largest, "    tune.ssl.maxrecord 1024", crt, port)
            free = await both(largest, "", crt, port)
        finally:
            server.close()
        assert max(limited) <= 1024, limited
        assert min(free) > 4000, free

    run(loop_kind, main, timeout=60)
