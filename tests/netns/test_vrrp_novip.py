"""An instance without a virtual address, as Keepalived 2.2.7 runs it (its warning, then
the election with adverts that carry no address, and the notify scripts: a way to run
scripts on a master change), between poise and Keepalived in both roles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.netns.hosts import start_vrrp
from tests.netns.lab import Lab, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]
# VRRPv2 (Keepalived 2.2.7 refuses a VRRPv3 instance without an address) advertises whole
# seconds: a backup that hears nothing is master after 3 * 1 s + the skew time.
MASTER_DOWN = 3.6

CONF = """vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 52
    priority {priority}
    advert_int 1
    version 2
    notify_master "{script} master"
    notify_backup "{script} backup"
}}
"""


def notify_script(lab: Lab, name: str) -> tuple[Path, Path]:
    out = lab.workdir / f"{name}.out"
    script = lab.workdir / f"{name}.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    return script, out


def said(out: Path) -> list[str]:
    return out.read_text().split() if out.exists() else []


def test_an_instance_without_addresses_is_elected_with_keepalived_in_both_roles(lab: Lab) -> None:
    k_script, k_out = notify_script(lab, "keepalived")
    p_script, p_out = notify_script(lab, "poise")
    keepalived = start_vrrp(lab, "lb1", "keepalived", CONF.format(priority=150, script=k_script))
    wait_for(lambda: said(k_out)[-1:] == ["master"], 10, "Keepalived as master")
    assert "No VIP specified; at least one is sensible" in keepalived.log()
    poise = start_vrrp(lab, "lb2", "poise", CONF.format(priority=100, script=p_script))
    poise.wait_backup(advert=1)
    assert "(VI_1) No VIP specified; at least one is sensible" in poise.log()
    # poise takes Keepalived's adverts (no address in them) as a live master ...
    time.sleep(MASTER_DOWN + 0.5)  # a backup that ignored them would be master by now
    assert "Entering MASTER STATE" not in poise.log() and said(p_out) == ["backup"]
    keepalived.crash()
    wait_for(lambda: said(p_out)[-1:] == ["master"], 10, "poise as master after the crash")
    # ... and Keepalived takes poise's as one (a lower priority stays backup)
    k2_script, k2_out = notify_script(lab, "keepalived2")
    keepalived = start_vrrp(
        lab, "lb1", "keepalived", CONF.format(priority=50, script=k2_script), tag="-2"
    )
    wait_for(lambda: said(k2_out) == ["backup"], 10, "Keepalived as backup")
    time.sleep(MASTER_DOWN + 0.5)
    assert said(k2_out) == ["backup"], keepalived.log()
    assert "Entering MASTER STATE" not in keepalived.log()
    poise.graceful_stop()
    wait_for(lambda: said(k2_out)[-1:] == ["master"], 10, "Keepalived as master after poise stops")
