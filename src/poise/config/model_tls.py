"""The TLS part of the configuration model (config/model.py): `bind ... ssl` and `server
... ssl` options and the global `ssl-default-*` settings, as immutable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from poise.config.model_http import Sample
from poise.config.where import Where

# --- TLS (configuration.txt 5.1 and 5.2 `ssl` options, 3.1 `ssl-default-*`) -----------

TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
TLS_VERSIONS: tuple[TlsVersion, ...] = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True, slots=True)
class TlsVersions:
    """`ssl-min-ver`, `ssl-max-ver`, `no-tlsvXX` and `force-tlsvXX` as written (None: not
    set, poise's default applies: TLSv1.2 to TLSv1.3). config/haproxy_tls.py computes the
    range they leave (and the link pass refuses one with no version or a hole)."""

    min: TlsVersion | None = None
    max: TlsVersion | None = None
    disabled: frozenset[TlsVersion] = frozenset()


@dataclass(frozen=True, slots=True)
class CrtSource:
    """Where a bind's certificates come from: `crt FILE|DIR` or `crt-list FILE`."""

    kind: Literal["crt", "crt-list"]
    path: str
    base: str | None = None  # crt-base, for a crt-list's relative lines (not its own path)


@dataclass(frozen=True, slots=True)
class TlsBind:
    """`bind ... ssl crt ...`: TLS termination. None in a field means "not set on the line":
    the link pass fills it from `ssl-default-bind-*`, and what is still None is poise's
    default profile (net/tls.py). The first certificate is the default one."""

    certificates: tuple[CrtSource, ...]
    strict_sni: bool = False
    alpn: tuple[str, ...] = ()
    versions: TlsVersions = field(default_factory=TlsVersions)
    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None
    ca_file: str | None = None
    verify: Literal["none", "optional", "required"] = "none"
    tickets: bool | None = None
    prefer_client_ciphers: bool | None = None
    # `ssl-dh-param-file`: the DH parameters of DHE key exchange (a certificate file's own
    # DH PARAMETERS block comes first); None: no DHE, as HAProxy without either.
    dh_params: str | None = None


@dataclass(frozen=True, slots=True)
class TlsServer:
    """The TLS settings of a `server ... ssl` (or `check-ssl`) line, with `default-server`
    and `ssl-default-server-*` applied. `sni` is the expression of `sni`; `verifyhost` the
    name checked when no SNI is sent."""

    verify: Literal["none", "required"] = "required"
    ca_file: str | None = None
    sni: Sample | None = None
    verifyhost: str | None = None
    crt: str | None = None
    alpn: tuple[str, ...] = ()
    versions: TlsVersions = field(default_factory=TlsVersions)
    ciphers: str | None = None
    ciphersuites: str | None = None
    tickets: bool = True


@dataclass(frozen=True, slots=True)
class TlsDefaults:
    """`ssl-default-bind-*` or `ssl-default-server-*` (global)."""

    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None  # `ssl-default-bind-curves`
    versions: TlsVersions = field(default_factory=TlsVersions)
    tickets: bool | None = None
    prefer_client_ciphers: bool | None = None


@dataclass(frozen=True, slots=True)
class GlobalTls:
    """The global section's TLS keywords."""

    bind: TlsDefaults = field(default_factory=TlsDefaults)
    server: TlsDefaults = field(default_factory=TlsDefaults)
    server_verify: Literal["none", "required"] = "required"  # `ssl-server-verify`
    ca_base: str | None = None
    crt_base: str | None = None
    cache_size: int | None = None  # `tune.ssl.cachesize`: sessions kept; 0: none
    dh_param_file: str | None = None  # `ssl-dh-param-file`, after `default-path`
    dh_param_where: Where | None = None  # its line, for the errors about the file
