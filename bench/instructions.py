"""Instructions per request: poise under callgrind, a count that a busy machine cannot move.

`make bench` measures CPU time, which other people's work on a shared machine moves by
several percent; an instruction count does not move. For each row (HTTP keep-alive, HTTP
`Connection: close`, TCP keep-alive, TCP close) poise runs as `poise run` does, under
`valgrind --tool=callgrind`, with `make bench`'s config (bench/balancer.cfg) in front of its
nginx backends. A small client sends requests one at a time, the same bytes each time.
Start-up runs uninstrumented and a warm-up precedes the counting. Then pairs of counts,
each from zero (callgrind_control): BASE requests, then REQUESTS; the difference over
REQUESTS - BASE is one estimate, free of what every count costs whatever its length (the
first connection, the dump), and the median of the pairs leaves out the one a full
garbage collection landed in. Timer callbacks (poise's once-a-second work) are not
counted: their share follows the wall clock, not the requests. Three runs (three poise
processes) per row give the spread. `--rev REV` measures another commit, from a git
worktree in a temporary directory (removed after); this script and the Python
environment stay the current ones. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import procs
import revs
import setups

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
START_TIMEOUT_S = 120.0  # poise starting under valgrind on a busy machine
# uvloop's function that runs a timer's callback: callgrind counts nothing inside it. The
# timers that fire in a run are poise's once-a-second ones (the stats rate meter, the pool
# purge), whose cost follows the wall clock, which valgrind stretches 50-fold and a busy
# machine more: counted, they moved a figure by 1% from one run to the next.
TIMER_CALLBACK = "__pyx_f_6uvloop_4loop_11TimerHandle__run"
# Instruction counts do not depend on where a process runs: nothing is pinned.
CORES = ",".join(str(core) for core in sorted(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class Row:
    name: str
    mode: str  # HAProxy's mode, and the frontend's
    close: bool  # `Connection: close` and a new connection per request


ROWS = (
    Row("http keep-alive", "http", close=False),
    Row("http close", "http", close=True),
    Row("tcp keep-alive", "tcp", close=False),
    Row("tcp close", "tcp", close=True),
)


@dataclass(frozen=True)
class Lab:
    """What every poise of a run shares: the processes, a directory, nginx's ports."""

    running: procs.Processes
    work: Path
    backends: list[int]


class BenchError(Exception):
    """The run cannot go on: a tool is missing or failed."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [row for row in ROWS if row.name in args.rows]
    missing = [tool for tool in ("valgrind", "callgrind_control", "nginx") if not which(tool)]
    if missing:
        print(f"instructions: missing {', '.join(missing)} (make bench installs them)")
        return 2
    if args.requests <= args.base:
        print("instructions: --requests must be more than --base")
        return 2
    work = OUT / "instructions"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    running = procs.Processes()
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        with revs.checkout(args.rev) as source:
            described = source.label
            print(f"instructions: poise at {described}; {args.requests} - {args.base} requests")
            lab = Lab(running, work, start_nginx(running, work))
            results = measure(args, rows, source, lab)
    except KeyboardInterrupt:
        print("\ninstructions: interrupted; stopping what it started", file=sys.stderr)
        return 130
    except (BenchError, OSError, subprocess.CalledProcessError) as exc:
        print(f"instructions: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        running.stop_all()
        signal.signal(signal.SIGTERM, previous)
    print()
    print(table(results), end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "rev": described,
                "requests": args.requests,
                "base": args.base,
                "runs": {name: figures for name, figures in results.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {out}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a commit to measure (default: this working tree)")
    parser.add_argument("--runs", type=int, default=3, help="poise processes per row")
    parser.add_argument("--requests", type=int, default=700, help="requests of a long count")
    parser.add_argument("--base", type=int, default=100, help="requests of a short count")
    parser.add_argument(
        "--pairs", type=int, default=3, help="short and long counts per run (the median pair)"
    )
    parser.add_argument("--warmup", type=int, default=200, help="requests before counting")
    parser.add_argument(
        "--rows",
        type=lambda text: [name.strip() for name in text.split(",")],
        default=[row.name for row in ROWS],
        help="comma-separated: " + ",".join(row.name for row in ROWS),
    )
    parser.add_argument("--out", default=str(OUT / "instructions.json"))
    return parser.parse_args(argv)


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def which(tool: str) -> bool:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(tool, path=path) is not None


def start_nginx(running: procs.Processes, work: Path) -> list[int]:
    prefix = work / "nginx"
    prefix.mkdir()
    ports = procs.free_ports(2)
    conf = prefix / "nginx.conf"
    conf.write_text(setups.render_nginx(prefix, ports))
    argv = ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
    nginx = running.start("nginx", [*argv, "-g", "daemon off;"], CORES, work / "nginx.log")
    for port in ports:
        if not procs.wait_listening(port, nginx, 10):
            raise BenchError(f"nginx did not start:\n{nginx.log_tail()}")
    return ports


def measure(
    args: argparse.Namespace,
    rows: list[Row],
    source: revs.Source,
    lab: Lab,
) -> dict[str, list[float]]:
    """Instructions per request of each row, one figure per run. The runs of a mode's rows
    share a poise process: run 1 of every mode, then run 2, ..."""
    results: dict[str, list[float]] = {row.name: [] for row in rows}
    modes = list(dict.fromkeys(row.mode for row in rows))  # in ROWS's order
    for run in range(1, args.runs + 1):
        for mode in modes:
            with callgrind_poise(source, mode, lab, f"{mode}-{run}") as poise:
                for row in (row for row in rows if row.mode == mode):
                    client = Client(poise.port, row.close)
                    client.requests(args.warmup)
                    pairs = []
                    for _ in range(args.pairs):
                        base = poise.count(client, args.base)
                        total = poise.count(client, args.requests)
                        pairs.append((total - base) / (args.requests - args.base))
                    per_request = statistics.median(pairs)
                    results[row.name].append(per_request)
                    print(
                        f"  run {run} {row.name:16} {per_request:12,.0f} instructions/request"
                        f" (pairs: {', '.join(f'{pair:,.0f}' for pair in pairs)})"
                    )
    return results


class Poise:
    """poise under callgrind: counting switched on, zeroed and dumped by callgrind_control."""

    def __init__(self, proc: procs.Started, port: int, dumps: Path) -> None:
        self.proc, self.port, self.dumps = proc, port, dumps
        self.instrumented = False

    def control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.proc.pid)],
            capture_output=True,
            check=True,
            timeout=60,
        )

    def count(self, client: Client, requests: int) -> int:
        """Instructions poise runs to serve `requests` requests of `client`."""
        if not self.instrumented:
            self.control("--instr=on")
            self.instrumented = True
        before = set(self.dumps.parent.glob(self.dumps.name + ".*"))
        self.control("--zero")
        client.requests(requests)
        self.control("--dump")
        new = set(self.dumps.parent.glob(self.dumps.name + ".*")) - before
        if len(new) != 1:
            raise BenchError(f"callgrind wrote {len(new)} dumps, not one")
        found = re.search(r"^totals: (\d+)", new.pop().read_text(), re.MULTILINE)
        if found is None:
            raise BenchError("a callgrind dump without totals")
        return int(found.group(1))


@contextmanager
def callgrind_poise(source: revs.Source, mode: str, lab: Lab, name: str) -> Iterator[Poise]:
    """`poise run -db -f FILE` (make bench's config, in `mode`) under callgrind, with
    instrumentation off until the first count: start-up runs at valgrind's fast speed."""
    port = procs.free_ports(1)[0]
    stem = lab.work / name
    cfg = stem.with_suffix(".cfg")
    balancer = setups.poise("poise")
    cfg.write_text(setups.render_balancer(balancer, setups.Mode(mode, mode), port, lab.backends))
    callgrind = [
        "PYTHONHASHSEED=0",  # the same dict and set layouts in every run
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--toggle-collect={TIMER_CALLBACK}",
        "--collect-atstart=yes",  # after --toggle-collect, which turns it off
        f"--callgrind-out-file={stem}.callgrind",
    ]
    argv = [*source.argv(callgrind), "run", "-db", "-f", str(cfg)]
    proc = lab.running.start(f"poise-{name}", argv, CORES, stem.with_suffix(".log"))
    try:
        wait_listening(port, proc)
        yield Poise(proc, port, Path(f"{stem}.callgrind"))
    finally:
        lab.running.stop(proc)


def wait_listening(port: int, proc: procs.Started) -> None:
    """Wait until poise listens on `port`, read from /proc/net/tcp: no probe connection
    that poise would have to serve."""
    wanted = re.compile(rf"^\s*\d+: 0100007F:{port:04X} 00000000:0000 0A ", re.MULTILINE)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not wanted.search(Path("/proc/net/tcp").read_text()):
        if not proc.alive():
            raise BenchError(f"poise exited: {proc.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"poise does not listen after {START_TIMEOUT_S:.0f}s")
        time.sleep(0.1)


class Client:
    """Requests one at a time, each the same bytes, as wrk sends them in `make bench`."""

    def __init__(self, port: int, close: bool) -> None:
        self.port, self.close = port, close
        extra = b"Connection: close\r\n" if close else b""
        self.request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (port, extra)

    def requests(self, count: int) -> None:
        if self.close:
            for _ in range(count):
                with self.connect() as sock:
                    sock.sendall(self.request)
                    answer = b""
                    while data := sock.recv(65536):
                        answer += data
                    check(answer)
            return
        with self.connect() as sock:
            for _ in range(count):
                sock.sendall(self.request)
                answer = b""
                while not complete(answer):
                    data = sock.recv(65536)
                    if not data:
                        raise BenchError(f"closed after {answer!r}")
                    answer += data
                check(answer)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def complete(answer: bytes) -> bool:
    head_end = answer.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    found = re.search(rb"\r\ncontent-length: *(\d+)", answer[:head_end], re.IGNORECASE)
    if found is None:
        raise BenchError(f"an answer without Content-Length: {answer!r}")
    return len(answer) >= head_end + 4 + int(found.group(1))


def check(answer: bytes) -> None:
    if not (answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok\n")):
        raise BenchError(f"unexpected answer: {answer[:300]!r}")


def table(results: dict[str, list[float]]) -> str:
    lines = [f"{'row':16} {'median':>10} {'spread':>8}  runs (instructions per request)"]
    for name, figures in results.items():
        median = statistics.median(figures)
        spread = (max(figures) - min(figures)) / median * 100
        runs = ", ".join(f"{figure:,.0f}" for figure in figures)
        lines.append(f"{name:16} {median:10,.0f} {spread:7.2f}%  {runs}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
