"""The netns lab over IPv6 (2001:db8::/64 on the lab's LAN, inside its namespaces only):
addresses for the hosts, the instance both daemons read, the service on the virtual IPv6
address, and a failover measured as the issue asks: from the master's stop to the backup
holding the address and announcing it with a neighbour advertisement (seen by the
client), beside the first request it served.

Failover figures, every pair measured the same way (run as root):

    .venv/bin/python -m tests.netns.v6 [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.netns.hosts import HERE, measure, served_by, start_vrrp
from tests.netns.lab import ADDRESSES, SERVICE_PORT, Lab, Proc, ip_of, wait_for

SUBNET6 = "2001:db8::"
VIP6 = "2001:db8::170"
PAIRS = [
    ("keepalived", "keepalived"),
    ("poise", "poise"),
    ("poise", "keepalived"),
    ("keepalived", "poise"),
]


def ip6_of(node: str) -> str:
    return f"{SUBNET6}{ADDRESSES[node]}"


def enable_ipv6(lab: Lab) -> None:
    """A global address on every host, and their link-local addresses usable (past
    duplicate address detection, which the lab polls for rather than waits out)."""
    for node in lab.nodes:
        result = lab.run(node, ["ip", "addr", "add", f"{ip6_of(node)}/64", "dev", "eth0", "nodad"])
        assert result.returncode == 0, result.stderr

    def settled(node: str) -> bool:
        out = lab.run(node, ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
        return "fe80::" in out and "tentative" not in out

    for node in lab.nodes:
        wait_for(partial(settled, node), 10, f"{node}'s IPv6 addresses to settle")


def addresses6(lab: Lab, node: str) -> dict[str, str]:
    """The node's IPv6 addresses on eth0, each with its flags (`nodad`, `deprecated`...)."""
    out = lab.run(node, ["ip", "-o", "-6", "addr", "show", "dev", "eth0"]).stdout
    found = {}
    for line in out.splitlines():
        words = line.split()
        found[words[3].split("/")[0]] = " ".join(words[4:])
    return found


def has_vip6(lab: Lab, node: str) -> bool:
    return VIP6 in addresses6(lab, node)


def mac_of(lab: Lab, node: str) -> str:
    out = lab.run(node, ["ip", "-o", "link", "show", "dev", "eth0"]).stdout
    return out.split("link/ether ")[1].split()[0]


def link_local(lab: Lab, node: str) -> str:
    return next(a for a in addresses6(lab, node) if a.startswith("fe80:"))


def vrrp6_conf(
    *,
    priority: int,
    version: int = 3,
    advert: float = 0.1,
    state: str = "BACKUP",
    extra: str = "",
    before: str = "",
) -> str:
    return f"""global_defs {{
    router_id lab6
    vrrp_version {version}
}}
vrrp_instance VI_6 {{
    interface eth0
    state {state}
    virtual_router_id 61
    priority {priority}
    advert_int {advert}
{before}    virtual_ipaddress {{
        {VIP6}/64
    }}
{extra}}}
"""


def start_service6(lab: Lab, node: str) -> Proc:
    argv = [sys.executable, str(HERE / "responder.py"), VIP6, str(SERVICE_PORT), "600"]
    # It answers with the node's IPv4 address, by which the lab's prober names nodes.
    proc = lab.spawn(node, f"service6-{node}", [*argv, "--answer", ip_of(node)])
    wait_for(
        lambda: "LISTEN" in lab.run(node, ["ss", "-ltn", f"sport = :{SERVICE_PORT}"]).stdout,
        10,
        f"the IPv6 service on {node} to listen",
    )
    return proc


def start_prober6(lab: Lab, duration: float) -> Proc:
    argv = [sys.executable, str(HERE / "prober.py"), VIP6, str(SERVICE_PORT), "0.01", str(duration)]
    return lab.spawn("cl", "prober6", argv)


def start_watch6(lab: Lab, duration: float) -> Proc:
    return lab.spawn("cl", "watch6", [sys.executable, str(HERE / "v6_watch.py"), str(duration)])


def seen(watch: Proc, kind: str, who: str, after: float) -> list[float]:
    """Times the watcher saw an advert from `who` (a source address) or a neighbour
    advertisement for the virtual address carrying `who` (a MAC), after `after`."""
    times = []
    for line in watch.text().splitlines():
        words = line.split()
        if len(words) < 4 or words[1] != kind or float(words[0]) <= after:
            continue
        if (kind == "advert" and words[2] == who) or (words[2] == VIP6 and words[3] == who):
            times.append(float(words[0]))
    return times


@dataclass(frozen=True)
class Failover6:
    announced: float  # from the disruption to the new master's first neighbour advert
    served: float  # to the first request the new master served
    lost: int


def failover6(
    lab: Lab,
    prober: Proc,
    watch: Proc,
    disrupt: Callable[[], object],
    *,
    advert: float,
    timeout: float,
) -> Failover6:
    """Disrupt lb1 half an advert interval after one of its adverts; how long until lb2
    announced the address (neighbour advert with its MAC) and served the client."""
    old, new = link_local(lab, "lb1"), mac_of(lab, "lb2")
    wait_for(lambda: served_by(prober, "lb1"), 15, "the client to be served by lb1")
    start = time.monotonic()
    wait_for(lambda: bool(seen(watch, "advert", old, start)), 15, "an advert from lb1", 0.002)
    time.sleep(max(0.0, seen(watch, "advert", old, start)[-1] + advert / 2 - time.monotonic()))
    marks: list[float] = []

    def hit() -> float:
        marks.append(time.monotonic())
        disrupt()
        return marks[0]

    result = measure(prober, "lb1", "lb2", hit, timeout)  # also waits for the requests to end
    since = marks[0]
    announced = seen(watch, "na", new, since)
    assert announced, "lb2 sent no neighbour advertisement for the virtual address"
    return Failover6(announced[0] - since, result.seconds, result.lost)


def one_run(master: str, backup: str, scenario: str, advert: float) -> Failover6:
    with tempfile.TemporaryDirectory(prefix="poise-vrrp6-measure-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        lab = Lab(workdir).up()
        try:
            enable_ipv6(lab)
            for node in ("lb1", "lb2"):
                start_service6(lab, node)
            first = start_vrrp(lab, "lb1", master, vrrp6_conf(priority=150, advert=advert))
            second = start_vrrp(lab, "lb2", backup, vrrp6_conf(priority=100, advert=advert))
            wait_for(lambda: has_vip6(lab, "lb1"), 6 * advert + 10, "lb1 to become master")
            second.wait_backup(advert)
            watch = start_watch6(lab, 6 * advert + 30)
            prober = start_prober6(lab, 6 * advert + 25)
            disrupt = first.graceful_stop if scenario == "graceful" else first.crash
            return failover6(lab, prober, watch, disrupt, advert=advert, timeout=6 * advert + 5)
        finally:
            lab.down()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="VRRPv3 over IPv6 failover figures")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median shown)")
    parser.add_argument("--advert", type=float, default=0.1)
    args = parser.parse_args(argv)
    rows = []
    for scenario in ("graceful", "crash"):
        for master, backup in PAIRS:
            runs = [one_run(master, backup, scenario, args.advert) for _ in range(args.repeat)]
            cell = (
                statistics.median(r.announced for r in runs),
                statistics.median(r.served for r in runs),
                statistics.median(r.lost for r in runs),
            )
            rows.append((scenario, f"{master} -> {backup}", *cell))
            print(f"{scenario:<9} {master + ' -> ' + backup:<25} {cell}", flush=True)
    print()
    print(
        "| scenario | master -> backup | neighbour advert (s) | first request served (s) | lost |"
    )
    print("| --- | --- | --- | --- | --- |")
    for scenario, pair, announced, served, lost in rows:
        print(f"| {scenario} | {pair} | {announced:.3f} | {served:.3f} | {lost:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
