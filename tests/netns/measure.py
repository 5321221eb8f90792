"""Failover figures, poise vrrp against Keepalived, measured the same way for every pair:
a client in its own namespace starts a request to the virtual address every 10 ms; the
master (lb1, priority 150) is stopped gracefully, crashed (SIGKILL; Keepalived's VRRP
child first), or has its cable pulled, half an advert interval after one of its adverts
(seen by a watcher on the client), so that every pair is caught at the same point of its
cycle; the figure is the time from the disruption to the first request the backup (lb2,
priority 100) served, and the requests that failed meanwhile. Keepalived-Keepalived is the
anchor.

Run as root (it builds network namespaces; see lab.py for the rules it keeps):

    .venv/bin/python -m tests.netns.measure [--repeat N] [--balancer service|poise]

`--balancer poise` puts `poise run` on each node in front of a backend (what a user runs);
the default is a tiny responder on each node, which measures VRRP alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.netns.hosts import (
    Failover,
    measure,
    start_advert_watch,
    start_backend,
    start_balancer,
    start_prober,
    start_service,
    start_vrrp,
    vrrp_conf,
)
from tests.netns.lab import Lab, wait_for

PAIRS = [
    ("keepalived", "keepalived"),
    ("poise", "poise"),
    ("poise", "keepalived"),
    ("keepalived", "poise"),
]
SCENARIOS = ["graceful", "crash", "link"]
SETTINGS = [(2, 1.0), (3, 0.1)]


def one_run(
    master: str, backup: str, scenario: str, *, version: int, advert: float, balancer: str
) -> Failover:
    with tempfile.TemporaryDirectory(prefix="poise-vrrp-measure-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        lab = Lab(workdir).up()
        try:
            if balancer == "poise":
                start_backend(lab)
                for node in ("lb1", "lb2"):
                    start_balancer(lab, node)
            else:
                for node in ("lb1", "lb2"):
                    start_service(lab, node)
            first = start_vrrp(
                lab, "lb1", master, vrrp_conf(priority=150, version=version, advert=advert)
            )
            second = start_vrrp(
                lab, "lb2", backup, vrrp_conf(priority=100, version=version, advert=advert)
            )
            wait_for(lambda: lab.has_vip("lb1"), 6 * advert + 5, "lb1 to become master")
            second.wait_backup(advert)
            prober = start_prober(lab, 6 * advert + 15)
            adverts = start_advert_watch(lab, 6 * advert + 20)
            disrupt: Callable[[], object] = {
                "graceful": first.graceful_stop,
                "crash": first.crash,
                "link": lambda: lab.cable("lb1", False),
            }[scenario]
            return measure(
                prober, "lb1", "lb2", disrupt, 6 * advert + 5, adverts=adverts, phase=advert / 2
            )
        finally:
            lab.down()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median shown)")
    parser.add_argument("--balancer", choices=["service", "poise"], default="service")
    parser.add_argument(
        "--version",
        type=int,
        choices=[2, 3],
        action="append",
        help="only VRRPv2 (advert_int 1) or VRRPv3 (advert_int 0.1)",
    )
    args = parser.parse_args(argv)
    rows = []
    for version, advert in SETTINGS:
        if args.version and version not in args.version:
            continue
        for scenario in SCENARIOS:
            for master, backup in PAIRS:
                runs = [
                    one_run(
                        master,
                        backup,
                        scenario,
                        version=version,
                        advert=advert,
                        balancer=args.balancer,
                    )
                    for _ in range(args.repeat)
                ]
                seconds = statistics.median(r.seconds for r in runs)
                lost = statistics.median(r.lost for r in runs)
                label = f"v{version} advert_int {advert:g}"
                rows.append((label, scenario, f"{master} -> {backup}", seconds, lost))
                print(
                    f"{label:<18} {scenario:<9} {master + ' -> ' + backup:<25} "
                    f"{seconds:7.3f} s  {lost:5.0f} lost",
                    flush=True,
                )
    print()
    print("| VRRP | scenario | master -> backup | failover (s) | requests lost (of 100/s) |")
    print("| --- | --- | --- | --- | --- |")
    for label, scenario, pair, seconds, lost in rows:
        print(f"| {label} | {scenario} | {pair} | {seconds:.3f} | {lost:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
