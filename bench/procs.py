"""Start, pin, watch and stop the benchmark's processes, and read their CPU time from /proc.

Every process is started through `taskset` on the cores it is given, asks the kernel to kill
it if the harness dies (PR_SET_PDEATHSIG), and is stopped by its PID, and its children's PIDs,
in the harness's `finally`: no server or load outlives a run, also on Ctrl-C or a crash.
CPU time is read from /proc/PID/stat (utime + stime, in clock ticks), summed over the process
and its descendants, so a balancer that forks workers is measured whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_GRACE_S = 5.0  # SIGTERM first; SIGKILL whatever is left after this long


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the harness goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class Started:
    """One process the harness started, with its output captured in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every process started in a run, so that one `stop_all()` in a `finally` ends them."""

    def __init__(self) -> None:
        self.started: list[Started] = []

    def start(self, name: str, argv: list[str], cores: str, log_path: Path) -> Started:
        log = log_path.open("wb")
        try:
            popen = subprocess.Popen(
                ["taskset", "-c", cores, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The harness is single-threaded, which is what preexec_fn needs.
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        finally:
            log.close()
        proc = Started(name, popen, log_path)
        self.started.append(proc)
        return proc

    def stop(self, proc: Started) -> None:
        stop(proc)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        while self.started:
            self.stop(self.started[-1])


def stop(proc: Started) -> None:
    """SIGTERM the process, wait, then SIGKILL it and any of its descendants still there."""
    if not proc.alive():
        proc.popen.wait()
        return
    family = [proc.pid, *descendants(proc.pid)]
    _signal(proc.pid, signal.SIGTERM)
    try:
        proc.popen.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _signal(proc.pid, signal.SIGKILL)
        proc.popen.wait()
    # An nginx master that had to be killed leaves its workers behind: end them by PID.
    for pid in family[1:]:
        if _exists(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _read_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after `comm` (which may hold spaces and parentheses):
    index 0 is field 3 (state), 1 is ppid, 11 is utime, 12 is stime (proc(5))."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _read_stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its live descendants, in seconds."""
    ticks = 0
    for each in [pid, *descendants(pid)]:
        fields = _read_stat(each)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


@dataclass(frozen=True)
class CoreTicks:
    """One core's counters from /proc/stat (proc(5)), in clock ticks since boot."""

    tasks: int  # user + nice + system + steal: processes (steal: the hypervisor's)
    irq: int  # irq + softirq: on loopback, most of the packet work of both ends
    total: int


def core_times() -> dict[int, CoreTicks]:
    """Per core counters: with the balancer's own CPU time they show what else ran there."""
    times: dict[int, CoreTicks] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, values[:8])
            times[int(name[3:])] = CoreTicks(
                tasks=user + nice + system + steal,
                irq=irq + softirq,
                total=user + nice + system + idle + iowait + irq + softirq + steal,
            )
    return times


def wait_listening(port: int, proc: Started, timeout_s: float) -> bool:
    """Wait until 127.0.0.1:port accepts a connection; False if the process exits first or
    the port is still closed after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def free_ports(count: int, first: int = 21000, last: int = 32000) -> list[int]:
    """Ports free on 127.0.0.1 now, taken below the kernel's ephemeral range (32768 up on
    Debian), so that none of the hundreds of thousands of connections a close run opens
    competes with a listener for its port.

    The search starts at a random port of the range and wraps around: two runs at once
    (several people share a machine) would otherwise both find the first free port and put
    two listeners behind it before either has bound it. A port is handed out once per
    harness process, so two calls before the first listener is up do not collide either."""
    span = last - first
    start = random.randrange(span)
    ports: list[int] = []
    for step in range(span):
        port = first + (start + step) % span
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            _HANDED_OUT.update(ports)
            return ports
    raise OSError(f"no {count} free ports between {first} and {last} on 127.0.0.1")


_HANDED_OUT: set[int] = set()
