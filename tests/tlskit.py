"""Certificates for tests, made by poise's own CA (poise.certs.ca), written as the bundles
`poise cert issue` writes; and TLS contexts for the tests' clients and servers.

    pki = Pki(tmp_path)                       # a CA in tmp_path/ca (ca.pem, ca.key)
    path = pki.issue("lb.pem", dns=["a.test"])  # certificate + key in one file
    ctx = pki.client()                        # a client that trusts the CA
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from poise.certs import ca

NOW = dt.datetime.now(dt.UTC)


class Pki:
    """A CA in `root/NAME` and the certificates it issued, as files."""

    def __init__(self, root: Path, name: str = "ca", title: str = "Poise Test CA") -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = ca.create_ca(title, NOW)
        self.ca_pem = self.dir / "ca.pem"
        self.ca_pem.write_bytes(ca.cert_pem(self.cert))
        (self.dir / "ca.key").write_bytes(ca.key_pem(self.key))

    def issue(
        self,
        filename: str,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        *,
        days: int = 90,
        client: bool = False,
        now: dt.datetime = NOW,
        key_beside: bool = False,
    ) -> Path:
        """A bundle (certificate then key; or the key in FILE.key with `key_beside`)."""
        cert, key = ca.issue(self.cert, self.key, now, dns=dns, ips=ips, days=days, client=client)
        path = self.dir / filename
        if key_beside:
            path.write_bytes(ca.cert_pem(cert))
            Path(f"{path}.key").write_bytes(ca.key_pem(key))
        else:
            path.write_bytes(ca.cert_pem(cert) + ca.key_pem(key))
        return path

    def client(self, cert: Path | None = None) -> ssl.SSLContext:
        """A verifying client that trusts this CA (with a client certificate, `cert`)."""
        context = ssl.create_default_context(cafile=str(self.ca_pem))
        if cert is not None:
            context.load_cert_chain(str(cert))
        return context

    def server(self, cert: Path, seen: list[str | None] | None = None) -> ssl.SSLContext:
        """A TLS server context for a test backend; `seen` collects each SNI received."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert))
        if seen is not None:

            def record(sslobj: object, name: str | None, ctx: ssl.SSLContext) -> None:
                seen.append(name)

            context.sni_callback = record
        return context


def peer_names(writer: asyncio.StreamWriter) -> list[str]:
    """The DNS names of the certificate the server presented."""
    der = writer.get_extra_info("ssl_object").getpeercert(True)
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(x509.DNSName))


def unverified() -> ssl.SSLContext:
    """A client that accepts any certificate (to see which one is presented)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def tls_open(
    port: int, context: ssl.SSLContext, sni: str | None, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to poise, sending `sni` (None: no SNI)."""
    return await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=sni or ""), 5
    )
