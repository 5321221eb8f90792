"""What only the running system can tell about keepalived.conf: interfaces, the subnet of a
virtual address, scripts that exist, are executable and (with enable_script_security)
cannot be changed by someone else. Checked at `poise check -k` and at start."""

from __future__ import annotations

import os
from collections.abc import Sequence
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig
from poise.vrrp.system import Link, check_commands, check_network, insecure_reason
from tests.unit.keepalived_support import FakeSource

CONF = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    {extra}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def config(vip: str = "198.51.100.170/24", extra: str = "", before: str = "") -> KeepalivedConfig:
    text = before + CONF.format(vip=vip, extra=extra)
    parsed, diagnostics = parse("/k.conf", FakeSource({"/k.conf": text}))
    assert parsed is not None, diagnostics
    return parsed


def links(**addresses: str) -> dict[str, Link]:
    found = {}
    for index, (name, text) in enumerate(addresses.items(), start=2):
        found[name] = Link(name, index, True, b"\x02" * 6, [IPv4Interface(a) for a in text.split()])
    return found


def messages(diagnostics: Sequence[object]) -> list[str]:
    return [str(d) for d in diagnostics]


def test_a_missing_interface_is_an_error_at_its_instance() -> None:
    problems = check_network(config(), links(eth1="198.51.100.1/24"))
    assert messages(problems) == [
        "/k.conf:2: error: 'interface': no interface named 'eth0' (in this network namespace)"
    ]


def test_a_vip_with_its_prefix_brings_its_own_subnet() -> None:
    assert check_network(config(), links(eth0="192.0.2.2/24")) == []


def test_a_host_vip_must_lie_in_a_subnet_of_its_interface() -> None:
    assert check_network(config("198.51.100.170"), links(eth0="198.51.100.1/24")) == []
    problems = check_network(config("198.51.100.170"), links(eth0="192.0.2.2/24"))
    assert messages(problems) == [
        "/k.conf:7: error: '198.51.100.170/32': virtual address 198.51.100.170 is not in a "
        "subnet of eth0: give its prefix length (ADDR/PREFIX) or 'dev'"
    ]
    problems = check_network(
        config("198.51.100.170"), links(eth0="192.0.2.2/24", eth1="198.51.100.1/24")
    )
    assert "it is in the subnet of eth1: add 'dev eth1'" in messages(problems)[0]
    assert check_network(config("198.51.100.170 dev eth1"), links(eth0="", eth1="")) == []


def test_tracked_interfaces_dev_and_unicast_source_must_exist() -> None:
    conf = config(
        "198.51.100.170 dev eth7",
        extra="track_interface {\n eth9\n}\nunicast_src_ip 198.51.100.9\n"
        "unicast_peer {\n 198.51.100.2\n}",
    )
    problems = messages(check_network(conf, links(eth0="198.51.100.1/24")))
    assert len(problems) == 3
    assert "'track_interface': no interface named 'eth9'" in problems[0]
    assert "unicast_src_ip 198.51.100.9 is not an address of eth0" in problems[1]
    assert "'dev': no interface named 'eth7'" in problems[2]


def script_conf(path: str, security: bool = False, user: str = "") -> KeepalivedConfig:
    before = "global_defs {\n enable_script_security\n}\n" if security else ""
    script = f'vrrp_script chk {{\n script "{path} --flag"\n {user}\n}}\n'
    return config(extra="track_script {\n chk\n}", before=before + script)


def test_a_script_that_does_not_exist_or_cannot_run_is_an_error(tmp_path: Path) -> None:
    missing = messages(check_commands(script_conf(str(tmp_path / "nope"))))
    assert missing == [f"/k.conf:2: error: 'script': '{tmp_path}/nope' does not exist (in PATH)"]
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    assert "is not executable" in messages(check_commands(script_conf(str(plain))))[0]
    assert check_commands(script_conf("true")) == []  # found in PATH


def test_an_unknown_script_user_is_an_error() -> None:
    problems = messages(check_commands(script_conf("true", user="user no_such_user_here")))
    assert problems == ["/k.conf:2: error: 'script': unknown user 'no_such_user_here'"]


@pytest.mark.skipif(os.geteuid() != 0, reason="script security applies to scripts run as root")
def test_script_security_refuses_scripts_others_can_change(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    script = tmp_path / "check"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o757)  # writable by others
    problems = messages(check_commands(script_conf(str(script), security=True)))
    assert len(problems) == 1 and "writable by group or others" in problems[0]
    assert check_commands(script_conf(str(script), security=False)) == []
    script.chmod(0o755)
    assert insecure_reason(str(script)) is None
    assert insecure_reason("/bin/true") is None
