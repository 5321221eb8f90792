"""Reloads that drop nothing: `poise run -W` (master-worker mode) as a process, reloaded
with `poise reload` and SIGUSR2 while clients keep it busy; a broken configuration that
leaves the old worker serving; addresses added and removed at reload; the master's
signals; `-sf`/`-st` hand-over without a master; sd_notify to a real datagram socket.

Backends are tests/webapp.py servers in the test's event loop; every response is checked
whole (status, the backend's body for that very request, the generation header the
configuration in force adds), and a connection error counts as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import eventually, free_port, run
from tests.webapp import Client, WebApp

POISE = [sys.executable, "-m", "poise.cli"]
RELOADS = 20
KEEP_ALIVE_CLIENTS = 4
NEW_CLIENTS = 4
PAUSE = 0.005  # between two requests of a client: a bounded load, leaving the CPU to reloads

pytestmark = pytest.mark.e2e

CONFIG = """\
global
    hard-stop-after 20s
{global_extra}
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{port}
{binds}
    http-response set-header X-Generation {generation}
    default_backend be

backend be
    balance roundrobin
    server web1 127.0.0.1:{web1} weight {weight}
    server web2 127.0.0.1:{web2}
"""


@dataclass
class Setup:
    tmp: Path
    port: int
    web1: int
    web2: int
    global_extra: str = ""

    @property
    def cfg(self) -> Path:
        return self.tmp / "poise.cfg"

    @property
    def pidfile(self) -> Path:
        return self.tmp / "poise.pid"

    def write(self, generation: int, binds: tuple[int, ...] = (), extra: str = "") -> None:
        text = CONFIG.format(
            global_extra=self.global_extra,
            port=self.port,
            binds="".join(f"    bind 127.0.0.1:{p}\n" for p in binds),
            generation=generation,
            web1=self.web1,
            web2=self.web2,
            weight=1 + generation % 3,
        )
        self.cfg.write_text(text + extra)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going
        return []
    return [int(word) for word in text.split()]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


class Master:
    """`poise run -W -db -f CFG -p PIDFILE` as a process; its terminal output in a file."""

    def __init__(
        self, setup: Setup, *extra: str, env: dict[str, str] | None = None, count: int = 1
    ) -> None:
        self.setup = setup
        self.count = count  # workers per generation (`nbthread`)
        self.extra = extra
        self.env = env
        self.log = setup.tmp / "poise.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Master:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *POISE, "run", "-W", "-db", "-f", str(self.setup.cfg),
                "-p", str(self.setup.pidfile), *self.extra,
                stdout=out, stderr=out, env=self.env,
            )  # fmt: skip

        def serving() -> bool:
            return len(self.workers()) == self.count and self.said("Loading success.")

        await eventually(serving, 15 * self.count)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def said(self, text: str, count: int = 1) -> bool:
        return self.output().count(text) >= count

    async def reload(self, via: str = "cli") -> None:
        if via == "signal":
            os.kill(self.pid, signal.SIGUSR2)
            return
        proc = await asyncio.create_subprocess_exec(
            *POISE, "reload", "-p", str(self.setup.pidfile),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 0, (out, err)

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            for pid in [self.pid, *self.workers()]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise


async def backends() -> tuple[WebApp, WebApp]:
    return await WebApp("web1").start(), await WebApp("web2").start()


async def get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection (Connection: close), read to the end."""
    client = await Client.connect(port)
    try:
        client.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await client.response()
        assert await asyncio.wait_for(client.reader.read(), 5) == b""
        return answer
    finally:
        client.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- the load ------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    connections: int = 0
    failures: list[str] = field(default_factory=list)
    generations: Counter[int] = field(default_factory=Counter)
    newest: int = 0  # the newest generation a new connection was answered by

    def check(self, target: str, answer: tuple[int, dict[str, str], bytes]) -> None:
        status, headers, body = answer
        backend = headers.get("x-backend", "")
        generation = int(headers.get("x-generation", "0"))
        if (
            status != 200
            or backend not in ("web1", "web2")
            or body != (f"{backend} {target}".encode())
        ):
            self.failures.append(f"{target}: {status} {headers} {body[:80]!r}")
        elif generation == 0:
            self.failures.append(f"{target}: no X-Generation header")
        else:
            self.requests += 1
            self.generations[generation] += 1


async def keep_alive_client(port: int, tally: Tally, done: asyncio.Event, name: str) -> None:
    """Requests one after the other on one connection, a new one when poise says close."""
    client: Client | None = None
    number = 0
    while not done.is_set():
        number += 1
        target = f"/{name}/{number}"
        try:
            if client is None:
                client = await Client.connect(port)
                tally.connections += 1
            answer = await client.get(target)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            tally.failures.append(f"{target}: {exc!r}")
            if client is not None:
                client.close()
            client = None
            continue
        tally.check(target, answer)
        if answer[1].get("connection") == "close":
            client.close()
            client = None
        await asyncio.sleep(PAUSE)
    if client is not None:
        client.close()


async def new_connection_client(port: int, tally: Tally, done: asyncio.Event, name: str) -> None:
    """A new connection for every request."""
    number = 0
    while not done.is_set():
        number += 1
        target = f"/{name}/{number}"
        tally.connections += 1
        try:
            answer = await get(port, target)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, AssertionError) as exc:
            tally.failures.append(f"{target}: {exc!r}")
            continue
        tally.check(target, answer)
        tally.newest = max(tally.newest, int(answer[1].get("x-generation", "0")))
        await asyncio.sleep(PAUSE)


def newest(tally: Tally, generation: int) -> Callable[[], bool]:
    return lambda: tally.newest == generation


@pytest.mark.parametrize("count", [1, 4])
@pytest.mark.timeout(480)  # four workers per generation: 84 worker starts on a shared machine
def test_reloads_under_load_drop_no_request_and_no_connection(tmp_path: Path, count: int) -> None:
    """With one worker, and with `nbthread 4`: a generation of four workers, each on its
    own SO_REUSEPORT shard of the port, replaced whole at each reload."""

    async def main() -> None:
        web1, web2 = await backends()
        extra = f"    nbthread {count}" if count > 1 else ""
        setup = Setup(tmp_path, free_port(), web1.port, web2.port, global_extra=extra)
        setup.write(1)
        master = await Master(setup, count=count).start()
        tally = Tally()
        done = asyncio.Event()
        port = setup.port
        load = asyncio.gather(
            *(keep_alive_client(port, tally, done, f"ka{i}") for i in range(KEEP_ALIVE_CLIENTS)),
            *(new_connection_client(port, tally, done, f"nc{i}") for i in range(NEW_CLIENTS)),
        )
        started = time.monotonic()
        workers = set(master.workers())
        try:
            await eventually(lambda: tally.newest == 1, 10, "the first answers")
            for generation in range(2, RELOADS + 2):
                setup.write(generation)  # a real change: the header and a weight
                await master.reload(via="cli" if generation % 2 else "signal")
                await eventually(newest(tally, generation), 15 * count, f"generation {generation}")
                # The old workers finish their sessions (keep-alive clients are told to
                # close) and leave; the master then has one generation again.
                await eventually(
                    lambda: len(master.workers()) == count, 15 * count, "the old ones to leave"
                )
                workers.update(master.workers())
        finally:
            done.set()
            await load
            status = await master.stop()
            await web1.stop()
            await web2.stop()
        elapsed = time.monotonic() - started
        figures = (
            f"{tally.requests} requests, {tally.connections} connections, {RELOADS} reloads, "
            f"{len(tally.failures)} failures in {elapsed:.1f}s"
        )
        print(f"\nreload under load: {figures}")
        assert tally.failures == [], figures + "\n" + "\n".join(tally.failures[:20])
        assert status == 0
        assert len(workers) == (RELOADS + 1) * count
        assert sorted(tally.generations) == list(range(1, RELOADS + 2))
        assert tally.requests >= 20 * RELOADS, figures
        output = master.output()
        assert output.count("Loading success.") == RELOADS + 1, output
        assert output.count("exited with code 0 (Exit)") == (RELOADS + 1) * count, output
        assert not setup.pidfile.exists()

    run("uvloop", main, timeout=110 * count)  # 440s for four: the pytest timeout's inside


def test_a_broken_configuration_leaves_the_old_worker_serving_and_says_why(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        setup = Setup(tmp_path, free_port(), web1.port, web2.port)
        setup.write(1)
        master = await Master(setup).start()
        try:
            [worker] = master.workers()
            # A keyword poise does not know: the new worker says so, the old one serves.
            setup.write(2, extra="    no-such-keyword 1\n")
            await master.reload(via="signal")
            await eventually(lambda: master.said("Loading failure!"), 10, "the failure")
            output = master.output()
            line = len(setup.cfg.read_text().splitlines())
            assert f"{setup.cfg}:{line}: error: 'no-such-keyword'" in output, output
            await eventually(lambda: master.workers() == [worker], 10, "the new worker to go")
            assert (await get(setup.port, "/"))[1]["x-generation"] == "1"

            # An address the master cannot bind (taken by another program): the same.
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = holder.getsockname()[1]
            setup.write(3, binds=(taken,))
            await master.reload(via="signal")
            await eventually(lambda: master.said("Loading failure!", 2), 10, "the failure")
            holder.close()
            assert f"cannot bind socket (Address already in use) [127.0.0.1:{taken}]" in (
                master.output()
            )
            await eventually(lambda: master.workers() == [worker], 10, "the new worker to go")
            assert (await get(setup.port, "/"))[1]["x-generation"] == "1"

            # Fixed: the next reload takes it.
            setup.write(4)
            await master.reload()
            await eventually(lambda: master.workers() not in ([], [worker]), 10, "a new worker")
            await eventually(lambda: not alive(worker), 10, "the old worker to leave")
            assert (await get(setup.port, "/"))[1]["x-generation"] == "4"
        finally:
            assert await master.stop() == 0
            await web1.stop()
            await web2.stop()

    run("uvloop", main, timeout=60)


async def show_info_pid(path: Path) -> int:
    """`show info` on a stats socket: the pid of the worker that answers."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b"show info\n")
    answer = (await asyncio.wait_for(reader.read(), 5)).decode()
    writer.close()
    return int(answer.split("\nPid: ", 1)[1].split("\n", 1)[0])


def test_addresses_added_at_reload_are_bound_and_removed_ones_closed(tmp_path: Path) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        admin = tmp_path / "admin.sock"
        setup = Setup(tmp_path, free_port(), web1.port, web2.port, f"    stats socket {admin}")
        extra = free_port()
        setup.write(1)
        master = await Master(setup).start()
        try:
            # The stats socket is the master's too: the same one, answered by each worker.
            assert await show_info_pid(admin) == master.workers()[0]
            assert refused(extra)
            setup.write(2, binds=(extra,))
            await master.reload()
            await eventually(lambda: not refused(extra), 10, "the new address")
            assert (await get(extra, "/"))[1]["x-generation"] == "2"
            await eventually(lambda: len(master.workers()) == 1, 10, "the old worker to leave")
            assert await show_info_pid(admin) == master.workers()[0]
            setup.write(3)
            await master.reload()
            await eventually(lambda: refused(extra), 10, "the address to close")
            assert (await get(setup.port, "/"))[1]["x-generation"] == "3"
        finally:
            assert await master.stop() == 0
            await web1.stop()
            await web2.stop()

    run("uvloop", main, timeout=60)


def test_master_signals_sigterm_stops_everything_and_a_dead_master_takes_its_worker(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        setup = Setup(tmp_path, free_port(), web1.port, web2.port)
        setup.write(1)
        master = await Master(setup).start()
        [worker] = master.workers()
        assert int(setup.pidfile.read_text()) == master.pid
        assert await master.stop() == 0
        assert not alive(worker) and not setup.pidfile.exists() and refused(setup.port)
        assert "Exiting Master process..." in master.output()
        assert "All workers exited. Exiting... (0)" in master.output()

        # A master killed outright: its worker notices and leaves too.
        master = await Master(setup).start()
        [worker] = master.workers()
        os.kill(master.pid, signal.SIGKILL)
        await master.stop()
        await eventually(lambda: not alive(worker), 10, "the orphan worker to leave")

        # A worker that dies takes the master down (exit-on-failure): systemd restarts it.
        master = await Master(setup).start()
        [worker] = master.workers()
        os.kill(worker, signal.SIGKILL)
        assert master.proc is not None
        assert await asyncio.wait_for(master.proc.wait(), 10) == 137
        assert "Current worker" in master.output() and "(Killed)" in master.output()
        await web1.stop()
        await web2.stop()

    run("uvloop", main, timeout=60)


def test_master_worker_from_the_configuration_as_a_daemon(tmp_path: Path) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        setup = Setup(tmp_path, free_port(), web1.port, web2.port, "    master-worker\n    daemon")
        setup.write(1)
        out = (tmp_path / "out").open("wb")
        proc = await asyncio.create_subprocess_exec(
            *POISE, "run", "-f", str(setup.cfg), "-p", str(setup.pidfile),
            stdout=out, stderr=out,
        )  # fmt: skip
        # The command returns once the worker serves; the pidfile names the master.
        assert await asyncio.wait_for(proc.wait(), 15) == 0, (tmp_path / "out").read_text()
        out.close()
        pid = int(setup.pidfile.read_text())
        try:
            [worker] = children(pid)
            assert (await get(setup.port, "/"))[1]["x-generation"] == "1"
            setup.write(2)
            os.kill(pid, signal.SIGHUP)  # systemd's convention: SIGHUP reloads too
            await eventually(lambda: children(pid) not in ([], [worker]), 10, "a new worker")
            await eventually(lambda: not alive(worker), 10, "the old worker to leave")
            assert (await get(setup.port, "/"))[1]["x-generation"] == "2"
        finally:
            os.kill(pid, signal.SIGTERM)
            await eventually(lambda: not alive(pid), 10, "the master to stop")
            await web1.stop()
            await web2.stop()
        assert not setup.pidfile.exists()

    run("uvloop", main, timeout=60)


# -- -sf / -st without a master --------------------------------------------------------------


def test_sf_hands_over_and_the_old_process_finishes_its_requests(tmp_path: Path) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        setup = Setup(tmp_path, free_port(), web1.port, web2.port)
        setup.write(1)
        first = await asyncio.create_subprocess_exec(
            *POISE, "run", "-db", "-f", str(setup.cfg), stderr=asyncio.subprocess.DEVNULL
        )
        await eventually(lambda: not refused(setup.port), 10, "the first process")
        # A request in flight on the old process, answered after the hand-over.
        slow = asyncio.ensure_future(get(setup.port, "/slow/1500"))
        await eventually(lambda: any(s.target == "/slow/1500" for s in web1.seen + web2.seen))
        setup.write(2)
        second = await asyncio.create_subprocess_exec(
            *POISE, "run", "-db", "-f", str(setup.cfg), "-sf", str(first.pid),
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # The new process serves every new connection once the old one stopped
            # listening, and the old one leaves when its request is answered.
            status, headers, body = await asyncio.wait_for(slow, 10)
            assert status == 200 and body.endswith(b" /slow/1500")
            assert headers["x-generation"] == "1"
            assert await asyncio.wait_for(first.wait(), 10) == 0
            assert (await get(setup.port, "/"))[1]["x-generation"] == "2"

            # -st: the next one stops it at once.
            setup.write(3)
            third = await asyncio.create_subprocess_exec(
                *POISE, "run", "-db", "-f", str(setup.cfg), "-st", str(second.pid),
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert await asyncio.wait_for(second.wait(), 10) == 0
            assert (await get(setup.port, "/"))[1]["x-generation"] == "3"
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), 10) == 0
        finally:
            for proc in (first, second):
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await web1.stop()
            await web2.stop()

    run("uvloop", main, timeout=60)


# -- sd_notify -------------------------------------------------------------------------------


class NotifySocket(asyncio.DatagramProtocol):
    """What systemd listens on: a unix datagram socket named by $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        fields = [line.split("=", 1) for line in data.decode().splitlines() if "=" in line]
        self.messages.append({key: value for key, value in fields})

    def states(self) -> list[str]:
        return [
            key for message in self.messages for key in ("READY", "RELOADING", "STOPPING")
            if key in message
        ]  # fmt: skip


def test_sd_notify_ready_reloading_stopping_on_a_real_socket(tmp_path: Path) -> None:
    async def main() -> None:
        web1, web2 = await backends()
        setup = Setup(tmp_path, free_port(), web1.port, web2.port)
        setup.write(1)
        path = tmp_path / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        listener = NotifySocket()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: listener, sock=sock
        )
        master = await Master(setup, env={**os.environ, "NOTIFY_SOCKET": str(path)}).start()
        try:
            await eventually(lambda: listener.states() == ["READY"], 5, "READY=1")
            assert listener.messages[0]["MAINPID"] == str(master.pid)
            setup.write(2)
            await master.reload()
            await eventually(lambda: listener.states() == ["READY", "RELOADING", "READY"], 10)
            assert int(listener.messages[1]["MONOTONIC_USEC"]) > 0
            assert listener.messages[2]["STATUS"] == "Ready."
            setup.write(3, extra="    broken\n")
            await master.reload()
            await eventually(lambda: len(listener.states()) == 5, 10, "the failed reload")
            assert listener.states()[3:] == ["RELOADING", "READY"]
            assert "Reload failed" in listener.messages[4]["STATUS"]
        finally:
            assert await master.stop() == 0
        await eventually(lambda: listener.states()[-1] == "STOPPING", 5, "STOPPING=1")
        # The workers never notify: only the master speaks to systemd.
        assert {m.get("MAINPID") for m in listener.messages if "MAINPID" in m} == {str(master.pid)}

        # Without a master, `poise run` says READY=1 once it serves.
        setup.write(4)
        proc = await asyncio.create_subprocess_exec(
            *POISE, "run", "-db", "-f", str(setup.cfg),
            env={**os.environ, "NOTIFY_SOCKET": str(path)}, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            count = len(listener.messages)
            await eventually(lambda: len(listener.messages) > count, 10, "READY=1")
            assert listener.messages[-1]["READY"] == "1"
            assert listener.messages[-1]["MAINPID"] == str(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            transport.close()
            await web1.stop()
            await web2.stop()

    run("uvloop", main, timeout=60)
