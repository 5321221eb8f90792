"""Prints a line for every VRRP advert seen on the lab's LAN: `TIME SOURCE PRIORITY`
(monotonic seconds, shared by every process of the machine), so that a measurement can
disrupt a master at a known time after its last advert. Stops by itself after `duration`.

Usage: python advert_watch.py DURATION
"""

from __future__ import annotations

import select
import socket
import struct
import sys
import time

GROUP = "224.0.0.18"


def main(duration: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    mreq = struct.pack("=4s4si", socket.inet_aton(GROUP), b"\0" * 4, socket.if_nametoindex("eth0"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    end = time.monotonic() + duration
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        data = sock.recv(2048)
        now = time.monotonic()
        ihl = (data[0] & 0x0F) * 4
        if len(data) >= ihl + 3:
            print(f"{now:.6f} {socket.inet_ntoa(data[12:16])} {data[ihl + 2]}", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]))
