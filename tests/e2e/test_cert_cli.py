"""`poise cert` and the certificate checks as a user meets them: a CA made, a certificate
issued and shown (files written 0600 where they hold a key), then `poise check` and
`poise run` judging every certificate a configuration names, each problem with its file."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa

from poise.certs import ca
from poise.certs.bundle import read_bundle
from tests.tlskit import NOW, Pki

POISE = [sys.executable, "-m", "poise.cli"]

pytestmark = pytest.mark.e2e


def poise(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POISE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_issue_and_show_round_trip(tmp_path: Path) -> None:
    authority = tmp_path / "ca"
    made = poise("cert", "ca", "--dir", str(authority), "--name", "Recast Test CA")
    assert made.returncode == 0, made.stderr
    assert mode(authority / "ca.key") == 0o600
    assert mode(authority / "ca.pem") == 0o644
    root = x509.load_pem_x509_certificate((authority / "ca.pem").read_bytes())
    assert root.subject.rfc4514_string() == "CN=Recast Test CA"
    # A second CA in the same place would lose the first one's key: refused.
    again = poise("cert", "ca", "--dir", str(authority), "--name", "Other")
    assert again.returncode == 1 and "a CA already exists" in again.stderr

    out = tmp_path / "lb.pem"
    issued = poise(
        "cert", "issue", "--ca", str(authority), "--dns", "LoadBalancedAG.yourenvironment.com",
        "--dns", "lb.yourenvironment.com", "--ip", "127.0.0.180", "--days", "30",
        "--out", str(out),
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert mode(out) == 0o600
    bundle = read_bundle(str(out))
    assert bundle.key is not None and bundle.key_path == str(out)
    assert bundle.leaf.issuer == root.subject
    left = bundle.leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)

    shown = poise("cert", "show", str(out), "--ca", str(authority / "ca.pem"))
    assert shown.returncode == 0, shown.stderr
    lines = dict(
        (line.split(":", 1)[0], line.split(":", 1)[1].strip())
        for line in shown.stdout.splitlines()
        if ":" in line
    )
    assert lines["subject"] == "CN=LoadBalancedAG.yourenvironment.com"
    assert lines["SANs"] == (
        "DNS:LoadBalancedAG.yourenvironment.com, DNS:lb.yourenvironment.com, IP:127.0.0.180"
    )
    assert lines["issuer"] == "CN=Recast Test CA"
    assert lines["key type"] == "EC secp256r1"
    assert lines["private key"] == f"EC secp256r1 in {out}: matches the certificate"
    assert lines["chain"] == "complete: issued by the root 'CN=Recast Test CA'"
    assert "(29 days left)" in lines["validity"] or "(30 days left)" in lines["validity"]
    # Within 30 days of its end: said so.
    assert f"warning: {out}: the certificate expires on " in shown.stdout

    bad = poise("cert", "issue", "--ca", str(authority), "--ip", "nope", "--out", str(out))
    assert bad.returncode == 1 and "'nope' is not an IP address" in bad.stderr
    missing = poise("cert", "show", str(tmp_path / "none.pem"))
    assert missing.returncode == 1 and "No such file or directory" in missing.stderr


CONFIG = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port} ssl crt {crt}
    default_backend be
backend be
    server gw 127.0.0.1:9 ssl verify required ca-file {ca}
"""


def check(tmp_path: Path, crt: Path | str, ca_file: Path | str) -> tuple[int, list[str]]:
    cfg = tmp_path / "poise.cfg"
    cfg.write_text(CONFIG.format(port=0, crt=crt, ca=ca_file))
    result = poise("check", "-f", str(cfg))
    lines = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if ": " in line]
    return result.returncode, lines


def test_check_reports_each_certificate_problem_with_its_file(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    good = pki.issue("good.pem", ["lb.test"])
    assert check(tmp_path, good, pki.ca_pem) == (0, [])

    missing = tmp_path / "missing.pem"
    assert check(tmp_path, missing, pki.ca_pem) == (
        1,
        [f"error: 'bind': cannot read certificate file '{missing}': No such file or directory"],
    )
    no_key = tmp_path / "nokey.pem"
    no_key.write_bytes(good.read_bytes().split(b"-----BEGIN PRIVATE KEY")[0])
    status, lines = check(tmp_path, no_key, pki.ca_pem)
    assert status == 1
    assert lines == [
        f"error: 'bind': certificate '{no_key}': no private key: neither in '{no_key}' "
        f"nor in '{no_key}.key'"
    ]
    mismatch = tmp_path / "mismatch.pem"
    other = pki.issue("other.pem", ["other.test"]).read_bytes()
    key = other[other.find(b"-----BEGIN PRIVATE KEY") :]
    mismatch.write_bytes(no_key.read_bytes() + key)
    status, lines = check(tmp_path, mismatch, pki.ca_pem)
    assert status == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: 'bind': certificate '{mismatch}': the private key")
    assert lines[0].endswith("does not match the certificate (EC secp256r1, 'CN=lb.test')")

    wrong_type = tmp_path / "dsa.pem"
    dsa_key = dsa.generate_private_key(2048)
    wrong_type.write_bytes(
        no_key.read_bytes()
        + dsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    status, lines = check(tmp_path, wrong_type, pki.ca_pem)
    assert (status, lines) == (
        1,
        [
            f"error: 'bind': certificate '{wrong_type}': wrong key type: a DSA 2048 key cannot "
            "sign TLS 1.2/1.3 handshakes (use RSA or EC)"
        ],
    )

    expired = pki.issue("expired.pem", ["lb.test"], days=1, now=NOW - dt.timedelta(days=3))
    status, lines = check(tmp_path, expired, pki.ca_pem)
    assert status == 0  # HAProxy 2.6 serves it: a warning
    assert lines[0].startswith(
        f"warning: 'bind': certificate '{expired}': the certificate expired on "
    )
    assert lines[0].endswith(": served anyway, as HAProxy does; peers refuse it")

    soon = pki.issue("soon.pem", ["lb.test"], days=10)
    status, lines = check(tmp_path, soon, pki.ca_pem)
    assert status == 0
    assert lines[0].startswith(f"warning: 'bind': certificate '{soon}': the certificate expires ")

    # A ca-file holding a server's certificate instead of a CA: refused.
    status, lines = check(tmp_path, good, good)
    assert status == 1
    assert lines == [
        f"error: 'server': '{good}' is not a CA file: 'CN=lb.test' is not a CA certificate "
        "(its basicConstraints do not say CA:TRUE)"
    ]


def test_check_warns_about_a_self_signed_certificate(tmp_path: Path) -> None:
    # poise's own CA certificate is self-signed; a "server" certificate made the same way is
    # what the first seed advises against.
    cert, key = ca.create_ca("lb.test", NOW)
    lonely = tmp_path / "self.pem"
    lonely.write_bytes(ca.cert_pem(cert) + ca.key_pem(key))
    pki = Pki(tmp_path)
    status, lines = check(tmp_path, lonely, pki.ca_pem)
    assert status == 0  # a CA certificate served as is: no SAN, said so
    assert lines == [
        f"warning: 'bind': certificate '{lonely}': no subjectAltName: clients ignore the "
        "subject's CN and refuse the certificate"
    ]


def test_run_refuses_a_broken_certificate_with_its_file_named(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    good = pki.issue("good.pem", ["lb.test"])
    no_key = tmp_path / "nokey.pem"
    no_key.write_bytes(good.read_bytes().split(b"-----BEGIN PRIVATE KEY")[0])
    cfg = tmp_path / "poise.cfg"
    cfg.write_text(CONFIG.format(port=0, crt=no_key, ca=pki.ca_pem))
    result = poise("run", "-db", "-f", str(cfg))
    assert result.returncode == 1
    assert f"certificate '{no_key}': no private key" in result.stderr
