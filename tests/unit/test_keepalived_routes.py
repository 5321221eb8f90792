"""Routes, rules and static addresses in keepalived.conf (`virtual_routes`, `virtual_rules`,
`static_ipaddress`, `static_routes`, `static_rules`), `accept`, `max_auto_priority`; and
what a reload keeps (vrrp/reload.py)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from poise.config.diagnostics import Diagnostic
from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig, Route, Rule
from poise.vrrp import reload
from tests.unit.keepalived_support import FakeSource, errors, warnings

PATH = "/etc/keepalived/keepalived.conf"
INSTANCE = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        198.51.100.170/24
    }}
{extra}
}}
"""


def load(text: str) -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    return parse(PATH, FakeSource({PATH: text}))


def routes(lines: str) -> tuple[tuple[Route, ...], list[Diagnostic]]:
    config, diagnostics = load(INSTANCE.format(extra=f"virtual_routes {{\n{lines}\n}}"))
    return (config.instances[0].virtual_routes if config else ()), diagnostics


def test_virtual_routes_as_keepalived_reads_them() -> None:
    found, diagnostics = routes(
        "src 198.51.100.11 to 203.0.113.0/24 via 198.51.100.1 dev eth0\n"
        "203.0.114.0/24 dev eth1 table 100 metric 7 scope link protocol static onlink\n"
        "blackhole 203.0.115.0/24\n"
        "default gw 198.51.100.254 table main no_track"
    )
    assert [d.message for d in diagnostics] == ['"gw" for routes is deprecated. Please use "via"']
    first, second, third, fourth = found
    assert first.destination == IPv4Network("203.0.113.0/24")
    assert (first.src, first.via, first.dev) == (
        IPv4Address("198.51.100.11"),
        IPv4Address("198.51.100.1"),
        "eth0",
    )
    assert (first.table, first.protocol, first.kind) == (254, None, "unicast")
    assert (second.table, second.metric, second.scope, second.protocol) == (100, 7, 253, 4)
    assert second.onlink
    assert (third.kind, third.destination) == ("blackhole", IPv4Network("203.0.115.0/24"))
    assert fourth.destination == IPv4Network("0.0.0.0/0") and fourth.table == 254


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("203.0.113.0/24 via 198.51.100.1 mtu 1400", "'mtu' in a route is not implemented yet"),
        ("203.0.113.0/24 nexthop via 198.51.100.1 realms 3", "'realms' in a nexthop is not"),
        ("203.0.113.0/24 nexthop via 198.51.100.1 weight 0", "out of range [1, 256]"),
        ("203.0.113.0/24 via 198.51.100.1 bogus", "unknown route keyword 'bogus'"),
        ("203.0.113.0/24", "a route needs 'via', 'dev' or 'nexthop'"),
        ("via 198.51.100.1", "a route needs a destination"),
        ("203.0.113.0/24 dev eth0 table nosuch", "routing table 'nosuch' not found"),
        ("2001:db8::/64 via 198.51.100.1", "Cannot mix IPv4 and IPv6 addresses for route"),
        ("203.0.113.0/24 nexthop via 2001:db8::1", "Cannot mix IPv4 and IPv6 addresses"),
        ("2001:db8::/129 dev eth0", "unknown route keyword '2001:db8::/129'"),
    ],
)
def test_route_lines_poise_cannot_apply_are_errors_that_name_the_word(
    line: str, message: str
) -> None:
    found, diagnostics = routes(line)
    assert found == ()
    (problem,) = errors(diagnostics)
    assert problem.keyword == "virtual_routes" and message in problem.message


def test_ipv6_routes_and_rules_take_their_family_from_their_addresses() -> None:
    found, diagnostics = routes(
        "2001:db8:1::/64 via 2001:db8::30 dev eth0\n"
        "src 2001:db8::11 2001:db8:3:: dev eth0 table 100\n"
        "default dev eth0\n"
        "2001:db8:5::/64 nexthop via 2001:db8::30 nexthop via 2001:db8::31"
    )
    assert not diagnostics
    first, second, default, multipath = found
    assert (str(first.destination), str(first.via), first.family) == (
        "2001:db8:1::/64",
        "2001:db8::30",
        6,
    )
    assert (str(second.destination), str(second.src)) == ("2001:db8:3::/128", "2001:db8::11")
    # `default` is IPv4's, as Keepalived 2.2.7 sets it (`ip -4 route` shows it)
    assert (str(default.destination), default.family) == ("0.0.0.0/0", 4)
    assert [str(h.via) for h in multipath.nexthops] == ["2001:db8::30", "2001:db8::31"]
    config, diagnostics = load(
        INSTANCE.format(
            extra="virtual_rules {\n from 2001:db8::/64 table 100\n"
            " from all to 198.51.100.0/24 table 100\n"
            " from 2001:db8::/64 to 198.51.100.0/24 table 100\n}"
        )
    )
    assert config is None  # the third line mixes them: Keepalived's words
    (problem,) = errors(diagnostics)
    assert problem.message == "rule specification has mixed IPv4 and IPv6"
    config, _ = load(
        INSTANCE.format(
            extra="virtual_rules {\n from 2001:db8::/64 table 100\n from all table 9\n}"
        )
    )
    assert config is not None
    assert [r.family for r in config.instances[0].virtual_rules] == [6, 4]


def test_multipath_routes_with_nexthop_or_keepalived_s_deprecated_or() -> None:
    found, diagnostics = routes(
        "203.0.113.0/24 via 198.51.100.1 or 198.51.100.2 dev eth0\n"
        "203.0.114.0/24 nexthop via 198.51.100.1 dev eth1 weight 3 onlink nexthop via 198.51.100.2"
    )
    assert [d.message for d in warnings(diagnostics)] == [
        '"or" for routes is deprecated. Please use "nexthop"'
    ]
    first, second = found
    assert first.via is None and first.dev == "eth0"
    assert [(h.via, h.dev, h.weight) for h in first.nexthops] == [
        (IPv4Address("198.51.100.1"), None, 1),
        (IPv4Address("198.51.100.2"), None, 1),
    ]
    assert [(str(h.via), h.dev, h.weight, h.onlink) for h in second.nexthops] == [
        ("198.51.100.1", "eth1", 3, True),
        ("198.51.100.2", None, 1, False),
    ]
    _, diagnostics = routes("203.0.113.0/24 gw 198.51.100.1")
    assert warnings(diagnostics)[0].message == '"gw" for routes is deprecated. Please use "via"'


def test_virtual_rules_and_the_static_blocks() -> None:
    text = (
        "static_ipaddress {\n 198.51.100.50/24 dev eth1 scope link\n 198.51.100.51\n}\n"
        "static_routes {\n 203.0.113.0/24 via 198.51.100.1 dev eth1\n}\n"
        "static_rules {\n from 198.51.100.0/24 table 100 preference 50\n}\n"
        + INSTANCE.format(
            extra="virtual_rules {\n from 198.51.100.170 to 203.0.113.0/24 table 101"
            " priority 60 iif eth0 fwmark 0x10/0xff tos 4\n to 203.0.116.0/24 prohibit\n}"
        )
    )
    config, diagnostics = load(text)
    assert config is not None, diagnostics
    assert not diagnostics
    first, second = config.static_ipaddress
    assert (first.dev, first.scope, second.dev) == ("eth1", "link", "eth0")  # eth0: DFLT_INT
    assert config.static_routes[0].via == IPv4Address("198.51.100.1")
    assert config.static_rules == (
        Rule(
            source=IPv4Network("198.51.100.0/24"),
            table=100,
            preference=50,
            where=config.static_rules[0].where,
        ),
    )
    rule, blocked = config.instances[0].virtual_rules
    assert rule.source == IPv4Network("198.51.100.170/32") and rule.table == 101
    assert (rule.preference, rule.iif, rule.fwmark, rule.fwmask, rule.tos) == (
        60,
        "eth0",
        16,
        255,
        4,
    )
    assert blocked.action == "prohibit" and blocked.table is None
    bad, diagnostics = load(text.replace("preference 50", "goto 3"))
    assert bad is None
    assert "'goto' in a rule is not implemented yet in poise" in errors(diagnostics)[0].message


def test_accept_is_keepalived_s_default_and_no_accept_clears_it() -> None:
    config, diagnostics = load(INSTANCE.format(extra="accept"))
    assert config is not None and config.instances[0].accept and not diagnostics
    config, diagnostics = load(INSTANCE.format(extra="no_accept"))
    assert config is not None and not config.instances[0].accept and not diagnostics


def test_max_auto_priority_reads_as_keepalived_reads_it() -> None:
    for line, value in (("max_auto_priority -1", -1), ("max_auto_priority", 99), ("", 0)):
        config, diagnostics = load(f"global_defs {{\n {line}\n}}\n" + INSTANCE.format(extra=""))
        assert config is not None and not diagnostics, diagnostics
        assert config.global_defs.max_auto_priority == value
    config, diagnostics = load(
        "global_defs {\n max_auto_priority 100\n}\n" + INSTANCE.format(extra="")
    )
    assert config is None and "out of range" in errors(diagnostics)[0].message


# -- reload --------------------------------------------------------------------------------


def two(first: str = "", second: str = "", before: str = "") -> KeepalivedConfig:
    text = (
        before
        + INSTANCE.format(extra=first)
        + INSTANCE.replace("VI_1", "VI_2")
        .replace("virtual_router_id 51", "virtual_router_id 52")
        .format(extra=second)
    )
    config, diagnostics = load(text)
    assert config is not None, diagnostics
    return config


def test_a_reload_keeps_an_instance_whose_role_did_not_change() -> None:
    old = two()
    # Moved down the file (other lines), new notify script, new tracking: still kept.
    new = two(
        first="notify_master /bin/true\n track_interface {\n eth1\n}",
        before="\n\n# a comment\n",
    )
    assert reload.plan(old, new) == reload.Plan(("VI_1", "VI_2"), (), ())
    changed = two(second="priority 120")
    assert reload.plan(old, changed) == reload.Plan(("VI_1",), ("VI_2",), ("VI_2",))
    routes_changed = two(first="virtual_routes {\n 203.0.113.0/24 dev eth0\n}")
    assert reload.plan(old, routes_changed).started == ("VI_1",)
    gone = replace(old, instances=old.instances[:1])
    assert reload.plan(old, gone) == reload.Plan(("VI_1",), ("VI_2",), ())
    group = two(before="global_defs {\n vrrp_mcast_group4 224.0.0.19\n}\n")
    assert reload.plan(old, group).kept == ()


def test_a_reload_restarts_only_the_scripts_that_changed() -> None:
    script = "vrrp_script chk {{\n script {cmd}\n}}\n"
    old = two(before=script.format(cmd="/bin/true"), first="track_script {\n chk\n}")
    moved = two(before="\n" + script.format(cmd="/bin/true"), first="track_script {\n chk\n}")
    assert reload.changed_scripts(old, moved) == set()
    other = two(before=script.format(cmd="/bin/false"), first="track_script {\n chk\n}")
    assert reload.changed_scripts(old, other) == {"chk"}


def test_use_vmac_and_keepalived_s_corrections() -> None:
    config, diagnostics = load(INSTANCE.format(extra="use_vmac"))
    assert config is not None and not diagnostics
    (vi,) = config.instances
    assert vi.use_vmac == "vrrp.51" and vi.address_interface == "vrrp.51"
    assert vi.virtual_mac == bytes.fromhex("00005e000133") and not vi.vmac_xmit_base
    config, diagnostics = load(INSTANCE.format(extra="use_vmac vm1 02:00:00:00:00:01"))
    assert config is not None
    assert config.instances[0].use_vmac == "vm1"
    assert config.instances[0].virtual_mac == bytes.fromhex("020000000001")
    # keepalived -t, word for word: a bad name is ignored, unicast needs vmac_xmit_base.
    config, diagnostics = load(
        INSTANCE.format(extra="use_vmac vrrp-long-name-too-long\n unicast_peer {\n 198.51.100.2\n}")
    )
    assert config is not None
    assert config.instances[0].use_vmac == "vrrp.51" and config.instances[0].vmac_xmit_base
    assert [d.message for d in warnings(diagnostics)] == [
        "VMAC interface name 'vrrp-long-name-too-long' too long or invalid characters - ignoring",
        "(VI_1) unicast with use_vmac requires vmac_xmit_base - setting",
    ]
    # A role setting: a reload that adds it restarts the instance.
    plain, _ = load(INSTANCE.format(extra=""))
    assert plain is not None and config is not None
    assert reload.plan(plain, config).started == ("VI_1",)
