"""Certificates without sockets: host names against certificate names (RFC 6125), PEM
bundles as HAProxy reads them, what poise's CA issues, and every finding `poise check`
reports (with time as a parameter)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from poise.certs import ca, inspect, names
from poise.certs.bundle import (
    Bundle,
    CertError,
    crt_directory,
    parse_crt_list,
    read_bundle,
    read_certificates,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("a.test", "a.test", True),
        ("A.Test", "a.TEST.", True),
        ("a.test", "b.test", False),
        ("*.example.org", "www.example.org", True),
        ("*.example.org", "WWW.Example.Org", True),
        ("*.example.org", "example.org", False),  # one label, not zero
        ("*.example.org", "a.b.example.org", False),  # one label, not two
        ("*.example.org", ".example.org", False),
        ("w*.example.org", "www.example.org", False),  # partial wildcards: no
        ("*.org", "example.org", False),  # a wildcard over a single label: no
        ("www.*.org", "www.example.org", False),
        ("", "a.test", False),
    ],
)
def test_names_match_as_rfc_6125_says(pattern: str, host: str, expected: bool) -> None:
    assert names.matches(pattern, host) is expected


def test_ip_addresses_match_ip_sans_only_and_the_cn_only_without_dns_sans() -> None:
    assert names.host_matches([], ["127.0.0.1"], None, "127.0.0.1")
    assert names.host_matches([], ["::1"], None, "[::1]")
    assert not names.host_matches(["127.0.0.1"], [], None, "127.0.0.1")
    assert names.host_matches([], [], "a.test", "a.test")
    assert not names.host_matches(["b.test"], [], "a.test", "a.test")


def write(path: Path, *blocks: bytes) -> str:
    path.write_bytes(b"".join(blocks))
    return str(path)


@pytest.fixture
def authority() -> tuple[x509.Certificate, ca.PrivateKey]:
    return ca.create_ca("Test CA", NOW - 10 * DAY)


def test_the_ca_and_what_it_issues_have_the_expected_extensions(
    authority: tuple[x509.Certificate, ca.PrivateKey],
) -> None:
    root, key = authority
    assert inspect.is_ca(root) and inspect.self_signed(root)
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    cert, _ = ca.issue(root, key, NOW, dns=["a.test", "b.test"], ips=["127.0.0.1"], client=True)
    assert inspect.issued_by(cert, root)
    assert inspect.sans(cert) == (("a.test", "b.test"), ("127.0.0.1",))
    assert inspect.common_name(cert) == "a.test"
    assert not inspect.is_ca(cert)
    uses = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(uses) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > 365 * DAY
    with pytest.raises(ca.CaError, match="at least one name"):
        ca.issue(root, key, NOW)
    with pytest.raises(ca.CaError, match="not an IP address"):
        ca.issue(root, key, NOW, ips=["nope"])
    with pytest.raises(ca.CaError, match="outlive its CA"):
        ca.issue(root, key, NOW, dns=["a.test"], days=5000)


def test_a_bundle_is_read_with_its_key_inside_or_beside(
    tmp_path: Path, authority: tuple[x509.Certificate, ca.PrivateKey]
) -> None:
    root, root_key = authority
    cert, key = ca.issue(root, root_key, NOW, dns=["a.test"])
    # Key first, a DH parameter block in between: HAProxy reads such files too.
    dh = b"-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----\n"
    path = write(tmp_path / "one.pem", ca.key_pem(key), dh, ca.cert_pem(cert), ca.cert_pem(root))
    bundle = read_bundle(path)
    assert bundle.leaf == cert and bundle.chain == (root,)
    assert bundle.key_path == path and inspect.key_matches(cert, bundle.key)  # type: ignore[arg-type]
    beside = write(tmp_path / "two.pem", ca.cert_pem(cert))
    write(tmp_path / "two.pem.key", ca.key_pem(key))
    bundle = read_bundle(beside)
    assert bundle.key_path == beside + ".key" and bundle.key is not None
    lonely = read_bundle(write(tmp_path / "three.pem", ca.cert_pem(cert)))
    assert lonely.key is None
    assert lonely.key_problem == (
        f"no private key: neither in '{tmp_path}/three.pem' nor in '{tmp_path}/three.pem.key'"
    )


def test_unusable_files_are_refused_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(CertError, match=f"cannot read certificate file '{tmp_path}/no.pem'"):
        read_bundle(str(tmp_path / "no.pem"))
    with pytest.raises(CertError, match="it is a directory"):
        read_bundle(str(tmp_path))
    key = ec.generate_private_key(ec.SECP256R1())
    only_key = write(tmp_path / "key.pem", ca.key_pem(key))
    with pytest.raises(CertError, match=f"'{only_key}' holds a private key but no certificate"):
        read_bundle(only_key)
    with pytest.raises(CertError, match="holds no PEM certificate"):
        read_certificates(write(tmp_path / "junk.pem", b"hello\n"))


def test_an_encrypted_key_is_reported(
    tmp_path: Path, authority: tuple[x509.Certificate, ca.PrivateKey]
) -> None:
    root, root_key = authority
    cert, key = ca.issue(root, root_key, NOW, dns=["a.test"])
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    bundle = read_bundle(write(tmp_path / "locked.pem", ca.cert_pem(cert), locked))
    assert bundle.key is None
    assert bundle.key_problem is not None and "encrypted" in bundle.key_problem


def test_crt_directories_and_crt_lists_are_read_as_haproxy_does(tmp_path: Path) -> None:
    for name in ("b.pem", "a.pem", "a.pem.key", ".hidden.pem", "c.ocsp", "d.issuer"):
        (tmp_path / name).write_text("x")
    assert crt_directory(str(tmp_path)) == [str(tmp_path / "a.pem"), str(tmp_path / "b.pem")]
    lines = parse_crt_list(
        "list",
        "# comment\n\ncert1.pem !*\ncert2.pem [alpn h2,http/1.1]\n"
        "certW.pem *.domain.tld !secure.domain.tld\n"
        "certS.pem [ciphers ECDHE-ECDSA-AES256-GCM-SHA384 ssl-min-ver TLSv1.3] secure.domain.tld\n",
    )
    assert [(e.crt, e.options, e.filters, e.line) for e in lines] == [
        ("cert1.pem", (), ("!*",), 3),
        ("cert2.pem", ("alpn", "h2,http/1.1"), (), 4),
        ("certW.pem", (), ("*.domain.tld", "!secure.domain.tld"), 5),
        ("certS.pem", ("ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384", "ssl-min-ver", "TLSv1.3"),
         ("secure.domain.tld",), 6),
    ]  # fmt: skip
    with pytest.raises(CertError, match="list:1: '\\[' without its closing"):
        parse_crt_list("list", "c.pem [alpn h2\n")
    # A last line without its newline (HAProxy 2.6: unless a comment), as `haproxy -c` says.
    with pytest.raises(CertError, match=r"^list:2: Missing LF on last line, .* position 5\.$"):
        parse_crt_list("list", "a.pem\n  #x")
    assert len(parse_crt_list("list", "a.pem\n#x")) == 1


def _bundle(tmp_path: Path, name: str, *blocks: bytes) -> Bundle:
    return read_bundle(write(tmp_path / name, *blocks))


def messages(findings: list[inspect.Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in findings]


def test_a_good_certificate_has_no_findings_and_a_complete_chain(
    tmp_path: Path, authority: tuple[x509.Certificate, ca.PrivateKey]
) -> None:
    root, root_key = authority
    cert, key = ca.issue(root, root_key, NOW, dns=["a.test"])
    bundle = _bundle(tmp_path, "a.pem", ca.cert_pem(cert), ca.key_pem(key))
    assert inspect.bundle_findings(bundle, NOW, "server", [root]) == []
    assert inspect.chain_status(bundle, [root]).state == "complete"
    # Without the CA at hand, whether the chain is complete cannot be told: no finding.
    assert inspect.chain_status(bundle).state == "unknown"
    assert inspect.bundle_findings(bundle, NOW) == []


def test_key_mismatch_wrong_key_types_and_expiry(
    tmp_path: Path, authority: tuple[x509.Certificate, ca.PrivateKey]
) -> None:
    root, root_key = authority
    cert, _ = ca.issue(root, root_key, NOW, dns=["a.test"])
    other = ec.generate_private_key(ec.SECP256R1())
    bundle = _bundle(tmp_path, "a.pem", ca.cert_pem(cert), ca.key_pem(other))
    [(severity, message)] = messages(inspect.bundle_findings(bundle, NOW))
    assert severity == "error"
    assert message.startswith("the private key (EC secp256r1, in ")
    assert message.endswith("does not match the certificate (EC secp256r1, 'CN=a.test')")
    dsa_key = dsa.generate_private_key(2048)
    dsa_pem = dsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    bundle = _bundle(tmp_path, "b.pem", ca.cert_pem(cert), dsa_pem)
    assert messages(inspect.bundle_findings(bundle, NOW)) == [
        (
            "error",
            "wrong key type: a DSA 2048 key cannot sign TLS 1.2/1.3 handshakes (use RSA or EC)",
        )
    ]
    small = rsa.generate_private_key(65537, 1024)
    assert inspect.key_unusable(small) == "an RSA 1024 key is too small (at least 2048 bits)"
    odd = ec.generate_private_key(ec.SECP256K1())
    assert "curve secp256k1 cannot be used" in (inspect.key_unusable(odd) or "")
    cert, key = ca.issue(root, root_key, NOW - 40 * DAY, dns=["old.test"], days=30)
    bundle = _bundle(tmp_path, "old.pem", ca.cert_pem(cert), ca.key_pem(key))
    [(severity, message)] = messages(inspect.bundle_findings(bundle, NOW, trusted=[root]))
    # HAProxy 2.6 serves an expired certificate: poise warns and serves it too.
    assert severity == "warning" and message.startswith("the certificate expired on 2026-05-")
    assert message.endswith(": served anyway, as HAProxy does; peers refuse it")
    cert, key = ca.issue(root, root_key, NOW - 80 * DAY, dns=["soon.test"], days=90)
    bundle = _bundle(tmp_path, "soon.pem", ca.cert_pem(cert), ca.key_pem(key))
    assert messages(inspect.bundle_findings(bundle, NOW, trusted=[root])) == [
        ("warning", "the certificate expires on 2026-06-11 12:00:00 UTC, in 10 days"),
    ]


def _self_signed(name: str, key: ec.EllipticCurvePrivateKey, is_ca: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 100 * DAY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def _intermediate(
    root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 100 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return cert, key


def test_self_signed_missing_and_disordered_chains(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    lonely = _self_signed("self.test", key, is_ca=False)
    bundle = _bundle(tmp_path, "self.pem", ca.cert_pem(lonely), ca.key_pem(key))
    assert messages(inspect.bundle_findings(bundle, NOW)) == [
        (
            "warning",
            "self-signed server certificate: clients cannot verify it "
            "(issue one from a CA: poise cert issue)",
        )
    ]
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _self_signed("Root", root_key, is_ca=True)
    middle, middle_key = _intermediate(root, root_key)
    leaf, leaf_key = ca.issue(middle, middle_key, NOW, dns=["leaf.test"], days=50)
    # The intermediate is missing: known as soon as it is found elsewhere.
    bundle = _bundle(tmp_path, "leaf.pem", ca.cert_pem(leaf), ca.key_pem(leaf_key))
    assert messages(inspect.bundle_findings(bundle, NOW, trusted=[root, middle])) == [
        (
            "warning",
            "missing chain: incomplete: the intermediate CA 'CN=Intermediate' that issued "
            "'CN=leaf.test' is missing from the file (append it after the certificate)",
        )
    ]
    full = _bundle(
        tmp_path, "full.pem", ca.cert_pem(leaf), ca.cert_pem(middle), ca.key_pem(leaf_key)
    )
    assert inspect.chain_status(full, [root]).state == "complete"
    assert inspect.bundle_findings(full, NOW, trusted=[root]) == []
    wrong = _bundle(
        tmp_path, "wrong.pem", ca.cert_pem(leaf), ca.cert_pem(root), ca.key_pem(leaf_key)
    )
    status = inspect.chain_status(wrong, [root])
    assert status.state == "disordered"
    assert "certificate 2 of the file ('CN=Root') did not issue certificate 1" in status.text


def test_a_ca_file_must_hold_cas_only(
    tmp_path: Path, authority: tuple[x509.Certificate, ca.PrivateKey]
) -> None:
    root, root_key = authority
    cert, _ = ca.issue(root, root_key, NOW, dns=["a.test"])
    assert inspect.ca_findings("ca.pem", [root], NOW) == []
    [finding] = inspect.ca_findings("lb.pem", [root, cert], NOW)
    assert finding == inspect.Finding(
        "error",
        "'lb.pem' is not a CA file: 'CN=a.test' is not a CA certificate "
        "(its basicConstraints do not say CA:TRUE)",
    )
