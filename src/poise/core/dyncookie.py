"""HAProxy's dynamic persistence cookies (`cookie NAME dynamic` with `dynamic-cookie-key`):
a server without a `cookie VALUE` of its own gets one derived from the backend's secret key
and its address, so that every balancer with the same key names the same server alike, and
a server that changes address (DNS, `set server addr`) gets a new one.

The value is HAProxy's: the XXH64 hash (seed 0) of the key's bytes, the address in network
order (4 bytes for IPv4, 16 for IPv6) and the port as a 4-byte big-endian number, written as
16 lower-case hex digits. A server with no IP address yet (a DNS name not resolved) has no
cookie.
"""

from __future__ import annotations

import ipaddress

import xxhash


def dynamic_cookie(key: str, addr: str, port: int | None) -> str | None:
    """The cookie value of a server at `addr`:`port` for the secret `key`."""
    try:
        packed = ipaddress.ip_address(addr).packed
    except ValueError:
        return None
    data = key.encode() + packed + (port or 0).to_bytes(4, "big")
    return f"{xxhash.xxh64_intdigest(data, 0):016x}"
