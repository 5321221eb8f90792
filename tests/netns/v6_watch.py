"""Prints a line for every VRRP advert over IPv6 and every neighbour advertisement seen
on the client's eth0: `TIME advert SOURCE PRIORITY` and `TIME na TARGET MAC` (monotonic
seconds, shared by every process of the machine), so that a measurement can disrupt a
master at a known time after its last advert, and see when the new master announced the
address. Stops by itself after `duration`.

Usage: python v6_watch.py DURATION
"""

from __future__ import annotations

import select
import socket
import struct
import sys
import time

GROUP = "ff02::12"
NEIGHBOUR_ADVERT = 136


def main(duration: float) -> None:
    index = socket.if_nametoindex("eth0")
    vrrp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    vrrp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    mreq = struct.pack("=16sI", socket.inet_pton(socket.AF_INET6, GROUP), index)
    vrrp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    icmp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    end = time.monotonic() + duration
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([vrrp, icmp], [], [], left)
        now = time.monotonic()
        for sock in ready:
            data, peer = sock.recvfrom(2048)
            source = peer[0].split("%")[0]
            if sock is vrrp and len(data) >= 3:
                print(f"{now:.6f} advert {source} {data[2]}", flush=True)
            elif sock is icmp and len(data) >= 32 and data[0] == NEIGHBOUR_ADVERT:
                target = socket.inet_ntop(socket.AF_INET6, data[8:24])
                mac = data[26:32].hex(":") if data[24] == 2 else "-"
                print(f"{now:.6f} na {target} {mac}", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]))
