"""`ssl_fc_protocol`, `ssl_fc_cipher` and `ssl_fc_use_keysize` through `poise run` and
`haproxy` on the same configuration: a TLS 1.3 client, a TLS 1.2 client limited to one
cipher, and a clear connection each get back what the fetches found (in a header the
configuration adds, and in a condition); the answers must be the same from both, and
nothing on the clear connection, as HAProxy finds nothing there."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from poise.certs import ca
from tests.e2e.side_by_side import both, running
from tests.support import free_port, run
from tests.tlskit import NOW

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl crt {crt}
    bind 127.0.0.1:{clear}
    acl tls ssl_fc_protocol -m beg TLSv1.
    acl strong ssl_fc_use_keysize ge 128
    http-request return status 200 content-type text/plain lf-string "{fmt}" if tls strong
    http-request return status 403 content-type text/plain lf-string "clear:{fmt}"
"""
FMT = "%[ssl_fc_protocol]|%[ssl_fc_cipher]|%[ssl_fc_use_keysize]"
REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def client(version: ssl.TLSVersion, cipher: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    if cipher is not None:
        context.set_ciphers(cipher)
    return context


async def answer(port: int, context: ssl.SSLContext | None) -> str:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="t" if context else None
        ),
        5,
    )
    try:
        writer.write(REQUEST)
        got = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = got.partition(b"\r\n\r\n")
    return f"{head.split(b' ', 2)[1].decode()} {body.decode()}"


async def answers(command: list[str], tmp: Path, crt: Path, clear: int) -> list[str]:
    async with running(command, tmp, CONFIG.format(crt=crt, clear=clear, fmt=FMT)) as balancer:
        return [
            await answer(balancer.port, client(ssl.TLSVersion.TLSv1_3)),
            await answer(
                balancer.port, client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384")
            ),
            await answer(clear, None),
        ]


def test_ssl_fc_fetches_as_haproxy(loop_kind: str, tmp_path: Path) -> None:
    root, root_key = ca.create_ca("Fetch Test CA", NOW)
    cert, key = ca.issue(root, root_key, NOW, dns=["t"])
    crt = tmp_path / "site.pem"
    crt.write_bytes(ca.cert_pem(cert) + ca.key_pem(key))

    async def main() -> None:
        ours, theirs = await both(answers, crt, free_port())
        assert ours[0] == "200 TLSv1.3|TLS_AES_256_GCM_SHA384|256"
        assert ours[1] == "200 TLSv1.2|ECDHE-ECDSA-AES256-GCM-SHA384|256"
        assert ours[2] == "403 clear:||"
        assert ours == theirs

    run(loop_kind, main, timeout=60)
