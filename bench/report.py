"""The results: what one measured run holds, the printed table, and results.json.

Ratios are poise over HAProxy on the same row of the same run, because on a shared, noisy
machine the absolute figures drift between runs while the ratios drift much less. CPU per
request (from /proc/PID/stat) is the steadier of the two metrics; req/s is shown with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from setups import Balancer, Mode, Variant
from wrkrun import WrkResult

ERROR_BUDGET = 0.001  # more errors than this share of requests fails the row's target
NOISY_PCT = 10.0  # other processes on the balancer's core beyond this: the row is noisy


@dataclass(frozen=True)
class Measured:
    """One balancer on one row: wrk's summary and the balancer's CPU time over the run."""

    wrk: WrkResult
    cpu_s: float
    wall_s: float
    core_other_pct: float  # the balancer's core, busy with other processes
    core_irq_pct: float  # the balancer's core, in irq/softirq (loopback packet work)
    load_core_pct: float  # the core of wrk and nginx, busy

    @property
    def cpu_us_per_req(self) -> float:
        return self.cpu_s / self.wrk.requests * 1e6 if self.wrk.requests else float("nan")

    @property
    def cpu_pct(self) -> float:
        return 100 * self.cpu_s / self.wall_s

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.wrk.requests,
            "seconds": self.wrk.seconds,
            "rps": self.wrk.rps,
            "cpu_seconds": round(self.cpu_s, 3),
            "cpu_us_per_req": round(self.cpu_us_per_req, 3),
            "cpu_pct_of_one_core": round(self.cpu_pct, 1),
            "non_2xx_3xx": self.wrk.non_2xx_3xx,
            "socket_errors": self.wrk.socket_errors,
            "latency_avg_ms": self.wrk.latency_avg_ms,
            "balancer_core_other_processes_pct": round(self.core_other_pct, 1),
            "balancer_core_softirq_pct": round(self.core_irq_pct, 1),
            "load_core_busy_pct": round(self.load_core_pct, 1),
        }


@dataclass(frozen=True)
class Skipped:
    reason: str


Outcome = Measured | Skipped


@dataclass
class Row:
    mode: Mode
    variant: Variant
    results: dict[str, Outcome] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.mode.name} {self.variant.name}"

    def ratio(self, metric: str, name: str, reference: str) -> float | None:
        ours, ref = self.results.get(name), self.results.get(reference)
        if not isinstance(ours, Measured) or not isinstance(ref, Measured):
            return None
        mine, theirs = _metric(ours, metric), _metric(ref, metric)
        return mine / theirs if theirs else None

    def verdict(self, name: str, reference: str) -> str:
        ours = self.results.get(name)
        ratio = self.ratio(self.variant.target.metric, name, reference)
        if not isinstance(ours, Measured) or ratio is None:
            return "not measured"
        if ours.wrk.errors > ERROR_BUDGET * max(ours.wrk.requests, 1):
            return "MISSED (errors)"
        return "met" if self.variant.target.met(ratio) else "MISSED"


def _metric(m: Measured, metric: str) -> float:
    return m.wrk.rps if metric == "rps" else m.cpu_us_per_req


_LINES: tuple[tuple[str, str, Callable[[Measured], str]], ...] = (
    ("rps", "req/s", lambda m: f"{m.wrk.rps:,.0f}"),
    ("cpu_us_per_req", "CPU us/req", lambda m: f"{m.cpu_us_per_req:.1f}"),
    ("", "CPU % of core", lambda m: f"{m.cpu_pct:.0f}"),
    ("", "errors", lambda m: m.wrk.errors_text()),
    ("", "latency avg ms", lambda m: f"{m.wrk.latency_avg_ms or 0:.2f}"),
    ("", "core softirq %", lambda m: f"{m.core_irq_pct:.0f}"),
    ("", "core others %", lambda m: f"{m.core_other_pct:.0f}"),
    ("", "load core busy %", lambda m: f"{m.load_core_pct:.0f}"),
)


def table(rows: list[Row], balancers: list[Balancer]) -> str:
    ref = next(b for b in balancers if b.reference)
    others = [b for b in balancers if not b.reference]
    head = ["row", "metric", *(b.label for b in balancers)]
    head += [f"{b.label}/{ref.label}" for b in others] + ["target", "verdict"]
    lines: list[list[str]] = [head]
    for row in rows:
        for i, (metric, label, show) in enumerate(_LINES):
            cells = [row.label if i == 0 else "", label]
            for b in balancers:
                outcome = row.results.get(b.name)
                if isinstance(outcome, Measured):
                    cells.append(show(outcome))
                else:
                    cells.append("skipped" if i == 0 else "")
            for b in others:
                ratio = row.ratio(metric, b.name, ref.name) if metric else None
                cells.append(f"{ratio:.2f}" if ratio is not None else "")
            if metric and metric == row.variant.target.metric:
                cells += [row.variant.target.text()]
                cells += [", ".join(row.verdict(b.name, ref.name) for b in others)]
            else:
                cells += ["", ""]
            lines.append(cells)
        lines.append([])
    widths = [max(len(line[c]) for line in lines if line) for c in range(len(head))]
    out = []
    for line in lines:
        if not line:
            out.append("")
            continue
        padded = [
            cell.ljust(w) if c < 2 or c >= len(head) - 2 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out).rstrip() + "\n"


def notes(rows: list[Row]) -> list[str]:
    """One line per balancer and reason a row was skipped, and one per noisy row."""
    skipped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        for name, outcome in row.results.items():
            if isinstance(outcome, Skipped):
                skipped.setdefault((name, outcome.reason), []).append(row.label)
    found = [
        f"{name} skipped on {', '.join(labels)}: {reason}"
        for (name, reason), labels in skipped.items()
    ]
    for row in rows:
        busy = {
            name: outcome.core_other_pct
            for name, outcome in row.results.items()
            if isinstance(outcome, Measured) and outcome.core_other_pct > NOISY_PCT
        }
        if busy:
            during = ", ".join(f"{pct:.0f}% during {name}'s run" for name, pct in busy.items())
            found.append(
                f"{row.label} is noisy: other processes took the balancer's core ({during});"
                " its req/s ratio means little, CPU us/req holds better: run again"
            )
    return found


def as_json(rows: list[Row], balancers: list[Balancer], meta: dict[str, Any]) -> dict[str, Any]:
    ref = next(b for b in balancers if b.reference)
    others = [b for b in balancers if not b.reference]
    out_rows = []
    for row in rows:
        results: dict[str, Any] = {}
        for b in balancers:
            outcome = row.results.get(b.name)
            if isinstance(outcome, Measured):
                results[b.name] = outcome.as_json()
            elif isinstance(outcome, Skipped):
                results[b.name] = {"skipped": outcome.reason}
        target = row.variant.target
        out_rows.append(
            {
                "mode": row.mode.name,
                "variant": row.variant.name,
                "results": results,
                "ratios": {
                    b.name: {
                        metric: row.ratio(metric, b.name, ref.name)
                        for metric in ("rps", "cpu_us_per_req")
                    }
                    for b in others
                },
                "target": {"metric": target.metric, "op": target.op, "ratio": target.ratio},
                "verdict": {b.name: row.verdict(b.name, ref.name) for b in others},
            }
        )
    return {**meta, "reference": ref.name, "rows": out_rows}
