"""Run wrk for a bounded time and read its summary: requests, req/s, errors, latency.

wrk's text summary is the interface (Debian's wrk 4.1): "N requests in Ts", "Requests/sec",
"Socket errors: connect C, read R, write W, timeout T" and "Non-2xx or 3xx responses: N"
(the last two only when non-zero). Errors are read as carefully as speed: a balancer that
answers errors fast is not fast.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from procs import Processes

WRK_TIMEOUT_S = 2  # wrk's own per-request timeout; late answers count as timeout errors
GRACE_S = 30  # wrk stops itself after -d; past that much extra it is stopped by its PID

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_LATENCY = re.compile(r"Latency\s+([\d.]+)(us|ms|s|m|h)")


class WrkError(Exception):
    """wrk did not run, or printed no summary."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx_3xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    latency_avg_ms: float | None = None

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())

    def errors_text(self) -> str:
        parts = [f"{kind} {n}" for kind, n in self.socket_errors.items() if n]
        if self.non_2xx_3xx:
            parts.insert(0, f"non-2xx/3xx {self.non_2xx_3xx}")
        return ", ".join(parts) or "0"


def parse(text: str) -> WrkResult:
    total = _TOTAL.search(text)
    rps = _RPS.search(text)
    if total is None or rps is None:
        raise WrkError(f"no summary in wrk's output:\n{text}")
    sockets = _SOCKET.search(text)
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if sockets is not None:
        socket_errors = dict(zip(socket_errors, map(int, sockets.groups()), strict=True))
    non_2xx = _NON_2XX.search(text)
    latency = _LATENCY.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS[total.group(3)],
        rps=float(rps.group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        latency_avg_ms=float(latency.group(1)) * _UNITS[latency.group(2)] * 1e3
        if latency
        else None,
    )


def run(
    procs: Processes,
    url: str,
    *,
    connections: int,
    duration_s: int,
    headers: tuple[str, ...],
    cores: str,
    log_path: Path,
) -> WrkResult:
    """One wrk run (one thread), pinned to `cores`, bounded by -d and a hard deadline."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", f"--timeout={WRK_TIMEOUT_S}s"]
    for header in headers:
        argv += ["-H", header]
    proc = procs.start("wrk", [*argv, url], cores, log_path)
    try:
        proc.popen.wait(timeout=duration_s + GRACE_S)
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk still running {GRACE_S}s after its -d{duration_s}s") from None
    finally:
        procs.stop(proc)
    text = log_path.read_text(errors="replace")
    if proc.popen.returncode != 0:
        raise WrkError(f"wrk exited with status {proc.popen.returncode}:\n{text}")
    return parse(text)
