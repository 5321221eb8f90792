"""Health checks run once for a balancer of several workers (`nbthread`, issue 17;
checks/shared.py): two and three workers in one event loop, joined by real socket pairs
carrying the bus's JSON (tests/pairbus.py). Worker 0 alone probes and logs; the others
stop sending to a dead server as soon as worker 0 finds it DOWN, and a worker that starts
late takes the states worker 0 has, without a log line."""

from __future__ import annotations

from collections.abc import Callable

from poise.checks.scheduler import HealthChecks
from tests.io.harness import Poise, Stage
from tests.pairbus import close, mesh
from tests.support import ask_name, eventually, run

CONFIG = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} check inter 40ms rise 2 fall 3
    server b 127.0.0.1:{b} check inter 40ms rise 2 fall 3{extra}
"""


def up(poise: Poise, name: str) -> bool:
    server = poise.ctx.backends["be"].server(name)
    assert server is not None
    return bool(server.up)


def heard(checks: HealthChecks) -> Callable[[], bool]:
    return lambda: all(check.seq > 0 for check in checks.checks)


def test_one_worker_checks_every_worker_follows_one_log_line(loop_kind: str) -> None:
    async def main() -> None:
        workers = mesh(3)
        try:
            async with Stage() as stage:
                a = await stage.backend("a")
                b = await stage.backend("b")
                text = CONFIG.format(a=a.port, b=b.port, log="{log}", extra="")
                balancers = [await stage.poise(text, worker) for worker in workers]
                first = balancers[0].runtime.checks
                assert first is not None
                await eventually(
                    lambda: all(c.health.health == c.health.top for c in first.checks),
                    what="both servers fully up on worker 0",
                )
                for other in balancers[1:]:
                    checks = other.runtime.checks
                    assert checks is not None
                    assert all(check.task is None for check in checks.checks)  # no probes
                    await eventually(heard(checks), what="worker 0's results heard")

                await b.stop()
                await stage.logs.wait_for(r"Server be/b is DOWN")
                await eventually(
                    lambda: not any(up(p, "b") for p in balancers), what="b DOWN everywhere"
                )
                for poise in balancers:
                    assert [await ask_name(poise.port("fe")) for _ in range(4)] == ["a"] * 4
                    server = poise.ctx.backends["be"].server("b")
                    assert server is not None and server.failed_checks == 3

                await stage.backend("b", port=b.port)
                await stage.logs.wait_for(r"Server be/b is UP")
                await eventually(lambda: all(up(p, "b") for p in balancers), what="b UP")
                for poise in balancers:
                    names = sorted([await ask_name(poise.port("fe")) for _ in range(4)])
                    assert names == ["a", "a", "b", "b"]
                # Each change logged once, by worker 0.
                assert len(stage.logs.matching(r"Server be/b is DOWN")) == 1
                assert len(stage.logs.matching(r"Server be/b is UP")) == 1
        finally:
            close(workers)

    run(loop_kind, main)


def test_a_worker_that_starts_late_takes_worker_0s_states(loop_kind: str) -> None:
    async def main() -> None:
        workers = mesh(2)
        try:
            async with Stage() as stage:
                a = await stage.backend("a")
                b = await stage.backend("b")
                # Once DOWN, b is checked again 30s later: only worker 0's states, asked
                # for at start, can tell the late worker.
                extra = " downinter 30s"
                text = CONFIG.format(a=a.port, b=b.port, log="{log}", extra=extra)
                first = await stage.poise(text, workers[0])
                await b.stop()
                await stage.logs.wait_for(r"Server be/b is DOWN")
                late = await stage.poise(text, workers[1])
                # DOWN on the late worker before any new result of worker 0 could say so:
                # its first requests already go to a only.
                await eventually(lambda: not up(late, "b"), what="b DOWN on the late worker")
                assert [await ask_name(late.port("fe")) for _ in range(4)] == ["a"] * 4
                assert up(first, "a") and up(late, "a")
                assert len(stage.logs.matching(r"Server be/b is DOWN")) == 1
        finally:
            close(workers)

    run(loop_kind, main)
