"""keepalived.conf's `virtual_server` served by `poise vrrp` between network namespaces: real
servers on the backend host behind the virtual address, one of them failing its check
(clients never reach it), the address failing over to the other node with the service
following it, and `persistence_timeout` keeping a client on its real server.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter

import pytest

from tests.netns.hosts import (
    HERE,
    measure,
    start_prober,
    start_service,
    start_vrrp,
    vrrp_conf,
)
from tests.netns.lab import VIP, Lab, Proc, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0  # seconds for the daemons to start and elect on a busy machine
CRASH_V3 = 1.0  # loose bounds, as test_vrrp_netns.py's (advert_int 0.1: 0.3 s by protocol)
GRACEFUL_V3 = 0.5
BE = ip_of("be")
CLIENT = """
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            print(s.makefile().readline().strip() or "empty")
    except OSError as exc:
        print("fail", exc.__class__.__name__)
"""


def virtual_server(extra: str = "") -> str:
    return f"""
virtual_server {VIP} 80 {{
    delay_loop 0.2
    lb_algo rr
    lb_kind NAT
    protocol TCP
    warmup 0
{extra}
    real_server {BE} 8080 {{
        TCP_CHECK {{
            connect_timeout 0.5
        }}
    }}
    real_server {BE} 8081 {{
        TCP_CHECK {{
            connect_timeout 0.5
        }}
    }}
    real_server {BE} 8082 {{
        MISC_CHECK {{
            misc_path /bin/false
        }}
    }}
}}
"""


def start_real_server(lab: Lab, port: int, answer: str) -> Proc:
    argv = [sys.executable, str(HERE / "responder.py"), BE, str(port), "120", "--answer", answer]
    proc = lab.spawn("be", f"rs-{port}", argv)
    wait_for(
        lambda: "LISTEN" in lab.run("be", ["ss", "-ltn", f"sport = :{port}"]).stdout,
        10,
        f"the real server on port {port}",
    )
    return proc


def ask(lab: Lab, count: int) -> Counter[str]:
    result = lab.run("cl", [sys.executable, "-c", CLIENT, VIP, "80", str(count)], timeout=60)
    return Counter(result.stdout.split("\n")[:-1])


def test_a_virtual_server_follows_its_address_and_avoids_a_failing_real_server(
    lab: Lab,
) -> None:
    for port, answer in ((8080, "rs1"), (8081, "rs2"), (8082, "bad")):
        start_real_server(lab, port, answer)
    conf1 = vrrp_conf(priority=150) + virtual_server()
    first = start_vrrp(lab, "lb1", "poise", conf1)
    second = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100) + virtual_server())
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    removed = f"Removing service [{BE}]:tcp:8082 from VS [{VIP}]:tcp:80"
    # The checkers run on both nodes, master and backup, as Keepalived's do.
    wait_for(
        lambda: removed in first.log() and removed in second.log(), START, "both to drop :8082"
    )
    assert f"Misc check for [[{BE}]:tcp:8082] by [/bin/false] failed" in first.log()

    answers = ask(lab, 40)
    assert answers == Counter({"rs1": 20, "rs2": 20}), answers  # rr, and never :8082

    # SIGHUP with the failing real server gone and wrr 3:1: same sockets, new pool.
    conf = lab.workdir / "poise-lb1.conf"
    text = conf.read_text().replace("lb_algo rr", "lb_algo wrr")
    text = text.replace(f"real_server {BE} 8080 {{", f"real_server {BE} 8080 {{\n weight 3")
    conf.write_text(text.replace("/bin/false", "/bin/true"))
    lab.signal(first.proc, signal.SIGHUP)
    wait_for(
        lambda: "Reloaded virtual servers: 0 kept, 1 changed, 0 stopped, 0 started" in first.log(),
        START,
        "the reload",
    )
    wait_for(lambda: "Adding service [198.51.100.30]:tcp:8082" in first.log(), START, ":8082 back")
    answers = ask(lab, 50)
    assert answers == Counter({"rs1": 30, "rs2": 10, "bad": 10}), answers

    second.wait_backup()
    first.graceful_stop()
    wait_for(lambda: lab.has_vip("lb2") and not lab.has_vip("lb1"), 5, "the address on lb2")
    answers = ask(lab, 10)  # lb1's poise vrrp is gone: these went through lb2
    assert answers == Counter({"rs1": 5, "rs2": 5}), answers


def test_a_real_server_that_dies_leaves_and_comes_back_and_persistence_holds(lab: Lab) -> None:
    notified = lab.workdir / "notified"
    script = lab.workdir / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {notified}\n')
    script.chmod(0o755)
    rs1 = start_real_server(lab, 8080, "rs1")
    start_real_server(lab, 8081, "rs2")
    extra = f'    persistence_timeout 30\n    quorum_down "{script} quorum down"\n'
    conf = vrrp_conf(priority=150) + virtual_server(extra).replace(
        "        TCP_CHECK {", f'        notify_down "{script} down"\n        TCP_CHECK {{', 1
    )
    node = start_vrrp(lab, "lb1", "poise", conf)
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    wait_for(lambda: "Removing service" in node.log(), START, "the failing real server to go")
    answers = ask(lab, 10)
    assert len(answers) == 1 and set(answers) <= {"rs1", "rs2"}, answers  # one client, one RS
    lab.stop(rs1)
    wait_for(
        lambda: f"Removing service [{BE}]:tcp:8080 from VS [{VIP}]:tcp:80" in node.log(),
        5,
        "the dead real server to leave",
    )
    assert f"TCP_CHECK on service [{BE}]:tcp:8080 failed" in node.log()
    assert ask(lab, 6) == Counter({"rs2": 6})
    wait_for(lambda: notified.exists() and "down" in notified.read_text(), 5, "notify_down")
    assert "quorum" not in notified.read_text()  # rs2's weight keeps the quorum of 1
    start_real_server(lab, 8080, "rs1")
    wait_for(
        lambda: f"Adding service [{BE}]:tcp:8080 to VS [{VIP}]:tcp:80" in node.log(),
        5,
        "the real server to come back",
    )
    assert f"TCP connection to [{BE}]:tcp:8080 success." in node.log()


def test_the_service_follows_the_address_through_a_crash_and_a_graceful_stop(lab: Lab) -> None:
    """The real servers answer with the address a connection came from: the balancer node
    that relayed it (a proxy, not IPVS NAT), so the client sees which node served it."""
    for port in (8080, 8081):
        argv = [sys.executable, str(HERE / "responder.py"), BE, str(port), "120"]
        lab.spawn("be", f"rs-{port}", argv)
    conf = virtual_server().replace("/bin/false", "/bin/true")
    conf1 = vrrp_conf(priority=150) + conf
    first = start_vrrp(lab, "lb1", "poise", conf1)
    second = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100) + conf)
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    second.wait_backup()
    prober = start_prober(lab, 40)
    # A crash takes lb1's service with it (its address stays until lb2's gratuitous ARPs
    # turn the client to lb2): requests fail until then, within the protocol's 0.3 s.
    crash = measure(prober, "lb1", "lb2", first.crash, 3)
    assert crash.seconds < CRASH_V3, crash
    first = start_vrrp(lab, "lb1", "poise", conf1, tag="-again")
    measure(prober, "lb2", "lb1", lambda: None, START)  # lb1 preempts once it runs
    graceful = measure(prober, "lb1", "lb2", first.graceful_stop, 2)
    assert graceful.seconds < GRACEFUL_V3, graceful


def test_ha_suspend_checks_only_where_the_address_is(lab: Lab) -> None:
    for port, answer in ((8080, "rs1"), (8081, "rs2"), (8082, "bad")):
        start_real_server(lab, port, answer)
    conf = virtual_server("    ha_suspend\n")
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150) + conf)
    removed = f"Removing service [{BE}]:tcp:8082 from VS [{VIP}]:tcp:80"
    wait_for(lambda: removed in first.log(), START, "the master to drop :8082")
    # Started once lb1 is master, lb2 is never master before the failover (two nodes that
    # start together may both be master for a moment, and check then).
    second = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100) + conf)
    second.wait_backup()
    time.sleep(1.0)  # five delay_loops: a backup that checked would have dropped it
    assert "Misc check" not in second.log()
    first.graceful_stop()
    wait_for(lambda: removed in second.log(), 5, "the new master to check and drop :8082")


def test_keepalived_as_master_and_poise_as_the_backup_that_serves_the_virtual_server(
    lab: Lab,
) -> None:
    """One keepalived.conf for both: Keepalived (VRRP only, `--vrrp`: this kernel has no
    IPVS) is the master, with a stand-in service on its node; poise vrrp the backup, which
    takes the address when Keepalived dies and serves the virtual server itself."""
    for port in (8080, 8081):
        argv = [sys.executable, str(HERE / "responder.py"), BE, str(port), "120"]
        lab.spawn("be", f"rs-{port}", argv)
    conf = virtual_server().replace("/bin/false", "/bin/true")
    start_service(lab, "lb1")
    master = start_vrrp(lab, "lb1", "keepalived", vrrp_conf(priority=150) + conf)
    backup = start_vrrp(lab, "lb2", "poise", vrrp_conf(priority=100) + conf)
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    backup.wait_backup()
    prober = start_prober(lab, 20)
    crash = measure(prober, "lb1", "lb2", master.crash, 3)
    assert crash.seconds < CRASH_V3, crash
    assert lab.has_vip("lb2")
