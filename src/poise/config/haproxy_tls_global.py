"""The global section's TLS keywords (configuration.txt 3.1, 3.2): `ssl-default-bind-*`,
`ssl-default-server-*`, `ssl-server-verify`, `ca-base`, `crt-base`, `ssl-dh-param-file`,
`tune.ssl.cachesize`, `tune.ssl.maxrecord` and `tune.ssl.default-dh-param`, gathered into
GlobalTls, which config/haproxy_tls.py lays under each bind and server. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from poise.config import default_path
from poise.config.haproxy_draft import Problem
from poise.config.haproxy_tls import DEFAULT_OPTIONS, version_word
from poise.config.model import GlobalTls, TlsDefaults, Where
from poise.config.units import parse_int

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
        "tune.ssl.maxrecord",
        "tune.ssl.default-dh-param",
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
    if keyword == "tune.ssl.default-dh-param":
        try:
            bits = parse_int(_one(args, "a number of bits"), 0)
        except ValueError as exc:
            raise Problem(str(exc)) from None
        if bits < 1024:
            raise Problem("Only 1024 or higher values are allowed")
        return replace(tls, default_dh=bits)
    if keyword == "tune.ssl.maxrecord":
        try:
            size = parse_int(_one(args, "a size in bytes"), 0)
        except ValueError as exc:
            raise Problem(str(exc)) from None
        return replace(tls, max_record=size)
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
