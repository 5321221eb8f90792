"""The system's trust store (`@system-ca`), as OpenSSL finds it: the one part of reading
certificates that asks the ssl module (for OpenSSL's default paths), kept apart so that
bundle.py and inspect.py stay free of it (`poise doctor`'s judging imports them).
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

from cryptography import x509

from poise.certs.bundle import CertError, read_certificates


def system_ca_certificates() -> list[x509.Certificate]:
    """The system's trust store (`@system-ca`), as OpenSSL finds it; empty if unreadable."""
    with warnings.catch_warnings():
        # Old roots with non-conforming serial numbers would warn on every read.
        warnings.simplefilter("ignore")
        return _system_ca_certificates()


def _system_ca_certificates() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    found: list[x509.Certificate] = []
    for path in (paths.cafile, paths.openssl_cafile):
        if path and Path(path).is_file():
            try:
                found = read_certificates(path)
            except CertError:
                continue
            if found:
                return found
    directory = paths.capath or paths.openssl_capath
    if directory and Path(directory).is_dir():
        for entry in sorted(Path(directory).glob("*.pem")):
            try:
                found.extend(read_certificates(str(entry)))
            except CertError:
                continue
    return found
