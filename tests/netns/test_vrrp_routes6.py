"""IPv6 routes and rules (`virtual_routes`, `virtual_rules`, `static_routes`,
`static_rules`) for real, between network namespaces: read back from the kernel with
`ip -6 route` / `ip -6 rule`, the same for poise as for Keepalived 2.2.7 on the same file
(each daemon runs it in turn), added on becoming master (the virtual ones) or at start
(the static ones) and all gone when the daemon stops."""

from __future__ import annotations

import pytest

from tests.netns.hosts import POISE, start_vrrp, vrrp_conf
from tests.netns.lab import VIP, Lab, wait_for
from tests.netns.v6 import enable_ipv6

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0
ROUTING = """    virtual_routes {
        2001:db8:1::/64 via 2001:db8::30 dev eth0
        2001:db8:2::/64 dev eth0 table 100 metric 5
        src 2001:db8::11 2001:db8:3::/64 dev eth0
        2001:db8:5::/64 nexthop via 2001:db8::30 dev eth0 nexthop via 2001:db8::20 dev eth0
    }
    virtual_rules {
        from 2001:db8:1::/64 table 100 preference 1000
    }
"""
STATICS = """static_routes {
    2001:db8:4::/64 via 2001:db8::30 dev eth0 table 101
    198.51.100.208/28 via 198.51.100.30 dev eth0
}
static_rules {
    to 2001:db8:4::/64 table 101 preference 1001
}
"""
# As `ip -6 route show table all proto keepalived` prints them ("pref medium" left out).
VIRTUAL_ROUTES = {
    "2001:db8:1::/64 via 2001:db8::30 dev eth0 metric 1024",
    "2001:db8:2::/64 dev eth0 table 100 metric 5",
    "2001:db8:3::/64 dev eth0 src 2001:db8::11 metric 1024",
    "2001:db8:5::/64 metric 1024 nexthop via 2001:db8::30 dev eth0 weight 1 "
    "nexthop via 2001:db8::20 dev eth0 weight 1",
}
STATIC_ROUTES = {"2001:db8:4::/64 via 2001:db8::30 dev eth0 table 101 metric 1024"}
VIRTUAL_RULES = {"1000: from 2001:db8:1::/64 lookup 100 proto keepalived"}
STATIC_RULES = {"1001: from all to 2001:db8:4::/64 lookup 101 proto keepalived"}


def routes6(lab: Lab, node: str) -> set[str]:
    out = lab.run(node, ["ip", "-6", "route", "show", "table", "all", "proto", "keepalived"])
    text = out.stdout.replace("\n\tnexthop", " nexthop")  # a multipath route on one line
    return {" ".join(line.replace(" pref medium", "").split()) for line in text.splitlines()}


def rules6(lab: Lab, node: str) -> set[str]:
    out = lab.run(node, ["ip", "-6", "rule", "show"])
    lines = {" ".join(line.replace("\t", " ").split()) for line in out.stdout.splitlines()}
    return {line for line in lines if line.split(":")[0] in ("1000", "1001")}


def ipv4_static(lab: Lab, node: str) -> bool:
    out = lab.run(node, ["ip", "-4", "route", "show", "proto", "keepalived"]).stdout
    return "198.51.100.208/28 via 198.51.100.30 dev eth0" in out


def view(lab: Lab, node: str) -> tuple[set[str], set[str], bool]:
    return routes6(lab, node), rules6(lab, node), ipv4_static(lab, node)


def settle(lab: Lab, node: str, want: tuple[set[str], set[str], bool], timeout: float) -> None:
    try:
        wait_for(lambda: view(lab, node) == want, timeout, f"{node}'s IPv6 routing")
    except AssertionError:
        assert view(lab, node) == want


@pytest.mark.parametrize("kind", ["keepalived", "poise"])
def test_ipv6_routes_and_rules_are_set_as_keepalived_sets_them(lab: Lab, kind: str) -> None:
    enable_ipv6(lab)
    conf = vrrp_conf(priority=150, before=STATICS, extra=ROUTING)
    if kind == "poise":
        path = lab.workdir / "routes6.conf"
        path.write_text(conf)
        check = lab.run("lb1", [POISE, "check", "-k", str(path)])
        assert check.returncode == 0, check.stderr
    daemon = start_vrrp(lab, "lb1", kind, conf)
    wait_for(lambda: lab.has_vip("lb1"), START, f"{kind} as master with {VIP}")
    settle(lab, "lb1", (VIRTUAL_ROUTES | STATIC_ROUTES, VIRTUAL_RULES | STATIC_RULES, True), 5)
    daemon.graceful_stop()
    settle(lab, "lb1", (set(), set(), False), 5)
    if kind == "poise":
        assert "cannot" not in daemon.log(), daemon.log()


def test_a_route_or_rule_mixing_the_families_is_keepalived_s_error(lab: Lab) -> None:
    conf = vrrp_conf(
        priority=150,
        extra="    virtual_routes {\n        2001:db8:1::/64 via 198.51.100.30\n    }\n"
        "    virtual_rules {\n        from 2001:db8:1::/64 to 198.51.100.0/24 table 100\n    }\n",
    )
    path = lab.workdir / "mixed.conf"
    path.write_text(conf)
    check = lab.run("lb1", [POISE, "check", "-k", str(path)])
    assert check.returncode == 1
    assert "Cannot mix IPv4 and IPv6 addresses for route" in check.stderr
    assert "rule specification has mixed IPv4 and IPv6" in check.stderr
