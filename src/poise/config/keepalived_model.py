"""keepalived.conf as `poise vrrp` runs it: pure, immutable data, defaults applied.

Names and defaults are Keepalived's (keepalived.conf(5)); durations are floats of seconds,
as Keepalived writes them (`advert_int 0.1`, `preempt_delay 4.12`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import TYPE_CHECKING

from poise.config.model import NOWHERE, Where

if TYPE_CHECKING:  # keepalived_lvs_model.py imports Command from here
    from poise.config.keepalived_lvs_model import VirtualServer

VRRP_MCAST_GROUP4 = IPv4Address("224.0.0.18")  # RFC 5798 section 5.1.1.2
VRRP_MCAST_GROUP6 = IPv6Address("ff02::12")  # RFC 5798 section 5.1.2.2
IPAddress = IPv4Address | IPv6Address
PRIORITY_OWNER = 255  # RFC 5798 section 5.2.4: the address owner
DEFAULT_PRIORITY = 100  # Keepalived's default `priority`


@dataclass(frozen=True, slots=True)
class Command:
    """A script to run: `script`, `notify_*`. `argv` is the command split as Keepalived
    splits it (spaces separate words, quotes protect them); `user`/`group` None means the
    global `script_user` (or Keepalived's default)."""

    text: str
    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    vrrp_version: int = 2
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    vrrp_mcast_group4: IPv4Address = VRRP_MCAST_GROUP4
    vrrp_mcast_group6: IPv6Address = VRRP_MCAST_GROUP6
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_garp_lower_prio_delay: float | None = None  # None: vrrp_garp_master_delay
    vrrp_garp_lower_prio_repeat: int | None = None  # None: vrrp_garp_master_repeat
    vrrp_min_garp: bool = False
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_startup_delay: float = 0.0
    # The process's tuning, applied at start-up (vrrp/tuning.py)
    vrrp_priority: int | None = None  # nice value, -20..19
    vrrp_no_swap: bool = False  # mlockall
    vrrp_cpu_affinity: tuple[int, ...] = ()
    # Real-time scheduling (SCHED_RR): from the start (`vrrp_rt_priority`), or taken step by
    # step when the loop runs late (`max_auto_priority`, 0 = never; after
    # `min_auto_priority_delay` microseconds), bounded by RLIMIT_RTTIME (`vrrp_rlimit_rttime`,
    # microseconds).
    vrrp_rt_priority: int | None = None
    max_auto_priority: int = 0
    min_auto_priority_delay: int = 1_000_000
    vrrp_rlimit_rttime: int = 10_000
    # The receive buffers of the netlink sockets, commands and link events, in bytes (0:
    # pyroute2's 1 MiB); `_force` sets them past net.core.rmem_max (SO_RCVBUFFORCE).
    vrrp_netlink_cmd_rcv_bufs: int = 0
    vrrp_netlink_cmd_rcv_bufs_force: bool = False
    vrrp_netlink_monitor_rcv_bufs: int = 0
    vrrp_netlink_monitor_rcv_bufs_force: bool = False
    # The process's name (comm: what ps -e, top and pgrep show), at most 15 characters:
    # Keepalived names its parent `process_name` and its VRRP child `vrrp_process_name`;
    # poise vrrp's one process is both, and takes the VRRP one when both are set.
    process_name: str | None = None
    vrrp_process_name: str | None = None
    where: Where = NOWHERE

    @property
    def own_name(self) -> str | None:
        return self.vrrp_process_name or self.process_name

    def mcast_group(self, family: int) -> IPAddress:
        return self.vrrp_mcast_group6 if family == 6 else self.vrrp_mcast_group4


@dataclass(frozen=True, slots=True)
class VrrpScript:
    """`vrrp_script NAME { ... }`: a command run every `interval` seconds; its exit status
    (0 good) passes through HAProxy-like rise/fall counting."""

    name: str
    command: Command
    interval: float = 1.0
    timeout: float | None = None  # None: the interval, as Keepalived
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    where: Where = NOWHERE

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout else self.interval


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """One `virtual_ipaddress` line: address/prefix, and where it goes. An IPv6 one is
    added without duplicate address detection (RFC 5798 section 8.2.1; `-nodad` asks for
    it), and as deprecated when it is a /128, as Keepalived adds it (so that it is never
    picked as a source address)."""

    interface: IPv4Interface | IPv6Interface
    dev: str | None = None
    label: str | None = None
    broadcast: IPv4Address | None = None
    scope: str = "global"
    prefix_given: bool = False
    dad: bool = False  # `-nodad`: IPv6 duplicate address detection wanted
    where: Where = NOWHERE

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip

    @property
    def version(self) -> int:
        return self.interface.version


@dataclass(frozen=True, slots=True)
class NextHop:
    """One path of a multipath route (`nexthop via ADDR dev IF weight W onlink`)."""

    via: IPv4Address | IPv6Address | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """A `virtual_routes` / `static_routes` line, as `ip route add` takes it. `scope` and
    `protocol` None: the kernel's scope, Keepalived's protocol (18, "keepalived")."""

    destination: IPv4Network | IPv6Network
    via: IPv4Address | IPv6Address | None = None
    dev: str | None = None
    src: IPv4Address | IPv6Address | None = None
    table: int = 254  # main
    metric: int | None = None
    scope: int | None = None
    protocol: int | None = None
    kind: str = "unicast"  # or blackhole, unreachable, prohibit, throw
    onlink: bool = False
    nexthops: tuple[NextHop, ...] = ()  # a multipath route (`nexthop ...`, or `via A or B`)
    where: Where = NOWHERE

    @property
    def family(self) -> int:
        return self.destination.version


@dataclass(frozen=True, slots=True)
class Rule:
    """A `virtual_rules` / `static_rules` line, as `ip rule add` takes it."""

    source: IPv4Network | IPv6Network | None = None
    destination: IPv4Network | IPv6Network | None = None
    table: int | None = None
    preference: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int | None = None
    action: str | None = None  # blackhole, unreachable, prohibit; None: lookup `table`
    where: Where = NOWHERE

    @property
    def family(self) -> int:
        """IPv6 when an address of the rule is; IPv4 otherwise (`from all`), as Keepalived."""
        found = [n.version for n in (self.source, self.destination) if n is not None]
        return found[0] if found else 4


@dataclass(frozen=True, slots=True)
class TrackScript:
    """A `track_script` line: a vrrp_script by name, its weight overridden or not."""

    name: str
    weight: int | None = None  # None: the vrrp_script's weight
    reverse: bool | None = None  # None: the vrrp_script's
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class TrackInterface:
    """A `track_interface` line: weight 0 puts the instance in FAULT when it is down."""

    name: str
    weight: int = 0
    reverse: bool = False
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class Notify:
    """The notify scripts of an instance or a sync group."""

    master: Command | None = None
    backup: Command | None = None
    fault: Command | None = None
    stop: Command | None = None
    any: Command | None = None  # `notify`: every transition, with 4 more arguments


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    name: str
    interface: str | None
    virtual_router_id: int
    priority: int = DEFAULT_PRIORITY
    initial_master: bool = False  # `state MASTER`
    advert_int: float = 1.0
    version: int = 2
    auth_pass: bytes | None = None  # the 8 bytes sent, NUL-padded; None: no authentication
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    accept: bool = True  # Keepalived's default outside strict mode; `no_accept` clears it
    use_vmac: str | None = None  # the macvlan interface's name ("vrrp.VRID" by default)
    vmac_mac: bytes | None = None  # None: the virtual router MAC 00-00-5E-00-01-VRID
    vmac_xmit_base: bool = False
    track_script: tuple[TrackScript, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = 0.0
    unicast_src_ip: IPAddress | None = None
    unicast_peer: tuple[IPAddress, ...] = ()
    family: int = 4  # 6: IPv6 (its virtual addresses are IPv6, or `native_ipv6`)
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()  # not in adverts
    notify: Notify = field(default_factory=Notify)
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_repeat: int = 5
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    check_unicast_src: bool = False
    skip_check_adv_addr: bool = False
    sync_group: str | None = None
    where: Where = NOWHERE

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peer)

    @property
    def owner(self) -> bool:
        return self.priority == PRIORITY_OWNER

    @property
    def address_interface(self) -> str:
        """Where a virtual address without `dev` goes: the VMAC interface, if any."""
        assert self.interface is not None
        return self.use_vmac or self.interface

    @property
    def virtual_mac(self) -> bytes:
        """RFC 5798 section 7.3: 00-00-5E-00-01-{VRID}, for IPv6 00-00-5E-00-02-{VRID} (or
        use_vmac's own MAC)."""
        kind = 2 if self.family == 6 else 1
        return self.vmac_mac or bytes((0, 0, 0x5E, 0, kind, self.virtual_router_id))


@dataclass(frozen=True, slots=True)
class SyncGroup:
    """`vrrp_sync_group NAME`: instances that change state together."""

    name: str
    members: tuple[str, ...]
    notify: Notify = field(default_factory=Notify)
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class KeepalivedConfig:
    global_defs: GlobalDefs
    scripts: dict[str, VrrpScript]
    instances: tuple[VrrpInstance, ...]
    sync_groups: tuple[SyncGroup, ...] = ()
    files: tuple[str, ...] = ()
    static_ipaddress: tuple[VirtualAddress, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()

    def notify_commands(self) -> list[Command]:
        out: list[Command] = []
        for notify in [i.notify for i in self.instances] + [g.notify for g in self.sync_groups]:
            out.extend(
                c
                for c in (notify.master, notify.backup, notify.fault, notify.stop, notify.any)
                if c is not None
            )
        return out

    def without(self, scripts: set[str], commands: set[Command]) -> KeepalivedConfig:
        """This configuration with the vrrp_scripts `scripts` untracked and removed, and the
        notify `commands` not run (the scripts Keepalived disables at start)."""
        if not scripts and not commands:
            return self

        def notify(n: Notify) -> Notify:
            return Notify(
                *(
                    None if c in commands else c
                    for c in (n.master, n.backup, n.fault, n.stop, n.any)
                )
            )

        instances = tuple(
            replace(
                i,
                track_script=tuple(t for t in i.track_script if t.name not in scripts),
                notify=notify(i.notify),
            )
            for i in self.instances
        )
        groups = tuple(replace(g, notify=notify(g.notify)) for g in self.sync_groups)
        kept = {name: s for name, s in self.scripts.items() if name not in scripts}
        return replace(self, scripts=kept, instances=instances, sync_groups=groups)
