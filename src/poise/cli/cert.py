"""`poise cert`: a certificate authority small enough that nobody falls back to
self-signed certificates.

    poise cert ca --dir DIR --name "NAME"        DIR/ca.pem (give it to the clients) and
                                                 DIR/ca.key (mode 0600, keep it secret)
    poise cert issue --ca DIR --dns NAME [--dns NAME ...] [--ip ADDR ...] [--days N]
                     [--client] [--key ec|rsa2048|rsa3072] --out FILE.pem
                                                 one file: the certificate, then its key
                                                 (mode 0600), as `bind ... ssl crt FILE`
                                                 and HAProxy load it
    poise cert show FILE [--ca CAFILE]           subject, SANs, issuer, validity, key type,
                                                 whether the key matches, whether the chain
                                                 is complete, and what is wrong with it

Files with a private key are written 0600, through a temporary file renamed into place,
so a running poise that reloads never reads half a certificate.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from poise.certs import ca, inspect
from poise.certs.bundle import (
    CertError,
    pem_blocks,
    read_bundle,
    read_certificates,
    read_private_key,
)
from poise.certs.system import system_ca_certificates

CA_CERT = "ca.pem"
CA_KEY = "ca.key"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write through a temporary file in the same directory, renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)  # whatever the umask said
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cert",
        help="a small CA: poise cert ca|issue|show (poise cert -h)",
        description=__doc__.splitlines()[0],
    )
    sub = parser.add_subparsers(dest="action", required=True)
    make = sub.add_parser("ca", help="create a certificate authority in a directory")
    make.add_argument("--dir", required=True, help="where ca.pem and ca.key are written")
    make.add_argument("--name", required=True, help='the CA\'s name, e.g. "Example CA"')
    make.add_argument("--days", type=int, default=ca.CA_DAYS, help="lifetime (default 3650)")
    make.add_argument("--key", choices=("ec", "rsa2048", "rsa3072"), default="ec")
    issue = sub.add_parser("issue", help="issue a certificate from a CA made by `poise cert ca`")
    issue.add_argument("--ca", required=True, metavar="DIR", help="the CA's directory")
    issue.add_argument("--dns", action="append", default=[], metavar="NAME")
    issue.add_argument("--ip", action="append", default=[], metavar="ADDR")
    issue.add_argument("--days", type=int, default=ca.CERT_DAYS, help="lifetime (default 365)")
    issue.add_argument("--key", choices=("ec", "rsa2048", "rsa3072"), default="ec")
    issue.add_argument("--client", action="store_true", help="also usable as a client certificate")
    issue.add_argument("--out", required=True, metavar="FILE.pem")
    show = sub.add_parser("show", help="what a certificate file holds, and what is wrong")
    show.add_argument("file")
    show.add_argument("--ca", metavar="CAFILE", help="check the chain against this CA file")


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "ca":
            return make_ca(Path(args.dir), args.name, args.days, args.key)
        if args.action == "issue":
            return issue(args)
        return show(args.file, args.ca)
    except (CertError, ca.CaError) as exc:
        print(f"poise cert: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"poise cert: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def make_ca(directory: Path, name: str, days: int, kind: str) -> int:
    if (directory / CA_KEY).exists():
        raise ca.CaError(f"a CA already exists in '{directory}' ({CA_KEY}); not replacing it")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = ca.create_ca(name, now(), days, cast(ca.KeyKind, kind))
    write_private(directory / CA_KEY, ca.key_pem(key))
    write_private(directory / CA_CERT, ca.cert_pem(cert), 0o644)
    print(f"CA '{name}' created, valid until {inspect.when(cert.not_valid_after_utc)}:")
    print(f"  {directory / CA_CERT}  the CA certificate: give it to clients, use it as ca-file")
    print(f"  {directory / CA_KEY}  its private key (mode 0600): keep it secret")
    return 0


def load_ca(directory: Path) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    cert = read_certificates(str(cert_path), "CA certificate")[0]
    key = read_private_key(str(key_path))
    if not inspect.is_ca(cert):
        raise ca.CaError(f"'{cert_path}' is not a CA certificate")
    if not inspect.key_matches(cert, key):
        raise ca.CaError(f"'{key_path}' is not the key of '{cert_path}'")
    return cert, cast(CertificateIssuerPrivateKeyTypes, key)


def issue(args: argparse.Namespace) -> int:
    ca_cert, ca_key = load_ca(Path(args.ca))
    cert, key = ca.issue(
        ca_cert,
        ca_key,
        now(),
        dns=args.dns,
        ips=args.ip,
        days=args.days,
        kind=cast(ca.KeyKind, args.key),
        client=args.client,
    )
    out = Path(args.out)
    write_private(out, ca.cert_pem(cert) + ca.key_pem(key))
    dns, ips = inspect.sans(cert)
    names = ", ".join([f"DNS:{n}" for n in dns] + [f"IP:{a}" for a in ips])
    print(f"{out}: certificate for {names}")
    print(
        f"  issued by '{inspect.name_text(ca_cert.subject)}', valid until "
        f"{inspect.when(cert.not_valid_after_utc)}; key and certificate in one file (0600)"
    )
    print(f"  use it as: bind ... ssl crt {out}")
    return 0


def show(path: str, ca_file: str | None) -> int:
    moment = now()
    trusted = read_certificates(ca_file, "CA file") if ca_file else []
    bundle = read_bundle(path)
    has_key_block = any(b"PRIVATE KEY" in kind for kind, _ in pem_blocks(Path(path).read_bytes()))
    certs = bundle.certificates
    print(f"file:         {path}")
    for number, cert in enumerate(certs, start=1):
        if len(certs) > 1:
            print(f"certificate {number} of {len(certs)}:")
        print_certificate(cert, moment)
    if bundle.key is not None:
        match = "matches" if inspect.key_matches(bundle.leaf, bundle.key) else "DOES NOT MATCH"
        where = bundle.key_path
        print(f"private key:  {inspect.key_type(bundle.key)} in {where}: {match} the certificate")
    elif has_key_block:
        print(f"private key:  unusable ({bundle.key_problem})")
    else:
        print(f"private key:  not in this file (nor in {path}.key)")
    system = system_ca_certificates() if not trusted else []
    status = inspect.chain_status(bundle, [*certs, *trusted, *system])
    print(f"chain:        {status.text}")
    if inspect.is_ca(bundle.leaf):
        findings = inspect.validity_findings(bundle.leaf, moment, "the CA certificate")
    else:
        findings = inspect.bundle_findings(bundle, moment, "server", [*trusted, *system])
        if bundle.key is None and not has_key_block:
            # A certificate alone (a server's, to look at): its key is elsewhere.
            findings = [f for f in findings if f.message != bundle.key_problem]
    for finding in findings:
        print(f"{finding.severity}: {path}: {finding.message}")
    return 0


def print_certificate(cert: x509.Certificate, moment: dt.datetime) -> None:
    info = inspect.describe(cert)
    left = info.not_after - moment
    if left.total_seconds() <= 0:
        state = "EXPIRED"
    elif info.not_before > moment:
        state = "NOT YET VALID"
    else:
        state = f"{left.days} days left"
    sans = [f"DNS:{n}" for n in info.dns] + [f"IP:{a}" for a in info.ips]
    print(f"subject:      {info.subject}")
    print(f"SANs:         {', '.join(sans) if sans else '(none)'}")
    print(f"issuer:       {info.issuer}{' (self-signed)' if info.self_signed else ''}")
    print(
        f"validity:     {inspect.when(info.not_before)} to {inspect.when(info.not_after)} ({state})"
    )
    print(f"key type:     {info.key_type}")
    print(f"CA:           {'yes' if info.is_ca else 'no'}")
    print(f"serial:       {info.serial:x}")
    print(f"SHA-256:      {info.sha256}")
