"""A small certificate authority: create one, issue certificates with SANs from it.

What it makes follows the CA/Browser Forum's baseline where it applies to a private CA:
- the CA: basicConstraints CA:TRUE with pathlen 0 (it issues end certificates only),
  keyUsage keyCertSign and cRLSign (critical), subject key identifier; ten years;
- an end certificate: basicConstraints CA:FALSE, keyUsage digitalSignature (and
  keyEncipherment for RSA), extendedKeyUsage serverAuth (clientAuth with `client`), the
  SANs given (DNS names and IP addresses; the CN is the first of them), authority and
  subject key identifiers; 365 days by default (Mozilla's "intermediate" profile wants
  less than 366; a private CA is free of the public CAs' shorter limits).
Keys are EC P-256 by default (fast handshakes, accepted everywhere), or RSA 2048/3072.
Time is a parameter (`now`), so issuing is reproducible in tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["ec", "rsa2048", "rsa3072"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CA_DAYS = 3650
CERT_DAYS = 365
BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks a little behind the CA's


class CaError(ValueError):
    pass


def new_key(kind: KeyKind = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(65537, 2048 if kind == "rsa2048" else 3072)


def create_ca(
    name: str, now: dt.datetime, days: int = CA_DAYS, kind: KeyKind = "ec"
) -> tuple[x509.Certificate, PrivateKey]:
    if not name.strip():
        raise CaError("the CA needs a name")
    key = new_key(kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _general_names(dns: Sequence[str], ips: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for written in dns:
        name = written.strip().rstrip(".")
        if not name or " " in name:
            raise CaError(f"'{written}' is not a DNS name")
        names.append(x509.DNSName(name))
    for text in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise CaError(f"'{text}' is not an IP address") from None
    if not names:
        raise CaError("a certificate needs at least one name (--dns or --ip)")
    return names


def issue(
    ca_cert: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    now: dt.datetime,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    days: int = CERT_DAYS,
    kind: KeyKind = "ec",
    client: bool = False,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate for these names, signed by the CA."""
    if days < 1:
        raise CaError("--days must be at least 1")
    names = _general_names(dns, ips)
    not_after = now + dt.timedelta(days=days)
    if not_after > ca_cert.not_valid_after_utc:
        raise CaError(
            f"the certificate would outlive its CA (which expires on "
            f"{ca_cert.not_valid_after_utc:%Y-%m-%d}): fewer --days"
        )
    key = new_key(kind)
    first = dns[0] if dns else ips[0]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(authority, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
