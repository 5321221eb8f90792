"""Servers named by DNS at run time: what an answer means for each server, as values.

Pure (the clock comes in as numbers, in seconds): net/resolver.py asks the nameservers and
hands each answer here; this module decides and the decisions are commands applied to the
model, like the runtime API's (DESIGN.md: every runtime state change is a command).

HAProxy 2.6's rules (resolvers.c, server.c):
- a resolution's status is VALID, NX, TIMEOUT, REFUSED or OTHER; a failure only takes the
  server into maintenance (RMAINT, "MAINT (resolution)") once it has lasted longer than
  its `hold` period counted from the last valid answer, and its address is then cleared;
- a valid answer with no usable address takes it into maintenance at once ("No IP for
  server ");
- each server picks among the answer's addresses by score (resolv_get_ip_from_response):
  8 for the `resolve-prefer` family, 4 for an address in a `resolve-net` network, 2 for an
  address no other server of the same name uses (with `prevent-dup-ip`, the default, a
  used one is not taken at all), 1 for its own current address; the best wins, so a
  server keeps its address while the answer still has it. The servers of a
  `server-template` share one name, so they spread over the answer's addresses, one each,
  and those left without one wait in maintenance;
- SRV records (a name starting with `_`): each server follows one target (its address
  and port, from the additional records, and its weight, (SRV weight + 255) / 256 unless
  `resolve-opts ignore-weight`); a target that leaves the answer empties its server
  ("entry removed from SRV record"); a record that left the answer is still used for
  `hold obsolete`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from poise.config import model
from poise.config.tune import SERVER_WEIGHT_MAX
from poise.core.backend import Backend, Go
from poise.core.health import LogMessage, Severity, backend_down_message, count_usable
from poise.core.server import AdminState, ServerState


class Status(Enum):
    """The outcome of one resolution (HAProxy's RSLV_STATUS_*)."""

    NONE = "none"  # not resolved yet
    VALID = "valid"
    NX = "nx"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    OTHER = "other"


# Why a failure takes a server into maintenance (srv_set_admin_flag's reasons).
FAILURE_REASONS = {
    Status.NX: "DNS NX status",
    Status.TIMEOUT: "DNS timeout status",
    Status.REFUSED: "DNS refused status",
    Status.OTHER: "unspecified DNS error",
}
NO_IP = "No IP for server "  # sic: HAProxy's text ends with a space
SRV_REMOVED = "entry removed from SRV record"
CACHE = "DNS cache"  # the updater named when an answer comes from the cache


@dataclass(frozen=True, slots=True)
class Record:
    """One usable entry of an answer: an address, and for SRV its port, weight and target."""

    ip: str
    port: int | None = None
    weight: int | None = None  # the SRV weight (0..65535)
    target: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the nameservers said about one name; `by` names who ("resolvers/nameserver")."""

    status: Status
    records: tuple[Record, ...] = ()
    by: str = ""


@dataclass(slots=True)
class Resolution:
    """The state of one name's resolution: last status, last valid answer's time, and the
    records seen (for `hold obsolete`)."""

    hold: model.Hold
    last_valid: float  # when the last valid answer came (the start, before any)
    status: Status = Status.NONE
    seen: dict[Record, float] = field(default_factory=dict)
    # SRV: the entry ("target:port") each server follows, by server name.
    followed: dict[str, str] = field(default_factory=dict)

    def record(self, answer: Answer, now: float) -> None:
        self.status = answer.status
        if answer.status is Status.VALID:
            self.last_valid = now
            for item in answer.records:
                self.seen[item] = now
        obsolete = self.hold.obsolete / 1000.0
        self.seen = {r: t for r, t in self.seen.items() if now - t <= obsolete}

    def records(self) -> tuple[Record, ...]:
        """The records in use: the last answer's, and those within `hold obsolete`."""
        return tuple(self.seen)

    def failure(self, now: float) -> str | None:
        """The reason to take the servers into maintenance, once a failure has lasted
        longer than its hold period; None while it may still pass (or on success)."""
        reason = FAILURE_REASONS.get(self.status)
        if reason is None:
            return None
        hold = getattr(self.hold, self.status.value) / 1000.0
        return reason if now - self.last_valid >= hold else None

    def next_delay(self, section: model.Resolvers) -> float:
        """Seconds to the next query: a valid answer is kept `hold valid` (at least
        `timeout resolve`), anything else is asked again after `timeout resolve`."""
        resolve = section.timeout_resolve / 1000.0
        if self.status is Status.VALID:
            return max(resolve, self.hold.valid / 1000.0)
        return resolve


# --- choosing an address -----------------------------------------------------------------


def family(ip: str) -> str:
    return "ipv4" if ipaddress.ip_address(ip).version == 4 else "ipv6"


def in_networks(ip: str, networks: Iterable[str]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(net) for net in networks)


def pick(
    records: Sequence[Record], server: model.Server, current: str, taken: set[str]
) -> Record | None:
    """The record a server takes (its current one when still best), None when none is
    usable. `taken`: the addresses other servers of the same name use."""
    prefer = server.resolve_prefer or "ipv6"
    allow_dup = "allow-dup-ip" in server.resolve_opts
    best: Record | None = None
    best_score = -1
    for item in records:
        score = 8 if family(item.ip) == prefer else 0
        if server.resolve_net and in_networks(item.ip, server.resolve_net):
            score += 4
        if item.ip in taken:
            if not allow_dup:
                continue
        else:
            score += 2
        if item.ip == current:
            score += 1
        if score > best_score:
            best, best_score = item, score
    return best


def srv_targets(slots: Sequence[str], records: Sequence[Record]) -> list[Record | None]:
    """SRV: the record each server follows. `slots`: the target each server followed
    ("" none). A server keeps its target while it is in the answer; new targets go to
    free servers in order; extra targets wait for a free server."""
    by_key = {srv_key(r): r for r in records}
    kept: list[Record | None] = [by_key.get(slot) if slot else None for slot in slots]
    used = {srv_key(r) for r in kept if r is not None}
    waiting = [r for key, r in by_key.items() if key not in used]
    for index, item in enumerate(kept):
        if item is None and waiting:
            kept[index] = waiting.pop(0)
    return kept


def srv_key(item: Record) -> str:
    return f"{item.target}:{item.port}"


def srv_weight(weight: int) -> int:
    """An SRV weight (0..65535) as a server weight (0..256), 0 staying 0."""
    return min((weight + 255) // 256, SERVER_WEIGHT_MAX)


# --- the commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAddr:
    """The server's address (and port) changes: `by` names the answer's source."""

    server: str
    addr: str
    port: int | None
    by: str


@dataclass(frozen=True, slots=True)
class SetWeight:
    server: str
    weight: int


@dataclass(frozen=True, slots=True)
class EnterMaint:
    """Maintenance for want of an address (RMAINT); the address is cleared."""

    server: str
    reason: str


@dataclass(frozen=True, slots=True)
class LeaveMaint:
    """The name resolves again."""

    server: str


Command = SetAddr | SetWeight | EnterMaint | LeaveMaint


@dataclass(slots=True)
class Outcome:
    """What applying commands asks of the shell: connections to start, log lines, and
    the servers whose idle connections must be dropped (their address changed)."""

    goes: list[Go] = field(default_factory=list)
    messages: list[LogMessage] = field(default_factory=list)
    drop_idle: list[int] = field(default_factory=list)


def plan_addresses(
    servers: Sequence[ServerState], resolution: Resolution, by: str, now: float
) -> list[Command]:
    """The commands for servers that share one name (a `server`, or the servers of a
    `server-template`), after the resolution recorded its latest answer."""
    if resolution.status is Status.NONE:
        return []
    if resolution.status is not Status.VALID:
        reason = resolution.failure(now)
        if reason is None:
            return []
        return [EnterMaint(s.name, reason) for s in servers if not s.resolution_maint]
    records = resolution.records()
    if servers and servers[0].config.address.host.startswith("_"):
        return _plan_srv(servers, resolution, by)
    commands: list[Command] = []
    current = {s.name: s.addr for s in servers}
    for server in servers:
        taken = {addr for name, addr in current.items() if name != server.name and addr}
        chosen = pick(records, server.config, current[server.name], taken)
        if chosen is None:
            if not server.resolution_maint:
                commands.append(EnterMaint(server.name, NO_IP))
            current[server.name] = ""
            continue
        if chosen.ip != server.addr:
            commands.append(SetAddr(server.name, chosen.ip, server.port, by))
        if server.resolution_maint:
            commands.append(LeaveMaint(server.name))
        current[server.name] = chosen.ip
    return commands


def _plan_srv(servers: Sequence[ServerState], resolution: Resolution, by: str) -> list[Command]:
    followed = resolution.followed
    slots = [followed.get(s.name, "") for s in servers]
    commands: list[Command] = []
    for server, item in zip(servers, srv_targets(slots, resolution.records()), strict=True):
        if item is None:
            followed.pop(server.name, None)
            if not server.resolution_maint:
                commands.append(EnterMaint(server.name, SRV_REMOVED))
            continue
        followed[server.name] = srv_key(item)
        if item.ip != server.addr or item.port != server.port:
            commands.append(SetAddr(server.name, item.ip, item.port, by))
        weight = srv_weight(item.weight or 0)
        ignore = "ignore-weight" in server.config.resolve_opts
        if not ignore and weight != server.weight:
            commands.append(SetWeight(server.name, weight))
        if server.resolution_maint:
            commands.append(LeaveMaint(server.name))
    return commands


def apply(backend: Backend, commands: Sequence[Command], now: float) -> Outcome:
    """Carry commands out on the model, with HAProxy's log lines."""
    outcome = Outcome()
    servers = {s.name: s for s in backend.servers}
    for command in commands:
        server = servers.get(command.server)
        if server is None:
            continue  # deleted at run time meanwhile
        if isinstance(command, SetAddr):
            _set_addr(backend, server, command, outcome)
        elif isinstance(command, SetWeight):
            server.weight = command.weight
            outcome.goes.extend(backend.changed())
        elif isinstance(command, EnterMaint):
            _enter_maint(backend, server, command.reason, now, outcome)
        else:
            _leave_maint(backend, server, now, outcome)
    return outcome


def _set_addr(backend: Backend, server: ServerState, command: SetAddr, outcome: Outcome) -> None:
    old = server.addr or "(none)"
    if server.set_addr(command.addr, command.port):
        outcome.drop_idle.append(server.id)
    if old != command.addr:
        who = f"{backend.name}/{server.name}"
        text = f"{who} changed its IP from {old} to {command.addr} by {command.by}."
        outcome.messages.append(LogMessage(Severity.NOTICE, text))


def _enter_maint(
    backend: Backend, server: ServerState, reason: str, now: float, outcome: Outcome
) -> None:
    requeued_before = backend.requeued
    sessions = server.cur_sess
    server.resolution_maint = True
    server.set_addr("", server.port)
    server.last_change = now
    outcome.drop_idle.append(server.id)
    outcome.goes.extend(backend.changed())
    active, backups = count_usable(backend.servers)
    text = (
        f"Server {backend.name}/{server.name} is going DOWN for maintenance ({reason}). "
        f"{active} active and {backups} backup servers left. {sessions} sessions active, "
        f"{backend.requeued - requeued_before} requeued, {server.queued} remaining in queue."
    )
    outcome.messages.append(LogMessage(Severity.ALERT, text))
    if not backend.has_server:
        kind = "proxy" if backend.proxy.is_frontend else "backend"
        outcome.messages.append(backend_down_message(backend.name, kind))


def _leave_maint(backend: Backend, server: ServerState, now: float, outcome: Outcome) -> None:
    server.resolution_maint = False
    server.last_change = now
    outcome.goes.extend(backend.changed())
    health = "UP" if server.up else "DOWN"
    admin = server.admin.name if server.admin is not AdminState.READY else "READY"
    fqdn = server.config.address.host
    who = f"Server {backend.name}/{server.name}"
    for text in (
        f"{who} ('{fqdn}') is {health}/{admin} (resolves again).",
        f"{who} administratively READY thanks to valid DNS answer.",
    ):
        outcome.messages.append(LogMessage(Severity.NOTICE, text))
