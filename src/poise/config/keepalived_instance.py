"""`vrrp_instance NAME { ... }`: one virtual router, read statement by statement into a
draft (keepalived_instance_complete.py then completes it with the `global_defs` defaults
and checks it as a whole).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from poise.config import keepalived_keywords as kw
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.keepalived_lexer import Node
from poise.config.keepalived_model import (
    TrackInterface,
    TrackScript,
    VirtualAddress,
)
from poise.config.keepalived_routes import parse_route, parse_rule, read_block
from poise.config.keepalived_values import (
    Problem,
    arity,
    boolean,
    flag_args,
    integer,
    ip_address,
    ip_interface,
    ipv4,
    list_items,
    no_args,
    notify_command,
    seconds,
    weight,
)
from poise.config.keywords import did_you_mean
from poise.config.model import Where

NOTIFY_FIELDS = {
    "notify_master": "master",
    "notify_backup": "backup",
    "notify_fault": "fault",
    "notify_stop": "stop",
    "notify": "any",
}


@dataclass(slots=True)
class InstanceDraft:
    name: str
    where: Where
    values: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Where] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)


def read_instance(node: Node, diagnostics: list[Diagnostic]) -> InstanceDraft:
    """A draft of the instance: every statement that could be read, every problem reported."""
    draft = InstanceDraft(node.words[1], node.where)
    for child in node.children or ():
        keyword = child.keyword
        try:
            if keyword in kw.INSTANCE:
                _HANDLERS[keyword](draft, child, diagnostics)
                draft.places[keyword] = child.where
            elif keyword in kw.INSTANCE_MAIL:
                diagnostics.append(warning(child.where, "poise sends no mail: ignored", keyword))
            elif keyword in kw.INSTANCE_MEANINGLESS:
                diagnostics.append(warning(child.where, kw.INSTANCE_MEANINGLESS[keyword], keyword))
            elif keyword in kw.INSTANCE_UNIMPLEMENTED:
                raise Problem("this Keepalived keyword is not implemented yet in poise")
            else:
                raise Problem(
                    "unknown keyword in vrrp_instance" + did_you_mean(keyword, kw.INSTANCE)
                )
            if child.children is not None and keyword not in _BLOCKS:
                raise Problem("does not open a block")
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), keyword))
    return draft


def _set(name: str, parse: Callable[[Node], Any]) -> Callable[[InstanceDraft, Node, Any], None]:
    def handler(draft: InstanceDraft, node: Node, _diagnostics: Any) -> None:
        draft.values[name] = parse(node)

    return handler


def _state(node: Node) -> bool:
    (value,) = arity(node, 1)
    if value not in ("MASTER", "BACKUP"):
        raise Problem(f"state '{value}' is neither MASTER nor BACKUP")
    return value == "MASTER"


def _block(node: Node) -> tuple[Node, ...]:
    no_args(node)
    if node.children is None:
        raise Problem("expects a block: { ... }")
    return node.children


def _authentication(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    kind: str | None = None
    password: str | None = None
    for child in _block(node):
        try:
            if child.keyword == "auth_type":
                (kind,) = arity(child, 1)
                if kind == "AH":
                    raise Problem("IPSEC-AH authentication is not implemented yet in poise")
                if kind != "PASS":
                    raise Problem(f"auth_type '{kind}' is neither PASS nor AH")
            elif child.keyword == "auth_pass":
                password = " ".join(arity(child, 1, -1))
                if len(password.encode("utf-8", "surrogatepass")) > 8:
                    diagnostics.append(
                        warning(child.where, "only the first 8 characters are used", "auth_pass")
                    )
            else:
                raise Problem(
                    "unknown keyword in authentication"
                    + did_you_mean(child.keyword, kw.AUTHENTICATION)
                )
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), child.keyword))
    if password is None:
        raise Problem("authentication without auth_pass")
    draft.values["auth_pass"] = password.encode("utf-8", "surrogatepass")[:8].ljust(8, b"\0")


def virtual_address(node: Node) -> VirtualAddress:
    words = node.words
    interface, given = ip_interface(words[0])
    options: dict[str, Any] = {}
    index = 1
    while index < len(words):
        option = words[index]
        if option == "-nodad":  # Keepalived adds IPv6 addresses with nodad unless told
            options["dad"] = interface.version == 6
            index += 1
            continue
        if option in kw.VIP_OPTIONS_UNIMPLEMENTED:
            raise Problem(f"'{option}' on a virtual address is not implemented yet in poise")
        if option not in kw.VIP_OPTIONS:
            raise Problem(
                f"unknown option '{option}' on a virtual address"
                + did_you_mean(option, kw.VIP_OPTIONS)
            )
        if index + 1 >= len(words):
            raise Problem(f"'{option}' expects a value")
        value = words[index + 1]
        if option == "brd":
            if interface.version == 6:
                raise Problem("'brd' on an IPv6 address: IPv6 has no broadcast")
            options["broadcast"] = ipv4(value, "broadcast address")
        elif option == "scope":
            if value not in kw.SCOPES:
                raise Problem(f"scope '{value}' is not one of {', '.join(sorted(kw.SCOPES))}")
            options["scope"] = value
        elif option == "label":
            options["label"] = value
        else:
            options["dev"] = value
        index += 2
    return VirtualAddress(interface, prefix_given=given, where=node.where, **options)


def _virtual_ipaddress(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    key = node.keyword  # virtual_ipaddress or virtual_ipaddress_excluded
    addresses: list[VirtualAddress] = list(draft.values.get(key, ()))
    _block(node)
    for child in list_items(node, "the virtual address", diagnostics):
        try:
            address = virtual_address(child)
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), child.words[0]))
            continue
        if any(a.ip == address.ip for a in addresses):
            # Keepalived 2.2.7 keeps both (alloc_ipaddress): the advert carries the address
            # twice, and the second add finds it there. `keepalived -t` says nothing.
            diagnostics.append(
                warning(
                    child.where,
                    f"virtual address {address.ip} listed twice: advertised twice and added "
                    "once, as Keepalived does",
                    child.words[0],
                )
            )
        addresses.append(address)
    if len(addresses) > 255 and key == "virtual_ipaddress":
        raise Problem("more than 255 virtual addresses (an advert carries at most 255)")
    draft.values[key] = tuple(addresses)


def _routes(
    key: str, parse: Callable[[Node, list[str]], Any]
) -> Callable[[InstanceDraft, Node, Any], None]:
    def handler(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
        def report(child: Node, exc: Problem) -> None:
            diagnostics.append(error(child.where, str(exc), node.keyword))

        def note(child: Node, text: str) -> None:
            diagnostics.append(warning(child.where, text, node.keyword))

        found = read_block(_block_node(node), parse, report, note)
        draft.values[key] = tuple(draft.values.get(key, ())) + tuple(found)

    return handler


def _block_node(node: Node) -> Node:
    _block(node)
    return node


IFNAMSIZ = 16  # linux/if.h: an interface name has at most 15 characters


def _use_vmac(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    """`use_vmac [NAME] [MAC]`: a macvlan interface carrying the virtual router MAC."""
    args = arity(node, 0, 2)
    name = ""
    for arg in args:
        if _mac(arg) is not None:
            draft.values["vmac_mac"] = _mac(arg)
        elif len(arg) < IFNAMSIZ and "/" not in arg and not arg.isspace():
            name = arg
        else:  # Keepalived's words, and it goes on with the default name
            diagnostics.append(
                warning(
                    node.where,
                    f"VMAC interface name '{arg}' too long or invalid characters - ignoring",
                    "use_vmac",
                )
            )
    draft.values["use_vmac"] = name  # "" until the VRID is known: vrrp.VRID


def _mac(text: str) -> bytes | None:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return None
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        return None


def _weight_options(words: tuple[str, ...]) -> tuple[int | None, bool | None]:
    """`NAME [weight W] [reverse|noreverse|no_reverse]`."""
    found_weight: int | None = None
    reverse: bool | None = None
    index = 1
    while index < len(words):
        word = words[index]
        if word == "weight" and index + 1 < len(words):
            found_weight = weight(words[index + 1])
            index += 2
        elif word in ("reverse", "noreverse", "no_reverse"):
            reverse = word == "reverse"
            index += 1
        else:
            raise Problem(f"unexpected '{word}' (expects: weight W [reverse])")
    return found_weight, reverse


def _track_script(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    tracked = list(draft.values.get("track_script", ()))
    _block(node)
    for child in list_items(node, "the script", diagnostics):
        try:
            found_weight, reverse = _weight_options(child.words)
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), child.words[0]))
            continue
        tracked.append(TrackScript(child.words[0], found_weight, reverse, child.where))
    draft.values["track_script"] = tuple(tracked)


def _track_interface(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    tracked = list(draft.values.get("track_interface", ()))
    _block(node)
    for child in list_items(node, "the interface", diagnostics):
        try:
            found_weight, reverse = _weight_options(child.words)
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), child.words[0]))
            continue
        tracked.append(
            TrackInterface(child.words[0], found_weight or 0, bool(reverse), child.where)
        )
    draft.values["track_interface"] = tuple(tracked)


def _unicast_peer(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    peers = list(draft.values.get("unicast_peer", ()))
    _block(node)
    for child in list_items(node, "the peer", diagnostics):
        try:
            if len(child.words) > 1:
                raise Problem(
                    f"'{child.words[1]}' on a unicast peer is not implemented yet in poise"
                )
            peers.append(ip_address(child.words[0], "unicast peer"))
            draft.places.setdefault(f"peer {peers[-1]}", child.where)
        except Problem as exc:
            diagnostics.append(error(child.where, str(exc), child.words[0]))
    draft.values["unicast_peer"] = tuple(peers)


def _notify(draft: InstanceDraft, node: Node, _diagnostics: Any) -> None:
    draft.notify[NOTIFY_FIELDS[node.keyword]] = notify_command(node)


def _flag(name: str, value: bool | int) -> Callable[[InstanceDraft, Node, Any], None]:
    def handler(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
        flag_args(node, diagnostics)
        draft.values[name] = value

    return handler


def _version(draft: InstanceDraft, node: Node, diagnostics: list[Diagnostic]) -> None:
    """`version 2|3`. Keepalived 2.2.7 reads it in order: once the instance is IPv6 (an
    IPv6 virtual address or `native_ipv6` above it), `version 2` is ignored with its
    warning; above them it stands, and VRRPv2 is sent over IPv6."""
    version = integer(arity(node, 1)[0], 2, 3, "version")
    if version == 2 and _ipv6_so_far(draft):
        diagnostics.append(
            warning(
                node.where,
                f"({draft.name}) vrrp_version 2 conflicts with configured or deduced "
                "version 3; ignoring.",
                "version",
            )
        )
        return
    draft.values["version"] = version


def _ipv6_so_far(draft: InstanceDraft) -> bool:
    vips = draft.values.get("virtual_ipaddress", ())
    return draft.values.get("family") == 6 or bool(vips and vips[0].version == 6)


def _one(parse: Callable[[str], Any]) -> Callable[[Node], Any]:
    return lambda node: parse(arity(node, 1)[0])


_BLOCKS = frozenset(
    (
        "authentication",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "track_script",
        "track_interface",
        "unicast_peer",
        "virtual_routes",
        "virtual_rules",
    )
)
_HANDLERS: dict[str, Callable[[InstanceDraft, Node, Any], None]] = {
    "state": _set("initial_master", _state),
    "interface": _set("interface", _one(str)),
    "virtual_router_id": _set(
        "virtual_router_id", _one(lambda v: integer(v, 1, 255, "virtual_router_id"))
    ),
    "priority": _set("priority", _one(lambda v: integer(v, 1, 255, "priority"))),
    "advert_int": _set("advert_int", _one(lambda v: seconds(v, 0.001, 255, "advert_int"))),
    "version": _version,
    "authentication": _authentication,
    "virtual_ipaddress": _virtual_ipaddress,
    "virtual_ipaddress_excluded": _virtual_ipaddress,
    "native_ipv6": _flag("family", 6),
    "track_script": _track_script,
    "track_interface": _track_interface,
    "dont_track_primary": _flag("dont_track_primary", True),
    "nopreempt": _flag("nopreempt", True),
    "preempt": _flag("nopreempt", False),
    "preempt_delay": _set("preempt_delay", _one(lambda v: seconds(v, 0, 1000, "preempt_delay"))),
    "unicast_src_ip": _set("unicast_src_ip", _one(ip_address)),
    "mcast_src_ip": _set("unicast_src_ip", _one(ip_address)),
    "unicast_peer": _unicast_peer,
    "garp_master_delay": _set("garp_master_delay", _one(lambda v: seconds(v, 0, 86400))),
    "garp_master_repeat": _set("garp_master_repeat", _one(lambda v: integer(v, 0, 255))),
    "garp_master_refresh": _set("garp_master_refresh", _one(lambda v: seconds(v, 0, 86400))),
    "garp_master_refresh_repeat": _set(
        "garp_master_refresh_repeat", _one(lambda v: integer(v, 1, 255))
    ),
    "garp_lower_prio_delay": _set("garp_lower_prio_delay", _one(lambda v: seconds(v, 0, 86400))),
    "garp_lower_prio_repeat": _set("garp_lower_prio_repeat", _one(lambda v: integer(v, 0, 255))),
    "lower_prio_no_advert": _set("lower_prio_no_advert", boolean),
    "higher_prio_send_advert": _set("higher_prio_send_advert", boolean),
    "check_unicast_src": _flag("check_unicast_src", True),
    "accept": _flag("accept", True),
    "no_accept": _flag("accept", False),
    "use_vmac": _use_vmac,
    "vmac_xmit_base": _flag("vmac_xmit_base", True),
    "virtual_routes": _routes("virtual_routes", parse_route),
    "virtual_rules": _routes("virtual_rules", parse_rule),
    "skip_check_adv_addr": _set("skip_check_adv_addr", boolean),
    **{name: _notify for name in NOTIFY_FIELDS},
}
