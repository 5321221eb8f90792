"""Every certificate a configuration names, read and judged: what `poise check` reports
(and `poise run` refuses to start on), and what net/tls.py loads.

A bind's certificates come from its `crt` files and directories and its `crt-list` files,
in order (the first is the default one). Each problem is a Diagnostic at the line that
names the file, with the file's name in the message: a missing or unreadable file, a file
with no certificate or no key, an encrypted key, a key of the wrong type or that does not
match, an expired certificate, a `ca-file` that is not a CA (errors); a certificate that
expires within 30 days, an incomplete chain, a self-signed server certificate (warnings).
The `ssl-dh-param-file` is read here too: not DH parameters is an error at its line, as
HAProxy says it; parameters under 2048 bits (which OpenSSL's security level refuses) a
warning at each TLS bind, whose DHE ciphers are then unavailable, as in HAProxy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh

from poise.certs import inspect
from poise.certs.bundle import (
    Bundle,
    CertError,
    CrtListLine,
    ca_paths,
    crt_directory,
    read_bundle,
    read_certificates,
    read_crt_list,
)
from poise.certs.system import system_ca_certificates
from poise.config import keywords
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_tls import SYSTEM_CA, with_base
from poise.config.model import Config, CrtSource, TlsBind, Where

# What a crt-list line may set for its certificate: only what follows the certificate
# when poise switches to it by SNI (the ALPN answer); the rest stays the bind's.
CRT_LIST_OPTIONS = frozenset({"alpn"})


@dataclass(frozen=True, slots=True)
class Problem:
    severity: inspect.Severity
    message: str


@dataclass(frozen=True, slots=True)
class CertUse:
    """One certificate a bind serves: the bundle, the SNI filters of its crt-list line
    (() = the certificate's own names), the line's options, and where it was named."""

    bundle: Bundle
    filters: tuple[str, ...] = ()
    alpn: tuple[str, ...] | None = None
    origin: str = ""


def _crt_list_options(line: CrtListLine, path: str) -> tuple[tuple[str, ...] | None, list[str]]:
    """The ALPN of a crt-list line's `[...]`, and what poise cannot honour there."""
    alpn: tuple[str, ...] | None = None
    refused: list[str] = []
    words = list(line.options)
    index = 0
    while index < len(words):
        option = words[index]
        arity = keywords.BIND_OPTIONS.get(option, 0)
        value = words[index + 1] if arity == 1 and index + 1 < len(words) else ""
        if option == "alpn" and value:
            alpn = tuple(value.split(","))
        elif option not in CRT_LIST_OPTIONS:
            refused.append(
                f"'{path}' line {line.line}: option '{option}' is not implemented yet in "
                "poise in a crt-list (set it on the bind line)"
            )
        index += 1 + max(arity, 0)
    return alpn, refused


def _bundles_of(source: CrtSource) -> tuple[list[CertUse], list[Problem]]:
    uses: list[CertUse] = []
    problems: list[Problem] = []
    if source.kind == "crt":
        path = Path(source.path)
        files = crt_directory(source.path) if path.is_dir() else [source.path]
        if path.is_dir() and not files:
            problems.append(Problem("error", f"directory '{source.path}' holds no certificate"))
        for file in files:
            try:
                uses.append(CertUse(read_bundle(file), origin=f"crt {file}"))
            except CertError as exc:
                problems.append(Problem("error", str(exc)))
        return uses, problems
    try:
        lines = read_crt_list(source.path)
    except CertError as exc:
        return [], [Problem("error", str(exc))]
    if not lines:
        problems.append(Problem("error", f"crt-list '{source.path}' names no certificate"))
    for line in lines:
        alpn, refused = _crt_list_options(line, source.path)
        problems += [Problem("error", text) for text in refused]
        try:
            bundle = read_bundle(with_base(source.base, line.crt))
        except CertError as exc:
            problems.append(Problem("error", f"{exc} (crt-list '{source.path}' line {line.line})"))
            continue
        origin = f"crt-list {source.path}:{line.line}"
        uses.append(CertUse(bundle, line.filters, alpn, origin))
    return uses, problems


def bind_certificates(tls: TlsBind) -> tuple[list[CertUse], list[Problem]]:
    """The certificates of a TLS bind, in order, and what is wrong reading them."""
    uses: list[CertUse] = []
    problems: list[Problem] = []
    for source in tls.certificates:
        more, found = _bundles_of(source)
        uses += more
        problems += found
    return uses, problems


def ca_certificates(path: str) -> tuple[list[x509.Certificate], list[Problem]]:
    """The certificates of a `ca-file` (a file or a directory; `@system-ca`)."""
    if path == SYSTEM_CA:
        return system_ca_certificates(), []
    certs: list[x509.Certificate] = []
    problems: list[Problem] = []
    files = ca_paths(path)
    if not files:
        return [], [Problem("error", f"ca-file directory '{path}' holds no CA file")]
    for file in files:
        try:
            certs += read_certificates(file, "ca-file")
        except CertError as exc:
            problems.append(Problem("error", str(exc)))
    return certs, problems


def bundle_problems(
    use: CertUse, now: dt.datetime, role: inspect.Role, trusted: Sequence[x509.Certificate]
) -> list[Problem]:
    bundle = use.bundle
    return [
        Problem(f.severity, f"certificate '{bundle.path}': {f.message}")
        for f in inspect.bundle_findings(bundle, now, role, trusted)
    ]


def ca_problems(path: str, now: dt.datetime) -> tuple[list[x509.Certificate], list[Problem]]:
    certs, problems = ca_certificates(path)
    if path != SYSTEM_CA:
        problems += [Problem(f.severity, f.message) for f in inspect.ca_findings(path, certs, now)]
    return certs, problems


def _diagnostic(problem: Problem, where: Where, keyword: str) -> Diagnostic:
    make = error if problem.severity == "error" else warning
    return make(where, problem.message, keyword)


def config_diagnostics(config: Config, now: dt.datetime) -> list[Diagnostic]:
    """Every certificate and CA file of the configuration, read and judged."""
    diagnostics: list[Diagnostic] = []
    ca_files: dict[str, tuple[list[x509.Certificate], list[Problem]]] = {}
    # CA files first: a bundle's chain is complete when its issuer is a root found there.
    for proxy in config.proxies:
        for bind in proxy.binds:
            if bind.tls is not None and bind.tls.ca_file and bind.tls.ca_file not in ca_files:
                ca_files[bind.tls.ca_file] = ca_problems(bind.tls.ca_file, now)
        for server in proxy.servers:
            server_tls = server.tls
            if server_tls is not None and server_tls.ca_file and server_tls.ca_file not in ca_files:
                ca_files[server_tls.ca_file] = ca_problems(server_tls.ca_file, now)
    diagnostics += dh_diagnostics(config)
    trusted = [cert for certs, _ in ca_files.values() for cert in certs]
    trusted += system_ca_certificates()
    reported: set[Where] = set()
    for proxy in config.proxies:
        if proxy.disabled:
            continue
        for bind in proxy.binds:
            tls = bind.tls
            if tls is None or bind.where in reported:
                continue  # not TLS, or a line with several addresses seen already
            reported.add(bind.where)
            uses, problems = bind_certificates(tls)
            for use in uses:
                problems += bundle_problems(use, now, "server", trusted)
            if tls.ca_file:
                problems += ca_files[tls.ca_file][1]
            diagnostics += [_diagnostic(p, bind.where, "bind") for p in problems]
        for server in proxy.servers:
            stls = server.tls
            if stls is None:
                continue
            problems = []
            if stls.crt:
                try:
                    bundle = read_bundle(stls.crt)
                except CertError as exc:
                    problems.append(Problem("error", str(exc)))
                else:
                    problems += bundle_problems(CertUse(bundle), now, "client", trusted)
            if stls.ca_file:
                problems += ca_files[stls.ca_file][1]
            diagnostics += [_diagnostic(p, server.where, "server") for p in problems]
    return _unique(diagnostics)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """The same CA file named on many lines is reported at each line, once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for diagnostic in diagnostics:
        key = (str(diagnostic.where), diagnostic.message)
        if key not in seen:
            seen.add(key)
            out.append(diagnostic)
    return out


# OpenSSL's default security level (2) refuses smaller DH groups (DH_KEY_TOO_SMALL).
MIN_DH_BITS = 2048


def dh_bits(path: str) -> int | None:
    """The size of the DH parameters in `path` (the first DH PARAMETERS block), or None
    when it has none that can be read."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    start = data.find(b"-----BEGIN DH PARAMETERS-----")
    if start < 0:
        return None
    try:
        params = serialization.load_pem_parameters(data[start:])
    except ValueError:
        return None
    if not isinstance(params, dh.DHParameters):
        return None
    return params.parameter_numbers().p.bit_length()


def dh_diagnostics(config: Config) -> list[Diagnostic]:
    """`ssl-dh-param-file`: unreadable (an error, HAProxy's words) or too small for
    OpenSSL (a warning at each TLS bind that would have used it)."""
    tls = config.global_.tls
    if tls.dh_param_file is None or tls.dh_param_where is None:
        return []
    bits = dh_bits(tls.dh_param_file)
    if bits is None:
        message = f"unable to load DH parameters from file <{tls.dh_param_file}>."
        return [error(tls.dh_param_where, message, "ssl-dh-param-file")]
    if bits >= MIN_DH_BITS:
        return []
    return [
        warning(
            bind.where,
            f"unable to use the global DH parameter ({bits} bits) for the certificates of "
            "this bind, DH ciphers won't be available.",
            "bind",
        )
        for proxy in config.proxies
        for bind in proxy.binds
        if bind.tls is not None
    ]
