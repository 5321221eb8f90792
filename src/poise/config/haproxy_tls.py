"""The TLS keywords of haproxy.cfg: `bind` options (configuration.txt 5.1: `ssl`, `crt`,
`crt-list`, `strict-sni`, `alpn`, `ssl-min-ver`, `ssl-max-ver`, `ciphers`, `ciphersuites`,
`ca-file`, `verify`, ...), `server` options (5.2: `ssl`, `verify`, `ca-file`, `sni`,
`verifyhost`, `crt`, `check-ssl`, `check-sni`, ...) and the global `ssl-default-bind-*`,
`ssl-default-server-*`, `ssl-server-verify`, `ca-base`, `crt-base` and `ssl-dh-param-file`
(3.1). Pure.

HAProxy's rules kept here:
- a bind with `ssl` needs a certificate ("no SSL certificate specified"); `verify optional`
  or `required` needs a `ca-file`; a bind's unset settings come from `ssl-default-bind-*`;
- a server's `verify` defaults to `ssl-server-verify` (itself `required`), so `ssl` without
  `ca-file` and without `verify none` is refused, with HAProxy's explanation;
- `ssl` on a server sends the checks over TLS too, unless `port` or `addr` sends them
  elsewhere; `check-ssl` forces them;
- relative `ca-file` paths start from `ca-base`, relative `crt` paths from `crt-base`.
poise adds one rule: it speaks HTTP/1.1 only, so `h2` is dropped from an `alpn` list of an
HTTP proxy (with a warning) rather than negotiated and then not understood.

The server options are kept as (option, value) words on the draft (ServerSettings.tls) and
read in order here when the link pass builds each server: `default-server` words first,
then the server's own, as HAProxy applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, cast

from poise.config import default_path
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem
from poise.config.model import (
    TLS_VERSIONS,
    CrtSource,
    GlobalTls,
    Mode,
    TlsBind,
    TlsDefaults,
    TlsServer,
    TlsVersion,
    TlsVersions,
    Where,
)
from poise.config.samples import check_scope, parse_sample
from poise.config.units import parse_int

# poise's default profile: TLS 1.2 and 1.3 only; for TLS 1.2, ECDHE key exchange with AEAD
# ciphers only (no CBC, no RSA key exchange, no DHE: Mozilla's "intermediate" list without
# its DHE suites); TLS 1.3's suites are OpenSSL's default three, all AEAD, left as they
# are unless `ciphersuites` says otherwise.
DEFAULT_MIN_VERSION: TlsVersion = "TLSv1.2"
DEFAULT_MAX_VERSION: TlsVersion = "TLSv1.3"
DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
DEFAULT_CIPHERSUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
# Key exchange: Mozilla's "intermediate" groups (OpenSSL would also offer X448 and P-521).
DEFAULT_CURVES = "X25519:P-256:P-384"
SYSTEM_CA = "@system-ca"

_VERSION_WORDS = {
    "no-tlsv10": "TLSv1.0",
    "no-tlsv11": "TLSv1.1",
    "no-tlsv12": "TLSv1.2",
    "no-tlsv13": "TLSv1.3",
    "force-tlsv10": "TLSv1.0",
    "force-tlsv11": "TLSv1.1",
    "force-tlsv12": "TLSv1.2",
    "force-tlsv13": "TLSv1.3",
}
_SHARED = frozenset(
    {"ciphers", "ciphersuites", "ssl-min-ver", "ssl-max-ver", "alpn", "no-sslv3", "force-sslv3"}
    | set(_VERSION_WORDS)
)
BIND_OPTIONS = _SHARED | {
    "ssl",
    "curves",
    "crt",
    "crt-list",
    "strict-sni",
    "ca-file",
    "verify",
    "no-tls-tickets",
    "prefer-client-ciphers",
}
SERVER_OPTIONS = _SHARED | {
    "ssl",
    "no-ssl",
    "check-ssl",
    "no-check-ssl",
    "check-sni",
    "verify",
    "ca-file",
    "sni",
    "verifyhost",
    "no-verifyhost",
    "crt",
    "no-tls-tickets",
    "tls-tickets",
    "no-ssl-reuse",
}
DEFAULT_OPTIONS = frozenset(  # what `ssl-default-bind-options` / `-server-options` accept
    {"ssl-min-ver", "ssl-max-ver", "no-sslv3", "force-sslv3", "no-tls-tickets"}
    | set(_VERSION_WORDS)
    | {"prefer-client-ciphers"}
)
_TAKES_VALUE = frozenset(
    {"crt", "crt-list", "alpn", "ssl-min-ver", "ssl-max-ver", "ciphers", "ciphersuites", "curves"}
    | {"ca-file", "verify", "check-sni", "sni", "verifyhost"}
)


# --- versions ------------------------------------------------------------------------------


def tls_version(value: str) -> TlsVersion:
    if value == "SSLv3":
        raise Problem("SSLv3 is not supported by poise (TLSv1.2 and TLSv1.3 by default)")
    for version in TLS_VERSIONS:
        if value == version:
            return version
    raise Problem(f"expects one of {', '.join(TLS_VERSIONS)}, not '{value}'")


def version_word(versions: TlsVersions, option: str, value: str) -> TlsVersions:
    """Apply one version option to what is set so far."""
    if option == "ssl-min-ver":
        return replace(versions, min=tls_version(value))
    if option == "ssl-max-ver":
        return replace(versions, max=tls_version(value))
    if option == "no-sslv3":
        return versions  # SSLv3 is never spoken
    if option == "force-sslv3":
        raise Problem("SSLv3 is not supported by poise")
    version = cast(TlsVersion, _VERSION_WORDS[option])
    if option.startswith("force-"):
        return TlsVersions(version, version, frozenset())
    return replace(versions, disabled=versions.disabled | {version})


def version_range(versions: TlsVersions) -> tuple[TlsVersion, TlsVersion]:
    """The lowest and highest version the settings leave; Problem if none or a hole."""
    low = TLS_VERSIONS.index(versions.min or DEFAULT_MIN_VERSION)
    high = TLS_VERSIONS.index(versions.max or DEFAULT_MAX_VERSION)
    allowed = [i for i in range(low, high + 1) if TLS_VERSIONS[i] not in versions.disabled]
    if not allowed:
        raise Problem(f"no TLS version left between {TLS_VERSIONS[low]} and {TLS_VERSIONS[high]}")
    if allowed[-1] - allowed[0] + 1 != len(allowed):
        raise Problem(
            "the disabled versions leave a hole between "
            f"{TLS_VERSIONS[allowed[0]]} and {TLS_VERSIONS[allowed[-1]]}"
        )
    return TLS_VERSIONS[allowed[0]], TLS_VERSIONS[allowed[-1]]


def merge_versions(own: TlsVersions, defaults: TlsVersions) -> TlsVersions:
    return TlsVersions(
        own.min or defaults.min, own.max or defaults.max, own.disabled | defaults.disabled
    )


def parse_alpn(value: str) -> tuple[str, ...]:
    protocols = tuple(value.split(","))
    for protocol in protocols:
        if not protocol or len(protocol.encode("utf-8", "surrogatepass")) > 255:
            raise Problem(f"invalid ALPN protocol list '{value}'")
    return protocols


def http_alpn(
    protocols: tuple[str, ...],
    mode: Mode,
    where: Where,
    keyword: str,
    diagnostics: list[Diagnostic],
) -> tuple[str, ...]:
    """An HTTP proxy must not agree to HTTP/2: poise would not understand it."""
    if mode is not Mode.HTTP or "h2" not in protocols:
        return protocols
    kept = tuple(p for p in protocols if p != "h2")
    diagnostics.append(
        warning(
            where,
            "'h2' left out of the ALPN list: poise speaks HTTP/1.1 (HTTP/2 is not "
            "implemented yet), so clients fall back to http/1.1",
            keyword,
        )
    )
    return kept


def with_base(base: str | None, path: str, where: Where | None = None) -> str:
    """A file name after `crt-base` or `ca-base`, from where `default-path` says at the
    line that names it (`where`)."""
    if path == SYSTEM_CA:
        return path
    if base is not None and not path.startswith("/"):
        path = f"{base.rstrip('/')}/{path}"
    return default_path.resolve(path, where) if where is not None else path


def _list_base(crt_base: str | None, where: Where) -> str | None:
    """Where the relative names inside a crt-list start: `crt-base`, from where
    `default-path` says."""
    if crt_base is None:
        return default_path.directory(where)
    return default_path.resolve(crt_base, where)


def _value(option: str, value: str | None) -> str:
    if option in _TAKES_VALUE and not value:
        raise Problem("expects a value")
    return value or ""


# --- bind ----------------------------------------------------------------------------------


@dataclass(slots=True)
class BindTlsDraft:
    """The TLS options of one bind line, as they are read."""

    ssl: bool = False
    certificates: list[CrtSource] = field(default_factory=list)
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
    seen: list[str] = field(default_factory=list)


def bind_option(draft: BindTlsDraft, option: str, value: str | None) -> None:
    """One TLS option of a bind line (raises Problem for a bad value)."""
    text = _value(option, value)
    draft.seen.append(option)
    if option == "ssl":
        draft.ssl = True
    elif option in ("crt", "crt-list"):
        draft.certificates.append(CrtSource("crt" if option == "crt" else "crt-list", text))
    elif option == "strict-sni":
        draft.strict_sni = True
    elif option == "alpn":
        draft.alpn = parse_alpn(text)
    elif option == "ciphers":
        draft.ciphers = text
    elif option == "ciphersuites":
        draft.ciphersuites = text
    elif option == "curves":
        draft.curves = text
    elif option == "ca-file":
        draft.ca_file = text
    elif option == "verify":
        if text not in ("none", "optional", "required"):
            raise Problem(f"expects none, optional or required, not '{text}'")
        draft.verify = cast(Literal["none", "optional", "required"], text)
    elif option == "no-tls-tickets":
        draft.tickets = False
    elif option == "prefer-client-ciphers":
        draft.prefer_client_ciphers = True
    else:
        draft.versions = version_word(draft.versions, option, text)


def finish_bind(
    draft: BindTlsDraft, address: str, where: Where, diagnostics: list[Diagnostic]
) -> TlsBind | None:
    """The bind's TLS settings, or None when it is not a TLS bind."""
    if not draft.ssl:
        if draft.seen:
            diagnostics.append(
                warning(
                    where,
                    f"'{draft.seen[0]}' has no effect without 'ssl': "
                    f"'{address}' accepts clear connections",
                    "bind",
                )
            )
        return None
    if not draft.certificates:
        diagnostics.append(
            error(where, f"no SSL certificate specified for bind '{address}' (use 'crt')", "bind")
        )
        return None
    if draft.verify != "none" and draft.ca_file is None:
        diagnostics.append(
            error(
                where,
                f"verify is enabled but no CA file specified for bind '{address}' (use 'ca-file')",
                "bind",
            )
        )
        return None
    return TlsBind(
        certificates=tuple(draft.certificates),
        strict_sni=draft.strict_sni,
        alpn=draft.alpn,
        versions=draft.versions,
        ciphers=draft.ciphers,
        ciphersuites=draft.ciphersuites,
        curves=draft.curves,
        ca_file=draft.ca_file,
        verify=draft.verify,
        tickets=draft.tickets,
        prefer_client_ciphers=draft.prefer_client_ciphers,
    )


def link_bind(
    tls: TlsBind, global_tls: GlobalTls, mode: Mode, where: Where, diagnostics: list[Diagnostic]
) -> TlsBind:
    """The global defaults and bases laid under a bind's own settings."""
    defaults = global_tls.bind
    linked = replace(
        tls,
        # HAProxy 2.6 puts `crt-base` before a relative `crt` and before the relative
        # certificate paths inside a crt-list, not before the crt-list's own path.
        certificates=tuple(
            replace(source, path=with_base(global_tls.crt_base, source.path, where))
            if source.kind == "crt"
            else replace(
                source,
                path=with_base(None, source.path, where),
                base=_list_base(global_tls.crt_base, where),
            )
            for source in tls.certificates
        ),
        ca_file=with_base(global_tls.ca_base, tls.ca_file, where) if tls.ca_file else None,
        versions=merge_versions(tls.versions, defaults.versions),
        ciphers=tls.ciphers if tls.ciphers is not None else defaults.ciphers,
        ciphersuites=tls.ciphersuites if tls.ciphersuites is not None else defaults.ciphersuites,
        curves=tls.curves if tls.curves is not None else defaults.curves,
        tickets=tls.tickets if tls.tickets is not None else defaults.tickets,
        dh_params=global_tls.dh_param_file,
        prefer_client_ciphers=(
            tls.prefer_client_ciphers
            if tls.prefer_client_ciphers is not None
            else defaults.prefer_client_ciphers
        ),
        alpn=http_alpn(tls.alpn, mode, where, "bind", diagnostics),
    )
    try:
        version_range(linked.versions)
    except Problem as exc:
        diagnostics.append(error(where, str(exc), "bind"))
    return linked


# What a TCP session can give a server's `sni` expression (net/tcp.py's sni_request).
_TCP_SNI_FETCHES = frozenset({"str", "ssl_fc_sni", "ssl_fc", "src", "dst", "src_port", "dst_port"})

# --- server --------------------------------------------------------------------------------

Words = tuple[tuple[str, str], ...]


def server_option(option: str, value: str | None) -> tuple[str, str]:
    """Check one TLS option of a server line; the (option, value) word kept for linking."""
    text = _value(option, value)
    if option == "verify" and text not in ("none", "required"):
        raise Problem(f"expects none or required, not '{text}'")
    if option == "sni":
        parse_sample(text, "req")
    elif option == "alpn":
        parse_alpn(text)
    elif option in ("ssl-min-ver", "ssl-max-ver", "force-sslv3") or option in _VERSION_WORDS:
        version_word(TlsVersions(), option, text)
    return option, text


@dataclass(frozen=True, slots=True)
class ServerTlsFields:
    """What the link pass puts on a model.Server."""

    ssl: bool = False
    check_ssl: bool = False
    check_sni: str | None = None
    tls: TlsServer | None = None
    use_ssl: int = 0  # HAProxy's srv->use_ssl: 1 `ssl`, -1 `no-ssl` (the last one wins)


def link_server(
    words: Words,
    *,
    global_tls: GlobalTls,
    checks_elsewhere: bool,
    mode: Mode,
    label: str,
    where: Where,
    diagnostics: list[Diagnostic],
) -> ServerTlsFields:
    """A server's TLS settings from its words (`default-server`'s then its own) over the
    global `ssl-default-server-*`. `checks_elsewhere`: `port` or `addr` is set."""
    defaults = global_tls.server
    ssl = False
    use_ssl = 0
    check_ssl: bool | None = None
    check_sni: str | None = None
    verify: str | None = None
    explicit_verify = False
    settings = TlsServer(
        verify=global_tls.server_verify,
        ciphers=defaults.ciphers,
        ciphersuites=defaults.ciphersuites,
        tickets=defaults.tickets if defaults.tickets is not None else True,
    )
    versions = TlsVersions()
    sni_text: str | None = None
    for option, value in words:
        if option in ("ssl", "no-ssl"):
            ssl = option == "ssl"
            use_ssl = 1 if ssl else -1
        elif option in ("check-ssl", "no-check-ssl"):
            check_ssl = option == "check-ssl"
        elif option == "check-sni":
            check_sni = value
        elif option == "verify":
            verify, explicit_verify = value, True
        elif option == "ca-file":
            settings = replace(settings, ca_file=with_base(global_tls.ca_base, value, where))
        elif option == "sni":
            sni_text = value
        elif option == "verifyhost":
            settings = replace(settings, verifyhost=value)
        elif option == "no-verifyhost":
            settings = replace(settings, verifyhost=None)
        elif option == "crt":
            settings = replace(settings, crt=with_base(global_tls.crt_base, value, where))
        elif option == "alpn":
            settings = replace(settings, alpn=parse_alpn(value))
        elif option == "ciphers":
            settings = replace(settings, ciphers=value)
        elif option == "ciphersuites":
            settings = replace(settings, ciphersuites=value)
        elif option in ("no-tls-tickets", "tls-tickets"):
            settings = replace(settings, tickets=option == "tls-tickets")
        elif option == "no-ssl-reuse":
            pass  # poise does not resume server sessions: every connection is a full one
        else:
            versions = version_word(versions, option, value)
    if check_ssl is None:
        check_ssl = ssl and not checks_elsewhere
    if not ssl and not check_ssl:
        return ServerTlsFields(use_ssl=use_ssl)
    if verify is not None:
        settings = replace(settings, verify="none" if verify == "none" else "required")
    settings = replace(
        settings,
        versions=merge_versions(versions, defaults.versions),
        alpn=http_alpn(settings.alpn, mode, where, "server", diagnostics),
    )
    if sni_text is not None:
        sample = parse_sample(sni_text, "req")
        needs = None
        if mode is Mode.TCP and sample.fetch not in _TCP_SNI_FETCHES:
            needs = check_scope(sample, "res") or "an HTTP request"
        if needs:
            diagnostics.append(
                error(
                    where,
                    f"{label}: 'sni {sni_text}' needs {needs}, which a 'mode tcp' "
                    "backend does not have",
                    "server",
                )
            )
        settings = replace(settings, sni=sample)
    try:
        version_range(settings.versions)
    except Problem as exc:
        diagnostics.append(error(where, f"{label}: {exc}", "server"))
    if settings.verify == "required" and settings.ca_file is None:
        if explicit_verify:
            message = f"{label}: verify is enabled but no CA file specified (use 'ca-file')"
        else:
            message = (
                f"{label}: verify is enabled by default but no CA file specified. If you're "
                "running on a LAN where you're certain to trust the server's certificate, "
                "please set an explicit 'verify none' statement on the 'server' line, or use "
                "'ssl-server-verify none' in the global section to disable server-side "
                "verifications by default."
            )
        diagnostics.append(error(where, message, "server"))
    return ServerTlsFields(ssl, check_ssl, check_sni, settings, use_ssl)


# --- global --------------------------------------------------------------------------------

GLOBAL_KEYWORDS = frozenset(
    {
        "ssl-default-bind-ciphers",
        "ssl-default-bind-ciphersuites",
        "ssl-default-bind-curves",
        "ssl-default-bind-options",
        "ssl-default-server-ciphers",
        "ssl-default-server-ciphersuites",
        "ssl-default-server-options",
        "ssl-server-verify",
        "ca-base",
        "crt-base",
        "tune.ssl.cachesize",
        "ssl-dh-param-file",
    }
)


def _one(args: Sequence[str], what: str) -> str:
    if len(args) != 1 or not args[0]:
        raise Problem(f"expects {what}")
    return args[0]


def default_options(defaults: TlsDefaults, args: Sequence[str]) -> TlsDefaults:
    """`ssl-default-bind-options` / `ssl-default-server-options` words."""
    index = 0
    while index < len(args):
        option = args[index]
        if option not in DEFAULT_OPTIONS:
            raise Problem(f"option '{option}' is not implemented yet in poise")
        if option in ("ssl-min-ver", "ssl-max-ver"):
            if index + 1 >= len(args):
                raise Problem(f"'{option}' expects a version")
            value = args[index + 1]
            index += 1
        else:
            value = ""
        if option == "no-tls-tickets":
            defaults = replace(defaults, tickets=False)
        elif option == "prefer-client-ciphers":
            defaults = replace(defaults, prefer_client_ciphers=True)
        else:
            defaults = replace(defaults, versions=version_word(defaults.versions, option, value))
        index += 1
    return defaults


def global_keyword(tls: GlobalTls, keyword: str, args: Sequence[str]) -> GlobalTls:
    """One global TLS keyword applied (raises Problem)."""
    side, _, setting = keyword.removeprefix("ssl-default-").partition("-")
    if keyword.startswith("ssl-default-"):
        defaults = tls.bind if side == "bind" else tls.server
        if setting == "ciphers":
            defaults = replace(defaults, ciphers=_one(args, "a cipher list"))
        elif setting == "ciphersuites":
            defaults = replace(defaults, ciphersuites=_one(args, "a ciphersuite list"))
        elif setting == "curves":
            defaults = replace(defaults, curves=_one(args, "a list of curves"))
        else:
            defaults = default_options(defaults, args)
        return replace(tls, bind=defaults) if side == "bind" else replace(tls, server=defaults)
    if keyword == "ssl-server-verify":
        value = _one(args, "none or required")
        if value not in ("none", "required"):
            raise Problem(f"expects none or required, not '{value}'")
        return replace(tls, server_verify="none" if value == "none" else "required")
    if keyword == "ca-base":
        return replace(tls, ca_base=_one(args, "a directory"))
    if keyword == "tune.ssl.cachesize":
        try:
            size = parse_int(_one(args, "a number of sessions"), 0)
        except ValueError as exc:
            raise Problem(str(exc)) from None
        return replace(tls, cache_size=size)
    return replace(tls, crt_base=_one(args, "a directory"))


def global_handlers(
    get: Callable[[], GlobalTls], put: Callable[[GlobalTls], None]
) -> dict[str, Callable[[Sequence[str], Where], None]]:
    """Handlers for GlobalParser, one per keyword."""

    def handler(keyword: str) -> Callable[[Sequence[str], Where], None]:
        def handle(args: Sequence[str], where: Where) -> None:
            if keyword == "ssl-dh-param-file":  # read by certs/check.py and net/tls_context.py
                path = default_path.resolve(_one(args, "a file name"), where)
                put(replace(get(), dh_param_file=path, dh_param_where=where))
                return
            put(global_keyword(get(), keyword, args))

        return handle

    return {keyword: handler(keyword) for keyword in GLOBAL_KEYWORDS}
