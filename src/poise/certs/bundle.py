"""Certificate files as HAProxy reads them (configuration.txt 5.1 `crt`, `crt-list`,
`ca-file`).

- A `crt` bundle is one PEM file with the certificate first, then its chain, and the
  private key anywhere in it; without a key in the file, the key is read from the same
  path with `.key` appended. Other PEM blocks (DH parameters, a CRL) are skipped.
- A `crt` directory contributes its files in name order, except names starting with a dot
  and those ending in `.key`, `.issuer`, `.ocsp` or `.sctl` (HAProxy's reserved
  extensions).
- A `crt-list` file has one `CRTFILE [[OPTIONS...]] [[!]SNIFILTER ...]` per line; empty
  lines and `#` comments are skipped; a relative CRTFILE starts from `crt-base`; a last
  line without a newline (unless a comment) is refused as HAProxy 2.6 refuses it (the
  file may have been truncated).
- A `ca-file` holds trusted CA certificates (or is a directory of `.pem`, `.crt`, `.cer`
  files); `@system-ca` is the system's trust store.

Reading never raises for a problem with the contents (inspect.py judges those); a file that
cannot be read or holds no certificate at all raises CertError naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

RESERVED_SUFFIXES = (".key", ".issuer", ".ocsp", ".sctl")
CA_SUFFIXES = (".pem", ".crt", ".cer")
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_CERT_TYPES = (b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE")
_KEY_TYPES = (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY")


class CertError(Exception):
    """A certificate file that cannot be used at all; the message names the file."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A `crt` file as read: its certificates in file order (the leaf first), its private
    key when one was found and could be read, and why not otherwise."""

    path: str
    certificates: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes | None
    key_path: str | None  # where the key was found: the file itself or FILE.key
    key_problem: str | None = None  # no key, an encrypted one, an unreadable one

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self.certificates[1:]


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise CertError(f"cannot read {what} '{path}': it is a directory") from None
    except OSError as exc:
        raise CertError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None


def pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole block) for every PEM block, in order."""
    return [(m.group(1), m.group(0)) for m in _PEM.finditer(data)]


def _certificates(path: str, blocks: list[tuple[bytes, bytes]]) -> list[x509.Certificate]:
    certs = []
    for kind, block in blocks:
        if kind not in _CERT_TYPES:
            continue
        pem = block
        if kind != b"CERTIFICATE":
            # OpenSSL's "TRUSTED CERTIFICATE" carries trust settings after the DER.
            pem = re.sub(rb"-----(BEGIN|END) [A-Z0-9 ]+-----", rb"-----\1 CERTIFICATE-----", block)
        try:
            certs.append(x509.load_pem_x509_certificate(pem))
        except ValueError as exc:
            raise CertError(f"'{path}' holds a certificate that cannot be parsed: {exc}") from None
    return certs


def _key(blocks: list[tuple[bytes, bytes]]) -> tuple[PrivateKeyTypes | None, str | None]:
    """The first private key of the blocks, or why there is none usable."""
    for kind, block in blocks:
        if kind == b"ENCRYPTED PRIVATE KEY" or (
            kind in _KEY_TYPES and b"Proc-Type: 4,ENCRYPTED" in block
        ):
            return None, "the private key is encrypted (poise cannot ask for a passphrase)"
        if kind in _KEY_TYPES:
            try:
                return serialization.load_pem_private_key(block, password=None), None
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                return None, f"the private key cannot be read: {exc}"
    return None, None


def read_bundle(path: str) -> Bundle:
    """Read a `crt` bundle (and FILE.key when the file has no key)."""
    data = _read(path, "certificate file")
    blocks = pem_blocks(data)
    certs = _certificates(path, blocks)
    if not certs:
        if any(kind in _KEY_TYPES or kind == b"ENCRYPTED PRIVATE KEY" for kind, _ in blocks):
            raise CertError(f"'{path}' holds a private key but no certificate")
        raise CertError(f"'{path}' holds no PEM certificate")
    key, problem = _key(blocks)
    key_path: str | None = path
    if key is None and problem is None:
        key_path = path + ".key"
        try:
            key_data = Path(key_path).read_bytes()
        except FileNotFoundError:
            key_path = None
            problem = f"no private key: neither in '{path}' nor in '{path}.key'"
        except OSError as exc:
            problem = f"cannot read the key file '{key_path}': {exc.strerror or exc}"
            key_path = None
        else:
            key, problem = _key(pem_blocks(key_data))
            if key is None and problem is None:
                problem = f"'{key_path}' holds no PEM private key"
    if problem and key_path and key_path != path:
        problem = f"{problem} (in '{key_path}')"
    return Bundle(path, tuple(certs), key, key_path if key is not None else None, problem)


def read_private_key(path: str) -> PrivateKeyTypes:
    """The private key of a key file (a CA's key)."""
    key, problem = _key(pem_blocks(_read(path, "key file")))
    if key is None:
        raise CertError(f"'{path}': {problem or 'holds no PEM private key'}")
    return key


def read_certificates(path: str, what: str = "certificate file") -> list[x509.Certificate]:
    """Every certificate of a PEM file (a CA file), in order."""
    certs = _certificates(path, pem_blocks(_read(path, what)))
    if not certs:
        raise CertError(f"'{path}' holds no PEM certificate")
    return certs


def crt_directory(path: str) -> list[str]:
    """The bundles of a `crt` directory, in name order."""
    directory = Path(path)
    return [
        str(entry)
        for entry in sorted(directory.iterdir(), key=lambda p: p.name)
        if entry.is_file()
        and not entry.name.startswith(".")
        and not entry.name.endswith(RESERVED_SUFFIXES)
    ]


def ca_paths(path: str) -> list[str]:
    """The files of a `ca-file`: itself, or the CA files of a directory."""
    directory = Path(path)
    if not directory.is_dir():
        return [path]
    return [
        str(entry)
        for entry in sorted(directory.iterdir(), key=lambda p: p.name)
        if entry.is_file() and not entry.name.startswith(".") and entry.name.endswith(CA_SUFFIXES)
    ]


@dataclass(frozen=True, slots=True)
class CrtListLine:
    """One line of a crt-list: the bundle, its `[...]` options as words, its SNI filters."""

    crt: str
    options: tuple[str, ...]
    filters: tuple[str, ...]
    line: int


def parse_crt_list(path: str, text: str) -> list[CrtListLine]:
    """The lines of a crt-list (HAProxy's syntax); CertError for a malformed one."""
    entries = []
    physical = text.split("\n")
    last = physical[-1]
    if last and last[0] not in "#\r":
        position = len(last.encode("utf-8", "surrogatepass")) + 1
        raise CertError(
            f"{path}:{len(physical)}: Missing LF on last line, file might have been "
            f"truncated at position {position}."
        )
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        options: tuple[str, ...] = ()
        crt, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise CertError(f"{path}:{number}: '[' without its closing ']'")
            options = tuple(rest[1:end].split())
            rest = rest[end + 1 :].strip()
        entries.append(CrtListLine(crt, options, tuple(rest.split()), number))
    return entries


def read_crt_list(path: str) -> list[CrtListLine]:
    data = _read(path, "crt-list")
    return parse_crt_list(path, data.decode("utf-8", errors="replace"))
