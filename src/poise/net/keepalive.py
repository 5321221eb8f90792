"""TCP keep-alives (`option tcpka|clitcpka|srvtcpka`, `clitcpka-cnt|idle|intvl`,
`srvtcpka-cnt|idle|intvl`): SO_KEEPALIVE and TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL on the
client's and the server's connections, as HAProxy sets them (src/session.c on accept,
src/proto_tcp.c on connect). An unset count or time keeps the system's
(net.ipv4.tcp_keepalive_*). `option nolinger` is one more socket option of the same sides:
SO_LINGER with a zero time, so that closing a connection resets it at once (no FIN, no
TIME_WAIT, unsent data dropped), as HAProxy closes the connections of a frontend (client
side) or a backend (server side) that has the option.

The client side is set on the listening socket: Linux gives an accepted connection its
listener's keep-alive settings, so an accept costs nothing more. The server side is set on
each connection as it is made (Dispatch.connected).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from poise.config.model import Option, Proxy

SocketOption = tuple[int, int, int | bytes]
_NO_LINGER = struct.pack("ii", 1, 0)  # struct linger: l_onoff 1, l_linger 0 seconds

_SETTINGS = (
    ("cnt", socket.TCP_KEEPCNT),
    ("idle", socket.TCP_KEEPIDLE),
    ("intvl", socket.TCP_KEEPINTVL),
)


def keepalive_options(proxy: Proxy, side: str) -> tuple[SocketOption, ...]:
    """The socket options of one side ("cli" or "srv") of a proxy; empty: none."""
    options: list[SocketOption] = []
    if Option.NOLINGER in proxy.options:
        options.append((socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER))
    wanted = Option.CLITCPKA if side == "cli" else Option.SRVTCPKA
    if Option.TCPKA not in proxy.options and wanted not in proxy.options:
        return tuple(options)
    settings = dict(proxy.tcpka)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
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
