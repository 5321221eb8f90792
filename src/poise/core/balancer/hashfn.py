"""HAProxy's hash functions, so that a key hashes to the same 32-bit value as in HAProxy.

`hash-type METHOD [FUNCTION [avalanche]]` (configuration.txt 4.2) names the function that
turns the key of `balance uri|url_param|hdr()|rdp-cookie` into 32 bits: sdbm (the default),
djb2, wt6 or crc32 (HAProxy's hash.c); `avalanche` then passes the result through Bob
Jenkins' 32-bit integer mix ("full_hash", which consistent hashing also uses to place the
servers' points on its ring). `balance source` hashes no bytes: the address's 32-bit words,
read big-endian, are XORed together (backend.c, get_server_sh), then `avalanche` applies.

Everything is unsigned 32-bit arithmetic, hence the masks. Each function is written as the
recurrence it computes (sdbm: h * 65599 + c; djb2: h * 33 + c), which is the same value
as the shift-and-add forms of the C code, modulo 2**32.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from poise.config.model import HashFunction

MASK = 0xFFFFFFFF


def sdbm(data: bytes) -> int:
    """sdbm: h = c + (h << 6) + (h << 16) - h, that is h * 65599 + c."""
    h = 0
    for c in data:
        h = (h * 65599 + c) & MASK
    return h


def djb2(data: bytes) -> int:
    """djb2: h = (h << 5) + h + c from 5381, that is h * 33 + c."""
    h = 5381
    for c in data:
        h = (h * 33 + c) & MASK
    return h


def wt6(data: bytes) -> int:
    """wt6: two 32-bit states rotated by amounts that depend on the data."""
    h0, h1 = 0xA53C965A, 0x5CA6953A
    step0, step1 = 6, 18
    for c in data:
        h0 = ~(h0 ^ c) & MASK
        h1 = ~(h1 + c) & MASK
        t = ((h1 << step0) | (h1 >> (32 - step0))) & MASK
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & MASK
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return h0 ^ h1


def crc32(data: bytes) -> int:
    """crc32: the reflected CRC-32 of polynomial 0xEDB88320 (zlib's, bit for bit)."""
    return zlib.crc32(data) & MASK


FUNCTIONS: dict[HashFunction, Callable[[bytes], int]] = {
    HashFunction.SDBM: sdbm,
    HashFunction.DJB2: djb2,
    HashFunction.WT6: wt6,
    HashFunction.CRC32: crc32,
}


def full_hash(a: int) -> int:
    """HAProxy's full_hash: Bob Jenkins' 32-bit integer avalanche, then a multiplication by
    an odd constant. A bijection of the 32-bit integers, so distinct inputs (the ring's
    points) never collide."""
    a = ((a + 0x7ED55D16) + (a << 12)) & MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK
    a = ((a + 0x165667B1) + (a << 5)) & MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK
    a = ((a + 0xFD7046C5) + (a << 3)) & MASK
    a = (a ^ 0xB55A4F09) ^ (a >> 16)
    # Then spread over the ring: times a prime near 3/4 of 2**32 (odd: still a bijection).
    return (a * 3221225473) & MASK


def address_hash(address: bytes) -> int:
    """`balance source` before avalanche: the XOR of the address's big-endian 32-bit words
    (the IPv4 address itself as a number; the four words of an IPv6 address)."""
    h = 0
    for i in range(0, len(address) - 3, 4):
        h ^= int.from_bytes(address[i : i + 4], "big")
    return h
