"""SOCKS4 (the protocol of a server's `socks4 ADDR:PORT` option): the CONNECT request
HAProxy 2.6 sends to the proxy before anything else, and the reply it waits for. Pure.

The request is VN 4, CD 1 (CONNECT), the server's port and IPv4 address, and a user id
ending in a NUL: HAProxy sends "HAProxy" (connection.c conn_send_socks4_proxy_request),
16 bytes in all. The reply is 8 bytes; the second one is 90 when the proxy granted the
connection (91 to 93 refuse it), after which the connection is the server's.
"""

from __future__ import annotations

import ipaddress
import struct

REPLY_SIZE = 8
GRANTED = 90
USER_ID = b"HAProxy\x00"


def request(ip: str, port: int) -> bytes:
    """The CONNECT request for the server at `ip`:`port` (IPv4 only, as SOCKS4 is)."""
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        raise ValueError(f"SOCKS4 reaches IPv4 addresses only, not '{ip}'") from None
    return struct.pack("!BBH4s", 4, 1, port, address.packed) + USER_ID


def refusal(reply: bytes) -> str | None:
    """Why the proxy's 8-byte reply refuses the connection, None when it grants it."""
    if len(reply) < REPLY_SIZE:
        return "the SOCKS4 proxy closed before its reply"
    if reply[1] != GRANTED:
        return f"the SOCKS4 proxy refused the connection (code {reply[1]})"
    return None
