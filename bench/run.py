"""`make bench`: poise against HAProxy, side by side in one run, on the same nginx backends.

The machines are shared, noisy and have two cores, so the run pins the balancer to one core
and nginx and wrk to the other, measures both balancers with the same config file, the same
backends and the same wrk runs, and reports ratios (poise / HAProxy): requests/s from wrk, and
the balancer's CPU time per request from /proc/PID/stat, the steadier of the two. Each row
(a mode: tcp, http; a client variant: keep-alive, close) gets a warm-up, then a measured run.
A balancer that refuses a mode is skipped on that row with a note; errors are counted and a
row with errors does not meet its target. Everything started is stopped by its PID at the
end, also on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import procs
import report
import setups
import wrkrun

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
START_TIMEOUT_S = 10.0
SYSTEM_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class BenchError(Exception):
    """The run cannot go on: a tool failed, or the reference set-up does not work."""


@dataclass(frozen=True)
class Cores:
    balancer: str
    load: str  # wrk and nginx


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [m for m in setups.MODES if m.name in args.modes]
    variants = [v for v in setups.VARIANTS if v.name in args.variants]
    balancers = [setups.haproxy(args.haproxy)]
    if not args.no_poise:
        balancers.append(setups.poise(args.poise))
    missing = missing_tools([b.argv[0] for b in balancers])
    if missing:
        print("bench: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    cores = pick_cores()
    work = OUT / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    meta = describe(args, balancers, cores)
    running = procs.Processes()
    previous = signal.signal(signal.SIGTERM, interrupted)
    rows: list[report.Row] = []
    try:
        rows = Bench(args, cores, running, work).run(modes, variants, balancers)
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping what it started", file=sys.stderr)
        return 130
    except (BenchError, wrkrun.WrkError, OSError) as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        running.stop_all()
        signal.signal(signal.SIGTERM, previous)
    meta["loadavg_after"] = loadavg()
    print()
    print(report.table(rows, balancers), end="")
    for note in report.notes(rows):
        print(f"note: {note}")
    print_logs(balancers, work)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.as_json(rows, balancers, meta), indent=2) + "\n")
    print(f"\nresults: {out}; configs and logs: {work}")
    print(
        "The machine is shared and noisy: compare the ratios, not the absolute figures, and\n"
        "look at 'core others %' (other processes on the balancer's core) before trusting a row."
    )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each run")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each row this many times, balancers taking turns; report the median run",
    )
    parser.add_argument(
        "--modes",
        type=names,
        default=[m.name for m in setups.MODES],
        help="comma-separated: " + ",".join(m.name for m in setups.MODES),
    )
    parser.add_argument(
        "--variants",
        type=names,
        default=[v.name for v in setups.VARIANTS],
        help="comma-separated: " + ",".join(v.name for v in setups.VARIANTS),
    )
    parser.add_argument("--haproxy", default="haproxy", help="the haproxy binary")
    parser.add_argument("--poise", default=str(REPO / ".venv" / "bin" / "poise"))
    parser.add_argument("--no-poise", action="store_true", help="measure HAProxy only")
    parser.add_argument("--out", default=str(OUT / "results.json"))
    return parser.parse_args(argv)


def median_run(outcomes: list[report.Outcome]) -> report.Outcome:
    """Of repeated runs of one row, the one with the median CPU time per request (a
    skipped run counts when every run was skipped)."""
    measured = [o for o in outcomes if isinstance(o, report.Measured)]
    if not measured:
        return outcomes[0]
    measured.sort(key=lambda o: o.cpu_us_per_req)
    return measured[(len(measured) - 1) // 2]


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def missing_tools(balancer_commands: list[str]) -> list[str]:
    missing = []
    debs = [tool for tool in ("nginx", "wrk") if shutil.which(tool, path=SYSTEM_PATH) is None]
    if shutil.which(balancer_commands[0], path=SYSTEM_PATH) is None:
        debs.insert(0, "haproxy")
    if debs:
        missing.append(
            f"{', '.join(debs)} (`make bench` installs them: scripts/ensure-debs {' '.join(debs)})"
        )
    if shutil.which("taskset", path=SYSTEM_PATH) is None:
        missing.append("taskset (Debian package util-linux)")
    for command in balancer_commands[1:]:
        if shutil.which(command) is None:
            missing.append(f"{command} (create the virtualenv: `make bench` or `make run`)")
    return missing


def pick_cores() -> Cores:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        return Cores(str(allowed[0]), str(allowed[1]))
    print(f"bench: only core {allowed[0]} is available: nothing is pinned apart", file=sys.stderr)
    return Cores(str(allowed[0]), str(allowed[0]))


@dataclass
class Bench:
    """One run: its settings, its cores, its working directory and what it started."""

    args: argparse.Namespace
    cores: Cores
    running: procs.Processes
    work: Path
    certificate: Path | None = None  # the HTTPS rows' certificate (make_certificate)

    def run(
        self,
        modes: list[setups.Mode],
        variants: list[setups.Variant],
        balancers: list[setups.Balancer],
    ) -> list[report.Row]:
        if any(mode.scheme == "https" for mode in modes):
            self.make_certificate()
        backends = self.start_nginx()
        args, cores = self.args, self.cores
        print(
            f"bench: nginx on 127.0.0.1:{backends[0]},{backends[1]} (core {cores.load}); "
            f"wrk -t1 -c{args.connections} -d{args.duration}s after a {args.warmup}s warm-up "
            f"(core {cores.load}); balancer on core {cores.balancer}"
        )
        rows = []
        for mode in modes:
            wanted = [v for v in variants if mode.variants is None or v.name in mode.variants]
            mode_rows = [report.Row(mode, mode.variant(variant)) for variant in wanted]
            # Each measured run gets a freshly started balancer, and the balancers take
            # turns on each row (A B, A B ...): a run then follows the same kind of run
            # for both. (Measured mode by mode, poise's keep-alive runs came right after
            # HAProxy's connection-per-request runs and cost ~10% more than alone.)
            for row, variant in zip(mode_rows, wanted, strict=True):
                runs: dict[str, list[report.Outcome]] = {b.name: [] for b in balancers}
                for _ in range(args.repeat):
                    for balancer in balancers:
                        outcome = self.run_balancer(balancer, mode, [variant], backends)[0]
                        runs[balancer.name].append(outcome)
                for name, outcomes in runs.items():
                    row.results[name] = median_run(outcomes)
            rows += mode_rows
        return rows

    def make_certificate(self) -> None:
        """One certificate for every balancer, made as a user would: `poise cert`."""
        ca_dir = self.work / "ca"
        self.certificate = self.work / "bench.pem"
        for args in (
            ["ca", "--dir", str(ca_dir), "--name", "poise bench CA"],
            ["issue", "--ca", str(ca_dir), "--dns", "bench", "--out", str(self.certificate)],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "poise.cli", "cert", *args],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise BenchError(f"poise cert {args[0]} failed: {done.stderr.strip()}")

    def start_nginx(self) -> list[int]:
        prefix = self.work / "nginx"
        prefix.mkdir()
        ports = procs.free_ports(2)
        conf = prefix / "nginx.conf"
        conf.write_text(setups.render_nginx(prefix, ports))
        argv = ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
        nginx = self.running.start(
            "nginx", [*argv, "-g", "daemon off;"], self.cores.load, self.work / "nginx.log"
        )
        for port in ports:
            if not procs.wait_listening(port, nginx, START_TIMEOUT_S):
                raise BenchError(f"nginx did not start:\n{nginx.log_tail()}")
            problem = probe("http", port)
            if problem:
                raise BenchError(f"nginx on port {port}: {problem}")
        return ports

    def run_balancer(
        self,
        balancer: setups.Balancer,
        mode: setups.Mode,
        variants: list[setups.Variant],
        backends: list[int],
    ) -> list[report.Outcome]:
        """Start one balancer for one mode, measure every variant, stop it. A refused config,
        a failed first request or a crash skips the rest with the reason (or fails the run,
        for the reference: then the harness itself is wrong)."""
        port = procs.free_ports(1)[0]
        stem = f"{balancer.name}-{mode.name}"
        cfg = self.work / f"{stem}.cfg"
        cfg.write_text(setups.render_balancer(balancer, mode, port, backends, self.certificate))
        argv = [*balancer.argv, str(cfg)]
        proc = self.running.start(
            balancer.name, argv, self.cores.balancer, self.work / f"{stem}.log"
        )
        outcomes: list[report.Outcome] = []
        try:
            problem = None
            if not procs.wait_listening(port, proc, START_TIMEOUT_S):
                state = "not listening" if proc.alive() else f"exited ({proc.popen.poll()})"
                problem = f"{state} with {cfg.name}: {proc.log_tail(5)}"
            else:
                problem = probe(mode.scheme, port)
            if problem:
                if balancer.reference:
                    raise BenchError(f"{balancer.label}, mode {mode.name}: {problem}")
                print(f"  {mode.name}: {balancer.label} skipped: {problem}")
                return [report.Skipped(problem) for _ in variants]
            url = f"{mode.scheme}://127.0.0.1:{port}/"
            for variant in variants:
                if proc.alive():
                    outcomes.append(self.measure(balancer, mode, variant, url, proc))
                else:
                    outcomes.append(report.Skipped("not running any more (see the row before)"))
            return outcomes
        finally:
            self.running.stop(proc)

    def wrk(
        self, url: str, variant: setups.Variant, seconds: int, log: str, mode: setups.Mode
    ) -> wrkrun.WrkResult:
        return wrkrun.run(
            self.running,
            url,
            connections=self.args.connections,
            duration_s=seconds,
            headers=(*variant.headers, *mode.headers),
            cores=self.cores.load,
            log_path=self.work / log,
        )

    def measure(
        self,
        balancer: setups.Balancer,
        mode: setups.Mode,
        variant: setups.Variant,
        url: str,
        proc: procs.Started,
    ) -> report.Outcome:
        stem = f"wrk-{balancer.name}-{mode.name}-{variant.name}"
        if self.args.warmup > 0:
            self.wrk(url, variant, self.args.warmup, f"{stem}-warmup.log", mode)
        cpu_before, cores_before = procs.cpu_seconds(proc.pid), procs.core_times()
        t0 = time.monotonic()
        result = self.wrk(url, variant, self.args.duration, f"{stem}.log", mode)
        cpu_after, cores_after = procs.cpu_seconds(proc.pid), procs.core_times()
        t1 = time.monotonic()
        if not proc.alive():
            reason = f"crashed during the run (status {proc.popen.poll()}): {proc.log_tail(5)}"
            print(f"  {mode.name} {variant.name}: {balancer.label} {reason}")
            return report.Skipped(reason)
        cpu_s = cpu_after - cpu_before
        core_b = _delta(cores_before, cores_after, int(self.cores.balancer))
        core_l = _delta(cores_before, cores_after, int(self.cores.load))
        measured = report.Measured(
            wrk=result,
            cpu_s=cpu_s,
            wall_s=t1 - t0,
            core_other_pct=max(0.0, 100 * (core_b.tasks - cpu_s * procs.CLK_TCK) / core_b.total),
            core_irq_pct=100 * core_b.irq / core_b.total,
            load_core_pct=100 * (core_l.tasks + core_l.irq) / core_l.total,
        )
        print(
            f"  {mode.name:5} {variant.name:10} {balancer.label:8} {result.rps:10,.0f} req/s "
            f"{measured.cpu_us_per_req:7.1f} CPU us/req  {measured.cpu_pct:4.0f}% CPU  "
            f"errors: {result.errors_text()}"
        )
        return measured


def _delta(
    before: dict[int, procs.CoreTicks], after: dict[int, procs.CoreTicks], core: int
) -> procs.CoreTicks:
    b, a = before[core], after[core]
    return procs.CoreTicks(a.tasks - b.tasks, a.irq - b.irq, max(a.total - b.total, 1))


def probe(scheme: str, port: int) -> str | None:
    """One request through the set-up; None if it answers 200 with nginx's body."""
    request = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            sock: socket.socket = raw
            if scheme == "https":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(raw)
            sock.sendall(request)
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError as exc:
        return f"a first request failed: {exc!r} (received {answer[:200]!r})"
    if not answer.startswith(b"HTTP/1.1 200") or not answer.endswith(b"ok\n"):
        return f"a first request got {answer[:300]!r}, not 200 ok"
    return None


def describe(
    args: argparse.Namespace, balancers: list[setups.Balancer], cores: Cores
) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg(),
        },
        "git": _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "versions": {
            "haproxy": _first_line([balancers[0].argv[0], "-v"]),
            "nginx": _first_line(["nginx", "-v"]),
            "wrk": _first_line(["wrk", "-v"]),
            **({"poise": _first_line([args.poise, "--version"])} if len(balancers) > 1 else {}),
        },
        "settings": {
            "wrk": f"-t1 -c{args.connections} -d{args.duration}s",
            "warmup_s": args.warmup,
            "balancer_core": cores.balancer,
            "load_core": cores.load,
            "clk_tck": procs.CLK_TCK,
            "POISE_LOOP": os.environ.get("POISE_LOOP", "(unset: uvloop)"),
        },
    }


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""


def print_logs(balancers: list[setups.Balancer], work: Path) -> None:
    """What each balancer printed while it ran: warnings, errors, tracebacks are evidence."""
    for balancer in balancers:
        for log in sorted(work.glob(f"{balancer.name}-*.log")):
            lines = log.read_text(errors="replace").splitlines()
            if lines:
                print(f"\n{log.name}: {len(lines)} line(s) of output, the last ones:")
                for line in lines[-8:]:
                    print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
