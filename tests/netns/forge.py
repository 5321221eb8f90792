"""Sends hand-made VRRP adverts from a lab host, to check that nothing but a well-formed,
authentic advert moves the virtual address. Stops by itself: `count` adverts, one every
`interval` seconds.

Usage: python forge.py SOURCE KIND COUNT INTERVAL
KIND: valid, password, ttl, addresses, vrid, checksum, version (all VRRPv2, VRID 51,
priority 254, advert_int 1, the lab's virtual address, password "secret"), each wrong in
the one way its name says.
"""

from __future__ import annotations

import socket
import sys
import time
from ipaddress import IPv4Address

from poise.vrrp.packet import AUTH_PASS, PROTOCOL, Advert, encode

GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("198.51.100.170")
PASSWORD = b"secret\0\0"


def advert(kind: str, source: IPv4Address) -> tuple[bytes, int]:
    addresses = (IPv4Address("198.51.100.171"),) if kind == "addresses" else (VIP,)
    password = b"wrong\0\0\0" if kind == "password" else PASSWORD
    vrid = 52 if kind == "vrid" else 51
    if kind == "version":
        wire = encode(Advert(3, vrid, 254, 100, addresses), source, GROUP)
    else:
        wire = encode(Advert(2, vrid, 254, 100, addresses, AUTH_PASS, password), source, GROUP)
    if kind == "checksum":
        wire = wire[:6] + bytes([wire[6] ^ 0xFF]) + wire[7:]
    return wire, (64 if kind == "ttl" else 255)


def main(source: str, kind: str, count: int, interval: float) -> None:
    wire, ttl = advert(kind, IPv4Address(source))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTOCOL)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.bind((source, 0))
    for _ in range(count):
        sock.sendto(wire, (str(GROUP), 0))
        time.sleep(interval)
    sock.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
