"""What a certificate says, and whether it is fit for its use: the facts `poise cert show`
prints and the findings `poise check` reports (with the file name, by the caller).

Errors make a certificate unusable: no private key (or an encrypted or unreadable one), a
key of a type TLS 1.2/1.3 cannot use, a key that does not match the certificate, a
`ca-file` certificate that is not a CA. Warnings are for what works here but fails
somewhere: an expired `crt` (HAProxy 2.6 serves it, so poise does, and says so), expiry
within 30 days, a chain known to be incomplete or out of order, a self-signed server
certificate, no subjectAltName, a usage that excludes TLS servers.

Time is a parameter (`now`), so every rule is tested exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from poise.certs.bundle import Bundle

Severity = Literal["error", "warning"]
Role = Literal["server", "client"]
EXPIRY_WARNING_DAYS = 30
MIN_RSA_BITS = 2048  # OpenSSL 3's default security level (2) refuses smaller RSA keys
TLS_CURVES = ("secp256r1", "secp384r1", "secp521r1")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    common_name: str | None
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    is_ca: bool
    self_signed: bool
    serial: int
    sha256: str


def name_text(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty)"


def common_name(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else None
    return value if isinstance(value, str) else None


def sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) of the subjectAltName extension."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(ext.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return dns, ips


def names(cert: x509.Certificate) -> list[str]:
    """The names a certificate serves, for SNI selection: its DNS SANs, else its CN."""
    dns, _ = sans(cert)
    if dns:
        return list(dns)
    cn = common_name(cert)
    return [cn] if cn else []


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Did `parent` sign `child` (names chain and the signature verifies)?"""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def key_type(key: PublicKeyTypes | PrivateKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return f"DSA {key.key_size}"
    if isinstance(key, dh.DHPublicKey | dh.DHPrivateKey):
        return "DH"
    if isinstance(key, x25519.X25519PublicKey | x25519.X25519PrivateKey):
        return "X25519"
    if isinstance(key, x448.X448PublicKey | x448.X448PrivateKey):
        return "X448"
    return type(key).__name__


def key_unusable(key: PrivateKeyTypes) -> str | None:
    """Why a private key cannot sign TLS 1.2/1.3 handshakes, or None."""
    kind = key_type(key)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            return f"an {kind} key is too small (at least {MIN_RSA_BITS} bits)"
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in TLS_CURVES:
            return f"a key on curve {key.curve.name} cannot be used by TLS (P-256, P-384, P-521)"
        return None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return f"a {kind} key cannot sign TLS 1.2/1.3 handshakes (use RSA or EC)"


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def describe(cert: x509.Certificate) -> CertInfo:
    dns, ips = sans(cert)
    return CertInfo(
        subject=name_text(cert.subject),
        common_name=common_name(cert),
        dns=dns,
        ips=ips,
        issuer=name_text(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type(cert.public_key()),
        is_ca=is_ca(cert),
        self_signed=self_signed(cert),
        serial=cert.serial_number,
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def label(cert: x509.Certificate) -> str:
    return f"'{name_text(cert.subject)}'"


# --- chains --------------------------------------------------------------------------------

ChainState = Literal["complete", "incomplete", "disordered", "self-signed", "unknown"]


@dataclass(frozen=True, slots=True)
class ChainStatus:
    state: ChainState
    text: str


def chain_status(bundle: Bundle, trusted: Sequence[x509.Certificate] = ()) -> ChainStatus:
    """Is the chain a client needs all there? Each certificate of the bundle must have
    been issued by the next one; the last one must be a root, or be issued by a root
    (found in `trusted`: the configuration's CA files and the system's trust store). When
    the last issuer is found nowhere, whether it is a root cannot be told."""
    certs = bundle.certificates
    for position, (child, parent) in enumerate(itertools.pairwise(certs), start=1):
        if not issued_by(child, parent):
            return ChainStatus(
                "disordered",
                f"certificate {position + 1} of the file ({label(parent)}) did not issue "
                f"certificate {position} ({label(child)}): the chain must follow the "
                "certificate, each issuer after what it issued",
            )
    last = certs[-1]
    if self_signed(last):
        if len(certs) == 1 and is_ca(last):
            return ChainStatus("complete", "a root CA (self-signed)")
        if len(certs) == 1:
            return ChainStatus("self-signed", "self-signed: no CA vouches for it")
        return ChainStatus("complete", f"complete up to the root {label(last)}")
    for candidate in trusted:
        if issued_by(last, candidate):
            if self_signed(candidate):
                return ChainStatus("complete", f"complete: issued by the root {label(candidate)}")
            return ChainStatus(
                "incomplete",
                f"incomplete: the intermediate CA {label(candidate)} that issued "
                f"{label(last)} is missing from the file (append it after the certificate)",
            )
    return ChainStatus(
        "unknown",
        f"ends with a certificate issued by '{name_text(last.issuer)}', which is not in "
        "the file: complete if that is a root CA the clients trust",
    )


# --- findings ------------------------------------------------------------------------------


def validity_findings(cert: x509.Certificate, now: dt.datetime, what: str) -> list[Finding]:
    if cert.not_valid_after_utc <= now:
        return [Finding("error", f"{what} expired on {when(cert.not_valid_after_utc)}")]
    found = []
    if cert.not_valid_before_utc > now:
        found.append(
            Finding("warning", f"{what} is not valid before {when(cert.not_valid_before_utc)}")
        )
    left = cert.not_valid_after_utc - now
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        found.append(
            Finding(
                "warning",
                f"{what} expires on {when(cert.not_valid_after_utc)}, in {left.days} days",
            )
        )
    return found


def _usage_findings(cert: x509.Certificate, role: Role) -> list[Finding]:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    wanted = (
        ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    if wanted in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return []
    use = "TLS server (serverAuth)" if role == "server" else "TLS client (clientAuth)"
    return [Finding("warning", f"its extended key usage does not allow a {use}: peers refuse it")]


def bundle_findings(
    bundle: Bundle,
    now: dt.datetime,
    role: Role = "server",
    trusted: Sequence[x509.Certificate] = (),
) -> list[Finding]:
    """Everything wrong with a `crt` bundle, errors first."""
    leaf = bundle.leaf
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if bundle.key is None:
        errors.append(Finding("error", bundle.key_problem or "no private key"))
    else:
        unusable = key_unusable(bundle.key)
        if unusable is not None:
            errors.append(Finding("error", f"wrong key type: {unusable}"))
        elif not key_matches(leaf, bundle.key):
            errors.append(
                Finding(
                    "error",
                    f"the private key ({key_type(bundle.key)}, in '{bundle.key_path}') does not "
                    f"match the certificate ({key_type(leaf.public_key())}, {label(leaf)})",
                )
            )
    use = "served" if role == "server" else "sent"
    for finding in validity_findings(leaf, now, "the certificate"):
        # Expired is an error in general; for a `crt`, HAProxy loads it without a word.
        message = finding.message
        if finding.severity == "error":
            message += f": {use} anyway, as HAProxy does; peers refuse it"
        warnings.append(Finding("warning", message))
    for cert in bundle.chain:
        if cert.not_valid_after_utc <= now and not self_signed(cert):
            warnings.append(
                Finding(
                    "warning",
                    f"the chain's certificate {label(cert)} expired on "
                    f"{when(cert.not_valid_after_utc)}",
                )
            )
    status = chain_status(bundle, trusted)
    if status.state == "self-signed" and role == "server" and not is_ca(leaf):
        warnings.append(
            Finding(
                "warning",
                "self-signed server certificate: clients cannot verify it "
                "(issue one from a CA: poise cert issue)",
            )
        )
    elif status.state in ("incomplete", "disordered"):
        warnings.append(Finding("warning", f"missing chain: {status.text}"))
    dns, ips = sans(leaf)
    if role == "server" and not dns and not ips:
        warnings.append(
            Finding(
                "warning",
                "no subjectAltName: clients ignore the subject's CN and refuse the certificate",
            )
        )
    warnings.extend(_usage_findings(leaf, role))
    return errors + warnings


def ca_findings(path: str, certs: Sequence[x509.Certificate], now: dt.datetime) -> list[Finding]:
    """A `ca-file`: every certificate must be a CA."""
    found = []
    for cert in certs:
        if not is_ca(cert):
            found.append(
                Finding(
                    "error",
                    f"'{path}' is not a CA file: {label(cert)} is not a CA certificate "
                    "(its basicConstraints do not say CA:TRUE)",
                )
            )
        elif cert.not_valid_after_utc <= now:
            found.append(
                Finding(
                    "warning",
                    f"the CA {label(cert)} in '{path}' expired on {when(cert.not_valid_after_utc)}",
                )
            )
    return found


# OpenSSL's short names of certificate signature algorithms (OBJ_nid2sn), by OID: what
# HAProxy sends as a PROXY v2 `cert-sig` (ssl_sock_get_cert_sig).
_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.4": "RSA-MD5",
    "1.2.840.113549.1.1.5": "RSA-SHA1",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.113549.1.1.11": "RSA-SHA256",
    "1.2.840.113549.1.1.12": "RSA-SHA384",
    "1.2.840.113549.1.1.13": "RSA-SHA512",
    "1.2.840.113549.1.1.14": "RSA-SHA224",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}


def signature_name(cert: x509.Certificate) -> str | None:
    """The certificate's signature algorithm as OpenSSL names it (`RSA-SHA256`)."""
    return _SIGNATURE_NAMES.get(cert.signature_algorithm_oid.dotted_string)


def key_algorithm(cert: x509.Certificate) -> str | None:
    """Its key as HAProxy 2.6's ssl_sock_get_pkey_algo writes it: `RSA2048`, `EC256`,
    `DSA2048` (None for other kinds, which HAProxy leaves out)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC{key.key_size}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA{key.key_size}"
    return None
