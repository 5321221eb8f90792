"""The ssl.SSLContext objects poise builds from the configuration, and the settings both
sides share: versions, ciphers, groups, ALPN (poise's profile where the configuration says
nothing), CA files (validated by certs/check.py first) and certificate chains. The listening
side has one context per certificate of a bind (server_side_context, picked by SNI in
tls.py, with DHE when the certificate file or `ssl-dh-param-file` gives DH parameters);
the server side one client context per server (client_side_context, used by tls_server.py).
A file that cannot be loaded is a TlsError naming it.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from poise.certs.bundle import CertError, read_bundle
from poise.certs.check import CertUse, Problem, bundle_problems, ca_problems
from poise.config import model
from poise.config.haproxy_tls import (
    DEFAULT_CIPHERS,
    DEFAULT_CIPHERSUITES,
    DEFAULT_CURVES,
    SYSTEM_CA,
    version_range,
)
from poise.net import openssl
from poise.net.listener import BindError

_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsError(BindError):
    """A certificate or CA file that cannot be loaded; raised by Runtime.bind like a
    BindError, so that `poise run` stops the same way, with the file named."""


def common_settings(
    context: ssl.SSLContext, tls: model.TlsBind | model.TlsServer, alpn: Sequence[str]
) -> None:
    """Versions, ciphers, groups and ALPN: poise's profile where the settings say nothing."""
    ciphers, ciphersuites = tls.ciphers, tls.ciphersuites
    curves = tls.curves if isinstance(tls, model.TlsBind) else None
    low, high = version_range(tls.versions)
    context.minimum_version = _VERSIONS[low]
    context.maximum_version = _VERSIONS[high]
    if low in ("TLSv1.0", "TLSv1.1"):
        ciphers = (ciphers or DEFAULT_CIPHERS) + ":@SECLEVEL=0"  # OpenSSL 3 refuses them
    context.set_ciphers(ciphers or DEFAULT_CIPHERS)
    if ciphersuites and ciphersuites != DEFAULT_CIPHERSUITES:
        openssl.set_ciphersuites(context, ciphersuites)
    openssl.set_groups(context, curves or DEFAULT_CURVES)
    if alpn:
        context.set_alpn_protocols(list(alpn))


def ca_data(path: str) -> str:
    """The PEM text of a validated CA file (or directory), for load_verify_locations."""
    certs, problems = ca_problems(path, dt.datetime.now(dt.UTC))
    raise_errors(problems)
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in certs)


def load_cas(context: ssl.SSLContext, path: str) -> None:
    if path == SYSTEM_CA:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.load_verify_locations(cadata=ca_data(path))


def raise_errors(problems: Sequence[Problem]) -> None:
    errors = [p.message for p in problems if p.severity == "error"]
    if errors:
        raise TlsError("; ".join(errors))


def load_chain(context: ssl.SSLContext, use: CertUse) -> None:
    bundle = use.bundle
    try:
        context.load_cert_chain(bundle.path, bundle.key_path)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"cannot load certificate '{bundle.path}': {exc}") from None


def server_side_context(
    tls: model.TlsBind, use: CertUse, cache_size: int | None = None
) -> ssl.SSLContext:
    """The context of one certificate of a bind, with all the bind's settings
    (`cache_size`: the global `tune.ssl.cachesize`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        common_settings(context, tls, use.alpn if use.alpn is not None else tls.alpn)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(f"bind settings refused by OpenSSL: {exc}") from None
    if tls.tickets is False:
        context.options |= ssl.OP_NO_TICKET
    if cache_size is not None:
        openssl.set_session_cache(context, cache_size)
    if tls.prefer_client_ciphers:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.verify != "none" and tls.ca_file:
        load_cas(context, tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if tls.verify == "required" else ssl.CERT_OPTIONAL
    load_chain(context, use)
    load_dh(context, use.bundle.path, tls.dh_params)
    return context


def load_dh(context: ssl.SSLContext, crt: str, global_file: str | None) -> None:
    """DHE key exchange, as HAProxy enables it: with the DH PARAMETERS block of the
    certificate file itself, else with `ssl-dh-param-file`'s; without either, none.
    Parameters OpenSSL refuses as too small leave DHE off (certs/check.py warned)."""
    try:
        own = b"-----BEGIN DH PARAMETERS-----" in Path(crt).read_bytes()
    except OSError:
        own = False
    path = crt if own else global_file
    if path is None:
        return
    try:
        context.load_dh_params(path)
    except ssl.SSLError:
        pass  # DH_KEY_TOO_SMALL: no DHE on this bind, as in HAProxy
    except OSError as exc:
        raise TlsError(f"unable to load DH parameters from file <{path}>: {exc}") from None


def client_side_context(tls: model.TlsServer) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # poise checks the name itself, to say which names
    try:
        common_settings(context, tls, tls.alpn)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(f"server TLS settings refused by OpenSSL: {exc}") from None
    if not tls.tickets:
        context.options |= ssl.OP_NO_TICKET
    if tls.verify == "required" and tls.ca_file:
        load_cas(context, tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    if tls.crt:
        try:
            bundle = read_bundle(tls.crt)
        except CertError as exc:
            raise TlsError(str(exc)) from None
        use = CertUse(bundle)
        raise_errors(bundle_problems(use, dt.datetime.now(dt.UTC), "client", ()))
        load_chain(context, use)
    return context
