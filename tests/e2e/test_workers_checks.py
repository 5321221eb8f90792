"""Health checks with `nbthread 2` and 3, poise run as a user runs it (issue 17): a server
that dies is found DOWN once, logged once (by worker 0), and no worker sends to it any
more; back, it is UP on every worker, logged once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.e2e.test_workers import POISE, children
from tests.support import Backend, ask_name, eventually, free_port, run

pytestmark = pytest.mark.e2e

CONFIG = """\
global
    nbthread {count}
defaults
    mode tcp
    timeout connect 500ms
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{port}
    log stdout format raw local0
    log-format "served %pid %s"
    default_backend be

backend be
    server a 127.0.0.1:{a} check inter 100ms rise 2 fall 2
    server b 127.0.0.1:{b} check inter 100ms rise 2 fall 2
"""


@pytest.mark.parametrize("count", [2, 3])
def test_a_dead_server_is_found_once_and_left_by_every_worker(tmp_path: Path, count: int) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        b = await Backend("b").start()
        port = free_port()
        cfg = tmp_path / "poise.cfg"
        cfg.write_text(CONFIG.format(count=count, port=port, a=a.port, b=b.port))
        log = tmp_path / "poise.log"
        out = log.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *POISE, "run", "-db", "-f", str(cfg), stdout=out, stderr=out
        )

        def output() -> str:
            return log.read_text(errors="replace")

        def served() -> list[tuple[int, str]]:
            found = re.findall(r"^served (\d+) (\S+)$", output(), re.M)
            return [(int(pid), server) for pid, server in found]

        async def spread(n: int) -> tuple[set[int], set[str]]:
            """n connections; the workers that served them and the servers they went to."""
            before = len(served())
            names = {await ask_name(port) for _ in range(n)}
            await eventually(lambda: len(served()) >= before + n, 10, "the log lines")
            rows = served()[before:]
            return {pid for pid, _ in rows}, names

        try:
            await eventually(
                lambda: len(children(proc.pid)) == count and "Loading success." in output(),
                15 * count,
                "every worker serving",
            )
            workers = set(children(proc.pid))
            pids, names = await spread(60)
            assert pids == workers and names == {"a", "b"}

            await b.stop()
            await eventually(lambda: "Server be/b is DOWN" in output(), 20, "b found DOWN")
            pids, names = await spread(60)
            assert pids == workers, "every worker served"
            assert names == {"a"}, "no worker sent to b"

            await b.start(port=b.port)
            await eventually(lambda: "Server be/b is UP" in output(), 20, "b found UP")
            pids, names = await spread(60)
            assert pids == workers and names == {"a", "b"}
            text = output()
            # Found and logged once, by one worker: not once per worker.
            assert len(re.findall(r"\[WARNING\].*Server be/b is DOWN", text)) == 1, text
            assert len(re.findall(r"\[WARNING\].*Server be/b is UP", text)) == 1, text
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
            out.close()
            await a.stop()
            await b.stop()

    run("uvloop", main, timeout=120)
