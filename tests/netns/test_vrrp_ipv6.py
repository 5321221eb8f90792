"""VRRPv3 over IPv6 for real, between network namespaces (2001:db8::/64 inside them):
poise against Keepalived 2.2.7 in both roles and against itself. The master holds the
virtual IPv6 address (added with nodad, as Keepalived adds it), sends its adverts from its
link-local address to ff02::12 with hop limit 255, and announces the address with
unsolicited neighbour advertisements; when it crashes or stops, the backup takes the
address, announces it (the client sees the neighbour advertisement with the backup's MAC)
and serves the client.
"""

from __future__ import annotations

import pytest

from tests.netns.hosts import start_vrrp
from tests.netns.lab import Lab, wait_for
from tests.netns.v6 import (
    VIP6,
    addresses6,
    enable_ipv6,
    failover6,
    has_vip6,
    ip6_of,
    link_local,
    mac_of,
    seen,
    start_prober6,
    start_service6,
    start_watch6,
    vrrp6_conf,
)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

START = 10.0
CRASH_V3 = 1.0  # loose bounds (a shared, noisy machine); the figures come from v6.py
GRACEFUL_V3 = 0.5


def only_holder6(lab: Lab, node: str, timeout: float) -> None:
    other = "lb2" if node == "lb1" else "lb1"
    wait_for(
        lambda: has_vip6(lab, node) and not has_vip6(lab, other),
        timeout,
        f"{node} alone to hold {VIP6}",
    )


@pytest.mark.parametrize(
    ("master", "backup"),
    [("poise", "keepalived"), ("keepalived", "poise"), ("poise", "poise")],
)
def test_ipv6_failover_between_poise_and_keepalived_in_both_roles(
    lab: Lab, master: str, backup: str
) -> None:
    enable_ipv6(lab)
    for node in ("lb1", "lb2"):
        start_service6(lab, node)
    watch = start_watch6(lab, 100)
    conf1 = vrrp6_conf(priority=150)
    first = start_vrrp(lab, "lb1", master, conf1)
    second = start_vrrp(lab, "lb2", backup, vrrp6_conf(priority=100))
    only_holder6(lab, "lb1", START)
    # Keepalived's flags on a virtual IPv6 address: no duplicate address detection.
    assert "nodad" in addresses6(lab, "lb1")[VIP6]
    second.wait_backup()
    # The master's adverts come from its link-local address; it announced the address.
    assert seen(watch, "advert", link_local(lab, "lb1"), 0)
    assert seen(watch, "na", mac_of(lab, "lb1"), 0)
    prober = start_prober6(lab, 40)
    crash = failover6(lab, prober, watch, first.crash, advert=0.1, timeout=3)
    assert crash.served < CRASH_V3 and crash.announced < CRASH_V3, crash
    assert has_vip6(lab, "lb2")  # (the crashed node keeps its copy until it restarts)
    first = start_vrrp(lab, "lb1", master, conf1, tag="-again")
    only_holder6(lab, "lb1", START)  # preemption back
    graceful = failover6(lab, prober, watch, first.graceful_stop, advert=0.1, timeout=2)
    assert graceful.served < GRACEFUL_V3 and graceful.announced < GRACEFUL_V3, graceful
    only_holder6(lab, "lb2", 2)
    assert second.proc.alive()
    assert "Traceback" not in first.log() + second.log()


@pytest.mark.parametrize("where", ["global", "instance"])
def test_keepalived_vrrp_version_2_with_ipv6_elects_with_poise(lab: Lab, where: str) -> None:
    """`vrrp_version 2` in global_defs leaves IPv6 instances at version 3
    (keepalived.conf(5)); `version 2` in the instance, above its addresses, makes
    Keepalived 2.2.7 send VRRPv2 over IPv6 (no RFC's; poise speaks it too). Either way:
    one master, no advert dropped, and the backup takes over on a crash."""
    enable_ipv6(lab)
    extra = "    version 2\n" if where == "instance" else ""
    conf = vrrp6_conf(priority=150, version=2, advert=1, before=extra)
    first = start_vrrp(lab, "lb1", "keepalived", conf)
    second = start_vrrp(
        lab, "lb2", "poise", vrrp6_conf(priority=100, version=2, advert=1, before=extra)
    )
    only_holder6(lab, "lb1", START)
    second.wait_backup(1)
    assert has_vip6(lab, "lb1") and not has_vip6(lab, "lb2")
    first.crash()
    wait_for(lambda: has_vip6(lab, "lb2"), 6, "lb2 to take the address")
    assert "dropped" not in second.log(), second.log()


def unicast6(node: str, peer: str) -> str:
    return (
        f"    unicast_src_ip {ip6_of(node)}\n    unicast_peer {{\n        {ip6_of(peer)}\n    }}\n"
    )


@pytest.mark.parametrize(("master", "backup"), [("poise", "keepalived"), ("keepalived", "poise")])
def test_ipv6_unicast_peers_between_poise_and_keepalived(
    lab: Lab, master: str, backup: str
) -> None:
    enable_ipv6(lab)
    watch = start_watch6(lab, 60)
    first = start_vrrp(lab, "lb1", master, vrrp6_conf(priority=150, extra=unicast6("lb1", "lb2")))
    second = start_vrrp(lab, "lb2", backup, vrrp6_conf(priority=100, extra=unicast6("lb2", "lb1")))
    only_holder6(lab, "lb1", START)
    second.wait_backup()
    assert not seen(watch, "advert", link_local(lab, "lb1"), 0)  # unicast: nothing multicast
    first.crash()
    wait_for(lambda: has_vip6(lab, "lb2"), 3, "lb2 to take the address")
    assert "dropped" not in second.log(), second.log()


def test_ipv6_address_flags_are_keepalived_s(lab: Lab) -> None:
    """nodad unless `-nodad`, and a /128 deprecated: poise's flags read back from the
    kernel are those Keepalived's own run of the same file leaves."""
    enable_ipv6(lab)
    lines = f"{VIP6}/64\n        2001:db8::171\n        2001:db8::172/64 -nodad"
    conf = vrrp6_conf(priority=150).replace(f"{VIP6}/64", lines)
    found = {}
    for kind in ("keepalived", "poise"):
        daemon = start_vrrp(lab, "lb1", kind, conf)
        wait_for(lambda: "2001:db8::172" in addresses6(lab, "lb1"), START, f"{kind}'s addresses")
        found[kind] = {  # (`tentative` comes and goes with the -nodad one's detection)
            a: f.replace("tentative ", "")
            for a, f in addresses6(lab, "lb1").items()
            if a.startswith(VIP6[:-1])
        }
        daemon.graceful_stop()
        wait_for(lambda: not has_vip6(lab, "lb1"), 5, f"{kind} to remove its addresses")
    assert found["poise"] == found["keepalived"]
    assert "nodad" in found["poise"][VIP6] and "nodad" not in found["poise"]["2001:db8::172"]
    assert "deprecated" in found["poise"]["2001:db8::171"]


@pytest.mark.parametrize(("master", "backup"), [("poise", "keepalived"), ("keepalived", "poise")])
def test_a_link_local_first_address_as_rfc_5798_advises(lab: Lab, master: str, backup: str) -> None:
    """docs/vrrp.md's example: fe80::61 first, then the global address. One master, the
    link-local virtual address on it (scope link, nodad), no advert dropped either side."""
    enable_ipv6(lab)

    def conf(priority: int) -> str:
        return vrrp6_conf(priority=priority).replace(
            f"{VIP6}/64", f"fe80::61/64\n        {VIP6}/64"
        )

    first = start_vrrp(lab, "lb1", master, conf(150))
    second = start_vrrp(lab, "lb2", backup, conf(100))
    only_holder6(lab, "lb1", START)
    second.wait_backup()
    assert "scope link nodad" in addresses6(lab, "lb1")["fe80::61"]
    assert "fe80::61" not in addresses6(lab, "lb2")
    logs = first.log() + second.log()
    assert "dropped" not in logs and "wrong" not in logs, logs
