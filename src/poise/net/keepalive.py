"""TCP keep-alives (`option tcpka|clitcpka|srvtcpka`, `clitcpka-cnt|idle|intvl`,
`srvtcpka-cnt|idle|intvl`): SO_KEEPALIVE and TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL on the
client's and the server's connections, as HAProxy sets them (src/session.c on accept,
src/proto_tcp.c on connect). An unset count or time keeps the system's
(net.ipv4.tcp_keepalive_*).

The client side is set on the listening socket: Linux gives an accepted connection its
listener's keep-alive settings, so an accept costs nothing more. The server side is set on
each connection as it is made (Dispatch.connected).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from poise.config.model import Option, Proxy

SocketOption = tuple[int, int, int]

_SETTINGS = (
    ("cnt", socket.TCP_KEEPCNT),
    ("idle", socket.TCP_KEEPIDLE),
    ("intvl", socket.TCP_KEEPINTVL),
)


def keepalive_options(proxy: Proxy, side: str) -> tuple[SocketOption, ...]:
    """The socket options of one side ("cli" or "srv") of a proxy; empty: none."""
    wanted = Option.CLITCPKA if side == "cli" else Option.SRVTCPKA
    if Option.TCPKA not in proxy.options and wanted not in proxy.options:
        return ()
    settings = dict(proxy.tcpka)
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, option in _SETTINGS:
        value = settings.get(f"{side}tcpka-{name}")
        if value:
            options.append((socket.IPPROTO_TCP, option, value))
    return tuple(options)


def apply(sock: Any, options: tuple[SocketOption, ...]) -> None:
    """Set them on a socket (a transport's: uvloop's pseudo-socket takes setsockopt)."""
    if sock is None or getattr(sock, "family", None) == socket.AF_UNIX:
        return
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)
