"""The options of `bind`, `stats socket`, `server` and `default-server` lines.

HAProxy's configuration.txt 5.1 ("Bind options") and 5.2 ("Server and default-server
options") define them; keywords.py lists every one with its number of arguments, so an
option poise does not implement yet is reported by name and its arguments are skipped, and
the rest of the line is still read (every problem on a line is reported, not only the first).

Two bind options are poise's own, not HAProxy's: `freebind` (bind an address this node does
not own yet, such as the VRRP backup's virtual IP; HAProxy's `transparent` does that and is
accepted too) and `noreuseport` on one line (HAProxy only has the global `noreuseport`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from poise.config import address, haproxy_resolvers, haproxy_tls, keywords
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem, ServerSettings, Settings
from poise.config.model import Bind, Global, Proxy, Source, Where
from poise.config.tune import SERVER_WEIGHT_MAX
from poise.config.units import parse_int, parse_time

StatsLevel = Literal["user", "operator", "admin"]
_LEVELS: dict[str, StatsLevel] = {"user": "user", "operator": "operator", "admin": "admin"}


@dataclass(slots=True)
class BindOptions:
    name: str | None = None
    backlog: int | None = None
    v6only: bool = False
    freebind: bool = False
    reuseport: bool = True
    accept_proxy: bool = False
    tfo: bool = False
    mode: int | None = None  # stats socket only
    level: StatsLevel = "operator"  # stats socket only
    expose_fd: bool = False  # stats socket only: `expose-fd listeners`
    owner: tuple[str | None, str | None] = (None, None)  # stats socket: user, group
    tls: haproxy_tls.BindTlsDraft = field(default_factory=haproxy_tls.BindTlsDraft)


def _not_implemented(option: str, context: str, where: Where) -> Diagnostic:
    return error(where, f"option '{option}' is not implemented yet in poise", context)


def _owner(
    owner: tuple[str | None, str | None], option: str, value: str
) -> tuple[str | None, str | None]:
    """`user NAME`/`uid N` and `group NAME`/`gid N` of a unix stats socket: who owns
    its file (a number is kept as its digits; names are looked up when it is bound)."""
    if option in ("uid", "gid") and not value.isdigit():
        raise Problem(f"'{option}' : expects a numeric value, not '{value}'")
    return (value, owner[1]) if option in ("user", "uid") else (owner[0], value)


def parse_bind_options(
    words: Sequence[str], where: Where, diagnostics: list[Diagnostic], context: str = "bind"
) -> BindOptions:
    """The options after a bind address (`context` is "bind" or "stats socket")."""
    options = BindOptions()
    socket = context == "stats socket"
    index = 0
    while index < len(words):
        option = words[index]
        value = words[index + 1] if index + 1 < len(words) else None
        arity = keywords.BIND_OPTIONS.get(option)
        try:
            if arity == 1 and value is None:
                raise Problem("expects a value")
            if option == "name":
                options.name = value
            elif option == "backlog":
                options.backlog = parse_int(value or "", 1)
            elif option == "v6only":
                options.v6only = True
            elif option == "v4v6":
                options.v6only = False
            elif option in ("transparent", "freebind"):
                options.freebind = True
            elif option == "noreuseport":
                options.reuseport = False
            elif not socket and option == "accept-proxy":
                options.accept_proxy = True
            elif not socket and option == "tfo":
                options.tfo = True
            elif socket and option == "mode":
                try:
                    options.mode = int(value or "", 8)
                except ValueError:
                    raise Problem(f"expects an octal number, not '{value}'") from None
            elif socket and option == "level":
                if value not in _LEVELS:
                    raise Problem(f"expects user, operator or admin, not '{value}'")
                options.level = _LEVELS[value]
            elif socket and option == "expose-fd":
                if value != "listeners":
                    raise Problem(f"'expose-fd' only supports 'listeners' (got '{value}')")
                options.expose_fd = True
            elif socket and option in ("user", "uid", "group", "gid"):
                options.owner = _owner(options.owner, option, value or "")
            elif not socket and option in haproxy_tls.BIND_OPTIONS:
                haproxy_tls.bind_option(options.tls, option, value)
            elif option in keywords.HARMLESS_BIND:
                reason = keywords.HARMLESS_BIND[option]
                diagnostics.append(warning(where, f"option '{option}' ignored: {reason}", context))
            elif arity is not None:
                diagnostics.append(_not_implemented(option, context, where))
            else:
                hint = keywords.did_you_mean(option, keywords.BIND_OPTIONS)
                diagnostics.append(error(where, f"unknown option '{option}'{hint}", context))
        except (Problem, ValueError) as exc:
            diagnostics.append(error(where, f"option '{option}': {exc}", context))
        index += 1 + (arity if arity and arity > 0 else 0)
    return options


def parse_bind(
    args: Sequence[str],
    where: Where,
    diagnostics: list[Diagnostic],
    written: str | None = None,
) -> list[Bind]:
    """A `bind` line (the words after `bind`): one Bind per address and port. `written`:
    the address as written, when `$VAR` expansion changed it (a problem names both)."""
    if not args:
        raise Problem("expects an address: bind [ADDRESS]:PORT[-END][,...] [options]")
    try:
        addresses = address.parse_bind(args[0])
    except address.AddressError as exc:
        if written is None or written == args[0]:
            raise Problem(str(exc)) from None
        raise Problem(f"{exc} (from '{written}': is an environment variable unset?)") from None
    opts = parse_bind_options(args[1:], where, diagnostics)
    tls = haproxy_tls.finish_bind(opts.tls, args[0], where, diagnostics)
    return [
        Bind(
            address=addr,
            where=where,
            name=opts.name,
            freebind=opts.freebind,
            reuseport=opts.reuseport,
            backlog=opts.backlog,
            v6only=opts.v6only,
            tls=tls,
            accept_proxy=opts.accept_proxy,
            tfo=opts.tfo,
        )
        for addr in addresses
    ]


def _source_address(text: str, what: str) -> tuple[str, int]:
    """`ADDR[:PORT]` of `source` / `usesrc`: an IP literal (IPv6 may end in `:PORT`, the
    last colon's, or be written `[ADDR]:PORT`); port 0 or none: any port."""
    try:
        return str(ipaddress.ip_address(text)), 0
    except ValueError:
        pass
    host, port = address.split_host_port(text)
    if port is not None and "-" in port:
        raise Problem(f"a port range in '{what} {text}' is not implemented yet in poise")
    try:
        addr = str(ipaddress.ip_address(host or "0.0.0.0"))
    except ValueError:
        raise Problem(f"'{what}' expects an IPv4 or IPv6 address, not '{text}'") from None
    if port is None or port == "":
        return addr, 0
    return addr, parse_int(port, 0, 65535)


def parse_source(words: Sequence[str]) -> tuple[Source, int]:
    """`source ADDR[:PORT] [usesrc {ADDR2[:PORT2]|client|clientip}] [interface NAME]`
    (the words after `source`): the Source, and how many words it took. What follows is
    not the source's (on a `server` line: the next option)."""
    if not words:
        raise Problem("expects <addr>[:<port>] [usesrc ...] [interface <name>]")
    addr, port = _source_address(words[0], "source")
    source = Source(addr=addr, port=port)
    index = 1
    while index < len(words) and words[index] in ("usesrc", "interface"):
        word = words[index]
        if index + 1 >= len(words):
            raise Problem(f"'{word}' expects an argument")
        value = words[index + 1]
        if word == "interface":
            source = replace(source, interface=value)
        elif value == "client":
            source = replace(source, usesrc="client")
        elif value == "clientip":
            source = replace(source, usesrc="clientip")
        elif value.startswith("hdr_ip("):
            raise Problem(
                "'usesrc hdr_ip(...)' is not implemented yet in poise "
                "(use 'usesrc clientip' or an address)"
            )
        else:
            usesrc_addr, usesrc_port = _source_address(value, "usesrc")
            source = replace(
                source, usesrc="address", usesrc_addr=usesrc_addr, usesrc_port=usesrc_port
            )
        index += 2
    if source.usesrc and ":" in source.addr and ":" not in (source.usesrc_addr or "::"):
        raise Problem("'usesrc' address and 'source' address must be of the same family")
    return source, index


_FLAGS: dict[str, tuple[str, bool]] = {
    "check": ("check", True),
    "no-check": ("check", False),
    "backup": ("backup", True),
    "no-backup": ("backup", False),
    "disabled": ("disabled", True),
    "enabled": ("disabled", False),
}
# PROXY protocol (configuration.txt 5.2; HAProxy's SRV_PP_* flags): what each option turns
# on or off. A server sends v2 when "v2" is on, else v1 when any flag is on.
SEND_PROXY: dict[str, tuple[str, ...]] = {
    "send-proxy": ("+v1",),
    "send-proxy-v2": ("+v2",),
    "send-proxy-v2-ssl": ("+v2", "+ssl"),
    "send-proxy-v2-ssl-cn": ("+v2", "+ssl", "+cert-cn"),
    "no-send-proxy": ("-v1",),
    "no-send-proxy-v2": ("-v2",),
    "no-send-proxy-v2-ssl": ("-ssl",),
    "no-send-proxy-v2-ssl-cn": ("-cert-cn",),
}
PROXY_V2_OPTIONS: dict[str, tuple[str, ...]] = {
    "ssl": ("+ssl",),
    "cert-cn": ("+ssl", "+cert-cn"),
    "ssl-cipher": ("+ssl", "+ssl-cipher"),
    "cert-sig": ("+ssl", "+cert-sig"),
    "cert-key": ("+ssl", "+cert-key"),
    "authority": ("+authority",),
    "crc32c": ("+crc32c",),
    "unique-id": ("+unique-id",),
}


def proxy_v2_options(value: str) -> tuple[str, ...]:
    """`proxy-v2-options LIST`: the flags it turns on."""
    ops: list[str] = []
    for word in value.split(","):
        if word not in PROXY_V2_OPTIONS:
            raise Problem(f"'{word}' : proxy v2 option not implemented.")
        ops += PROXY_V2_OPTIONS[word]
    return tuple(ops)


def proxy_flags(ops: Sequence[str], flags: frozenset[str] = frozenset()) -> frozenset[str]:
    """The flags after `ops` ("+name" / "-name", in order) applied to `flags`."""
    on = set(flags)
    for op in ops:
        if op[0] == "+":
            on.add(op[1:])
        else:
            on.discard(op[1:])
    return frozenset(on)


_DURATIONS = ("inter", "fastinter", "downinter")
_COUNTS = {"rise": (1, None), "fall": (1, None), "weight": (0, SERVER_WEIGHT_MAX)}
_LIMITS = ("maxconn", "maxqueue")


def _server_value(option: str, value: str) -> tuple[str, object]:
    """(ServerSettings field, value) for an option that takes an argument."""
    if option in _DURATIONS:
        millis = parse_time(value)
        if millis <= 0:
            raise Problem("must be greater than 0")
        return option, millis
    if option in _COUNTS:
        low, high = _COUNTS[option]
        return option, parse_int(value, low, high)
    if option in _LIMITS:
        return option, parse_int(value, 0)
    if option == "port":
        # Port 0 is HAProxy's "not set": check the server's own port.
        return "check_port", parse_int(value, 0, 65535) or None
    if option == "addr":
        try:
            return "check_addr", str(ipaddress.ip_address(value))
        except ValueError:
            raise Problem(f"expects an IPv4 or IPv6 address, not '{value}'") from None
    raise AssertionError(option)


_TUNING = ("minconn", "slowstart", "socks4", "on-marked-down", "on-marked-up")
_ON_MARKED = {"on-marked-down": "shutdown-sessions", "on-marked-up": "shutdown-backup-sessions"}


def _tuning(option: str, value: str) -> tuple[str, str]:
    """One of the options server_tuning reads, checked as HAProxy checks it."""
    if option == "minconn":
        parse_int(value, 0)
    elif option == "slowstart":
        parse_time(value)
    elif option == "socks4":
        socks4_address(value)
    elif value != _ON_MARKED[option]:
        raise Problem(f"'{option}' expects '{_ON_MARKED[option]}' but got '{value}'.")
    return option, value


def socks4_address(value: str) -> tuple[str, int]:
    """`socks4 ADDR:PORT`: the SOCKS4 proxy a server's connections go through (an address
    or a host name, resolved when poise connects), with HAProxy's message."""
    try:
        host, port = address.split_host_port(value)
    except address.AddressError as exc:
        raise Problem(str(exc)) from None
    if not host or port is None:
        raise Problem(f"missing port specification in '{value}'")
    return host, parse_int(port, 1, 65535)


def server_tuning(words: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """model.Server's fields for `minconn`, `slowstart`, `on-marked-down` and
    `on-marked-up` (the last one written wins, a server's over its `default-server`'s)."""
    fields: dict[str, Any] = {}
    for option, value in words:
        if option == "minconn":
            fields["minconn"] = parse_int(value, 0)
        elif option == "slowstart":
            fields["slowstart"] = parse_time(value)
        elif option == "socks4":
            fields["socks4"] = socks4_address(value)
        elif option == "check-via-socks4":
            fields["check_via_socks4"] = True
        elif option == "on-marked-down":
            fields["shutdown_on_down"] = True
        else:
            fields["shutdown_backups_on_up"] = True
    return fields


def state_file(proxy: Proxy, settings: Settings, global_: Global) -> str | None:
    """The server-state file a backend loads (configuration.txt
    `load-server-state-from-file`): the global `server-state-file`, or its own
    (`server-state-file-name`, else its name); a relative path is under
    `server-state-base`. None: none to load (or not a backend)."""
    if not proxy.is_backend:
        return None
    if settings.load_server_state == "global":
        name = global_.server_state_file
    elif settings.load_server_state == "local":
        name = settings.server_state_file_name or proxy.name
    else:
        return None
    if name is None:
        return None
    if name.startswith("/") or not global_.server_state_base:
        return name
    return f"{global_.server_state_base.rstrip('/')}/{name}"


def parse_server_options(
    words: Sequence[str],
    where: Where,
    diagnostics: list[Diagnostic],
    context: str,
) -> tuple[ServerSettings, int | None]:
    """The options of a `server` (context "server") or `default-server` line: the settings
    they set, and the server's `id` when given."""
    changes: dict[str, Any] = {}
    server_id: int | None = None
    index = 0
    while index < len(words):
        option = words[index]
        arity = keywords.SERVER_OPTIONS.get(option)
        value = words[index + 1] if index + 1 < len(words) else None
        try:
            if arity == 1 and value is None:
                raise Problem("expects a value")
            if option in _FLAGS:
                name, flag = _FLAGS[option]
                changes[name] = flag
            elif option in (*_DURATIONS, *_COUNTS, *_LIMITS, "port", "addr"):
                name, setting = _server_value(option, value or "")
                changes[name] = setting
            elif option in haproxy_tls.SERVER_OPTIONS:
                changes["tls"] = (*changes.get("tls", ()), haproxy_tls.server_option(option, value))
            elif option in haproxy_resolvers.SERVER_OPTIONS:
                name, setting = haproxy_resolvers.server_option(option, value or "")
                changes[name] = setting
            elif option in SEND_PROXY or option == "proxy-v2-options":
                ops = SEND_PROXY.get(option) or proxy_v2_options(value or "")
                changes["proxy_protocol"] = (*changes.get("proxy_protocol", ()), *ops)
            elif option == "check-send-proxy":
                changes["check_send_proxy"] = True
            elif option == "check-via-socks4":
                changes["tuning"] = (*changes.get("tuning", ()), (option, ""))
            elif option in _TUNING:
                changes["tuning"] = (*changes.get("tuning", ()), _tuning(option, value or ""))
            elif option == "cookie":
                # The value of the backend's persistence cookie that names this server.
                changes["cookie"] = value
            elif option == "source":
                source, used = parse_source(words[index + 1 :])
                changes["source"] = source
                index += 1 + used
                continue
            elif option == "id":
                if context != "server":
                    raise Problem("only allowed on a 'server' line")
                server_id = parse_int(value or "", 1)
            elif arity is not None:
                diagnostics.append(_not_implemented(option, context, where))
            else:
                hint = keywords.did_you_mean(option, keywords.SERVER_OPTIONS)
                diagnostics.append(error(where, f"unknown option '{option}'{hint}", context))
        except (Problem, ValueError) as exc:
            diagnostics.append(error(where, f"option '{option}': {exc}", context))
        index += len(words) if arity == -1 else 1 + (arity or 0)
    return ServerSettings(**changes), server_id
