"""Health checks run once for the whole balancer (`nbthread N`, issue 17): worker 0 probes
the servers; every other worker applies worker 0's verdicts without probing and without
logging, so a server goes DOWN on every worker at once and "Server x is DOWN" is logged
once.

Each result worker 0 records is broadcast (kind "check") with the server's counter before
it and a sequence number: another worker puts the counter where worker 0 had it, then
records the same result, so it takes the same transitions (its own sessions end on
`on-marked-down`, its own queue moves); a message older than what it has is dropped. A
worker that starts (a replacement, worker 0 included) gathers the others' states (kind
"check-states") and adopts, per server, the most recent one it is told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from poise.core.health import CheckResult
from poise.net.siblings import Payload

if TYPE_CHECKING:
    from poise.checks.scheduler import HealthChecks, ServerCheck

__all__ = ["SharedChecks", "decode", "encode"]

CHECK = "check"
STATES = "check-states"
CATCH_UP_TIMEOUT = 1.0  # seconds a starting worker waits for the others' states


def encode(result: CheckResult) -> list[Any]:
    return [
        result.passed,
        result.reason,
        result.info,
        result.duration_ms,
        result.code,
        result.conditional,
    ]


def decode(value: object) -> CheckResult | None:
    """A result as encode() wrote it; None for anything else."""
    if not isinstance(value, list) or len(value) != 6:
        return None
    passed, reason, info, duration, code, conditional = value
    if not (
        isinstance(passed, bool)
        and isinstance(reason, str)
        and (info is None or isinstance(info, str))
        and isinstance(duration, int)
        and (code is None or isinstance(code, int))
        and isinstance(conditional, bool)
    ):
        return None
    return CheckResult(passed, reason, info, duration, code, conditional)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SharedChecks:
    """One worker's side of the shared checks (a HealthChecks with several workers)."""

    def __init__(self, checks: HealthChecks) -> None:
        self.checks = checks
        self.siblings = checks.ctx.siblings
        self.by_name: dict[tuple[str, str], ServerCheck] = {
            (check.backend.name, check.server.name): check for check in checks.checks
        }
        self.siblings.serve(CHECK, self.heard)
        self.siblings.serve(STATES, self.states)

    @property
    def leader(self) -> bool:
        return self.siblings.index == 0

    def tell(self, check: ServerCheck, before: tuple[int, int], result: CheckResult) -> None:
        """Worker 0 recorded `result` (the counter and failed checks were `before`)."""
        self.siblings.broadcast(
            CHECK,
            {
                "b": check.backend.name,
                "s": check.server.name,
                "n": check.seq,
                "h": before[0],
                "f": before[1],
                "r": encode(result),
            },
        )

    def find(self, payload: Payload) -> ServerCheck | None:
        check = self.by_name.get((str(payload.get("b")), str(payload.get("s"))))
        if check is None or check.server not in check.backend.servers:
            return None
        return check

    def heard(self, payload: Payload) -> None:
        """Worker 0's result for a server: apply it as worker 0 did."""
        check = self.find(payload)
        result = decode(payload.get("r"))
        seq, health, failed = _int(payload.get("n")), _int(payload.get("h")), _int(payload.get("f"))
        if check is None or result is None or seq is None or health is None or failed is None:
            return
        if seq <= check.seq:  # older than what this worker has
            return
        if check.health.is_up != check.server.up or health != check.health.health:
            # A message was missed (this worker started meanwhile): where worker 0 was.
            check.adopt(seq - 1, health, failed, check.health.last, check.server.stopping)
        check.health.failed_checks = failed
        check.seq = seq - 1  # apply() counts this one
        check.apply(result)

    def states(self, payload: Payload) -> Payload:
        """What this worker knows of each server's checks, for a worker that starts."""
        rows = [
            [name[0], name[1], check.seq, check.health.health, check.health.failed_checks,
             encode(check.health.last), check.server.stopping]
            for name, check in self.by_name.items()
            if check.seq
        ]  # fmt: skip
        return {"servers": rows}

    async def catch_up(self) -> None:
        """Adopt the most recent states the other workers know."""
        answers = await self.siblings.gather(STATES, {}, CATCH_UP_TIMEOUT)
        self.adopt(answers)

    def adopt(self, answers: Sequence[Payload]) -> None:
        for answer in answers:
            rows = answer.get("servers") if isinstance(answer, dict) else None
            for row in rows if isinstance(rows, list) else ():
                if not isinstance(row, list) or len(row) != 7:
                    continue
                check = self.by_name.get((str(row[0]), str(row[1])))
                seq, health, failed = _int(row[2]), _int(row[3]), _int(row[4])
                last = decode(row[5])
                if check is None or check.server not in check.backend.servers:
                    continue
                if seq is None or health is None or failed is None or last is None:
                    continue
                if seq > check.seq:
                    check.adopt(seq, health, failed, last, row[6] is True)


async def start_shared(checks: HealthChecks, shared: SharedChecks) -> None:
    """A worker that starts catches up; then worker 0 probes (the others only listen)."""
    await shared.catch_up()
    if shared.leader:
        checks.run_all()


def begin(checks: HealthChecks) -> asyncio.Task[None]:
    shared = checks.shared = SharedChecks(checks)
    return checks.ctx.loop.create_task(start_shared(checks, shared))
