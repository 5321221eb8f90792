"""The alert a failed client handshake ends with (issue 11, finding 6), on raw sockets and
real TLS clients against the running proxy.

Measured with Debian's haproxy 2.6.12 on a `bind ... ssl crt` frontend, the same bytes:
`16 03 01 00 05 hello` (a handshake record that holds no ClientHello) and `17 03 03 00 05
hello` (application data before any handshake) get `15 03 03 00 02 02 0a` (fatal
unexpected_message) then FIN; a TLS 1.1 client gets a fatal protocol_version alert; bytes
that are not TLS at all (`GET / HTTP/1.1`, zeros, text) get a bare FIN, no alert. poise
used to send a bare FIN for all of them.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.support import run
from tests.tlskit import Pki, tls_open, unverified

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind 127.0.0.1:0 ssl crt {cert}
    http-request return status 200
"""
UNEXPECTED_MESSAGE = b"\x15\x03\x03\x00\x02\x02\x0a"

ANSWERS = {
    "bad-handshake-record": (b"\x16\x03\x01\x00\x05hello", UNEXPECTED_MESSAGE),
    "data-before-handshake": (b"\x17\x03\x03\x00\x05hello", UNEXPECTED_MESSAGE),
    "http": (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b""),
    "zeros": (b"\x00" * 20, b""),
    "text": (b"hello\r\n", b""),
}


async def answer_to(port: int, sent: bytes) -> bytes:
    """Everything poise sends back until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(100), 5):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return data


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_broken_handshake_gets_haproxys_alert(loop_kind: str, tmp_path: Path, name: str) -> None:
    sent, expected = ANSWERS[name]
    cert = Pki(tmp_path).issue("lb.pem", ["lb.test"])

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(CONFIG.replace("{cert}", str(cert)))
            assert await answer_to(poise.port("fe"), sent) == expected

    run(loop_kind, main)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_tls11_client_is_told_protocol_version(loop_kind: str, tmp_path: Path) -> None:
    cert = Pki(tmp_path).issue("lb.pem", ["lb.test"])
    context = unverified()
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(CONFIG.replace("{cert}", str(cert)))
            with pytest.raises(ssl.SSLError) as refused:
                await tls_open(poise.port("fe"), context, "lb.test")
            assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value

    run(loop_kind, main)
