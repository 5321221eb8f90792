"""`add server B/S ADDR [options]` and `del server B/S`: servers that join and leave a
backend while it serves (management.txt 9.3), on HAProxy 2.6's rules:

- only a backend whose algorithm takes dynamic weights (not `static-rr`, not map-based
  hashing) takes new servers;
- a new server starts in maintenance unless its line says `enabled`; its health check,
  when it has `check`, is configured but not running (HAProxy waits for `enable health`);
  `default-server` does not apply; without `id` it takes the lowest free id;
- options are the `server` line's, minus those HAProxy refuses for a dynamic server
  (`cookie` among them, in 2.6); an unknown word gets HAProxy's "did you mean";
- only a server in maintenance with no session can be deleted; its idle kept-alive
  connections are closed with it (HAProxy refuses while any is left: they go within
  seconds anyway, so poise does not make the operator wait).

Where HAProxy reads a bad number as 0 (`weight abc`, `maxconn -5`), poise refuses it with
a message in HAProxy's words. The answers are HAProxy's, byte for byte otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from poise.admin.commands_base import (
    Answer,
    DropIdle,
    Notice,
    Request,
    closest_word,
    find_server,
)
from poise.admin.commands_servers import dynamic_weights
from poise.config import keywords, model
from poise.config.address import AddressError, parse_server
from poise.config.haproxy_draft import Problem
from poise.config.haproxy_server import SEND_PROXY, proxy_flags, proxy_v2_options
from poise.config.tune import SERVER_WEIGHT_MAX
from poise.config.units import parse_time
from poise.core.backend import Backend
from poise.core.server import AdminState, ServerState

# Where HAProxy says a server from the CLI was "declared" (its C string is unset).
CLI_WHERE = model.Where("(null)", 0)

# Options HAProxy 2.6 takes on `add server` that poise does not implement yet.
NOT_IMPLEMENTED = frozenset((
    "agent-addr", "agent-check", "agent-inter", "agent-port", "agent-send", "allow-0rtt",
    "alpn", "ca-file", "check-alpn", "check-proto", "check-sni",
    "check-ssl", "check-via-socks4", "ciphers", "ciphersuites", "crl-file", "crt",
    "error-limit", "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12",
    "force-tlsv13", "minconn", "no-ssl-reuse", "no-sslv3", "no-tlsv10", "no-tlsv11",
    "no-tlsv12", "no-tlsv13", "no-tls-tickets", "npn", "observe", "on-error", "on-marked-down",
    "on-marked-up", "pool-low-conn", "pool-max-conn", "pool-purge-delay", "proto",
    "slowstart", "sni", "source", "ssl", "ssl-max-ver", "ssl-min-ver",
    "tfo", "tls-tickets", "track", "usesrc", "verify", "verifyhost", "ws",
))  # fmt: skip
IMPLEMENTED = frozenset((
    "addr", "backup", "check", "disabled", "downinter", "enabled", "fall", "fastinter", "id",
    "inter", "maxconn", "maxqueue", "no-backup", "port", "rise", "weight",
    *SEND_PROXY, "proxy-v2-options", "check-send-proxy",
))  # fmt: skip
# Every server keyword HAProxy knows (for "did you mean"), in keywords.py's order.
KNOWN = tuple(dict.fromkeys([*keywords.SERVER_OPTIONS, "usesrc"]))


class Refused(Exception):
    """An option that cannot be taken, with HAProxy's message."""


@dataclass(slots=True)
class NewServer:
    """What an `add server` line says, as it is read word by word (the last word on a
    setting wins, as in HAProxy)."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    server_id: int | None = None
    enabled: bool = False  # `enabled`: ready at once; otherwise in maintenance


def duration(option: str, value: str, name: str) -> int:
    if not value:
        raise Refused(f"'{option}' expects a delay as argument..")
    digits = len(value) - len(value.lstrip("0123456789"))
    if digits == 0:
        bad = value[0]
    else:
        try:
            millis = parse_time(value)
        except ValueError:
            if digits == len(value):
                raise Refused(
                    f"timer overflow in argument '{value}' to '{option}' of server {name} "
                    "(maximum value is 2147483647 ms or ~24.8 days).."
                ) from None
            bad = value[digits]
        else:
            if millis <= 0:
                raise Refused(f"invalid value {value} for argument '{option}' of server {name}..")
            return millis
    raise Refused(f"unexpected character '{bad}' in '{option}' argument of server {name}..")


def count(option: str, value: str, lowest: int) -> int:
    if not value:
        raise Refused(f"'{option}' expects an integer argument..")
    if not value.isascii() or not value.isdigit() or int(value) < lowest:
        raise Refused(f"'{option}' has to be > 0.." if lowest else f"'{option}' has to be >= 0..")
    return int(value)


def read_option(new: NewServer, option: str, value: str, backend: Backend) -> None:
    """Apply one option to `new`, or raise Refused."""
    name, settings = new.name, new.settings
    if option in ("backup", "no-backup"):
        settings["backup"] = option == "backup"
    elif option == "check":
        settings["check"] = True
    elif option in ("disabled", "enabled"):
        settings["disabled"] = option == "disabled"
        new.enabled = option == "enabled"
    elif option in ("inter", "fastinter", "downinter"):
        settings[option] = duration(option, value, name)
    elif option in ("rise", "fall"):
        settings[option] = count(option, value, 1)
    elif option in ("maxconn", "maxqueue"):
        settings[option] = count(option, value, 0)
    elif option == "weight":
        if not value:
            raise Refused("'weight' expects an integer argument..")
        body = value[1:] if value[:1] == "-" else value
        if not body.isascii() or not body.isdigit() or not 0 <= int(value) <= SERVER_WEIGHT_MAX:
            raise Refused(f"weight of server {name} is not within 0 and 256 ({value})..")
        settings["weight"] = int(value)
    elif option == "id":
        new.server_id = server_id(value, backend)
    elif option == "port":
        if not value.isascii() or not value.isdigit() or int(value) > 65535:
            raise Refused("'port' expects a port number as argument..")
        settings["check_port"] = int(value) or None
    elif option in SEND_PROXY or option == "proxy-v2-options":
        try:
            ops = SEND_PROXY.get(option) or proxy_v2_options(value)
        except Problem as exc:
            raise Refused(str(exc)) from None
        settings["proxy_protocol"] = proxy_flags(ops, settings.get("proxy_protocol", frozenset()))
    elif option == "check-send-proxy":
        settings["check_send_proxy"] = True
    elif option == "addr":
        if not value:
            raise Refused("'addr' expects <ipv4|ipv6> as argument..")
        try:
            settings["check_addr"] = str(ipaddress.ip_address(value))
        except ValueError:
            raise Refused(f"'addr' : invalid address: '{value}' in '{value}'.") from None


def server_id(value: str, backend: Backend) -> int:
    if not value:
        raise Refused("'id' : expects an integer argument.")
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise Refused("'id' : custom id has to be > 0.")
    wanted = int(value)
    for other in backend.servers:
        if other.id == wanted:
            where = other.config.where
            raise Refused(
                f"'id' : custom id {wanted} already used at {where.file}:{where.line} "
                f"('server {other.name}')."
            )
    return wanted


def read_options(new: NewServer, words: tuple[str, ...], backend: Backend) -> None:
    """The options after the address, left to right; the first problem refuses them."""
    index = 0
    while index < len(words):
        option = words[index]
        arity = keywords.SERVER_OPTIONS.get(option, 1 if option == "usesrc" else None)
        if arity is None:
            near = closest_word(option, KNOWN)
            hint = f"; did you mean '{near}' maybe ?" if near else "."
            raise Refused(f"unknown keyword '{option}'{hint}")
        if option in NOT_IMPLEMENTED:
            raise Refused(f"'{option}' option is not implemented yet in poise")
        if option not in IMPLEMENTED:
            raise Refused(f"'{option}' option is not accepted for dynamic server")
        value = words[index + 1] if arity and index + 1 < len(words) else ""
        read_option(new, option, value, backend)
        index += 1 + (arity if arity and arity > 0 else 0)


def lowest_free_id(backend: Backend) -> int:
    used = {s.id for s in backend.servers}
    found = 1
    while found in used:
        found += 1
    return found


def cmd_add_server(req: Request) -> Answer:
    target = req.arg(2)
    slash = target.find("/")
    if slash <= 0 or slash == len(target) - 1:
        return Answer("Require 'backend/server'.")
    backend = req.view.backend(target[:slash])
    if backend is None:
        return Answer("No such backend.")
    if not dynamic_weights(backend.proxy.balance):
        return Answer("Backend must use a dynamic load balancing to support dynamic servers.")
    name = target[slash + 1 :]
    if not req.arg(3):
        return Answer("'server' expects <name> and <addr>[:<port>] as arguments.\n")
    try:
        address = parse_server(req.arg(3))
    except AddressError as exc:
        return Answer(f"{exc}\n")
    new = NewServer(name)
    try:
        read_options(new, req.args[4:], backend)
    except Refused as exc:
        return Answer(f"{exc}\n")
    if backend.server(name) is not None:
        return Answer("Already exists a server with the same name in backend.\n")
    sid = new.server_id if new.server_id is not None else lowest_free_id(backend)
    config = model.Server(name, address, CLI_WHERE, sid, **new.settings)
    server = ServerState(config, backend.name)
    server.check_enabled = False
    if not new.enabled:
        server.admin = AdminState.MAINT
    server.last_change = req.view.now
    goes = backend.add(server)
    text = f"CLI : 'server {backend.name}/{name}' : New server registered."
    notice = Notice("NOTICE", text, backend.name)
    return Answer("New server registered.\n", tuple(goes), effects=(notice,))


def cmd_del_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found.rstrip("\n"))
    backend, server = found
    if any(named is server for _, named in backend.use_servers):
        return Answer(
            "This server cannot be removed at runtime due to other configuration elements "
            "pointing to it."
        )
    if server.admin is not AdminState.MAINT:
        return Answer("Only servers in maintenance mode can be deleted.")
    if server.cur_sess or server.queued:
        return Answer("Server still has connections attached to it, cannot remove it.")
    goes = backend.remove(server)
    effects = (
        DropIdle(backend.name, server.id, forget=True),
        Notice("NOTICE", f"CLI : Server {backend.name}/{server.name} deleted.", backend.name),
    )
    return Answer("Server deleted.", tuple(goes), effects=effects)
