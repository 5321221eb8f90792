"""`virtual_server` and `virtual_server_group` blocks of keepalived.conf (keepalived.conf(5),
"LVS CONFIGURATION"), read into keepalived_lvs_model.py's VirtualServers.

Keepalived hands these to the kernel's IPVS; this machine's kernel has none, so `poise vrrp`
serves them with its own TCP proxy (vrrp/lvs.py). What that cannot do is refused here with
the reason: `lb_kind DR|TUN` (the kernel forwards packets with the client's addresses),
`fwmark` services (marks set by the firewall, which a socket does not see), a service
without a port (every port). Where Keepalived 2.2.7 corrects a value and goes on
(`quorum 0`, `hysteresis` not below `quorum`, no `protocol`, a real server listed twice),
poise does the same, with Keepalived's words as a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from poise.config import keepalived_lvs_keywords as kw
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.keepalived_lexer import Node
from poise.config.keepalived_lvs_checks import (
    UINT_MAX,
    RealServerDraft,
    address,
    complete_real_server,
    inherited,
    nat_only,
    port,
    proxy_version,
    read_real_server,
    unknown,
)
from poise.config.keepalived_lvs_model import (
    DEFAULT_PERSISTENCE_TIMEOUT,
    GroupEntry,
    IPAddress,
    Scheduler,
    VirtualServer,
    VirtualServerGroup,
)
from poise.config.keepalived_values import Problem, arity, integer, list_items, notify_command
from poise.config.model import Where

MAX_GROUP_ADDRESSES = 1024  # a range wider than this is refused (one listener per address)
SCHEDULER_NAMES = {s.value: s for s in Scheduler}
NO_FWMARK = (
    "a firewall mark is set on packets by the kernel's firewall and read by the kernel's "
    "IPVS; a user-space balancer's sockets never see it: list the addresses and ports "
    "instead (virtual_server IP PORT, or a virtual_server_group of IP PORT lines)"
)
NO_PORT = (
    "without a port this is a persistent service on every port, which only the kernel's "
    "IPVS can take: give the port"
)


@dataclass(slots=True)
class VirtualServerDraft:
    where: Where
    endpoint: tuple[IPAddress, int | None] | None = None
    group: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Where] = field(default_factory=dict)
    real_servers: list[RealServerDraft] = field(default_factory=list)


def read_group(node: Node, diagnostics: list[Diagnostic]) -> VirtualServerGroup:
    """`virtual_server_group NAME { IP [PORT] | RANGE [PORT] | fwmark N [inet|inet6] }`."""
    (name,) = arity(node, 1)
    entries: list[GroupEntry] = []
    fwmarks: list[int] = []
    for item in list_items(node, "the entry", diagnostics):
        try:
            words = item.words
            if words[0] == "fwmark":
                args = arity(item, 1, 2)
                fwmarks.append(integer(args[0], 1, UINT_MAX, "fwmark"))
                if len(args) > 1 and args[1] not in ("inet", "inet6"):
                    raise Problem(f"unexpected argument '{args[1]}' (inet or inet6)")
                continue
            if len(words) > 2:
                raise Problem(f"unexpected argument '{words[2]}'")
            addresses = address_range(words[0])
            entries.append(
                GroupEntry(addresses, port(words[1]) if len(words) > 1 else None, item.where)
            )
        except Problem as exc:
            diagnostics.append(error(item.where, str(exc), "virtual_server_group"))
    return VirtualServerGroup(name, tuple(entries), tuple(fwmarks), node.where)


def address_range(text: str) -> tuple[IPAddress, ...]:
    """`A.B.C.D`, `A.B.C.D-E` (the last part runs to E), `A.B.C.D-E.F.G.H`, `A.B.C.D/NN`
    and their IPv6 forms (`ae00::2-9`: the last group runs to 9, in hex)."""
    if "/" in text:
        try:
            network: IPv4Network | IPv6Network = (
                IPv6Network(text, strict=False) if ":" in text else IPv4Network(text, strict=False)
            )
        except ValueError:
            raise Problem(f"'{text}' is not an address range") from None
        if network.num_addresses > MAX_GROUP_ADDRESSES:
            raise Problem(f"range '{text}' holds more than {MAX_GROUP_ADDRESSES} addresses")
        return tuple(network)
    first_text, dash, last_text = text.partition("-")
    first = address(first_text, "address")
    if not dash:
        return (first,)
    if "." in last_text or (":" in last_text and isinstance(first, IPv6Address)):
        last = address(last_text, "address")
    else:
        sep = ":" if isinstance(first, IPv6Address) else "."
        base = 16 if isinstance(first, IPv6Address) else 10
        try:
            end = int(last_text, base)
        except ValueError:
            raise Problem(f"'{text}' is not an address range") from None
        if isinstance(first, IPv6Address):
            high = int(first) & ~0xFFFF
            if end > 0xFFFF:
                raise Problem(f"'{text}' is not an address range")
            last = IPv6Address(high | end)
        else:
            if end > 255:
                raise Problem(f"'{text}' is not an address range")
            last = ip_address(first_text.rsplit(sep, 1)[0] + f".{end}")
    if type(last) is not type(first) or int(last) < int(first):
        raise Problem(f"'{text}' is not an address range (its end is before its start)")
    if int(last) - int(first) >= MAX_GROUP_ADDRESSES:
        raise Problem(f"range '{text}' holds more than {MAX_GROUP_ADDRESSES} addresses")
    kind = type(first)
    return tuple(kind(n) for n in range(int(first), int(last) + 1))


def read_virtual_server(node: Node, diagnostics: list[Diagnostic]) -> VirtualServerDraft:
    draft = VirtualServerDraft(node.where)
    args = arity(node, 1, 2)
    if args[0] == "fwmark":
        integer(arity(node, 2)[1], 1, UINT_MAX, "fwmark")
        raise Problem(f"virtual_server fwmark: {NO_FWMARK}")
    if args[0] == "group":
        draft.group = arity(node, 2)[1]
    else:
        draft.endpoint = (
            address(args[0], "virtual server address"),
            port(args[1]) if len(args) > 1 else None,
        )
    if node.children is None:
        raise Problem("expects a block: { ... }")
    values = draft.values
    for child in node.children:
        keyword = child.keyword
        try:
            if keyword == "real_server":
                draft.real_servers.append(read_real_server(child, diagnostics))
                continue
            if child.children is not None:
                raise Problem("does not open a block")
            if keyword in kw.VIRTUAL_SERVER_MEANINGLESS:
                diagnostics.append(
                    warning(child.where, kw.VIRTUAL_SERVER_MEANINGLESS[keyword], keyword)
                )
                continue
            if keyword in kw.VIRTUAL_SERVER_UNIMPLEMENTED:
                raise Problem("this Keepalived keyword is not implemented yet in poise")
            if keyword not in kw.VIRTUAL_SERVER:
                raise unknown(keyword, "virtual_server", kw.VIRTUAL_SERVER)
            draft.places[keyword] = child.where
            _setting(child, values, diagnostics)
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), keyword))
    return draft


def _setting(node: Node, values: dict[str, Any], diagnostics: list[Diagnostic]) -> None:
    keyword = node.keyword
    if keyword in kw.INHERITED:
        inherited(node, values)
    elif keyword in ("lb_algo", "lvs_sched"):
        name = arity(node, 1)[0]
        if name in kw.SCHEDULERS_REFUSED:
            raise Problem(f"{name}: {kw.SCHEDULERS_REFUSED[name]}")
        if name not in SCHEDULER_NAMES:
            # Keepalived 2.2.7 warns and keeps its default, wlc
            diagnostics.append(
                warning(
                    node.where,
                    f"Invalid lvs_scheduler '{name}' - ignoring (the scheduler is wlc; "
                    f"known: {' '.join(SCHEDULER_NAMES)})",
                    keyword,
                )
            )
            return
        values["scheduler"] = SCHEDULER_NAMES[name]
    elif keyword in ("lb_kind", "lvs_method", "sorry_server_lvs_method"):
        nat_only(node)
    elif keyword == "persistence_timeout":
        args = arity(node, 0, 1)
        values[keyword] = (
            integer(args[0], 1, UINT_MAX, keyword) if args else DEFAULT_PERSISTENCE_TIMEOUT
        )
    elif keyword == "persistence_granularity":
        values[keyword] = _granularity(arity(node, 1)[0])
    elif keyword == "protocol":
        protocol = arity(node, 1)[0].upper()
        if protocol == "SCTP":
            raise Problem("SCTP is not implemented in poise (TCP and UDP are served)")
        if protocol not in ("TCP", "UDP"):
            raise Problem(f"unknown protocol '{protocol}' (TCP, UDP or SCTP)")
        values[keyword] = protocol
    elif keyword in ("ha_suspend", "omega", "sorry_server_inhibit", "ops"):
        arity(node, 0)
        values[keyword] = True
    elif keyword == "quorum":
        quorum = integer(arity(node, 1)[0], 0, UINT_MAX, keyword)
        if quorum == 0:
            diagnostics.append(
                warning(node.where, "Quorum 0 must be in [1, 4294967295]. Setting to 1.", keyword)
            )
            quorum = 1
        values[keyword] = quorum
    elif keyword == "hysteresis":
        values[keyword] = integer(arity(node, 1)[0], 0, UINT_MAX, keyword)
    elif keyword in ("quorum_up", "quorum_down"):
        values[keyword] = notify_command(node)
    elif keyword == "sorry_server":
        args = arity(node, 1, 2)
        values[keyword] = (
            address(args[0], "sorry server address"),
            port(args[1]) if len(args) > 1 else None,
        )


def _granularity(text: str) -> int:
    """`persistence_granularity NETMASK`: an IPv4 mask, or an IPv6 prefix length."""
    if "." in text:
        try:
            return IPv4Network(f"0.0.0.0/{text}").prefixlen
        except ValueError:
            raise Problem(f"'{text}' is not a netmask") from None
    return integer(text, 1, 128, "persistence_granularity")


def complete_virtual_servers(
    drafts: list[VirtualServerDraft],
    groups: dict[str, VirtualServerGroup],
    diagnostics: list[Diagnostic],
) -> tuple[VirtualServer, ...]:
    out: list[VirtualServer] = []
    seen: dict[tuple[IPAddress, int, str], Where] = {}
    for draft in drafts:
        try:
            vs = _complete(draft, groups, diagnostics)
        except Problem as exc:
            diagnostics.append(error(draft.where, str(exc), "virtual_server"))
            continue
        for ip, vs_port in vs.endpoints:
            key = (ip, vs_port, vs.protocol)
            if key in seen:
                diagnostics.append(
                    error(
                        draft.where,
                        f"{vs.protocol} service [{ip}]:{vs_port} is already served by the "
                        f"virtual_server at {seen[key]}",
                        "virtual_server",
                    )
                )
            seen.setdefault(key, draft.where)
        out.append(vs)
    return tuple(out)


def _complete(
    draft: VirtualServerDraft,
    groups: dict[str, VirtualServerGroup],
    diagnostics: list[Diagnostic],
) -> VirtualServer:
    values = draft.values
    endpoints: list[tuple[IPAddress, int | None]] = []
    if draft.group is not None:
        group = groups.get(draft.group)
        if group is None:
            raise Problem(f"no virtual_server_group named '{draft.group}'")
        if group.fwmarks:
            raise Problem(f"virtual_server_group '{group.name}' has fwmark entries: {NO_FWMARK}")
        endpoints = [(ip, e.port) for e in group.entries for ip in e.addresses]
        name = f"[{group.name}]"
    else:
        assert draft.endpoint is not None
        endpoints = [draft.endpoint]
        name = f"[{draft.endpoint[0]}]"
    if not endpoints:
        raise Problem(f"virtual_server_group '{draft.group}' has no address")
    if any(p is None for _, p in endpoints):
        raise Problem(NO_PORT)
    protocol = values.get("protocol")
    if protocol is None:
        diagnostics.append(
            warning(
                draft.where,
                f"Virtual server {name}: no protocol set - defaulting to UDP (as Keepalived "
                "2.2.7 and the kernel do)",
                "virtual_server",
            )
        )
        protocol = "UDP"
    families = {isinstance(ip, IPv4Address) for ip, _ in endpoints}
    ports = {p for _, p in endpoints if p is not None}
    vs_port = ports.pop() if len(ports) == 1 else 0
    name += f":{protocol.lower()}:{vs_port}"
    if values.get("ops"):
        if protocol == "UDP":
            raise Problem(
                "ops (one-packet scheduling, each datagram to its own real server) is not "
                "implemented yet in poise: its UDP relay keeps a client on one real server"
            )
        diagnostics.append(
            warning(
                draft.places["ops"],
                f"Virtual server {name}: one packet scheduling requires UDP - resetting",
                "ops",
            )
        )
    if protocol == "UDP":
        for keyword in kw.POISE_OWN:
            if keyword in values or any(keyword in rs.values for rs in draft.real_servers):
                raise Problem(
                    f"{keyword}: the PROXY protocol opens a TCP connection's stream; a UDP "
                    "virtual server relays datagrams"
                )
    quorum = values.get("quorum", 1)
    hysteresis = values.get("hysteresis", 0)
    if hysteresis >= quorum:
        if "hysteresis" in values:
            diagnostics.append(
                warning(
                    draft.places["hysteresis"],
                    f"Virtual server {name}: hysteresis {hysteresis} >= quorum {quorum}; "
                    "setting hysteresis to 0",
                    "hysteresis",
                )
            )
        hysteresis = 0
    defaults = {k: v for k, v in values.items() if k in kw.INHERITED}
    real_servers = []
    places: dict[tuple[IPAddress, int], Where] = {}
    for rs_draft in draft.real_servers:
        rs = complete_real_server(rs_draft, defaults, vs_port, diagnostics)
        if rs.port == 0:
            diagnostics.append(
                error(rs.where, "a real server needs a port here (the group's vary)", "real_server")
            )
            continue
        if isinstance(rs.address, IPv4Address) not in families or len(families) > 1:
            diagnostics.append(
                error(
                    rs.where,
                    f"real server {rs.address} and the virtual server differ in address family "
                    "(only tunnelled real servers may, and poise does not tunnel)",
                    "real_server",
                )
            )
            continue
        key = (rs.address, rs.port)
        if key in places:
            diagnostics.append(
                warning(
                    rs.where,
                    f"VS {name}: real server {rs.label} is duplicated - removing second rs",
                    "real_server",
                )
            )
            continue
        places[key] = rs.where
        real_servers.append(rs)
    sorry = values.get("sorry_server")
    if sorry is not None and sorry[1] is None:
        sorry = (sorry[0], vs_port)
    return VirtualServer(
        tuple((ip, p) for ip, p in endpoints if p is not None),
        name,
        protocol=protocol,
        scheduler=values.get("scheduler", Scheduler.WLC),
        persistence_timeout=values.get("persistence_timeout"),
        persistence_granularity=values.get("persistence_granularity"),
        quorum=quorum,
        hysteresis=hysteresis,
        quorum_up=values.get("quorum_up"),
        quorum_down=values.get("quorum_down"),
        alpha=values.get("alpha", False),
        omega=values.get("omega", False),
        ha_suspend=values.get("ha_suspend", False),
        sorry_server=sorry,
        sorry_server_inhibit=values.get("sorry_server_inhibit", False),
        real_servers=tuple(real_servers),
        group=draft.group,
        proxy_protocol=proxy_version(values),
        where=draft.where,
    )
