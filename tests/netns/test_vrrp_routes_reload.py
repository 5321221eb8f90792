"""poise vrrp for real, between network namespaces: virtual and static routes, rules and
addresses set and removed with the state (read back from the kernel, and compared with
what Keepalived 2.2.7 sets from the same file); what Keepalived accepts with a warning
running as Keepalived runs it; a reload (SIGHUP) that keeps the master, one that refuses a
bad file, one that changes the priority; sd_notify around all of it."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.netns.hosts import HERE, POISE, start_vrrp, vrrp_conf
from tests.netns.lab import VIP, Lab, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0  # seconds for the daemons to start and elect
STATIC_ADDRESS = "198.51.100.60"
ROUTING = """    virtual_routes {
        198.51.100.192/28 via 198.51.100.30 dev eth0
        blackhole 198.51.100.224/28
        198.51.100.128/27 dev eth0 table 100
        198.51.100.240/29 via 198.51.100.30 or 198.51.100.20 dev eth0
        198.51.100.248/29 nexthop via 198.51.100.30 dev eth0 weight 2 nexthop via 198.51.100.20
    }
    virtual_rules {
        from 198.51.100.170 table 100 preference 1000
    }
"""
STATICS = f"""static_ipaddress {{
    {STATIC_ADDRESS}/24 dev eth0
}}
static_routes {{
    198.51.100.208/28 via 198.51.100.30 dev eth0 table 101
}}
static_rules {{
    to 198.51.100.208/28 table 101 preference 1001
}}
"""
# `via A or B dev IF`, as keepalived.conf(5) shows it: Keepalived 2.2.7 sends the device
# with the route and none with its two paths, which the kernel refuses ("Netlink: error:
# Invalid argument" in its log, and the route is missing); poise gives each path the device.
OR_ROUTE = (
    "198.51.100.240/29 nexthop via 198.51.100.30 dev eth0 weight 1 "
    "nexthop via 198.51.100.20 dev eth0 weight 1"
)
# As `ip route show proto keepalived` prints them (Keepalived marks its routes protocol 18
# and leaves the scope universe unless told: so does poise).
VIRTUAL_ROUTES = {
    "198.51.100.192/28 via 198.51.100.30 dev eth0",
    "blackhole 198.51.100.224/28",
    "198.51.100.128/27 dev eth0 table 100",
    OR_ROUTE,
    "198.51.100.248/29 nexthop via 198.51.100.30 dev eth0 weight 2 "
    "nexthop via 198.51.100.20 dev eth0 weight 1",
}
STATIC_ROUTES = {"198.51.100.208/28 via 198.51.100.30 dev eth0 table 101"}
VIRTUAL_RULES = {"1000: from 198.51.100.170 lookup 100 proto keepalived"}
STATIC_RULES = {"1001: from all to 198.51.100.208/28 lookup 101 proto keepalived"}


def kernel_routes(lab: Lab, node: str) -> set[str]:
    """The routes Keepalived (or poise) put there, as `ip route` prints them."""
    out = lab.run(node, ["ip", "-4", "route", "show", "table", "all", "proto", "keepalived"])
    text = out.stdout.replace("\n\tnexthop", " nexthop")  # a multipath route on one line
    return {" ".join(line.split()) for line in text.splitlines()}


def kernel_rules(lab: Lab, node: str) -> set[str]:
    out = lab.run(node, ["ip", "-4", "rule", "show"])
    lines = {" ".join(line.replace("\t", " ").split()) for line in out.stdout.splitlines()}
    return {line for line in lines if line.split(":")[0] in ("1000", "1001")}


def routing(lab: Lab, node: str) -> tuple[set[str], set[str], bool, bool]:
    addresses = lab.addresses(node)
    return (
        kernel_routes(lab, node),
        kernel_rules(lab, node),
        VIP in addresses,
        STATIC_ADDRESS in addresses,
    )


def master_view(kind: str = "poise") -> tuple[set[str], set[str], bool, bool]:
    routes = VIRTUAL_ROUTES | STATIC_ROUTES
    if kind == "keepalived":
        routes = routes - {OR_ROUTE}
    return routes, VIRTUAL_RULES | STATIC_RULES, True, True


def backup_view() -> tuple[set[str], set[str], bool, bool]:
    return STATIC_ROUTES, STATIC_RULES, False, True


NOTHING: tuple[set[str], set[str], bool, bool] = (set(), set(), False, False)


def settle(
    lab: Lab, node: str, want: tuple[set[str], set[str], bool, bool], timeout: float
) -> None:
    """Wait until the node's kernel holds `want`; on timeout show what it holds instead."""
    try:
        wait_for(lambda: routing(lab, node) == want, timeout, f"{node}'s routing")
    except AssertionError:
        assert routing(lab, node) == want


@pytest.mark.parametrize("peer", ["keepalived", "poise"])
def test_routes_rules_and_addresses_follow_the_state_as_keepalived_s_do(
    lab: Lab, peer: str
) -> None:
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150, before=STATICS, extra=ROUTING))
    second = start_vrrp(lab, "lb2", peer, vrrp_conf(priority=100, before=STATICS, extra=ROUTING))
    settle(lab, "lb1", master_view(), START)  # master: everything
    settle(lab, "lb2", backup_view(), START)  # backup: the static ones only
    first.graceful_stop()  # leaving master takes the virtual ones, exiting the static ones
    settle(lab, "lb2", master_view(peer), 3)  # the same set, whoever sets it
    settle(lab, "lb1", NOTHING, 3)
    assert "cannot" not in first.log(), first.log()
    second.graceful_stop()
    if peer == "poise":
        settle(lab, "lb2", NOTHING, 3)


def test_what_keepalived_accepts_with_a_warning_runs_as_keepalived_runs_it(lab: Lab) -> None:
    # A tracked script that does not exist is disabled (the instance runs untracked), an
    # address outside the interface's subnets is added as ADDR/32, nopreempt 1 is nopreempt,
    # an address listed twice is advertised twice (so Keepalived, counting, accepts it).
    conf = vrrp_conf(
        priority=150,
        before='vrrp_script chk {\n    script "/nonexistent/check"\n    weight -100\n}\n',
        extra="    track_script {\n        chk\n    }\n    nopreempt 1\n",
    ).replace(f"{VIP}/24", f"{VIP}/24\n        198.51.100.99\n        {VIP}/24")
    path = lab.workdir / "lenient.conf"
    path.write_text(conf)
    check = lab.run("lb1", [POISE, "check", "-k", str(path)])
    assert check.returncode == 0, check.stderr
    assert "Disabling track script chk since not found/accessible" in check.stderr
    assert "'1' is ignored and nopreempt is on" in check.stderr
    first = start_vrrp(lab, "lb1", "poise", conf)  # first: both are nopreempt
    wait_for(lambda: {VIP, "198.51.100.99"} <= lab.addresses("lb1"), START, "lb1 master")
    second = start_vrrp(lab, "lb2", "keepalived", conf.replace("priority 150", "priority 100"))
    out = lab.run("lb1", ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    assert "198.51.100.99/32" in out
    wait_for(lambda: "Entering BACKUP STATE" in second.log(), START, "Keepalived as backup")
    time.sleep(1)  # adverts with the address twice: Keepalived stays backup, drops none
    assert not lab.has_vip("lb2") and "Entering MASTER STATE" not in second.log()
    assert "dropped" not in first.log()
    assert "Changing effective priority" not in first.log()  # the script is not tracked


IGNORED = ("MONOTONIC_USEC=", "MAINPID=", "STATUS=")


class NotifySocket:
    """A datagram socket standing for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.messages
            self.messages.append(
                " ".join(
                    sorted(
                        line
                        for line in data.decode().split("\n")
                        if line and not line.startswith(("MONOTONIC", "MAINPID", "STATUS"))
                    )
                )
            )

    def close(self) -> None:
        self.sock.close()


def test_sighup_reloads_keeping_the_master_refusing_a_bad_file(lab: Lab) -> None:
    conf = vrrp_conf(priority=150)
    path = lab.workdir / "reload.conf"
    path.write_text(conf)
    notify = NotifySocket(lab.workdir / "notify.sock")
    try:
        log_path = lab.workdir / "poise-reload.log"
        argv = ["env", f"NOTIFY_SOCKET={notify.path}", POISE, "vrrp", "-f", str(path), "-db"]
        proc = lab.spawn("lb1", "poise-reload", argv)
        wait_for(lambda: lab.has_vip("lb1"), START, "lb1 master")
        second = start_vrrp(lab, "lb2", "keepalived", vrrp_conf(priority=100))
        wait_for(lambda: "READY=1" in notify.read(), 5, "READY=1")
        wait_for(lambda: "Entering BACKUP STATE" in second.log(), START, "Keepalived as backup")

        def reload(expect: str) -> None:
            before = len(notify.read())
            lab.signal(proc, signal.SIGHUP)
            wait_for(lambda: expect in log_path.read_text(), 5, expect)
            wait_for(lambda: notify.read()[before:] == ["RELOADING=1", "READY=1"], 5, "notify")

        # Same role, other lines, a notify script and new static entries: the master stays,
        # its address too; the static entries are added.
        script = lab.workdir / "notified.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
        conf = STATICS + conf.replace("priority 150", f"priority 150\n    notify_master {script}")
        path.write_text(conf)
        reload("Reloaded: 1 instance(s) kept, 0 stopped, 0 started")
        assert routing(lab, "lb1") == (STATIC_ROUTES, STATIC_RULES, True, True)
        # A bad file is refused with FILE:LINE; the old one keeps running.
        bad = conf.replace("priority 150", "priorty 150").replace(STATICS, "")
        path.write_text(bad)
        reload("the running one is kept")
        log = log_path.read_text()
        line = bad.splitlines().index("    priorty 150") + 1
        assert f"{path}:{line}: error: 'priorty': unknown keyword in vrrp_instance" in log
        for _ in range(10):  # the address never moved meanwhile
            assert lab.has_vip("lb1") and not lab.has_vip("lb2")
            time.sleep(0.05)
        assert log.count("Entering MASTER STATE") == 1 and "Entering BACKUP STATE" in log
        assert "Entering MASTER STATE" not in second.log()
        assert routing(lab, "lb1") == (STATIC_ROUTES, STATIC_RULES, True, True)
        # A new priority is a new role: the instance restarts and the backup takes over;
        # the static entries the file no longer has go.
        path.write_text(conf.replace("priority 150", "priority 50").replace(STATICS, ""))
        reload("Reloaded: 0 instance(s) kept, 1 stopped, 1 started")
        wait_for(lambda: lab.has_vip("lb2") and not lab.has_vip("lb1"), 3, "lb2 master")
        assert "sent 0 priority" in log_path.read_text()
        assert routing(lab, "lb1") == NOTHING
        lab.stop(proc)
        assert "STOPPING=1" in notify.read()
    finally:
        notify.close()


VMAC = "00:00:5e:00:01:33"  # RFC 5798 section 7.3, VRID 51


def vmac_state(lab: Lab, node: str) -> tuple[str | None, bool]:
    """The MAC of the node's vrrp.51 interface (None: there is none), and whether the
    virtual address is on it."""
    link = lab.run(node, ["ip", "-o", "-d", "link", "show", "dev", "vrrp.51"])
    if link.returncode != 0:
        return None, False
    assert "macvlan mode private" in link.stdout, link.stdout
    mac = link.stdout.split("link/ether ", 1)[1].split()[0]
    addresses = lab.run(node, ["ip", "-o", "-4", "addr", "show", "dev", "vrrp.51"]).stdout
    return mac, f" {VIP}/24 " in addresses


def client_sees(lab: Lab) -> str | None:
    """The MAC that answers the client's ARP request for the virtual address."""
    argv = [sys.executable, str(HERE / "arping.py"), "eth0", ip_of("cl"), VIP]
    return lab.run("cl", argv).stdout.strip() or None


@pytest.mark.parametrize(
    ("master", "backup", "options"),
    [
        ("poise", "keepalived", ""),
        ("keepalived", "poise", ""),
        ("poise", "keepalived", "    vmac_xmit_base\n"),  # adverts from the base interface
        ("keepalived", "poise", "    vmac_xmit_base\n"),
    ],
)
def test_use_vmac_moves_the_virtual_mac_with_the_address(
    lab: Lab, master: str, backup: str, options: str
) -> None:
    conf = vrrp_conf(priority=150, extra="    use_vmac\n" + options)
    first = start_vrrp(lab, "lb1", master, conf)
    wait_for(lambda: vmac_state(lab, "lb1") == (VMAC, True), START, "lb1 master on its VMAC")
    second = start_vrrp(lab, "lb2", backup, conf.replace("priority 150", "priority 100"))
    wait_for(lambda: "Entering BACKUP STATE" in second.log(), START, f"{backup} as backup")
    wait_for(lambda: vmac_state(lab, "lb2") == (VMAC, False), START, "lb2's VMAC, no address")
    wait_for(lambda: client_sees(lab) == VMAC, 3, "the client to resolve the VIP to the VMAC")
    base = lab.run("lb1", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    advert = [sys.executable, str(HERE / "arping.py"), "eth0", "--advert"]
    sent_from = lab.run("cl", advert).stdout.strip()
    assert sent_from == (base if options else VMAC)  # vmac_xmit_base: from the base
    for _ in range(20):  # the backup hears the master's adverts, sent from the same MAC
        assert vmac_state(lab, "lb2") == (VMAC, False)
        time.sleep(0.05)
    if master == "poise":  # a same-role reload keeps the very same VMAC interface
        index = lab.run("lb1", ["cat", "/sys/class/net/vrrp.51/ifindex"]).stdout
        (lab.workdir / "poise-lb1.conf").write_text("# reloaded\n" + conf)
        lab.signal(first.proc, signal.SIGHUP)
        wait_for(lambda: "1 instance(s) kept" in first.log(), 5, "the reload")
        assert lab.run("lb1", ["cat", "/sys/class/net/vrrp.51/ifindex"]).stdout == index
        assert vmac_state(lab, "lb1") == (VMAC, True) and client_sees(lab) == VMAC
    first.graceful_stop()
    wait_for(lambda: vmac_state(lab, "lb2") == (VMAC, True), 3, "lb2 master on its VMAC")
    assert client_sees(lab) == VMAC  # nothing for the client to learn
    if master == "poise":
        assert vmac_state(lab, "lb1") == (None, False)  # deleted at exit
        assert "cannot" not in first.log()
    second.graceful_stop()
    if backup == "poise":
        wait_for(lambda: vmac_state(lab, "lb2") == (None, False), 3, "lb2's VMAC deleted")
