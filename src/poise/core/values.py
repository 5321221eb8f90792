"""The values of samples (configuration.txt 7.3): text, integers, booleans and IP
addresses, and HAProxy's casts between them. Pure."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

# An IP address as a sample: (4 or 6, the address as an integer).
Ip = tuple[int, int]
Value = str | int | bool | Ip


_ip_cache: dict[str, Ip | None] = {}


def parse_ip(text: str) -> Ip | None:
    """An address as an (IP version, integer) pair, None when `text` is no address.
    Clients' addresses repeat, so they are remembered (a bounded cache)."""
    try:
        return _ip_cache[text]
    except KeyError:
        pass
    if len(_ip_cache) >= 4096:
        _ip_cache.clear()
    ip = _ip_cache[text] = _parse_ip(text)
    return ip


def _parse_ip(text: str) -> Ip | None:
    parts = text.split(".")
    if len(parts) == 4 and ":" not in text:
        if not all(p.isdigit() and len(p) <= 3 for p in parts):
            return None
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) > 255:
            return None
        return 4, (a << 24) | (b << 16) | (c << 8) | d
    if ":" in text:
        try:
            return 6, int(IPv6Address(text))
        except ValueError:
            return None
    return None


def to_int(value: Value) -> int | None:
    """A value as an integer, as HAProxy casts it (a string's leading digits)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, tuple):
        return value[1] if value[0] == 4 else None
    match = re.match(r"[ \t]*([-+]?\d+)", value)
    return int(match.group(1)) if match else 0


def to_str(value: Value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        version, number = value
        return str(IPv4Address(number) if version == 4 else IPv6Address(number))
    return str(value)


def as_bytes(text: str) -> str:
    """Text from the configuration as a sample holds it: one character per byte of its
    UTF-8 form, as poise holds what it receives (latin-1), so that `str(é)` is the two
    bytes HAProxy sees."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")
