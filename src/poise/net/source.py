"""The source address of a server connection: HAProxy's `source ADDR[:PORT] [usesrc
{ADDR2[:PORT2] | client | clientip}] [interface NAME]`, and a Keepalived virtual server's
client address (LVS NAT keeps it).

A plain `source` binds the socket to ADDR before it connects. `usesrc` binds it to an
address this node does not own (the client's, or ADDR2) with IP_TRANSPARENT
(IPV6_TRANSPARENT), which needs CAP_NET_ADMIN, and which only works when the server's
answers come back through this node (its route to the clients goes through it) and this
node hands them to the transparent socket: `ip rule add fwmark 1 lookup 100`, `ip route
add local 0.0.0.0/0 dev lo table 100` and an nftables rule `socket transparent 1 meta mark
set 1` in a prerouting chain (README, "Transparent source").
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import replace

from poise.config.model import Source
from poise.net import socks4
from poise.net.listener import sun_path

IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
IPV6_TRANSPARENT = 75  # linux/in6.h (Python does not name it)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
NEEDS_ADMIN = "needs CAP_NET_ADMIN or CAP_NET_RAW (run poise as root, or grant it one of them)"


class SourceError(OSError):
    """The source could not be bound; the message says what is missing."""


def _family_of(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _unmapped(addr: str) -> str:
    """A v4-mapped IPv6 client address (`::ffff:a.b.c.d`) as IPv4."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def source_address(source: Source, client_ip: str, client_port: int) -> tuple[str, int]:
    """The (address, port) a server connection binds to."""
    if source.usesrc == "client":
        return _unmapped(client_ip), client_port
    if source.usesrc == "clientip":
        return _unmapped(client_ip), 0
    if source.usesrc == "address":
        return source.usesrc_addr, source.usesrc_port
    return source.addr, source.port


def set_transparent(sock: socket.socket, family: socket.AddressFamily) -> None:
    """IP_TRANSPARENT (IPV6_TRANSPARENT): bind an address this node does not own."""
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
    except PermissionError:
        raise SourceError(errno.EPERM, f"'usesrc' (IP_TRANSPARENT) {NEEDS_ADMIN}") from None


def transparent_refused() -> str | None:
    """Why this process cannot make a transparent socket (None: it can)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            set_transparent(sock, socket.AF_INET)
        except OSError as exc:
            return str(exc.strerror or exc)
    return None


def bound_socket(
    source: Source, server_addr: str, client_ip: str, client_port: int
) -> socket.socket:
    """A non-blocking TCP socket for `server_addr`, bound as `source` says."""
    family = _family_of(server_addr)
    addr, port = source_address(source, client_ip, client_port)
    if _family_of(addr) != family:
        raise SourceError(
            errno.EAFNOSUPPORT,
            f"the source address {addr} and the server's {server_addr} are not of one family",
        )
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if source.interface is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, source.interface.encode())
            except PermissionError:
                raise SourceError(
                    errno.EPERM, "'interface' (SO_BINDTODEVICE) needs CAP_NET_RAW"
                ) from None
        if source.usesrc:
            set_transparent(sock, family)
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((addr, port))
        except OSError as exc:
            reason = f"cannot bind the source {addr}:{port}: {exc.strerror}"
            raise SourceError(exc.errno, reason) from None
    except BaseException:
        sock.close()
        raise
    return sock


SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h (Python does not name it)


def client_destination(sock: socket.socket | None) -> tuple[str, int]:
    """The address and port a client connected to, as HAProxy reads them for a server
    written without a port or at 0.0.0.0: the destination before netfilter's NAT
    (SO_ORIGINAL_DST, an `iptables -j REDIRECT` or DNAT in front of poise), else the
    socket's own address (a plain connection, or TPROXY); ("", 0) if there is none."""
    if sock is None:
        return "", 0
    if sock.family == socket.AF_INET:
        try:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        except OSError:  # not NATed (ENOENT), or conntrack not loaded
            pass
        else:
            return socket.inet_ntoa(raw[4:8]), int.from_bytes(raw[2:4], "big")
    try:
        name = sock.getsockname()
    except OSError:
        return "", 0
    return (name[0], name[1]) if isinstance(name, tuple) else ("", 0)


async def check_connection(
    factory: Callable[[], asyncio.Protocol],
    target: tuple[str, int],
    source: Source | None,
    unix: bool = False,
    socks: tuple[str, int] | None = None,
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """A health check's connection. HAProxy binds it like the server's traffic: from the
    `source` address (and port, and `interface`), though never from a transparent one
    (`usesrc`: there is no client), nor for a Keepalived virtual server (`fallback`: the
    node's own). A `unix@`/`abns@` server is checked over its unix socket; a server with
    `check-via-socks4` through its SOCKS4 proxy (`socks`, net/socks4.py)."""
    loop = asyncio.get_running_loop()
    host, port = target
    if socks is not None:
        return await loop.create_connection(factory, sock=await socks4.connect(loop, socks, target))
    if unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = sun_path(host)
    elif source is not None and not source.fallback:
        sock = bound_socket(replace(source, usesrc=""), host, "", 0)
        address = (host, port)
    else:
        return await loop.create_connection(factory, host, port)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    if unix:
        return await loop.create_unix_connection(factory, sock=sock)
    return await loop.create_connection(factory, sock=sock)
