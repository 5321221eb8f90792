"""An ARP request from the client of the netns lab, and the answer: which MAC says it holds
an address. Nothing else is sent, so that no reply traffic from the node asked (an ICMP
error from the virtual address, say) changes what the client's cache would say.

Usage: python arping.py INTERFACE SOURCE-IP TARGET-IP  (prints the MAC, or nothing within a
second); python arping.py INTERFACE --advert (prints the source MAC of the first VRRP advert
seen within a second)
"""

from __future__ import annotations

import socket
import sys
import time

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
VRRP = 112
TIMEOUT = 1.0


def main(interface: str, source: str, target: str) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((interface, ETH_P_ARP))
        mac = sock.getsockname()[4]
        arp = (
            bytes.fromhex("0001 0800 06 04 0001")
            + mac
            + socket.inet_aton(source)
            + bytes(6)
            + socket.inet_aton(target)
        )
        sock.send(b"\xff" * 6 + mac + ETH_P_ARP.to_bytes(2, "big") + arp)
        end = time.monotonic() + TIMEOUT
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                frame = sock.recv(128)
            except TimeoutError:
                return
            is_reply = frame[20:22] == b"\x00\x02"
            if is_reply and frame[28:32] == socket.inet_aton(target):
                print(frame[22:28].hex(":"))
                return


def advert_mac(interface: str) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)) as sock:
        sock.bind((interface, ETH_P_IP))
        end = time.monotonic() + TIMEOUT
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                frame = sock.recv(2048)
            except TimeoutError:
                return
            if len(frame) > 23 and frame[23] == VRRP:
                print(frame[6:12].hex(":"))
                return


if __name__ == "__main__":
    if sys.argv[2:3] == ["--advert"]:
        advert_mac(sys.argv[1])
    else:
        main(*sys.argv[1:4])
