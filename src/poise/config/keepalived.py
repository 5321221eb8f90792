"""The keepalived.conf dialect: reads a file (and its includes) into a KeepalivedConfig,
collecting every problem, with the same standard as haproxy.cfg: each one at FILE:LINE
with its keyword, all of them in one run; an unknown keyword gets the nearest known one
as a suggestion; a Keepalived keyword poise does not implement yet is an error saying so;
mail settings are warnings (poise sends no mail). `virtual_server` and `virtual_server_group`
blocks go to keepalived_lvs.py.

Pure: files come through a `Source` (keepalived_lexer.py). What needs the running system
(interfaces, their addresses, script files and their permissions) is checked by
poise.vrrp.system, at `poise check -k` and at start.

Steps: keepalived_lexer.py builds the tree of blocks; this module reads `global_defs`,
`vrrp_script` and `vrrp_sync_group` blocks and hands `vrrp_instance` blocks to
keepalived_instance.py; then the whole is checked: names that refer to each other, and two
instances that would answer the same adverts (same VRID on one interface).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from poise.config import keepalived_keywords as kw
from poise.config.diagnostics import Diagnostic, error, has_errors, warning
from poise.config.keepalived_instance import (
    NOTIFY_FIELDS,
    InstanceDraft,
    read_instance,
    virtual_address,
)
from poise.config.keepalived_instance_complete import complete_instance
from poise.config.keepalived_lexer import Node, Source, read_tree
from poise.config.keepalived_lvs import (
    VirtualServerDraft,
    complete_virtual_servers,
    read_group,
    read_virtual_server,
)
from poise.config.keepalived_lvs_model import VirtualServerGroup
from poise.config.keepalived_model import (
    GlobalDefs,
    KeepalivedConfig,
    Notify,
    SyncGroup,
    VirtualAddress,
    VrrpInstance,
    VrrpScript,
)
from poise.config.keepalived_routes import parse_route, parse_rule, read_block
from poise.config.keepalived_values import (
    Problem,
    arity,
    boolean,
    flag_args,
    integer,
    ip_address,
    ipv4,
    list_items,
    no_args,
    notify_command,
    script_command,
    seconds,
    weight,
)
from poise.config.keywords import did_you_mean
from poise.config.model import NOWHERE, Where

TASK_COMM_LEN = 16  # linux/sched.h: a process name and its NUL

DEFAULT_INTERFACE = "eth0"  # Keepalived's DFLT_INT, for a static address without `dev`


class _Reader:
    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.global_values: dict[str, Any] = {}
        self.scripts: dict[str, VrrpScript] = {}
        self.instances: list[InstanceDraft] = []
        self.groups: list[SyncGroup] = []
        self.virtual_servers: list[VirtualServerDraft] = []
        self.server_groups: dict[str, VirtualServerGroup] = {}
        self.statics: dict[str, list[Any]] = {
            "static_ipaddress": [],
            "static_routes": [],
            "static_rules": [],
        }

    def report(self, node: Node, exc: Problem) -> None:
        self.diagnostics.append(error(node.where, str(exc), node.keyword))

    def top(self, node: Node) -> None:
        keyword = node.keyword
        try:
            if keyword in kw.TOP_UNIMPLEMENTED:
                raise Problem("this Keepalived block is not implemented yet in poise")
            if keyword not in kw.TOP and keyword not in kw.TOP_LVS:
                raise Problem(
                    "unknown keyword at the top level" + did_you_mean(keyword, kw.TOP | kw.TOP_LVS)
                )
            if node.children is None:
                raise Problem("expects a block: { ... }")
            if keyword == "virtual_server":
                self.virtual_servers.append(read_virtual_server(node, self.diagnostics))
                return
            if keyword == "virtual_server_group":
                group = read_group(node, self.diagnostics)
                if group.name in self.server_groups:
                    raise Problem(f"virtual_server_group '{group.name}' is defined twice")
                self.server_groups[group.name] = group
                return
            if keyword == "global_defs":
                no_args(node)
                self.global_defs(node)
                return
            if keyword.startswith("static_"):
                no_args(node)
                self.static(node)
                return
            (name,) = arity(node, 1)
            if keyword == "vrrp_script":
                self.vrrp_script(node, name)
            elif keyword == "vrrp_instance":
                if any(d.name == name for d in self.instances):
                    raise Problem(f"vrrp_instance '{name}' is defined twice")
                self.instances.append(read_instance(node, self.diagnostics))
            else:
                self.sync_group(node, name)
        except Problem as exc:
            self.report(node, exc)

    # -- static_ipaddress, static_routes, static_rules ------------------------------------

    def static(self, node: Node) -> None:
        """Set at start-up whatever the state, removed at exit (keepalived.conf(5))."""
        parse = {
            "static_ipaddress": _static_address,
            "static_routes": parse_route,
            "static_rules": parse_rule,
        }[node.keyword]

        def report(child: Node, exc: Problem) -> None:
            self.diagnostics.append(error(child.where, str(exc), node.keyword))

        def note(child: Node, text: str) -> None:
            self.diagnostics.append(warning(child.where, text, node.keyword))

        self.statics[node.keyword].extend(read_block(node, parse, report, note))

    # -- global_defs ------------------------------------------------------------------------

    def global_defs(self, node: Node) -> None:
        values = self.global_values
        values.setdefault("where", node.where)
        for child in node.children or ():
            keyword = child.keyword
            try:
                if keyword in kw.GLOBAL_MAIL:
                    self.diagnostics.append(
                        warning(child.where, "poise sends no mail: ignored", keyword)
                    )
                elif keyword in kw.GLOBAL_MEANINGLESS:
                    self.diagnostics.append(
                        warning(child.where, kw.GLOBAL_MEANINGLESS[keyword], keyword)
                    )
                elif keyword in kw.GLOBAL_UNIMPLEMENTED:
                    raise Problem("this Keepalived keyword is not implemented yet in poise")
                elif keyword not in kw.GLOBAL:
                    raise Problem(
                        "unknown keyword in global_defs" + did_you_mean(keyword, kw.GLOBAL)
                    )
                else:
                    if child.children is not None:
                        raise Problem("does not open a block")
                    self.global_value(child, values)
            except Problem as exc:
                self.report(child, exc)

    def global_value(self, node: Node, values: dict[str, Any]) -> None:
        keyword = node.keyword
        if keyword in ("enable_script_security", "vrrp_check_unicast_src"):
            flag_args(node, self.diagnostics)
            values[keyword] = True
        elif keyword == "router_id":
            values["router_id"] = arity(node, 1)[0]
        elif keyword == "vrrp_version":
            values["vrrp_version"] = integer(arity(node, 1)[0], 2, 3, "vrrp_version")
        elif keyword == "script_user":
            args = arity(node, 1, 2)
            values["script_user"] = args[0]
            values["script_group"] = args[1] if len(args) > 1 else None
        elif keyword == "vrrp_mcast_group4":
            group = ipv4(arity(node, 1)[0], "multicast group")
            if not group.is_multicast:
                raise Problem(f"'{group}' is not a multicast address")
            values["vrrp_mcast_group4"] = group
        elif keyword == "vrrp_mcast_group6":
            group6 = ip_address(arity(node, 1)[0], "multicast group")
            if group6.version != 6 or not group6.is_multicast:
                raise Problem(f"'{group6}' is not an IPv6 multicast address")
            values["vrrp_mcast_group6"] = group6
        elif keyword in (
            "vrrp_garp_master_delay",
            "vrrp_garp_master_refresh",
            "vrrp_garp_lower_prio_delay",
        ):
            values[keyword] = seconds(arity(node, 1)[0], 0, 86400, keyword)
        elif keyword == "vrrp_garp_interval":
            values[keyword] = seconds(arity(node, 1)[0], 0, 1, keyword)
        elif keyword == "vrrp_priority":
            # Keepalived warns and keeps the default for a value out of range
            try:
                values[keyword] = integer(arity(node, 1)[0], -20, 19, keyword)
            except Problem as exc:
                self.diagnostics.append(
                    warning(node.where, f"{exc}: invalid vrrp process priority, ignored", keyword)
                )
        elif keyword == "max_auto_priority":  # no value: the highest (99)
            words = arity(node, 0, 1)
            values[keyword] = integer(words[0], -1, 99, keyword) if words else 99
        elif keyword == "min_auto_priority_delay":
            values[keyword] = integer(arity(node, 1)[0], 1, 10_000_000, keyword)
        elif keyword == "vrrp_rt_priority":  # Keepalived brings it into 1..99, and says so
            wanted = integer(arity(node, 1)[0], -(2**31), 2**31 - 1, keyword)
            values[keyword] = min(max(wanted, 1), 99)
            if values[keyword] != wanted:
                bound = "less than minimum 1" if wanted < 1 else "greater than maximum 99"
                self.diagnostics.append(
                    warning(
                        node.where,
                        f"vrrp process real-time priority {wanted} {bound} - setting to "
                        f"{'minimum' if wanted < 1 else 'maximum'}",
                        keyword,
                    )
                )
        elif keyword == "vrrp_rlimit_rttime":
            values[keyword] = integer(arity(node, 1)[0], 1, 2**31 - 1, keyword)
        elif keyword in ("vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs"):
            values[keyword] = integer(arity(node, 1)[0], 0, 2**31 - 1, keyword)
        elif keyword == "vrrp_no_swap":
            no_args(node)
            values[keyword] = True
        elif keyword == "vrrp_cpu_affinity":
            values[keyword] = self.cpu_ids(node)
        elif keyword == "process_names":  # Keepalived's default names, for the VRRP one
            flag_args(node, self.diagnostics)
            values["vrrp_process_name"] = "keepalived_vrrp"
        elif keyword in ("process_name", "vrrp_process_name"):
            values[keyword] = self.process_name(node)
        elif keyword == "vrrp_startup_delay":
            values[keyword] = seconds(arity(node, 1)[0], 0, 3600, keyword)
        elif keyword in ("vrrp_garp_master_repeat", "vrrp_garp_lower_prio_repeat"):
            values[keyword] = integer(arity(node, 1)[0], 0, 255, keyword)
        elif keyword == "vrrp_garp_master_refresh_repeat":
            values[keyword] = integer(arity(node, 1)[0], 1, 255, keyword)
        else:  # vrrp_min_garp and the other booleans
            values[keyword] = boolean(node)

    def process_name(self, node: Node) -> str:
        """A process name, truncated to the kernel's 15 characters with Keepalived's words."""
        (name,) = arity(node, 1)
        if len(name) > TASK_COMM_LEN - 1:
            self.diagnostics.append(
                warning(
                    node.where,
                    f"Process name {name} more than {TASK_COMM_LEN - 1} characters, truncating",
                    node.keyword,
                )
            )
        return name[: TASK_COMM_LEN - 1]

    def cpu_ids(self, node: Node) -> tuple[int, ...]:
        """`vrrp_cpu_affinity ID...`: CPU numbers (no ranges, as Keepalived 2.2.7); one that
        is not a number is dropped with Keepalived's warning."""
        ids: list[int] = []
        for word in arity(node, 1, 1024):
            if word.isdigit():
                ids.append(int(word))
            else:
                self.diagnostics.append(
                    warning(
                        node.where,
                        f"Invalid cpu_id:{word} specified for vrrp process",
                        node.keyword,
                    )
                )
        return tuple(ids)

    def defaults(self) -> GlobalDefs:
        values = dict(self.global_values)
        if values.pop("vrrp_min_garp", False):
            # keepalived.conf(5): one gratuitous ARP, no second set 5 seconds later.
            values.setdefault("vrrp_garp_master_repeat", 1)
            values.setdefault("vrrp_garp_master_delay", 0.0)
        return GlobalDefs(**values)

    # -- vrrp_script ------------------------------------------------------------------------

    def vrrp_script(self, node: Node, name: str) -> None:
        if name in self.scripts:
            raise Problem(f"vrrp_script '{name}' is defined twice")
        values: dict[str, Any] = {}
        for child in node.children or ():
            keyword = child.keyword
            try:
                if keyword not in kw.SCRIPT:
                    raise Problem(
                        "unknown keyword in vrrp_script" + did_you_mean(keyword, kw.SCRIPT)
                    )
                if keyword == "script":
                    values["command"] = script_command(child)
                elif keyword == "interval":
                    values["interval"] = seconds(arity(child, 1)[0], 0.01, 86400, "interval")
                elif keyword == "timeout":
                    values["timeout"] = seconds(arity(child, 1)[0], 0.01, 86400, "timeout")
                elif keyword == "weight":
                    args = arity(child, 1, 2)
                    values["weight"] = weight(args[0])
                    if len(args) > 1:
                        if args[1] != "reverse":
                            raise Problem(f"unexpected argument '{args[1]}'")
                        values["reverse"] = True
                elif keyword in ("rise", "fall"):
                    values[keyword] = integer(arity(child, 1)[0], 1, 1_000_000, keyword)
                elif keyword == "user":
                    args = arity(child, 1, 2)
                    values["user"] = args
                else:
                    no_args(child)
                    values["init_fail"] = True
            except Problem as exc:
                self.report(child, exc)
        command = values.pop("command", None)
        if command is None:
            raise Problem(f"vrrp_script '{name}' has no 'script' line")
        user = values.pop("user", None)
        if user is not None:
            command = replace(command, user=user[0], group=user[1] if len(user) > 1 else None)
        self.scripts[name] = VrrpScript(name, command, where=node.where, **values)

    # -- vrrp_sync_group --------------------------------------------------------------------

    def sync_group(self, node: Node, name: str) -> None:
        if any(g.name == name for g in self.groups):
            raise Problem(f"vrrp_sync_group '{name}' is defined twice")
        members: list[str] = []
        notify: dict[str, Any] = {}
        for child in node.children or ():
            keyword = child.keyword
            try:
                if keyword in kw.SYNC_GROUP_MAIL:
                    self.diagnostics.append(
                        warning(child.where, "poise sends no mail: ignored", keyword)
                    )
                elif keyword in kw.SYNC_GROUP_UNIMPLEMENTED:
                    raise Problem("this Keepalived keyword is not implemented yet in poise")
                elif keyword not in kw.SYNC_GROUP:
                    raise Problem(
                        "unknown keyword in vrrp_sync_group" + did_you_mean(keyword, kw.SYNC_GROUP)
                    )
                elif keyword == "group":
                    no_args(child)
                    for member in list_items(child, "the instance", self.diagnostics):
                        if len(member.words) != 1:
                            raise Problem("one vrrp_instance name per line")
                        members.append(member.words[0])
                else:
                    notify[NOTIFY_FIELDS[keyword]] = notify_command(child)
            except Problem as exc:
                self.report(child, exc)
        self.groups.append(SyncGroup(name, tuple(members), Notify(**notify), node.where))


def _static_address(node: Node, _notes: list[str]) -> VirtualAddress:
    """A static_ipaddress line: a virtual_ipaddress line whose `dev` defaults to Keepalived's
    default interface, eth0 (DFLT_INT)."""
    address = virtual_address(node)
    return address if address.dev is not None else replace(address, dev=DEFAULT_INTERFACE)


def _check(config: KeepalivedConfig, diagnostics: list[Diagnostic]) -> KeepalivedConfig:
    """Names that refer to each other, and instances that would answer the same adverts."""
    instances = list(config.instances)
    by_name = {i.name: i for i in instances}
    seen: dict[tuple[str, int, int, tuple[Any, ...]], VrrpInstance] = {}
    for index, instance in enumerate(instances):
        kept = []
        for tracked in instance.track_script:
            if tracked.name in config.scripts:
                kept.append(tracked)
                continue
            # Keepalived 2.2.7 drops the track and goes on (vrrp_parser.c).
            diagnostics.append(
                warning(
                    tracked.where,
                    f"({instance.name}) track script {tracked.name} not found, ignoring..."
                    + did_you_mean(tracked.name, config.scripts),
                    "track_script",
                )
            )
        if len(kept) != len(instance.track_script):
            instances[index] = replace(instance, track_script=tuple(kept))
        assert instance.interface is not None
        # Unicast instances with different peers may share a VRID (keepalived.conf(5)).
        key = (  # IPv4 and IPv6 instances are independent (RFC 5798 section 7.3)
            instance.interface,
            instance.family,
            instance.virtual_router_id,
            tuple(sorted(map(int, instance.unicast_peer))),
        )
        if key in seen:
            first = seen[key]
            diagnostics.append(
                error(
                    instance.where,
                    f"vrrp_instance '{instance.name}' uses VRID {instance.virtual_router_id} on "
                    f"{instance.interface}, as '{first.name}' does (at {first.where}): adverts "
                    "could not tell them apart",
                    "virtual_router_id",
                )
            )
        else:
            seen[key] = instance
    membership: dict[str, str] = {}
    for group in config.sync_groups:
        if not group.members:
            diagnostics.append(error(group.where, "sync group without members", "group"))
        for member in group.members:
            if member not in by_name:
                diagnostics.append(
                    error(
                        group.where,
                        f"no vrrp_instance named '{member}' for sync group "
                        f"'{group.name}'" + did_you_mean(member, by_name),
                        "group",
                    )
                )
            elif member in membership:
                diagnostics.append(
                    error(
                        group.where,
                        f"vrrp_instance '{member}' is already in sync group '{membership[member]}'",
                        "group",
                    )
                )
            else:
                membership[member] = group.name
    for index, instance in enumerate(instances):
        group_name = membership.get(instance.name)
        if group_name is None:
            continue
        weighted = [t for t in instance.track_script if _script_weight(config, t.name, t.weight)]
        weighted_if = [t for t in instance.track_interface if t.weight]
        if weighted or weighted_if:
            diagnostics.append(
                warning(
                    instance.where,
                    "tracking weights are ignored in a sync group (its "
                    "members must agree on who is master), as Keepalived does",
                    "vrrp_instance",
                )
            )
        instances[index] = replace(
            instance,
            sync_group=group_name,
            track_script=tuple(replace(t, weight=0) for t in instance.track_script),
            track_interface=tuple(replace(t, weight=0) for t in instance.track_interface),
        )
    return replace(config, instances=tuple(instances))


def _script_weight(config: KeepalivedConfig, name: str, override: int | None) -> int:
    if override is not None:
        return override
    script = config.scripts.get(name)
    return script.weight if script else 0


def parse(path: str, source: Source) -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    """Read keepalived.conf at `path` (and what it includes) through `source`. The config
    is None when there is any error; the diagnostics say what and where."""
    nodes, diagnostics = read_tree(path, source)
    reader = _Reader()
    reader.diagnostics = diagnostics
    for node in nodes:
        reader.top(node)
    defaults = reader.defaults()
    instances = []
    for draft in reader.instances:
        instance = complete_instance(draft, defaults, diagnostics)
        if instance is not None:
            instances.append(instance)
    virtual_servers = complete_virtual_servers(
        reader.virtual_servers, reader.server_groups, diagnostics
    )
    if not reader.instances and not virtual_servers and not has_errors(diagnostics):
        # At `global_defs`, or at the top of the file when there is none.
        where = defaults.where if defaults.where != NOWHERE else Where(path, 1)
        diagnostics.append(warning(where, "no vrrp_instance: poise vrrp has nothing to do"))
    config = KeepalivedConfig(
        defaults,
        dict(reader.scripts),
        tuple(instances),
        tuple(reader.groups),
        (path,),
        static_ipaddress=tuple(reader.statics["static_ipaddress"]),
        static_routes=tuple(reader.statics["static_routes"]),
        static_rules=tuple(reader.statics["static_rules"]),
        virtual_servers=virtual_servers,
    )
    config = _check(config, diagnostics)
    if has_errors(diagnostics):
        return None, diagnostics
    return config, diagnostics
