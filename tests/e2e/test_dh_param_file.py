"""`ssl-dh-param-file` through `poise run` and `haproxy` on the same configuration: a client
that offers only a DHE cipher (as old clients and some appliances do) completes the
handshake when the global file gives DH parameters, and when the certificate file carries
its own DH PARAMETERS block; without either, both refuse it, as configuration.txt says
("DHE ciphers will not be used"). An ECDHE client gets through in every case.
`poise check` and `haproxy -c` both refuse a file that holds no DH parameters."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from poise.certs import ca
from tests.e2e.side_by_side import both, running
from tests.support import run
from tests.tlskit import NOW

pytestmark = pytest.mark.e2e
CONFIG = """\
global
{dh}
    ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl crt {crt}
    http-request return status 200 content-type text/plain string ok
"""
DHE = "DHE-RSA-AES128-GCM-SHA256"
ECDHE = "ECDHE-RSA-AES128-GCM-SHA256"


def materials(tmp: Path) -> tuple[Path, Path, Path]:
    """An RSA certificate bundle, the same with ffdhe2048 parameters appended, and the
    parameters alone (as `openssl dhparam` or Mozilla's ffdhe2048.txt give them)."""
    root, root_key = ca.create_ca("DH Test CA", NOW)
    cert, key = ca.issue(root, root_key, NOW, dns=["dh.test"], kind="rsa2048")
    bundle = tmp / "site.pem"
    bundle.write_bytes(ca.cert_pem(cert) + ca.key_pem(key))
    params = tmp / "dhparam.pem"
    subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
        stdout=params.open("wb"),
        check=True,
    )
    with_dh = tmp / "site-dh.pem"
    with_dh.write_bytes(bundle.read_bytes() + params.read_bytes())
    return bundle, with_dh, params


async def handshake(port: int, cipher: str) -> str:
    """The cipher agreed with a TLS 1.2 client offering only `cipher`, or 'refused'."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="dh.test"), 5
        )
    except (ssl.SSLError, ConnectionError):
        return "refused"
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: dh.test\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        agreed = writer.get_extra_info("cipher")[0]
    finally:
        writer.close()
    return f"{agreed} {answer.split(b' ', 2)[1].decode()}"


async def ciphers(command: list[str], tmp: Path, dh: str, crt: Path) -> list[str]:
    config = CONFIG.format(dh=dh, crt=crt)
    async with running(command, tmp, config) as balancer:
        return [await handshake(balancer.port, cipher) for cipher in (DHE, ECDHE)]


def test_dhe_as_haproxy(loop_kind: str, tmp_path: Path) -> None:
    bundle, with_dh, params = materials(tmp_path)

    async def main() -> None:
        cases = {
            "global file": (f"    ssl-dh-param-file {params}", bundle),
            "in the certificate": ("", with_dh),
            "none": ("", bundle),
        }
        for name, (dh, crt) in cases.items():
            ours, theirs = await both(ciphers, dh, crt)
            assert ours == theirs, name
            assert ours[1] == f"{ECDHE} 200", name
            assert ours[0] == ("refused" if name == "none" else f"{DHE} 200"), name

    run(loop_kind, main, timeout=90)


def test_not_dh_parameters_refused_as_haproxy(tmp_path: Path) -> None:
    bundle, _, _ = materials(tmp_path)
    cfg = tmp_path / "bad.cfg"
    text = CONFIG.format(dh=f"    ssl-dh-param-file {bundle}", crt=bundle)
    cfg.write_text(text.replace("{port}", "18443"))
    haproxy = ["haproxy", "-c", "-f", str(cfg)]
    theirs = subprocess.run(haproxy, capture_output=True, text=True, check=False)
    ours = subprocess.run(
        [sys.executable, "-m", "poise.cli", "check", "-f", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert theirs.returncode != 0 and ours.returncode != 0
    message = f"unable to load DH parameters from file <{bundle}>."
    assert f"'ssl-dh-param-file': {message}" in theirs.stderr
    assert f"bad.cfg:2: error: 'ssl-dh-param-file': {message}" in ours.stderr
