"""poise against poise: `make bench`'s CPU per request at two commits, in the same run.

Issue 12 asks that a change keep HTTP keep-alive and `Connection: close` CPU per request
within 3% of the previous commit's. Two `make bench` runs at different times cannot say
that on a shared machine (single runs spread by 10% over a day), so this runs both commits
in one run, interleaved: A B A B A B on each row, each run a freshly started poise, exactly
as `make bench` measures a balancer (bench/run.py's harness: the same config, nginx
backends, wrk, pinning and CPU time from /proc/PID/stat). Each pair (A then B) gives a
ratio B/A; the report is the median ratio and the spread of the pairs. A commit is a git
worktree in a temporary directory (removed after), run with this checkout's Python
environment. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import procs
import report
import revs
import run
import setups
import wrkrun

OUT = revs.REPO / "bench" / "out"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [m for m in setups.MODES if m.name in args.modes]
    variants = [v for v in setups.VARIANTS if v.name in args.variants]
    cores = run.pick_cores()
    work = OUT / "compare"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    running = procs.Processes()
    previous = signal.signal(signal.SIGTERM, run.interrupted)
    results: Runs = {}
    balancers: list[setups.Balancer] = []
    labels: dict[str, str] = {}
    try:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="poise-cmp-")))
            a = stack.enter_context(revs.checkout(args.against))
            b = stack.enter_context(revs.checkout(args.rev))
            balancers = [
                setups.Balancer("poise-a", "A", (str(a.script(tmp, "a")), "run", "-db", "-f")),
                setups.Balancer("poise-b", "B", (str(b.script(tmp, "b")), "run", "-db", "-f")),
            ]
            labels = {"poise-a": a.label, "poise-b": b.label}
            print(f"compare: A = {a.label}, B = {b.label}")
            bench = run.Bench(args, cores, running, work)
            results = measure(bench, modes, variants, balancers)
    except KeyboardInterrupt:
        print("\ncompare: interrupted; stopping what it started", file=sys.stderr)
        return 130
    except (run.BenchError, wrkrun.WrkError, OSError) as exc:
        print(f"compare: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        running.stop_all()
        signal.signal(signal.SIGTERM, previous)
    print()
    print(table(results), end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(as_json(results, labels), indent=2) + "\n")
    print(f"\nresults: {out}; configs and logs: {work}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1", help="commit A (default: HEAD~1)")
    parser.add_argument("--rev", help="commit B (default: this working tree)")
    parser.add_argument("--repeat", type=int, default=3, help="A B pairs per row")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each run")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument(
        "--modes", type=run.names, default=["http"], help="comma-separated (default: http)"
    )
    parser.add_argument(
        "--variants",
        type=run.names,
        default=[v.name for v in setups.VARIANTS],
        help="comma-separated (default: keep-alive,close)",
    )
    parser.add_argument("--out", default=str(OUT / "compare.json"))
    return parser.parse_args(argv)


Runs = dict[str, dict[str, list[report.Outcome]]]  # row -> balancer -> its runs, in order


def measure(
    bench: run.Bench,
    modes: list[setups.Mode],
    variants: list[setups.Variant],
    balancers: list[setups.Balancer],
) -> Runs:
    """Each row: A B, A B, ... each run a freshly started poise (bench/run.py's harness)."""
    if any(mode.scheme == "https" for mode in modes):
        bench.make_certificate()
    backends = bench.start_nginx()
    results: Runs = {}
    for mode in modes:
        for variant in variants:
            if mode.variants is not None and variant.name not in mode.variants:
                continue
            runs: dict[str, list[report.Outcome]] = {b.name: [] for b in balancers}
            for _ in range(bench.args.repeat):
                for balancer in balancers:
                    outcome = bench.run_balancer(balancer, mode, [mode.variant(variant)], backends)
                    runs[balancer.name].append(outcome[0])
            results[f"{mode.name} {variant.name}"] = runs
    return results


def ratios(a: list[report.Outcome], b: list[report.Outcome], metric: str) -> list[float]:
    """B/A of each pair of runs where both were measured."""
    found = []
    for first, second in zip(a, b, strict=True):
        if isinstance(first, report.Measured) and isinstance(second, report.Measured):
            value_a = getattr(first, metric) if metric != "rps" else first.wrk.rps
            value_b = getattr(second, metric) if metric != "rps" else second.wrk.rps
            found.append(value_b / value_a)
    return found


def cpu(outcomes: list[report.Outcome]) -> list[float]:
    return [o.cpu_us_per_req for o in outcomes if isinstance(o, report.Measured)]


def table(results: Runs) -> str:
    lines = [
        f"{'row':16} {'A CPU us/req':>13} {'B CPU us/req':>13}  "
        f"{'B/A CPU':>8} {'spread':>13}  {'B/A req/s':>9}  pairs (B/A CPU)"
    ]
    for row, runs in results.items():
        a, b = runs["poise-a"], runs["poise-b"]
        cpu_ratios = ratios(a, b, "cpu_us_per_req")
        rps_ratios = ratios(a, b, "rps")
        if not cpu_ratios:
            lines.append(f"{row:16} no pair measured (see the messages above)")
            continue
        spread = f"{min(cpu_ratios):.3f}-{max(cpu_ratios):.3f}"
        lines.append(
            f"{row:16} {statistics.median(cpu(a)):13.2f} {statistics.median(cpu(b)):13.2f}  "
            f"{statistics.median(cpu_ratios):8.3f} {spread:>13}  "
            f"{statistics.median(rps_ratios):9.3f}  "
            + ", ".join(f"{ratio:.3f}" for ratio in cpu_ratios)
        )
    noisy = [
        row
        for row, runs in results.items()
        for outcomes in runs.values()
        for o in outcomes
        if isinstance(o, report.Measured) and o.core_other_pct > report.NOISY_PCT
    ]
    if noisy:
        lines.append(
            f"note: other processes took over {report.NOISY_PCT:.0f}% of poise's core in some "
            f"runs of: {', '.join(sorted(set(noisy)))}; read the spread before the median"
        )
    return "\n".join(lines) + "\n"


def as_json(results: Runs, labels: dict[str, str]) -> dict[str, object]:
    return {
        "commits": labels,
        "rows": {
            row: {
                "cpu_ratios_b_over_a": ratios(runs["poise-a"], runs["poise-b"], "cpu_us_per_req"),
                "runs": {
                    name: [
                        o.as_json() if isinstance(o, report.Measured) else {"skipped": o.reason}
                        for o in outcomes
                    ]
                    for name, outcomes in runs.items()
                },
            }
            for row, runs in results.items()
        },
    }


if __name__ == "__main__":
    sys.exit(main())
