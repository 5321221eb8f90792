"""`no_accept` for real, in namespaces: a master that is not the address owner drops what
is addressed to its virtual addresses (RFC 5798 6.1) with the nftables table Keepalived
2.2.7 makes, element for element, and deletes it at exit. Keepalived runs the same file
first, so the test holds poise to what Keepalived does, not to a reading of the page."""

from __future__ import annotations

import sys

import pytest

from tests.netns.hosts import start_service, start_vrrp, vrrp_conf
from tests.netns.lab import SERVICE_PORT, VIP, Lab, wait_for
from tests.netns.v6 import VIP6, enable_ipv6, has_vip6, start_service6, vrrp6_conf

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

CONNECT = (
    "import socket,sys\n"
    "try:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5).recv(64)\n"
    "except OSError:\n sys.exit(1)\n"
)


def reachable(lab: Lab, address: str) -> bool:
    result = lab.run("cl", [sys.executable, "-c", CONNECT, address, str(SERVICE_PORT)])
    return result.returncode == 0


def elements(lab: Lab, family: str) -> str:
    out = lab.run("lb1", ["nft", "list", "set", family, "keepalived", "vips"]).stdout
    if "elements = {" not in out:
        return ""
    return " ".join(out.split("elements = {")[1].split("}")[0].replace(",", " ").split())


@pytest.mark.parametrize("kind", ["keepalived", "poise"])
def test_a_non_accept_master_drops_what_is_addressed_to_its_addresses(lab: Lab, kind: str) -> None:
    enable_ipv6(lab)
    start_service(lab, "lb1")
    start_service6(lab, "lb1")
    # one daemon for both instances (two Keepalived would both want the table)
    conf = vrrp_conf(priority=150, extra="    no_accept\n")
    conf += vrrp6_conf(priority=150, extra="    no_accept\n").split("}\n", 1)[1]
    daemon = start_vrrp(lab, "lb1", kind, conf)
    wait_for(lambda: VIP in lab.addresses("lb1") and has_vip6(lab, "lb1"), 10, "lb1 as master")
    wait_for(lambda: elements(lab, "ip6") == VIP6, 5, "the IPv6 drop rule")
    assert elements(lab, "ip") == VIP
    assert not reachable(lab, VIP) and not reachable(lab, VIP6)
    # the address is still announced and defended: neighbour discovery passes
    neighbours = lab.run("cl", ["ip", "-6", "neigh", "show", VIP6]).stdout
    assert "lladdr" in neighbours or "REACHABLE" in neighbours or "STALE" in neighbours
    daemon.graceful_stop()
    tables = lab.run("lb1", ["nft", "list", "tables"]).stdout
    assert "keepalived" not in tables, tables


def test_without_no_accept_the_master_accepts(lab: Lab) -> None:
    start_service(lab, "lb1")
    start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150))
    wait_for(lambda: VIP in lab.addresses("lb1"), 10, "lb1 as master")
    wait_for(lambda: reachable(lab, VIP), 5, "the service on the virtual address")
    assert "keepalived" not in lab.run("lb1", ["nft", "list", "tables"]).stdout
