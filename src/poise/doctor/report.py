"""The result of `poise doctor`: one `Check` per thing looked at, each PASS, WARN or FAIL
with what was seen and what to do, printed one per line or as a JSON report. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """One check. `name` is short and stable (`dns`, `tls.san`, `config.tunnel-timeout`):
    scripts key on it. `saw` says what was observed, in a sentence; `advice` what to do
    about it (empty when there is nothing to do)."""

    name: str
    status: Status
    saw: str
    advice: str = ""


def render_text(checks: Sequence[Check]) -> str:
    """One line per check: `PASS dns          view.domain.local -> 127.0.0.1`, with the
    advice on an indented line after a WARN or FAIL."""
    width = max((len(check.name) for check in checks), default=0)
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.status.value} {check.name:<{width}}  {check.saw}")
        if check.advice and check.status is not Status.PASS:
            lines.append(f"     {'':<{width}}  -> {check.advice}")
    return "\n".join(lines) + "\n" if lines else ""


def render_json(target: str, checks: Sequence[Check]) -> str:
    report = {
        "target": target,
        "ok": exit_status(checks) == 0,
        "counts": {status.value: sum(c.status is status for c in checks) for status in Status},
        "checks": [
            {"name": c.name, "status": c.status.value, "saw": c.saw, "advice": c.advice}
            for c in checks
        ],
    }
    return json.dumps(report, indent=2) + "\n"


def exit_status(checks: Sequence[Check]) -> int:
    """0 when nothing failed (warnings do not fail), else 1."""
    return 1 if any(check.status is Status.FAIL for check in checks) else 0
