"""`use_vmac`: a macvlan interface (private mode) on the instance's interface, carrying the
virtual router MAC 00-00-5E-00-01-VRID (00-00-5E-00-02-VRID for IPv6, RFC 5798 section
7.3), so that the clients' ARP and neighbour entries never change on a failover. The
virtual addresses go on it, and its adverts and gratuitous ARPs (neighbour advertisements)
leave from it (from the base interface with `vmac_xmit_base`).

As Keepalived 2.2.7 sets it up (vrrp_vmac.c, vrrp_if_config.c): created down, IPv6 off (no
link-local address, so the backup never sends a frame from the shared MAC), then
`accept_local=1 arp_ignore=1 rp_filter=0` on it and `arp_ignore=1 arp_filter=1` on the
base interface (so that only the VMAC interface answers ARP for the virtual addresses),
then up, in every state. For an IPv6 instance, IPv6 stays on but the kernel makes no
address of its own (addr_gen_mode none), the base interface's link-local address is added
to it (no DAD, deprecated: the adverts' source, never chosen for anything else) and the
IPv4 settings are left alone. An interface of that name that is already a macvlan on the
base (a leftover after a crash) is reused. At exit the interfaces poise created are
deleted and the base interface's settings restored.

Synchronous (pyroute2's IPRoute): called before the loop runs, or in a thread.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from poise.config.keepalived_model import VrrpInstance

if TYPE_CHECKING:
    from pyroute2 import IPRoute

SYSCTL = Path("/proc/sys/net")
VMAC_SETTINGS = {"accept_local": "1", "arp_ignore": "1", "rp_filter": "0"}
ADDR_GEN_MODE_NONE = "1"  # IN6_ADDR_GEN_MODE_NONE
IFA_F_NODAD = 0x02
INFINITY_LIFE_TIME = 0xFFFFFFFF
RT_SCOPE_LINK = 253
BASE_SETTINGS = {"arp_ignore": "1", "arp_filter": "1"}


class VmacError(Exception):
    """The VMAC interface cannot be set up; the message says why."""


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _sysctl(ifname: str, name: str, value: str | None = None, family: str = "ipv4") -> str:
    path = SYSCTL / family / "conf" / ifname / name
    if value is not None:
        path.write_text(value)
    return path.read_text().strip()


@dataclass
class Vmacs:
    """The VMAC interfaces of the running configuration."""

    created: set[str] = field(default_factory=set)  # deleted at exit
    bases: dict[str, dict[str, str]] = field(default_factory=dict)  # base -> settings to restore
    users: dict[str, str] = field(default_factory=dict)  # vmac -> its base

    def ensure(self, instance: VrrpInstance) -> None:
        """Create (or reuse) the instance's VMAC interface, set up as Keepalived does."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        name, base = instance.use_vmac, instance.interface
        assert name is not None and base is not None
        mac = _mac_text(instance.virtual_mac)
        try:
            with IPRoute() as ipr:
                (base_index,) = ipr.link_lookup(ifname=base) or (None,)
                if base_index is None:
                    raise VmacError(f"no interface named '{base}'")
                found = ipr.link_lookup(ifname=name)
                if found:
                    (link,) = ipr.get_links(found[0])
                    info = link.get_attr("IFLA_LINKINFO")
                    kind = info.get_attr("IFLA_INFO_KIND") if info else None
                    if kind != "macvlan" or link.get_attr("IFLA_LINK") != base_index:
                        raise VmacError(
                            f"interface {name} already exists and is not a macvlan on {base}"
                        )
                    index = found[0]
                    ipr.link("set", index=index, address=mac)
                else:
                    ipr.link(
                        "add",
                        ifname=name,
                        kind="macvlan",
                        link=base_index,
                        macvlan_mode="private",
                        address=mac,
                    )
                    self.created.add(name)
                    (index,) = ipr.link_lookup(ifname=name)
                if instance.family == 6:
                    _sysctl(name, "addr_gen_mode", ADDR_GEN_MODE_NONE, family="ipv6")
                    _sysctl(name, "disable_ipv6", "0", family="ipv6")
                    _link_local(ipr, base_index, index)
                else:
                    with contextlib.suppress(OSError):  # no IPv6 in this kernel: nothing to stop
                        _sysctl(name, "disable_ipv6", "1", family="ipv6")
                    for setting, value in VMAC_SETTINGS.items():
                        _sysctl(name, setting, value)
                    if base not in self.bases:
                        self.bases[base] = {s: _sysctl(base, s) for s in BASE_SETTINGS}
                        for setting, value in BASE_SETTINGS.items():
                            _sysctl(base, setting, value)
                self.users[name] = base
                ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise VmacError(f"cannot create VMAC interface {name} on {base}: {exc}") from None
        except OSError as exc:
            raise VmacError(f"cannot set up VMAC interface {name}: {exc}") from None

    def release(self, keep: Collection[str] = ()) -> list[str]:
        """Delete the VMAC interfaces poise created that are not in `keep`, and restore
        the base interfaces no VMAC uses any more; the problems met, as text."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        problems: list[str] = []
        with IPRoute() as ipr:
            for name in sorted(set(self.users) - set(keep)):
                base = self.users.pop(name)
                if name in self.created:
                    self.created.discard(name)
                    try:
                        ipr.link("del", ifname=name)
                    except NetlinkError as exc:
                        problems.append(f"cannot delete VMAC interface {name}: {exc}")
                if base not in self.users.values():
                    for setting, value in self.bases.pop(base, {}).items():
                        try:
                            _sysctl(base, setting, value)
                        except OSError as exc:
                            problems.append(f"cannot restore {setting} on {base}: {exc}")
        return problems


def _link_local(ipr: IPRoute, base_index: int, index: int) -> None:
    """The base interface's link-local addresses on the VMAC interface too, without DAD and
    deprecated (Keepalived's add_link_local_address): the adverts leave from them."""
    from pyroute2.netlink.exceptions import NetlinkError

    for msg in ipr.get_addr(family=socket.AF_INET6, index=base_index):
        if msg["scope"] != RT_SCOPE_LINK:
            continue
        address = msg.get_attr("IFA_ADDRESS")
        with contextlib.suppress(NetlinkError):  # already there (a reused interface)
            ipr.addr(
                "add",
                index=index,
                family=socket.AF_INET6,
                address=address,
                prefixlen=msg["prefixlen"],
                flags=IFA_F_NODAD,
                preferred_lft=0,
                valid_lft=INFINITY_LIFE_TIME,
            )
