"""Runtime commands on one server (management.txt 9.3): `get weight`, `set weight`,
`set server B/S state|weight|addr`, `disable|enable server`, `set maxconn server`,
`shutdown sessions server`, with HAProxy 2.6's answers and messages (some of its messages
end without a newline; they are kept so, byte for byte).

Pure: the model changes here, through Backend.changed(); ending sessions and dropping
idle connections are effects the shell carries out. A refused command changes nothing,
also where HAProxy would apply half of it (`set server addr` with a bad port).
"""

from __future__ import annotations

import ipaddress

from poise.admin.commands_base import (
    Answer,
    DropIdle,
    EndSessions,
    Request,
    find_server,
    set_admin,
    strtol,
)
from poise.config import model
from poise.config.tune import SERVER_WEIGHT_MAX
from poise.core.backend import Backend
from poise.core.balancer.factory import HASHES
from poise.core.server import AdminState, ServerState

SERVER_STATES = {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT}
SET_SERVER_USAGE = "usage: set server <backend>/<server> addr | state | weight\n"
# `set server` sub-commands HAProxy has and poise does not (yet).
NOT_IMPLEMENTED = (
    "agent", "agent-addr", "agent-port", "agent-send", "check-addr", "check-port", "fqdn",
    "health", "ssl",
)  # fmt: skip
BY_CLI = " by 'stats socket command'"


def dynamic_weights(balance: model.Balance) -> bool:
    """Whether the algorithm takes weights changed at run time, and servers added at run
    time (HAProxy's BE_LB_PROP_DYN): not `static-rr`, not map-based hashing."""
    if balance.algorithm is model.Algorithm.STATIC_RR:
        return False
    hashing = balance.algorithm in HASHES
    return not (hashing and balance.hash_type is model.HashType.MAP_BASED)


def parse_weight(text: str, server: ServerState, dynamic: bool) -> int | str:
    """`N` (0..SERVER_WEIGHT_MAX) or `N%` of the initial weight, with HAProxy's messages."""
    if not text:
        return "Require <weight> or <weight%>.\n"
    parsed = strtol(text)
    if parsed is None:
        return "Empty weight string empty or preceded by garbage"
    weight, rest = parsed
    if rest == "%":
        if weight < 0:
            return "Relative weight must be positive.\n"
        percent = min(weight, 100 * SERVER_WEIGHT_MAX)
        weight = min(server.initial_weight * percent // 100, SERVER_WEIGHT_MAX)
    elif not 0 <= weight <= SERVER_WEIGHT_MAX:
        return "Absolute weight can only be between 0 and 256 inclusive.\n"
    elif rest:
        return "Trailing garbage in weight string"
    if weight and weight != server.initial_weight and not dynamic:
        return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
    return weight


def set_weight(backend: Backend, server: ServerState, text: str) -> Answer:
    weight = parse_weight(text, server, dynamic_weights(backend.proxy.balance))
    if isinstance(weight, str):
        return Answer(weight)
    if weight == server.weight:
        return Answer("")
    server.weight = weight
    return Answer("", tuple(backend.changed()))


def set_addr(req: Request, backend: Backend, server: ServerState) -> Answer:
    """`set server B/S addr IP [port P]`: where new connections (and checks without their
    own address) go; sessions under way stay where they are."""
    text = req.arg(4)
    if not text:
        return Answer("set server <b>/<s> addr requires an address and optionally a port.\n")
    try:
        addr = str(ipaddress.ip_address(text))
    except ValueError:
        return Answer(f"Invalid addr '{text}'{BY_CLI}\n")
    port = server.port
    if req.arg(5) == "port":
        wanted = req.arg(6)
        if wanted[:1] in ("+", "-"):
            return Answer(f"port offsets ('{wanted}') are not implemented yet in poise{BY_CLI}\n")
        if not wanted.isascii() or not wanted.isdigit() or int(wanted) > 65535:
            return Answer(f"problem converting port '{wanted}' to an int{BY_CLI}\n")
        port = int(wanted) or None  # 0: the port the client connected to, as in a `server`
    said = [
        "no need to change the addr"
        if addr == server.addr
        else f"IP changed from '{server.addr}' to '{addr}'"
    ]
    if req.arg(5) == "port":
        if port == server.port:
            said.append("no need to change the port")
        else:
            said.append(f"port changed from '{server.port or 0}' to '{port or 0}'")
    changed = server.set_addr(addr, port)
    effects = (DropIdle(backend.name, server.id),) if changed else ()
    return Answer(", ".join(said) + BY_CLI + "\n", effects=effects)


# -- the commands -------------------------------------------------------------------------


def cmd_get_weight(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    _, server = found
    return Answer(f"{server.weight} (initial {server.initial_weight})\n")


def cmd_disable_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_admin(req.view, *found, AdminState.MAINT)


def cmd_enable_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_admin(req.view, *found, AdminState.READY)


def cmd_set_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    backend, server = found
    what = req.arg(3)
    if what == "state":
        admin = SERVER_STATES.get(req.arg(4))
        if admin is None:
            return Answer("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        return set_admin(req.view, backend, server, admin)
    if what == "weight":
        return set_weight(backend, server, req.arg(4))
    if what == "addr":
        return set_addr(req, backend, server)
    if what in NOT_IMPLEMENTED:
        return Answer(f"'set server <srv> {what}' is not implemented yet in poise.\n")
    return Answer(SET_SERVER_USAGE)


def cmd_set_weight(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_weight(*found, req.arg(3))


def cmd_set_maxconn_server(req: Request) -> Answer:
    """`set maxconn server B/S N` (0: no limit); a higher limit lets queued connections go."""
    found = find_server(req.view, req.arg(3))
    if isinstance(found, str):
        return Answer(found)
    backend, server = found
    if not req.arg(4):
        return Answer("Require <maxconn>.\n")
    parsed = strtol(req.arg(4))
    if parsed is None:
        return Answer("maxconn string empty or preceded by garbage")
    value, rest = parsed
    if rest:
        return Answer("Trailing garbage in maxconn string")
    if value < 0:
        return Answer("Value out of range.\n")
    if value == server.maxconn:
        return Answer("")
    server.maxconn = value
    return Answer("", tuple(backend.changed()))


def cmd_shutdown_sessions_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(3))
    if isinstance(found, str):
        return Answer(found)
    _, server = found
    return Answer("", effects=(EndSessions(server),))
