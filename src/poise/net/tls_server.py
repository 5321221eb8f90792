"""The server side of TLS (`server ... ssl`): how poise speaks TLS to one server (ServerTls:
its context, the name it sends and the name the certificate must carry), the reason a
connection failed in words, logged once per episode, and a health check's handshake.

Certificates are verified by OpenSSL against `ca-file` (`verify required`, the default).
The name (`sni`, else `verifyhost`) is checked by poise on the verified certificate right
after the handshake, before a byte is sent, so that a mismatch can be logged with the names
involved. A failure is a connection failure (retries, redispatch, checks) and is logged
with its reason once per episode.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from poise.certs import names
from poise.config import model
from poise.core import health
from poise.core.fetch import sample_value
from poise.core.http.message import Request
from poise.net.logsink import console
from poise.net.tls_context import client_side_context

if TYPE_CHECKING:
    from poise.core.backend import Backend

# OpenSSL's X509_V_ERR_* codes, in the words of the reason poise logs.
_UNKNOWN_CA = {2, 18, 19, 20, 21, 24}
_EXPIRED = 10
_NOT_YET_VALID = 9
_PURPOSE = 26


class ServerTls:
    """How poise speaks TLS to one server: the context, the SNI (a constant, or an
    expression evaluated per connection), and the name the certificate must carry."""

    __slots__ = ("ca_file", "context", "dynamic", "failing", "name", "verify", "verifyhost")

    def __init__(self, tls: model.TlsServer, sni: str | None = None) -> None:
        self.context = client_side_context(tls)
        self.verify = tls.verify == "required"
        self.ca_file = tls.ca_file
        self.verifyhost = tls.verifyhost
        self.dynamic: Callable[[Request, Any], str] | None = None
        self.name = sni
        sample = tls.sni
        if sni is None and sample is not None:
            if sample.fetch == "str" and not sample.converters:
                self.name = sample.args[0]
            else:
                self.dynamic = sample_value(sample, "req")
        self.failing: str | None = None  # the reason last logged, until a success

    def server_name(self, request: Request | None) -> str | None:
        """The SNI to send on a new connection (None: none)."""
        if self.dynamic is None:
            return self.name
        value = self.dynamic(request, None) if request is not None else ""
        return value or None

    def name_problem(self, transport: asyncio.BaseTransport, sni: str | None) -> str | None:
        """After the handshake: is the certificate for the name poise wanted?"""
        wanted = sni or self.verifyhost
        if not self.verify or not wanted:
            return None
        peer = transport.get_extra_info("peercert")
        if not peer:
            return "the server sent no certificate"
        dns: list[str] = []
        ips: list[str] = []
        for kind, value in peer.get("subjectAltName", ()):
            if kind == "DNS":
                dns.append(value)
            elif kind == "IP Address":
                ips.append(value.rstrip("\n"))
        common = None
        for rdn in peer.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    common = value
        if names.host_matches(dns, ips, common, wanted):
            return None
        shown = [*dns, *ips] or ([common] if common else [])
        listed = ", ".join(f"'{n}'" for n in shown) or "no name"
        return f"name mismatch: the certificate is for {listed}, not '{wanted}'"

    def failure(self, exc: BaseException) -> str:
        """The reason a TLS connection failed, in words."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            code = exc.verify_code
            detail = exc.verify_message
            where = f"ca-file '{self.ca_file}'"
            if code in _UNKNOWN_CA:
                return f"unknown CA: the certificate is not issued by a CA of {where} ({detail})"
            if code == _EXPIRED:
                return f"expired: the server's certificate has expired ({detail})"
            if code == _NOT_YET_VALID:
                return f"not yet valid: the server's certificate is not valid yet ({detail})"
            if code == _PURPOSE:
                return f"the server's certificate is not for a TLS server ({detail})"
            return f"certificate verify failed: {detail}"
        if isinstance(exc, ssl.SSLError):
            return f"SSL handshake failure: {exc.reason or exc}"
        if isinstance(exc, TimeoutError):
            return "SSL handshake timeout"
        return f"SSL handshake failure: {exc}"


def report(backend: Backend, server_label: str, tls: ServerTls, reason: str) -> None:
    """Log a server's TLS failure once per episode (until a connection succeeds)."""
    if tls.failing == reason:
        return
    tls.failing = reason
    message = f"Server {server_label}: SSL handshake failure: {reason}"
    if reason.startswith("SSL handshake"):
        message = f"Server {server_label}: {reason}"
    console("WARNING", message)
    if backend.log is not None:
        backend.log.send("warning", message)


async def check_handshake(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    tls: ServerTls,
    name: str | None,
    timeout: float,
) -> tuple[asyncio.Transport | None, health.CheckResult | None, int]:
    """Turn a check's connection into TLS: (the TLS transport, None) or (None, the check's
    failure: Layer6 timeout or invalid response, with the reason)."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> int:
        return int((loop.time() - started) * 1000)

    try:
        secure = await asyncio.wait_for(
            loop.start_tls(transport, protocol, tls.context, server_hostname=name or ""),
            max(timeout, 0.001),
        )
    except TimeoutError:
        transport.abort()
        return None, health.CheckResult(False, "Layer6 timeout", None, elapsed()), elapsed()
    except (ssl.SSLError, OSError) as exc:
        transport.abort()
        return None, l6_failed(tls.failure(exc), elapsed()), elapsed()
    assert secure is not None
    problem = tls.name_problem(secure, name)
    if problem is not None:
        secure.abort()
        return None, l6_failed(problem, elapsed()), elapsed()
    return secure, None, elapsed()


def l6_failed(info: str, duration_ms: int) -> health.CheckResult:
    return health.CheckResult(False, "Layer6 invalid response", info, duration_ms)


def l6_passed(duration_ms: int) -> health.CheckResult:
    return health.CheckResult(True, "Layer6 check passed", None, duration_ms)
