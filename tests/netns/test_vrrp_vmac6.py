"""`use_vmac` on an IPv6 instance, in both roles against Keepalived 2.2.7: the macvlan
interface carries 00:00:5e:00:02:VRID (RFC 5798 section 7.3's IPv6 virtual MAC), makes no
address of its own and holds the base interface's link-local address (Keepalived's set-up,
read back from the kernel), the client resolves the virtual address to the virtual MAC
before and after the failover, and the backup hears the master's adverts through it."""

from __future__ import annotations

import sys
import time

import pytest

from tests.netns.hosts import start_vrrp
from tests.netns.lab import Lab, wait_for
from tests.netns.v6 import VIP6, enable_ipv6, link_local, vrrp6_conf

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0
VMAC6 = "00:00:5e:00:02:3d"  # VRID 61
NAME = "vrrp.61"


def vmac(lab: Lab, node: str) -> tuple[str | None, bool]:
    """The VMAC interface's MAC (None: no such interface) and whether it holds VIP6."""
    out = lab.run(node, ["ip", "-o", "link", "show", "dev", NAME])
    if out.returncode != 0:
        return None, False
    mac = out.stdout.split("link/ether ")[1].split()[0]
    addresses = lab.run(node, ["ip", "-o", "-6", "addr", "show", "dev", NAME]).stdout
    return mac, f" {VIP6}/64 " in addresses


def vmac_addresses(lab: Lab, node: str) -> dict[str, str]:
    out = lab.run(node, ["ip", "-o", "-6", "addr", "show", "dev", NAME]).stdout
    return {
        line.split()[3]: " ".join(w for w in line.split()[4:] if w != "\\")
        for line in out.splitlines()
    }


POKE = (  # a datagram to the virtual address: the client resolves it first (ND)
    "import socket,sys\n"
    "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', (sys.argv[1], 9))\n"
)


def client_sees(lab: Lab) -> str | None:
    lab.run("cl", [sys.executable, "-c", POKE, VIP6])
    out = lab.run("cl", ["ip", "-6", "neigh", "show", VIP6]).stdout
    return out.split("lladdr ")[1].split()[0] if "lladdr " in out else None


@pytest.mark.parametrize(("master", "backup"), [("poise", "keepalived"), ("keepalived", "poise")])
def test_an_ipv6_vmac_moves_with_the_address(lab: Lab, master: str, backup: str) -> None:
    enable_ipv6(lab)
    conf = vrrp6_conf(priority=150, extra="    use_vmac\n")
    first = start_vrrp(lab, "lb1", master, conf)
    wait_for(lambda: vmac(lab, "lb1") == (VMAC6, True), START, "lb1 master on its VMAC")
    details = lab.run("lb1", ["ip", "-d", "-o", "link", "show", "dev", NAME]).stdout
    assert "macvlan mode private" in details and "addrgenmode none" in details
    # the base's link-local address, no DAD, deprecated; no address made by the kernel
    base_ll = link_local(lab, "lb1")
    found = vmac_addresses(lab, "lb1")
    assert "nodad" in found[f"{base_ll}/64"] and "deprecated" in found[f"{base_ll}/64"]
    assert [a for a in found if a.startswith("fe80:")] == [f"{base_ll}/64"]
    second = start_vrrp(lab, "lb2", backup, conf.replace("priority 150", "priority 100"))
    wait_for(lambda: "Entering BACKUP STATE" in second.log(), START, f"{backup} as backup")
    wait_for(lambda: vmac(lab, "lb2") == (VMAC6, False), START, "lb2's VMAC, no address")
    wait_for(lambda: client_sees(lab) == VMAC6, 5, "the client to resolve VIP6 to the VMAC")
    for _ in range(20):  # the backup hears the master's adverts through its VMAC
        assert vmac(lab, "lb2") == (VMAC6, False)
        time.sleep(0.05)
    first.graceful_stop()
    wait_for(lambda: vmac(lab, "lb2") == (VMAC6, True), 3, "lb2 master on its VMAC")
    assert client_sees(lab) == VMAC6  # nothing for the client to learn
    if master == "poise":
        assert vmac(lab, "lb1") == (None, False)  # deleted at exit
        assert "cannot" not in first.log(), first.log()
    second.graceful_stop()
    if backup == "poise":
        wait_for(lambda: vmac(lab, "lb2") == (None, False), 3, "lb2's VMAC deleted")
        assert "cannot" not in second.log(), second.log()
