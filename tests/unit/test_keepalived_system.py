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


def test_a_host_vip_outside_its_interface_s_subnets_is_added_there_as_keepalived_does() -> None:
    # keepalived -t accepts it silently (rc 0) and adds ADDR/32 to the instance's interface.
    assert check_network(config("198.51.100.170"), links(eth0="198.51.100.1/24")) == []
    assert check_network(config("198.51.100.170"), links(eth0="192.0.2.2/24")) == []
    problems = check_network(
        config("198.51.100.170"), links(eth0="192.0.2.2/24", eth1="198.51.100.1/24")
    )
    assert messages(problems) == [
        "/k.conf:7: warning: '198.51.100.170/32': virtual address 198.51.100.170 is in the "
        "subnet of eth1 but goes on eth0 as 198.51.100.170/32, as Keepalived does: add "
        "'dev eth1' to put it there"
    ]
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


def script_conf(
    path: str, security: bool = False, user: str = "", script_user: str = "root"
) -> KeepalivedConfig:
    before = (
        f"global_defs {{\n enable_script_security\n script_user {script_user}\n}}\n"
        if security
        else ""
    )
    script = f'vrrp_script chk {{\n script "{path} --flag"\n {user}\n}}\n'
    return config(extra="track_script {\n chk\n}", before=before + script)


def notify_conf(path: str) -> KeepalivedConfig:
    return config(extra=f"notify_master {path}\n notify_backup /bin/true")


def test_a_script_that_does_not_exist_or_cannot_run_is_disabled_as_keepalived_does(
    tmp_path: Path,
) -> None:
    conf, problems = check_commands(script_conf(str(tmp_path / "nope")))
    assert messages(problems) == [
        "/k.conf:2: warning: 'script': Disabling track script chk since not found/accessible: "
        f"'{tmp_path}/nope' does not exist (in PATH)"
    ]
    assert conf.instances[0].track_script == () and conf.scripts == {}
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    conf, problems = check_commands(script_conf(str(plain)))
    assert "is not executable" in messages(problems)[0] and not conf.instances[0].track_script
    fine = script_conf("true")
    assert check_commands(fine) == (fine, [])  # found in PATH
    conf, problems = check_commands(notify_conf(str(tmp_path / "nope")))
    assert messages(problems) == [
        "/k.conf:5: warning: 'notify': Disabling notify script: "
        f"'{tmp_path}/nope' does not exist (in PATH)"
    ]
    notify = conf.instances[0].notify
    assert notify.master is None and notify.backup is not None


def test_an_unknown_script_user_disables_the_script() -> None:
    conf, problems = check_commands(script_conf("true", user="user no_such_user_here"))
    assert not conf.instances[0].track_script
    assert messages(problems) == [
        "/k.conf:2: warning: 'script': Disabling track script chk since not found/accessible: "
        "unknown user 'no_such_user_here'"
    ]
    _, problems = check_commands(
        config(before="global_defs {\n script_user no_such_user_here\n}\n")
    )
    assert messages(problems) == [
        "/k.conf:1: error: 'script_user': unknown user 'no_such_user_here'"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="script security applies to scripts run as root")
def test_script_security_refuses_scripts_others_can_change(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    script = tmp_path / "check"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o757)  # writable by others
    conf, diagnostics = check_commands(script_conf(str(script), security=True))
    problems = messages(diagnostics)
    assert len(problems) == 1 and "writable by group or others" in problems[0]
    assert "warning: 'script': Disabling track script chk due to insecure" in problems[0]
    assert not conf.instances[0].track_script
    assert check_commands(script_conf(str(script), security=False))[1] == []
    script.chmod(0o755)
    assert insecure_reason(str(script)) is None
    assert insecure_reason("/bin/true") is None


@pytest.mark.skipif(
    "keepalived_script:" in Path("/etc/passwd").read_text(),
    reason="the default script user exists here",
)
def test_script_security_without_a_script_user_disables_scripts_as_keepalived_does() -> None:
    # keepalived -t: "Unable to set default user keepalived_script for script", then the
    # script is removed: under script security there is no falling back to root.
    text = "global_defs {\n enable_script_security\n}\n"
    conf, problems = check_commands(
        config(
            extra="track_script {\n chk\n}", before=text + ("vrrp_script chk {\n script true\n}\n")
        )
    )
    assert "Unable to set default user keepalived_script for script" in messages(problems)[0]
    assert not conf.instances[0].track_script


def test_a_loopback_interface_is_refused_as_keepalived_refuses_it() -> None:
    # keepalived -t 2.2.7: "(VI_1) cannot use a loopback interface (lo) for vrrp - ignoring",
    # then "(VI_1) Unknown interface!", exit status 5 (the e2e check test runs it).
    found = links(eth0="127.0.0.1/8")
    found["eth0"].loopback = True
    assert messages(check_network(config(), found)) == [
        "/k.conf:2: error: 'interface': (VI_1) cannot use a loopback interface (eth0) for vrrp"
    ]
