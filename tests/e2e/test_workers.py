"""`nbthread N`: poise run as a user runs it, a master and N worker processes (issue 17).

One poise per test, several facts checked on it: every worker serves (the answers carry
the PID of the worker that served them, `%pid`), `cpu-map` pins each worker (read back
from /proc/PID/status), a worker killed with SIGKILL is logged and replaced in its slot
while the others serve, and the connections queued on the dead worker's shard meanwhile
are all answered by its replacement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.support import eventually, free_port, run
from tests.webapp import Client

POISE = [sys.executable, "-m", "poise.cli"]

pytestmark = pytest.mark.e2e

CONFIG = """\
global
    nbthread {count}
{cpu_map}
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{port}
    log stdout format raw local0
    log-format "served %pid %HP"
    http-request return status 200 content-type text/plain string ok
    default_backend be

backend be
    server none 127.0.0.1:9
"""


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(word) for word in text.split()]


def cpus_allowed(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^Cpus_allowed_list:\s*(\S+)$", status, re.M)
    assert found is not None
    return found.group(1)


async def ask(port: int, path: str, timeout: float = 20) -> None:
    """One request on a new connection, answered within `timeout` seconds."""
    client = await Client.connect(port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        client.writer.write(request.encode())
        status, _headers, body = await asyncio.wait_for(client.response(), timeout)
        assert status == 200, (status, body)
    finally:
        client.close()


class Poise:
    def __init__(self, tmp: Path, count: int, cpu_map: str = "") -> None:
        self.count = count
        self.port = free_port()
        self.cfg = tmp / "poise.cfg"
        self.cfg.write_text(CONFIG.format(count=count, cpu_map=cpu_map, port=self.port))
        self.log = tmp / "poise.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Poise:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *POISE, "run", "-db", "-f", str(self.cfg), stdout=out, stderr=out
            )
        await eventually(
            lambda: len(self.workers()) == self.count and "Loading success." in self.output(),
            15 * self.count,
            "every worker serving",
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def forked(self) -> list[int]:
        """The workers in the order the master started them (slot order)."""
        return [int(p) for p in re.findall(r"New worker \((\d+)\) forked", self.output())]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def served(self) -> dict[str, int]:
        """Each request's path and the PID of the worker that served it (its log line)."""
        return {
            path: int(pid) for pid, path in re.findall(r"^served (\d+) (\S+)$", self.output(), re.M)
        }

    async def spread(self, name: str, count: int) -> set[int]:
        """`count` requests, one connection each: the workers that served them."""
        paths = [f"/{name}/{n}" for n in range(count)]
        for path in paths:
            await ask(self.port, path)
        await eventually(lambda: set(paths) <= set(self.served()), 10, "the log lines")
        served = self.served()
        return {served[path] for path in paths}

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            for pid in [self.pid, *self.workers()]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise


def test_two_workers_serve_and_are_pinned_by_cpu_map(tmp_path: Path) -> None:
    async def main() -> None:
        cpu_map = "    cpu-map 1/1 0\n    cpu-map 1/2 0-1\n"
        poise = await Poise(tmp_path, 2, cpu_map).start()
        try:
            assert "master-worker" not in poise.output()  # no -W needed
            pids = await poise.spread("a", 60)
            workers = set(poise.workers())
            assert pids == workers, (pids, workers)
            first, second = poise.forked()
            assert cpus_allowed(first) == "0"
            assert cpus_allowed(second) == "0-1"
            assert cpus_allowed(poise.pid) == "0-1"  # the master is not pinned
        finally:
            status = await poise.stop()
        assert status == 0
        assert poise.output().count("exited with code 0 (Exit)") == 2

    run("uvloop", main, timeout=90)


@pytest.mark.timeout(180)
def test_a_killed_worker_is_replaced_and_its_queued_connections_are_served(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        poise = await Poise(tmp_path, 3).start()
        try:
            pids = await poise.spread("a", 60)
            assert pids == set(poise.workers())
            victim = poise.forked()[1]
            # Stopped, it accepts nothing: what the kernel hashes to its shard queues.
            os.kill(victim, signal.SIGSTOP)
            paths = [f"/q/{n}" for n in range(30)]
            # They wait for the replacement to start: a Python process, slow on a busy machine.
            queued = [asyncio.ensure_future(ask(poise.port, path, 90)) for path in paths]
            await eventually(lambda: sum(t.done() for t in queued) >= 5, 20, "the others serve")
            assert not all(t.done() for t in queued), "none waits on the stopped worker"
            os.kill(victim, signal.SIGKILL)
            await asyncio.gather(*queued)  # every one answered: none lost
            await eventually(lambda: set(paths) <= set(poise.served()), 10, "the log lines")
            answers = [poise.served()[path] for path in paths]
            replacement = (set(poise.workers()) - pids).pop()
            assert replacement in answers, "the replacement took the dead worker's queue"
            assert victim not in answers
            output = poise.output()
            assert f"Current worker ({victim}) exited with code 137 (Killed)" in output
            assert f"Worker ({replacement}) serves in place of worker #1" in output
            assert len(poise.workers()) == 3
        finally:
            status = await poise.stop()
        assert status == 0

    run("uvloop", main, timeout=170)
