"""Issue 11, finding 2: descriptor exhaustion must lose no client silently.

The attack: poise started under `ulimit -n 256`, then 1,000 clients at once. Before the
fix maxconn stayed 4,096, 759 connections were closed with no byte and no log line
(libuv, out of descriptors, accepts and closes every waiting connection). HAProxy 2.6, the
reference, derives maxconn from the limit (114 from 256 for this configuration, with its
two threads here: 256 less 10 reserved, 1 listener, 11 for the stats socket and 3 per
thread, halved), serves 1,000 of 1,000, and with an explicit `maxconn 4000` refuses to
start: `[ALERT] ... : [haproxy.main()] Cannot raise FD limit to 8028, limit is 256.`

poise runs as a process of its own (`poise run`), its limit set in the child before it
starts, exactly as a user's `ulimit -n` would.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.abuse.crowd import PeakBackend, crowd
from tests.support import eventually, free_port, run

POISE = [sys.executable, "-m", "poise.cli"]
LIMIT = 256
CLIENTS = 1000
# core/limits.py for this configuration: 256 less 10 reserved, 1 listener, 11 for the
# stats socket and 7 for poise's event loop, halved (HAProxy: 114, see above).
DERIVED = 113

CONFIG = """
global
    stats socket {sock} level admin
    {maxconn}
defaults
    mode {mode}
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s 127.0.0.1:{backend}
"""


def limited(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, before poise starts
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


class Running:
    def __init__(self, proc: asyncio.subprocess.Process, sock: Path, port: int) -> None:
        self.proc = proc
        self.sock = sock
        self.port = port
        self.errors: list[str] = []  # its stderr, line by line
        self.reading = asyncio.ensure_future(self.read_errors())

    async def read_errors(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.errors.append(line.decode().rstrip("\n"))

    def said(self, text: str) -> list[str]:
        return [line for line in self.errors if text in line]

    async def cli(self, line: str) -> str:
        reader, writer = await asyncio.open_unix_connection(str(self.sock))
        writer.write(line.encode() + b"\n")
        try:
            return (await asyncio.wait_for(reader.read(), 5)).decode()
        finally:
            writer.close()

    async def info(self) -> dict[str, str]:
        text = await self.cli("show info")
        return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


@asynccontextmanager
async def poise_under_limit(
    mode: str, maxconn: str = "", soft: int = LIMIT, hard: int = LIMIT
) -> AsyncIterator[tuple[Running, PeakBackend]]:
    backend = await PeakBackend(http=mode == "http").start()
    with tempfile.TemporaryDirectory(prefix="pf", dir="/tmp") as name:
        sock = Path(name) / "admin.sock"
        cfg = Path(name) / "poise.cfg"
        port = free_port()
        cfg.write_text(
            CONFIG.format(sock=sock, maxconn=maxconn, mode=mode, port=port, backend=backend.port)
        )
        proc = await asyncio.create_subprocess_exec(
            *POISE,
            "run",
            "-db",
            "-f",
            str(cfg),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=limited(soft, hard),
        )
        running = Running(proc, sock, port)
        try:
            yield running, backend
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
            await running.reading
            await backend.stop()


async def started(running: Running) -> None:
    """Wait until poise answers on its stats socket (it is bound and listening)."""
    for _ in range(1000):
        assert running.proc.returncode is None, running.errors
        try:
            await running.cli("show info")
            return
        except (FileNotFoundError, ConnectionRefusedError):
            await asyncio.sleep(0.01)
    raise AssertionError("poise did not start")


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_maxconn_is_derived_from_the_limit_and_every_client_is_served(mode: str) -> None:
    """HAProxy 2.6 under `ulimit -n 256`: maxconn derived (114 here), 1,000 of 1,000
    served, no descriptor error."""

    async def main() -> None:
        async with poise_under_limit(mode) as (running, backend):
            await started(running)
            info = await running.info()
            assert (info["Maxconn"], info["Maxsock"], info["Ulimit-n"]) == (
                str(DERIVED),
                str(LIMIT - 1),
                str(LIMIT),
            )
            assert await crowd(running.port, mode == "http", CLIENTS) == CLIENTS
            assert backend.peak <= DERIVED
            # Under uvloop an ended session's sockets are closed a little after it is
            # counted out, so at exactly the derived maxconn an accept() may still find
            # no descriptor for a moment: the listener waits 100 ms and nobody is lost
            # (above). Logged once per burst, and nothing else.
            failed = int((await running.info())["FailedAccepts"])
            alerts = running.said("FD limit")
            assert len(alerts) <= failed and not running.said("Traceback"), running.errors

    run("asyncio", main, timeout=60)


def test_an_explicit_maxconn_the_limit_cannot_hold_is_refused() -> None:
    """HAProxy 2.6 under `ulimit -n 256` with `maxconn 4000`: its alert, exit status 1,
    nothing listening (maxsock: 4000 connections, two descriptors each, and 29 reserved)."""

    async def main() -> None:
        async with poise_under_limit("http", maxconn="maxconn 4000") as (running, _):
            assert await asyncio.wait_for(running.proc.wait(), 20) == 1
            await running.reading
            assert running.said(" : [poise.main()] Cannot raise FD limit to 8029, limit is 256."), (
                running.errors
            )
            assert running.errors[-1].startswith("[ALERT]")
            assert not running.sock.exists()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", running.port)

    run("asyncio", main, timeout=30)


def test_an_explicit_maxconn_within_the_hard_limit_raises_the_soft_one() -> None:
    """HAProxy raises the soft limit up to the hard one as maxconn needs: `maxconn 300`
    under a soft limit of 256 and a hard one of 1024 starts with 629 descriptors."""

    async def main() -> None:
        async with poise_under_limit("tcp", "maxconn 300", soft=256, hard=1024) as (running, _):
            await started(running)
            info = await running.info()
            assert (info["Maxconn"], info["Maxsock"], info["Ulimit-n"]) == ("300", "629", "629")

    run("asyncio", main, timeout=30)


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_out_of_descriptors_the_listener_waits_and_loses_nobody(mode: str) -> None:
    """Descriptors running out while poise serves (its soft limit lowered to 64 under
    it): HAProxy pauses the listener, logs `Proxy fe reached process FD limit` and tries
    again within 100 ms; the clients wait in the backlog and are served once descriptors
    are back. Logged once for the burst, counted in `show info` FailedAccepts."""

    async def main() -> None:
        async with poise_under_limit(mode) as (running, backend):
            await started(running)
            pid = running.proc.pid
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, LIMIT))
            clients = asyncio.ensure_future(crowd(running.port, mode == "http", CLIENTS))
            alert = "Proxy fe reached process FD limit (maxsock=255). Please check 'ulimit-n'"
            await eventually(lambda: bool(running.said(alert)), 20, "the listener to stop")
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
            assert await clients == CLIENTS
            assert len(running.said(alert)) == 1, running.said("FD limit")
            assert int((await running.info())["FailedAccepts"]) >= 1
            assert backend.answered == CLIENTS
            assert not running.said("Traceback"), running.errors

    run("asyncio", main, timeout=60)
