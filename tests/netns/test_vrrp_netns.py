"""poise vrrp for real, between network namespaces: against itself and against Keepalived
in both roles, through graceful stops, crashes, pulled cables, preemption, tracked scripts,
forged adverts and a healed partition, with a client that keeps requesting the virtual
address and measures each failover (time, requests lost).

Most scenarios run VRRPv3 with adverts every 0.1 s, so that each takes a second or two;
VRRPv2 at Keepalived's default advert_int 1 (with its password) runs the seed file and
the interoperability checks that need it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns.hosts import (
    HERE,
    POISE,
    measure,
    start_balancer,
    start_prober,
    start_service,
    start_vrrp,
    vrrp_conf,
)
from tests.netns.lab import VIP, Lab, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

SEED = Path(__file__).resolve().parents[2] / "examples"
DOWN_V3 = 0.4  # master-down interval at advert_int 0.1 (0.3 s + skew), rounded up
DOWN_V2 = 4.0  # at advert_int 1
START = 10.0  # seconds for the daemons to start and elect (Python starts slowly on a busy machine)
# Failover bounds are loose on purpose (the machines are shared and noisy); the figures
# themselves come from measure.py. At advert_int 0.1 the protocol's own times are about
# 0.07 s for a graceful stop and 0.3 s for a crash or a pulled cable.
CRASH_V3 = 1.0
GRACEFUL_V3 = 0.5


def holders(lab: Lab) -> list[str]:
    return [node for node in ("lb1", "lb2") if lab.has_vip(node)]


def only_holder(lab: Lab, node: str, timeout: float) -> float:
    return wait_for(lambda: holders(lab) == [node], timeout, f"the address on {node} only")


def test_the_seed_keepalived_conf_runs_as_it_is(lab: Lab) -> None:
    seed = (SEED / "keepalived.conf").read_text()
    check = lab.run("lb1", [POISE, "check", "-k", str(SEED / "keepalived.conf")])
    assert check.returncode == 0, check.stderr
    assert "Configuration file is valid" in check.stdout
    assert check.stderr.count("poise sends no mail") == 4
    lb2 = seed.replace("state MASTER", "state BACKUP").replace("priority 101", "priority 100")
    first = start_vrrp(lab, "lb1", "poise", seed)
    second = start_vrrp(lab, "lb2", "poise", lb2)
    only_holder(lab, "lb1", DOWN_V2 + START)
    time.sleep(1.5)  # adverts keep lb2 a backup
    assert holders(lab) == ["lb1"]
    assert "Entering BACKUP STATE" in second.log()
    first.graceful_stop()  # priority 0: lb2 takes over after the skew time, not 3.6 s
    took = only_holder(lab, "lb2", 2)
    assert took < 1.5
    assert "Backup received priority 0 advertisement" in second.log()


def notify_script(lab: Lab) -> tuple[Path, Path]:
    out = lab.workdir / "notified"
    script = lab.workdir / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    return script, out


def test_poise_pair_crash_preemption_link_down_and_graceful_stop(lab: Lab) -> None:
    script, notified = notify_script(lab)
    for node in ("lb1", "lb2"):
        start_service(lab, node)
    conf1 = vrrp_conf(priority=150, extra=f"    notify {script}\n")
    first = start_vrrp(lab, "lb1", "poise", conf1)
    second = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100))
    only_holder(lab, "lb1", START)
    second.wait_backup()
    prober = start_prober(lab, 30)

    crash = measure(prober, "lb1", "lb2", first.crash, 3)
    assert crash.seconds < CRASH_V3 and crash.lost == 0  # the crashed node still answers
    assert holders(lab) == ["lb1", "lb2"]  # a crash leaves its address behind ...
    first = start_vrrp(lab, "lb1", "poise", conf1, tag="-again")
    measure(prober, "lb2", "lb1", lambda: None, START)  # ... which the restart removes,
    only_holder(lab, "lb1", 2)  # then lb1 preempts
    assert "removing stale address" in first.log()

    cable = measure(prober, "lb1", "lb2", lambda: lab.cable("lb1", False), 3)
    assert cable.seconds < CRASH_V3
    wait_for(lambda: "Entering FAULT STATE" in first.log(), 2, "lb1 in FAULT")
    assert not lab.has_vip("lb1")
    lab.cable("lb1", True)
    measure(prober, "lb2", "lb1", lambda: None, 5)

    graceful = measure(prober, "lb1", "lb2", first.graceful_stop, 2)
    assert graceful.seconds < GRACEFUL_V3
    only_holder(lab, "lb2", 2)
    lines = notified.read_text().splitlines()
    assert lines[:2] == ["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150"]
    assert "INSTANCE VI_1 FAULT 150" in lines and lines[-1] == "INSTANCE VI_1 STOP 150"


@pytest.mark.parametrize(("master", "backup"), [("poise", "keepalived"), ("keepalived", "poise")])
def test_poise_and_keepalived_elect_one_master_in_both_roles(
    lab: Lab, master: str, backup: str
) -> None:
    for node in ("lb1", "lb2"):
        start_service(lab, node)
    conf1 = vrrp_conf(priority=150)
    first = start_vrrp(lab, "lb1", master, conf1)
    second = start_vrrp(lab, "lb2", backup, vrrp_conf(priority=100))
    only_holder(lab, "lb1", START)
    second.wait_backup()
    prober = start_prober(lab, 20)
    crash = measure(prober, "lb1", "lb2", first.crash, 3)
    assert crash.seconds < CRASH_V3
    first = start_vrrp(lab, "lb1", master, conf1, tag="-again")
    measure(prober, "lb2", "lb1", lambda: None, START)  # preemption back
    only_holder(lab, "lb1", 2)
    graceful = measure(prober, "lb1", "lb2", first.graceful_stop, 2)
    assert graceful.seconds < GRACEFUL_V3
    only_holder(lab, "lb2", 2)
    assert second.proc.alive()


@pytest.mark.parametrize(("master", "backup"), [("poise", "keepalived"), ("keepalived", "poise")])
def test_vrrpv2_with_a_password_between_poise_and_keepalived(
    lab: Lab, master: str, backup: str
) -> None:
    first = start_vrrp(
        lab, "lb1", master, vrrp_conf(priority=150, version=2, advert=1, auth="secret")
    )
    second = start_vrrp(
        lab, "lb2", backup, vrrp_conf(priority=100, version=2, advert=1, auth="secret")
    )
    only_holder(lab, "lb1", DOWN_V2 + START)
    time.sleep(1.2)
    assert holders(lab) == ["lb1"]
    first.graceful_stop()
    assert only_holder(lab, "lb2", 2) < 1.5
    assert second.proc.alive()


def test_nopreempt_keeps_the_lower_master(lab: Lab) -> None:
    second = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100))
    only_holder(lab, "lb2", START)
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150, extra="    nopreempt\n"))
    wait_for(lambda: "Entering BACKUP STATE" in first.log(), START, "lb1 to start")
    time.sleep(10 * DOWN_V3)
    assert holders(lab) == ["lb2"]
    second.graceful_stop()
    only_holder(lab, "lb1", 2)


def tracked(script: str, weight: int) -> str:
    return (
        f'vrrp_script chk {{\n    script "{script}"\n    interval 1\n    timeout 1\n'
        f"    weight {weight}\n}}\n"
    )


def test_a_tracked_script_failing_and_recovering_moves_the_address(lab: Lab) -> None:
    flag = lab.workdir / "healthy"
    flag.touch()
    before = tracked(f"/usr/bin/test -e {flag}", -60)
    extra = "    track_script {\n        chk\n    }\n"
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150, before=before, extra=extra))
    start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100))
    only_holder(lab, "lb1", START)
    flag.unlink()  # 150 - 60 = 90 < 100: lb2 preempts
    only_holder(lab, "lb2", 5)
    assert "VRRP_Script(chk) failed" in first.log()
    flag.touch()
    only_holder(lab, "lb1", 5)
    assert "VRRP_Script(chk) succeeded" in first.log()


def test_a_hung_balancer_counts_as_dead(lab: Lab) -> None:
    """The replacement for the seed's `killall -0 haproxy`: ask `poise run` over its stats
    socket, with a timeout, so that a balancer that hangs (SIGSTOP here) fails the check."""
    start_backend_for_balancers(lab)
    balancer, sock = start_balancer(lab, "lb1")
    start_balancer(lab, "lb2")
    check = f"{POISE} ctl -S {sock} --timeout 0.5 show info"
    before = tracked(check, -60)
    extra = "    track_script {\n        chk\n    }\n"
    start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150, before=before, extra=extra))
    start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100))
    only_holder(lab, "lb1", START)
    prober = start_prober(lab, 20)
    hang = measure(prober, "lb1", "lb2", lambda: lab.signal(balancer, signal.SIGSTOP), 5)
    assert hang.seconds < 3.5  # the check's interval and timeout, then the down interval
    lab.signal(balancer, signal.SIGCONT)
    measure(prober, "lb2", "lb1", lambda: None, 4)


def start_backend_for_balancers(lab: Lab) -> None:
    from tests.netns.hosts import start_backend

    start_backend(lab)


def forge(lab: Lab, kind: str, count: int) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(HERE / "forge.py"), ip_of("cl"), kind, str(count), "0.2"]
    return lab.run("cl", argv, timeout=30)


def test_forged_and_malformed_adverts_never_move_the_address(lab: Lab) -> None:
    first = start_vrrp(
        lab, "lb1", "poise", vrrp_conf(priority=150, version=2, advert=1, auth="secret")
    )
    only_holder(lab, "lb1", DOWN_V2 + START)
    reasons = {
        "password": "invalid password",
        "ttl": "TTL 64, expected 255",
        "addresses": "address list differs from ours",
        "vrid": "for VRID 52, which no vrrp_instance uses here",
        "checksum": "bad VRRPv2 checksum",
        "version": "VRRP version 3, expected 2",
    }
    for kind in reasons:
        result = forge(lab, kind, 3)
        assert result.returncode == 0, result.stderr
    time.sleep(0.3)
    assert holders(lab) == ["lb1"]
    log = first.log()
    for reason in reasons.values():
        assert reason in log
    assert "Entering BACKUP STATE" not in log.split("Entering MASTER STATE", 1)[1]
    forge(lab, "valid", 2)  # the control: an authentic higher priority does move it
    wait_for(lambda: not lab.has_vip("lb1"), 2, "lb1 to yield to a valid advert")


@pytest.mark.parametrize("peer", ["poise", "keepalived"])
def test_a_healed_partition_leaves_one_master(lab: Lab, peer: str) -> None:
    start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150))
    start_vrrp(lab, "lb2", peer, vrrp_conf(priority=100))
    only_holder(lab, "lb1", START)
    lab.isolate("lb1", True)
    lab.isolate("lb2", True)  # both still reach the client, not each other
    wait_for(lambda: holders(lab) == ["lb1", "lb2"], 5, "two masters while partitioned")
    lab.isolate("lb1", False)
    lab.isolate("lb2", False)
    only_holder(lab, "lb1", 2)
    time.sleep(5 * DOWN_V3)
    assert holders(lab) == ["lb1"]


BAD = {
    "missing interface": (
        vrrp_conf(priority=100).replace("interface eth0", "interface eth9"),
        "no interface named 'eth9'",
    ),
    "two instances on one vrid": (
        vrrp_conf(priority=100)
        + vrrp_conf(priority=100).split("}\n", 1)[1].replace("VI_1", "VI_2"),
        "uses VRID 51 on eth0, as 'VI_1' does",
    ),
}


def test_bad_configurations_are_refused_at_check_and_at_start(lab: Lab) -> None:
    for name, (conf, message) in BAD.items():
        path = lab.workdir / f"{name.replace(' ', '-')}.conf"
        path.write_text(conf)
        check = lab.run("lb1", [POISE, "check", "-k", str(path)])
        assert check.returncode == 1 and message in check.stderr, (name, check.stderr)
        start = lab.run("lb1", [POISE, "vrrp", "-f", str(path), "-db"], timeout=10)
        assert start.returncode == 1 and message in start.stderr, (name, start.stderr)
    insecure = lab.workdir / "insecure-check"
    insecure.write_text("#!/bin/sh\nexit 0\n")
    insecure.chmod(0o757)  # anyone may change what root would run
    conf = vrrp_conf(
        priority=100,
        globals_="    enable_script_security\n    script_user root\n",
        before=tracked(str(insecure), 0),
        extra="    track_script {\n        chk\n    }\n",
    )
    path = lab.workdir / "insecure.conf"
    path.write_text(conf)
    check = lab.run("lb1", [POISE, "check", "-k", str(path)])
    # Keepalived disables the script and runs (keepalived -t: "Disabling track script chk
    # due to insecure"); so does poise.
    assert check.returncode == 0, check.stderr
    assert "Disabling track script chk due to insecure" in check.stderr
    assert "insecure script run as root" in check.stderr
    assert not lab.has_vip("lb1")


def two_instances(priority: int, before: str = "", track: str = "", notify: str = "") -> str:
    """VI_1 and VI_2 (VRIDs 51 and 52, addresses .170 and .171) in sync group G."""
    conf = vrrp_conf(priority=priority, before=before)
    second = (
        conf[conf.index("vrrp_instance") :]
        .replace("VI_1", "VI_2")
        .replace("virtual_router_id 51", "virtual_router_id 52")
        .replace(f"{VIP}/24", "198.51.100.171/24")
    )
    if track:
        second = second.replace("advert_int 0.1\n", f"advert_int 0.1\n{track}")
    group = f"vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n{notify}}}\n"
    return conf + second.lstrip("\n") + group


def test_a_sync_group_moves_its_instances_together(lab: Lab) -> None:
    flag = lab.workdir / "healthy"
    flag.touch()
    script, notified = notify_script(lab)
    track = "    track_script {\n        chk\n    }\n"
    conf1 = two_instances(
        150,
        before=tracked(f"/usr/bin/test -e {flag}", 0),
        track=track,
        notify=f"    notify {script}\n",
    )
    start_vrrp(lab, "lb1", "poise", conf1)
    start_vrrp(lab, "lb2", "poise", two_instances(100))

    def addresses(node: str) -> set[str]:
        return lab.addresses(node) - {ip_of(node)}

    wait_for(lambda: addresses("lb1") == {VIP, "198.51.100.171"}, START, "lb1 to hold both")
    flag.unlink()  # VI_2 goes to FAULT, and takes VI_1 with it
    wait_for(
        lambda: addresses("lb2") == {VIP, "198.51.100.171"} and not addresses("lb1"),
        4,
        "lb2 to hold both",
    )
    flag.touch()
    wait_for(
        lambda: addresses("lb1") == {VIP, "198.51.100.171"} and not addresses("lb2"),
        4,
        "lb1 to hold both again",
    )
    lines = notified.read_text().splitlines()
    assert any(line.startswith("GROUP G MASTER") for line in lines)
    assert any(line.startswith("GROUP G FAULT") for line in lines)


def test_daemon_mode_detaches_and_writes_its_pidfile(lab: Lab) -> None:
    conf = lab.workdir / "daemon.conf"
    conf.write_text(vrrp_conf(priority=150))
    pidfile = lab.workdir / "daemon.pid"
    result = lab.run("lb1", [POISE, "vrrp", "-f", str(conf), "-D", "-p", str(pidfile)])
    assert result.returncode == 0, result.stderr
    pid = int(pidfile.read_text())
    try:
        only_holder(lab, "lb1", START)
    finally:
        os.kill(pid, signal.SIGTERM)  # the daemon this test started, by its pid
    wait_for(lambda: not pidfile.exists(), 5, "the daemon to remove its pidfile")
    assert not lab.has_vip("lb1")


def unicast(node: str, peer: str) -> str:
    return f"    unicast_src_ip {ip_of(node)}\n    unicast_peer {{\n        {ip_of(peer)}\n    }}\n"


@pytest.mark.parametrize("peer", ["poise", "keepalived"])
def test_unicast_peers(lab: Lab, peer: str) -> None:
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150, extra=unicast("lb1", "lb2")))
    second = start_vrrp(lab, "lb2", peer, vrrp_conf(priority=100, extra=unicast("lb2", "lb1")))
    only_holder(lab, "lb1", START)
    second.wait_backup()
    time.sleep(5 * DOWN_V3)
    assert holders(lab) == ["lb1"]  # the backup hears the master's unicast adverts
    first.crash()
    assert wait_for(lambda: lab.has_vip("lb2"), 2, "lb2 to take over") < CRASH_V3
