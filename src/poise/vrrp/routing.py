"""What `poise vrrp` puts in the kernel besides adverts, through netlink (io.Netlink):

- an instance's `virtual_ipaddress`, `virtual_routes` and `virtual_rules` while it is
  master: added in that order on becoming master, removed in the reverse order on leaving
  it (Keepalived's vrrp_state_become_master and vrrp_restore_interface);
- `static_ipaddress`, `static_routes` and `static_rules` for the daemon's whole life,
  whatever the state: leftovers removed and then added at start, removed at exit, and on
  a reload only the difference is changed (Keepalived's clear_diff_static_*).

A failure is logged with what failed and why; the others still go ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from poise.config.keepalived_model import KeepalivedConfig, Route, Rule, VirtualAddress
from poise.vrrp.io import Netlink
from poise.vrrp.log import Logger


def _route_text(route: Route) -> str:
    text = str(route.destination)
    if route.kind != "unicast":
        text = f"{route.kind} {text}"
    if route.via is not None:
        text += f" via {route.via}"
    for hop in route.nexthops:
        text += f" nexthop via {hop.via}"
    if route.dev is not None:
        text += f" dev {route.dev}"
    if route.table != 254:
        text += f" table {route.table}"
    return text


def _rule_text(rule: Rule) -> str:
    parts = [f"from {rule.source or 'all'}"]
    if rule.destination is not None:
        parts.append(f"to {rule.destination}")
    if rule.table is not None:
        parts.append(f"table {rule.table}")
    if rule.action is not None:
        parts.append(rule.action)
    return " ".join(parts)


Entry = TypeVar("Entry", VirtualAddress, Route, Rule)


def _key(item: VirtualAddress | Route | Rule) -> tuple[object, ...]:
    """What an entry is, without where it was written (for a reload's difference)."""
    return tuple(getattr(item, f.name) for f in fields(item) if f.name != "where")


def _only(first: Sequence[Entry], second: Sequence[Entry]) -> list[Entry]:
    keys = {_key(item) for item in second}
    return [item for item in first if _key(item) not in keys]


class Routing:
    def __init__(self, netlink: Netlink, ifindex: Callable[[str], int | None], log: Logger) -> None:
        self.netlink = netlink
        self.ifindex = ifindex
        self.log = log

    # -- one entry ---------------------------------------------------------------------------

    async def address(self, tag: str, vip: VirtualAddress, dev: str, add: bool) -> None:
        index = self.ifindex(dev)
        if index is None:
            return
        change = self.netlink.add if add else self.netlink.remove
        failure = await change(vip, index)
        if failure is not None:
            verb = "add" if add else "remove"
            self.log.error(f"{tag}cannot {verb} {vip.interface} on {dev}: {failure}")

    async def route(self, tag: str, route: Route, add: bool) -> None:
        devices = [route.dev, *(hop.dev for hop in route.nexthops)]
        indexes = [None if dev is None else self.ifindex(dev) for dev in devices]
        for dev, index in zip(devices, indexes, strict=True):
            if dev is not None and index is None:
                self.log.error(f"{tag}cannot set route {_route_text(route)}: no interface {dev}")
                return
        failure = await self.netlink.route("add" if add else "del", route, indexes[0], indexes[1:])
        if failure is not None:
            verb = "add" if add else "remove"
            self.log.error(f"{tag}cannot {verb} route {_route_text(route)}: {failure}")

    async def rule(self, tag: str, rule: Rule, add: bool) -> None:
        failure = await self.netlink.rule("add" if add else "del", rule)
        if failure is not None:
            verb = "add" if add else "remove"
            self.log.error(f"{tag}cannot {verb} rule {_rule_text(rule)}: {failure}")

    # -- an instance's virtual entries -------------------------------------------------------

    async def virtual(
        self,
        name: str,
        interface: str,
        vips: tuple[VirtualAddress, ...],
        routes: tuple[Route, ...],
        rules: tuple[Rule, ...],
        *,
        add: bool,
        present: Callable[[str, IPv4Address | IPv6Address], bool] | None = None,
    ) -> None:
        """Add (addresses, routes, rules) or remove (rules, routes, addresses). With
        `present`, only the addresses it says are there are removed, and said so (the
        leftovers of a crash, at start)."""
        tag = f"({name}) "
        if add:
            for vip in vips:
                await self.address(tag, vip, vip.dev or interface, True)
            for route in routes:
                await self.route(tag, route, True)
            for rule in rules:
                await self.rule(tag, rule, True)
            return
        for rule in rules:
            await self.rule(tag, rule, False)
        for route in routes:
            await self.route(tag, route, False)
        for vip in vips:
            dev = vip.dev or interface
            if present is not None:
                if not present(dev, vip.ip):
                    continue
                self.log.info(f"{tag}removing stale address {vip.interface} from {dev}")
            await self.address(tag, vip, dev, False)

    # -- the static entries ------------------------------------------------------------------

    async def statics(self, config: KeepalivedConfig, *, add: bool) -> None:
        if add:  # leftovers first, as Keepalived does at start
            await self.statics(config, add=False)
        await self._static_entries(
            config.static_ipaddress, config.static_routes, config.static_rules, add=add
        )

    async def static_difference(self, old: KeepalivedConfig, new: KeepalivedConfig) -> None:
        """On reload: remove what the old file had and the new one has not, add the new."""
        await self._static_entries(
            _only(old.static_ipaddress, new.static_ipaddress),
            _only(old.static_routes, new.static_routes),
            _only(old.static_rules, new.static_rules),
            add=False,
        )
        await self._static_entries(
            _only(new.static_ipaddress, old.static_ipaddress),
            _only(new.static_routes, old.static_routes),
            _only(new.static_rules, old.static_rules),
            add=True,
        )

    async def _static_entries(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[Route],
        rules: Sequence[Rule],
        *,
        add: bool,
    ) -> None:
        if add:
            for address in addresses:
                assert address.dev is not None
                await self.address("", address, address.dev, True)
            for route in routes:
                await self.route("", route, True)
            for rule in rules:
                await self.rule("", rule, True)
            return
        for rule in rules:
            await self.rule("", rule, False)
        for route in routes:
            await self.route("", route, False)
        for address in addresses:
            assert address.dev is not None
            await self.address("", address, address.dev, False)
