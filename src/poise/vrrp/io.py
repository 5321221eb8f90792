"""The sockets of `poise vrrp`: raw IP sockets for adverts (protocol 112), netlink for the
virtual addresses (pyroute2), an AF_PACKET socket for gratuitous ARP. The bytes themselves
are made and checked in packet.py; here they only go in and out.

- Receiving: one raw socket per interface, bound to it (SO_BINDTODEVICE), joined to the
  VRRP multicast group on that interface only, with IP_MULTICAST_ALL off so that groups
  joined elsewhere do not leak in. The kernel hands over the whole IPv4 datagram, whose
  TTL the state machine checks.
- Sending: one raw socket per (interface, source address), bound to the source address
  (the v3 checksum covers it, so it must be the one the kernel puts in the header), TTL
  255 for multicast and unicast, multicast loop off, TOS 0xc0 (network control), as
  Keepalived sends them.
- Addresses, routes and rules: added and removed through netlink (link states come from
  it too); adding one that is there or removing one that is gone is not an error (a
  restart after a crash meets both).
- Gratuitous ARP: broadcast ARP requests for the address from the interface's MAC.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from poise.config.keepalived_model import GlobalDefs, NextHop, Route, Rule, VirtualAddress
from poise.vrrp.packet import (
    ETH_P_ARP,
    PROTOCOL,
    TTL,
    IPAddress,
    IPHeader,
    garp_frame,
    neighbour_advert,
)

ALL_NODES = IPv6Address("ff02::1")  # RFC 4291 2.7.1

IP_MULTICAST_ALL = 49  # linux/in.h; not in Python's socket module
IPV6_MULTICAST_ALL = 29  # linux/in6.h
IP_TOS_NETWORK_CONTROL = 0xC0
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
RECEIVE_SIZE = 65535
RTPROT_KEEPALIVED = 18  # linux/rtnetlink.h: the protocol Keepalived marks its routes with
RTNH_F_ONLINK = 4
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; not in Python's socket module
NETLINK_RCVBUF = 1_048_576  # pyroute2's default for its sockets
IFA_F_NODAD = 0x02  # linux/if_addr.h
INFINITY_LIFE_TIME = 0xFFFFFFFF
ANCILLARY_SIZE = 256


def _mreqn(group: IPv4Address, ifindex: int) -> bytes:
    return struct.pack("=4s4si", group.packed, b"\0\0\0\0", ifindex)


def _mreq6(group: IPv6Address, ifindex: int) -> bytes:
    return struct.pack("=16sI", group.packed, ifindex)


def _membership(sock: socket.socket, group: IPAddress, ifindex: int, join: bool) -> None:
    if isinstance(group, IPv6Address):
        option = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
        sock.setsockopt(socket.IPPROTO_IPV6, option, _mreq6(group, ifindex))
    else:
        option = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
        sock.setsockopt(socket.IPPROTO_IP, option, _mreqn(group, ifindex))


class Receiver:
    """The raw socket that receives adverts of one family on one interface. An IPv4 one
    hands over the whole datagram (header and all); an IPv6 one the payload, with the
    hop limit and destination read from recvmsg's ancillary data."""

    def __init__(self, ifname: str, ifindex: int, family: int = 4) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        self.groups: set[IPAddress] = set()
        domain = socket.AF_INET6 if family == 6 else socket.AF_INET
        sock = socket.socket(domain, socket.SOCK_RAW, PROTOCOL)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if family == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def join(self, group: IPAddress) -> None:
        if group in self.groups:
            return
        _membership(self.sock, group, self.ifindex, join=True)
        self.groups.add(group)

    def rejoin(self) -> None:
        """After the link comes back the membership may be gone: join again."""
        for group in self.groups:
            with contextlib.suppress(OSError):
                _membership(self.sock, group, self.ifindex, join=False)
            with contextlib.suppress(OSError):
                _membership(self.sock, group, self.ifindex, join=True)

    def read(self, handle: Callable[[bytes | IPHeader], None]) -> None:
        """Hand every datagram waiting on the socket to `handle`: an IPv4 datagram whole,
        an IPv6 one as the header values the kernel reported and its payload."""
        while True:
            try:
                if self.family == 6:
                    data, ancillary, _flags, peer = self.sock.recvmsg(RECEIVE_SIZE, ANCILLARY_SIZE)
                else:
                    data = self.sock.recv(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            handle(data if self.family == 4 else _ipv6_header(data, ancillary, peer))

    def close(self) -> None:
        self.sock.close()


def _ipv6_header(data: bytes, ancillary: list[tuple[int, int, bytes]], peer: Any) -> IPHeader:
    hop_limit, destination = -1, IPv6Address(0)
    for level, kind, value in ancillary:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
            hop_limit = struct.unpack("=i", value[:4])[0]
        elif kind == socket.IPV6_PKTINFO and len(value) >= 16:
            destination = IPv6Address(value[:16])
    source = IPv6Address(str(peer[0]).split("%")[0])
    return IPHeader(source, destination, hop_limit, PROTOCOL, data)


class Sender:
    """The raw socket that sends one instance's adverts (several instances with the same
    interface and source share it)."""

    def __init__(self, ifname: str, ifindex: int, source: IPAddress) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.source = source
        v6 = isinstance(source, IPv6Address)
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, PROTOCOL)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if isinstance(source, IPv6Address):  # RFC 5798 5.1.2.3: hop limit 255
                ip6 = socket.IPPROTO_IPV6
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_IF, ifindex)
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_HOPS, TTL)
                sock.setsockopt(ip6, socket.IPV6_UNICAST_HOPS, TTL)
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_LOOP, 0)
                sock.setsockopt(ip6, socket.IPV6_TCLASS, IP_TOS_NETWORK_CONTROL)
                sock.bind((str(source), 0, 0, ifindex if source.is_link_local else 0))
            else:
                ip4 = socket.IPPROTO_IP
                sock.setsockopt(ip4, socket.IP_MULTICAST_IF, _mreqn(source, ifindex))
                sock.setsockopt(ip4, socket.IP_MULTICAST_TTL, TTL)
                sock.setsockopt(ip4, socket.IP_TTL, TTL)
                sock.setsockopt(ip4, socket.IP_MULTICAST_LOOP, 0)
                sock.setsockopt(ip4, socket.IP_TOS, IP_TOS_NETWORK_CONTROL)
                sock.bind((str(source), 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def send(self, payload: bytes, destination: IPAddress) -> OSError | None:
        """Send one advert; a failure (link down, buffer full) is returned, not raised."""
        try:
            if destination.version == 6:
                self.sock.sendto(payload, (str(destination), 0, 0, self.ifindex))
            else:
                self.sock.sendto(payload, (str(destination), 0))
        except OSError as exc:
            return exc
        return None

    def close(self) -> None:
        self.sock.close()


class Announcer:
    """Announcing virtual addresses on one interface: gratuitous ARP for IPv4 (an
    AF_PACKET socket), unsolicited neighbour advertisements for IPv6 (a raw ICMPv6 socket,
    whose checksum the kernel fills in), sent from the address itself to all nodes
    (ff02::1) with hop limit 255 (RFC 4861 7.1.2), as Keepalived sends them."""

    def __init__(self, ifname: str, mac: bytes, family: int = 4, ifindex: int = 0) -> None:
        self.mac = mac
        self.family = family
        self.ifindex = ifindex
        self.router = False
        if family == 6:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        else:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        try:
            if family == 6:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                self.router = _forwarding(ifname)
            else:
                sock.bind((ifname, ETH_P_ARP))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def announce(self, address: IPAddress) -> OSError | None:
        try:
            if isinstance(address, IPv6Address):
                message = neighbour_advert(self.mac, address, router=self.router)
                info = struct.pack("=16sI", address.packed, self.ifindex)
                ancillary = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)]
                self.sock.sendmsg([message], ancillary, 0, (str(ALL_NODES), 0, 0, self.ifindex))
            else:
                self.sock.send(garp_frame(self.mac, address))
        except OSError as exc:
            return exc
        return None

    def close(self) -> None:
        self.sock.close()


def _forwarding(ifname: str) -> bool:
    """Whether the interface forwards IPv6 (the NA's Router flag, RFC 4861 4.4)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as file:
            return file.read().strip() == "1"
    except OSError:
        return False


SenderKey = tuple[str, IPAddress]
AnnouncerKey = tuple[str, int]  # interface, family
Used = tuple[set[str], set[SenderKey], set[AnnouncerKey]]


class Sockets:
    """The sockets of the daemon's instances, shared where they can be: one receiver per
    interface, one sender per (interface, source address), one announcer per interface
    that holds a virtual address. `mark()` and `prune()` let a reload open what the new
    configuration needs first, then close what nothing uses any more."""

    def __init__(self) -> None:
        self.receivers: dict[str, Receiver] = {}
        self.senders: dict[SenderKey, Sender] = {}
        self.announcers: dict[AnnouncerKey, Announcer] = {}

    def receiver(self, ifname: str, ifindex: int, family: int = 4) -> Receiver:
        """Keyed by interface name for IPv4 (`eth0`), and `eth0/6` for IPv6."""
        key = ifname if family == 4 else f"{ifname}/6"
        if key not in self.receivers:
            self.receivers[key] = Receiver(ifname, ifindex, family)
        return self.receivers[key]

    def sender(self, ifname: str, ifindex: int, source: IPAddress) -> Sender:
        key = (ifname, source)
        if key not in self.senders:
            self.senders[key] = Sender(ifname, ifindex, source)
        return self.senders[key]

    def announcer(self, ifname: str, mac: bytes, family: int = 4, ifindex: int = 0) -> Announcer:
        key = (ifname, family)
        if key not in self.announcers:
            self.announcers[key] = Announcer(ifname, mac, family, ifindex)
        return self.announcers[key]

    def mark(self) -> Used:
        return set(self.receivers), set(self.senders), set(self.announcers)

    def prune(
        self,
        used: Used,
        keep: Used = (set(), set(), set()),
        closing: Callable[[Receiver], None] = lambda _receiver: None,
    ) -> None:
        """Close every socket neither `used` nor in `keep`; `closing` is told of each
        receiver before it closes (to stop watching it)."""
        for name in [n for n in self.receivers if n not in used[0] | keep[0]]:
            receiver = self.receivers.pop(name)
            closing(receiver)
            receiver.close()
        for key in [k for k in self.senders if k not in used[1] | keep[1]]:
            self.senders.pop(key).close()
        for announcer in [k for k in self.announcers if k not in used[2] | keep[2]]:
            self.announcers.pop(announcer).close()

    def close(self) -> None:
        self.prune((set(), set(), set()))


IFF_UP = 0x1
IFF_RUNNING = 0x40


@dataclass(frozen=True, slots=True)
class LinkState:
    index: int
    up: bool


def _link_state(msg: Any) -> tuple[str, LinkState]:
    flags = msg["flags"]
    return msg.get("IFLA_IFNAME"), LinkState(
        msg["index"], bool(flags & IFF_UP and flags & IFF_RUNNING)
    )


def _nexthop(hop: NextHop, ifindex: int | None) -> dict[str, object]:
    found: dict[str, object] = {"hops": hop.weight - 1}
    if hop.via is not None:
        found["gateway"] = str(hop.via)
    if ifindex is not None:
        found["oif"] = ifindex
    if hop.onlink:
        found["flags"] = RTNH_F_ONLINK
    return found


class Netlink:
    """Virtual addresses and link states through netlink (pyroute2's asyncio API, which
    needs the standard asyncio loop). One socket for commands, one for link events; the
    commands take turns (pyroute2 answers EBUSY to a second request under way)."""

    def __init__(self) -> None:
        from pyroute2 import AsyncIPRoute

        self.ipr = AsyncIPRoute()
        self.events = AsyncIPRoute()
        self.turn = asyncio.Lock()

    def receive_buffers(self, defaults: GlobalDefs) -> list[str]:
        """Size the two sockets' receive buffers as `vrrp_netlink_cmd_rcv_bufs` and
        `vrrp_netlink_monitor_rcv_bufs` say (0: pyroute2's own size), past rmem_max with
        SO_RCVBUFFORCE when `_force`: at start and at every reload, as Keepalived's VRRP
        child sizes them. What the kernel refused, in Keepalived's words."""
        refused = []
        for which, ipr, size, force in (
            (
                "cmd",
                self.ipr,
                defaults.vrrp_netlink_cmd_rcv_bufs,
                defaults.vrrp_netlink_cmd_rcv_bufs_force,
            ),
            (
                "monitor",
                self.events,
                defaults.vrrp_netlink_monitor_rcv_bufs,
                defaults.vrrp_netlink_monitor_rcv_bufs_force,
            ),
        ):
            option = SO_RCVBUFFORCE if force and size else socket.SO_RCVBUF
            try:
                ipr.setsockopt(socket.SOL_SOCKET, option, size or NETLINK_RCVBUF)
            except OSError as exc:
                name = "SO_RCVBUFFORCE" if option == SO_RCVBUFFORCE else "SO_RCVBUF"
                refused.append(f"netlink {which} socket: cannot set {name} to {size}: {exc}")
        return refused

    async def add(self, vip: VirtualAddress, ifindex: int) -> str | None:
        """Add the address; None on success (or when it is already there), else why not."""
        return await self._change("add", vip, ifindex, errno.EEXIST)

    async def remove(self, vip: VirtualAddress, ifindex: int) -> str | None:
        return await self._change("del", vip, ifindex, errno.EADDRNOTAVAIL)

    async def _change(
        self, command: str, vip: VirtualAddress, ifindex: int, fine: int
    ) -> str | None:
        from pyroute2.netlink.exceptions import NetlinkError

        options: dict[str, object] = {
            "index": ifindex,
            "address": str(vip.ip),
            "prefixlen": vip.interface.network.prefixlen,
            "family": socket.AF_INET6 if vip.version == 6 else socket.AF_INET,
        }
        if command == "add":
            options["scope"] = SCOPES[vip.scope]
            if vip.version == 6 and not vip.dad:  # RFC 5798 8.2.1, as Keepalived
                options["flags"] = IFA_F_NODAD
            if vip.version == 6 and vip.interface.network.prefixlen == 128:
                # Keepalived adds a /128 deprecated, so it is never chosen as a source
                options["preferred_lft"] = 0
                options["valid_lft"] = INFINITY_LIFE_TIME
            if vip.label is not None:
                options["label"] = vip.label
            if vip.broadcast is not None:
                options["broadcast"] = str(vip.broadcast)
        try:
            async with self.turn:
                await self.ipr.addr(command, **options)
        except NetlinkError as exc:
            if exc.code == fine:
                return None
            return str(exc)
        except OSError as exc:
            return exc.strerror or str(exc)
        return None

    async def route(
        self, command: str, route: Route, ifindex: int | None, hops: Sequence[int | None] = ()
    ) -> str | None:
        """Add or delete a route as Keepalived does (vrrp_iproute.c: protocol 18 unless
        given, the kernel's prepend); one already there or already gone is not an error."""
        options: dict[str, object] = {
            "family": socket.AF_INET6 if route.family == 6 else socket.AF_INET,
            "dst": str(route.destination),
            "table": route.table,
            "type": route.kind,
            "proto": RTPROT_KEEPALIVED if route.protocol is None else route.protocol,
        }
        if route.via is not None:
            options["gateway"] = str(route.via)
        if route.nexthops:  # each path names its device (the route's, if it has none)
            options["multipath"] = [
                _nexthop(hop, index if index is not None else ifindex)
                for hop, index in zip(route.nexthops, hops, strict=True)
            ]
        elif ifindex is not None:
            options["oif"] = ifindex
        if route.src is not None:
            options["prefsrc"] = str(route.src)
        if route.metric is not None:
            options["priority"] = route.metric
        if route.scope is not None:
            options["scope"] = route.scope
        if route.onlink:
            options["flags"] = RTNH_F_ONLINK
        return await self._netlink(self.ipr.route, command, options, (errno.EEXIST, errno.ESRCH))

    async def rule(self, command: str, rule: Rule) -> str | None:
        # Keepalived marks its rules protocol 18 too (vrrp_iprule.c)
        options: dict[str, object] = {
            "family": socket.AF_INET6 if rule.family == 6 else socket.AF_INET,
            "protocol": RTPROT_KEEPALIVED,
        }
        for name, network in (("src", rule.source), ("dst", rule.destination)):
            if network is not None:
                options[name] = str(network.network_address)
                options[f"{name}_len"] = network.prefixlen
        if rule.table is not None:
            options["table"] = rule.table
        if rule.action is not None:
            options["action"] = rule.action
        extra = {
            "priority": rule.preference,
            "iifname": rule.iif,
            "oifname": rule.oif,
            "fwmark": rule.fwmark,
            "fwmask": rule.fwmask,
            "tos": rule.tos,
        }
        options.update({k: v for k, v in extra.items() if v is not None})
        return await self._netlink(self.ipr.rule, command, options, (errno.EEXIST, errno.ENOENT))

    async def _netlink(
        self,
        call: Callable[..., Awaitable[object]],
        command: str,
        options: dict[str, object],
        fine: tuple[int, ...],
    ) -> str | None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            async with self.turn:
                await call(command, **options)
        except NetlinkError as exc:
            return None if exc.code in fine else str(exc)
        except OSError as exc:
            return exc.strerror or str(exc)
        return None

    async def addresses(self, ifindex: int) -> set[IPAddress]:
        found: set[IPAddress] = set()
        async with self.turn:
            for family in (socket.AF_INET, socket.AF_INET6):
                async for msg in await self.ipr.addr("dump", family=family, index=ifindex):
                    value = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
                    if value and msg["index"] == ifindex:
                        found.add(ip_address(value))
        return found

    async def links(self) -> dict[str, LinkState]:
        found: dict[str, LinkState] = {}
        async with self.turn:
            async for msg in await self.ipr.link("dump"):
                name, state = _link_state(msg)
                found[name] = state
        return found

    async def watch_links(self, changed: Callable[[str, LinkState], None]) -> None:
        """Call `changed` for every link event, until cancelled."""
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        await self.events.bind(groups=RTMGRP_LINK)
        while True:
            async for msg in self.events.get():
                if msg.get("event") in ("RTM_NEWLINK", "RTM_DELLINK"):
                    name, state = _link_state(msg)
                    if msg.get("event") == "RTM_DELLINK":
                        state = LinkState(state.index, False)
                    changed(name, state)

    def close(self) -> None:
        self.ipr.close()
        self.events.close()
