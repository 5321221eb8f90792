"""`program` sections (configuration.txt 3.7) run by the master of master-worker mode,
side by side with HAProxy 2.6 (`haproxy -W -db`) on the same configuration: which
programs start, which are told SIGUSR1 at each reload (with and without `option
start-on-reload`), SIGTERM to all at stop, the master's messages about them, a failing
program taking everything down (exit-on-failure), a command that cannot be executed, the
`user` and `group` a program runs as, and the refusal of a `program` section outside
master-worker mode (`haproxy -c`, with and without -W)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import free_port, wait_haproxy_master

pytestmark = pytest.mark.e2e

POISE = [sys.executable, "-m", "poise.cli"]
COMMANDS = {"poise": [*POISE, "run", "-W", "-db", "-f"], "haproxy": ["haproxy", "-W", "-db", "-f"]}

# A program that writes what happens to it: started, SIGUSR1 (it leaves), SIGTERM.
SCRIPT = """\
#!/bin/sh
echo "start $1 $$" >> "{events}"
trap 'echo "usr1 $1 $$" >> "{events}"; exit 0' USR1
trap 'echo "term $1 $$" >> "{events}"; exit 0' TERM
while :; do sleep 0.05; done
"""

CONFIG = """\
global
    master-worker
program p1
    command {script} p1
program p2
    command {script} p2
    no option start-on-reload
{more}
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request return status 200
"""


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Master:
    """One balancer (poise or haproxy) in master-worker mode, with its programs' events."""

    def __init__(self, kind: str, tmp: Path, more: str = "") -> None:
        self.folder = tmp / kind
        self.folder.mkdir()
        self.events = self.folder / "events"
        script = self.folder / "prog.sh"
        script.write_text(SCRIPT.format(events=self.events))
        script.chmod(0o755)
        cfg = self.folder / "lb.cfg"
        text = CONFIG.format(script=script, port=free_port(), more=more)
        cfg.write_text(text)
        self.stderr = self.folder / "stderr"
        self.kind = kind
        # HAProxy's master acts on SIGUSR2 only once its loop runs: its master CLI says when.
        self.cli = str(self.folder / "master.sock")
        command = [*COMMANDS[kind], str(cfg)]
        if kind == "haproxy":
            command[1:1] = ["-S", self.cli]
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []

    def said(self) -> str:
        return self.stderr.read_text(errors="replace")

    def served(self, count: int) -> Callable[[], bool]:
        return lambda: self.said().count("Loading success.") >= count

    def told(self, count: int) -> Callable[[], bool]:
        return lambda: sum(line.startswith("usr1") for line in self.lines()) >= count

    def reload(self, reloads: int) -> None:
        """SIGUSR2, once the master can act on it; `reloads` were done before."""
        self.signal(signal.SIGUSR2, reloads)

    def signal(self, signum: int, reloads: int) -> None:
        if self.kind == "haproxy":  # (SIGTERM too: before its loop, it kills the master)
            wait_haproxy_master(self.cli, reloads, timeout=60)
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            for line in self.lines():  # a program left behind by a failed test
                pid = int(line.split()[2])
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def story(self) -> list[str]:
        """The events with each process numbered in the order it started, per program."""
        numbers: dict[str, str] = {}
        out = []
        for line in self.lines():
            what, name, pid = line.split()
            if pid not in numbers:
                numbers[pid] = f"{name}#{sum(n.startswith(name) for n in numbers.values())}"
            out.append(f"{what} {numbers[pid]}")
        return out

    def messages(self) -> list[str]:
        """The master's lines about programs, without process ids, in a stable order."""
        found = [
            re.sub(r"\(\d+\) ?", "", line).replace("  ", " ")
            for line in self.said().splitlines()
            if "program" in line.lower() or "exit-on-failure" in line
        ]
        return sorted(found)


def processes(story: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in story:
        what, who = line.split()
        found.setdefault(who, []).append(what)
    return found


def run_reloads(kind: str, tmp: Path) -> tuple[list[str], list[str], int]:
    master = Master(kind, tmp)
    try:
        until(master.served(1), f"{kind} serving")
        until(lambda: len(master.lines()) >= 2, f"{kind}'s two programs")
        for reload, told in ((1, 2), (2, 3)):  # p1 and p2, then p1's second
            master.reload(reload - 1)
            until(master.served(reload + 1), f"{kind}'s reload {reload}")
            until(master.told(told), f"{kind}'s programs told to leave")
        master.signal(signal.SIGTERM, 2)
    finally:
        status = master.stop()
    story = master.story()
    return story, master.messages(), status


def test_programs_start_are_signalled_at_reloads_and_stop_as_haproxy_runs_them(
    tmp_path: Path,
) -> None:
    ours = run_reloads("poise", tmp_path)
    theirs = run_reloads("haproxy", tmp_path)
    # Each process's own story is the same: p1 started again at each reload and the one
    # before told SIGUSR1; p2 (no start-on-reload) told SIGUSR1 at the first reload and not
    # started again; the last p1 stopped with SIGTERM. (Between processes the order may
    # differ: a program's start races the new worker's.)
    assert (
        processes(ours[0])
        == processes(theirs[0])
        == {
            "p1#0": ["start", "usr1"],
            "p1#1": ["start", "usr1"],
            "p1#2": ["start", "term"],
            "p2#0": ["start", "usr1"],
        }
    )
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2] == 0


def failing(kind: str, tmp: Path, more: str) -> tuple[int, str]:
    master = Master(kind, tmp, more)
    try:
        master.proc.wait(60)
    finally:
        status = master.stop()
    return status, master.said()


def test_a_failing_program_takes_the_master_and_its_workers_down(tmp_path: Path) -> None:
    more = 'program p3\n    command /bin/sh -c "sleep 0.5; exit 3"\n'
    ours, theirs = failing("poise", tmp_path, more), failing("haproxy", tmp_path, more)
    assert ours[0] == theirs[0] != 0
    for said in (ours[1], theirs[1]):
        assert "Current program 'p3'" in said and "exited with code 3 (Exit)" in said
        assert "exit-on-failure: killing every processes with SIGTERM" in said


def test_a_command_that_cannot_be_executed_is_a_failed_program(tmp_path: Path) -> None:
    more = "program p3\n    command /nonexistent/program\n"
    ours, theirs = failing("poise", tmp_path, more), failing("haproxy", tmp_path, more)
    assert ours[0] == theirs[0] == 1
    for said in (ours[1], theirs[1]):
        assert "Cannot execute /nonexistent/program: No such file or directory" in said


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a program's ids needs root")
def test_a_program_runs_as_its_user_and_group(tmp_path: Path) -> None:
    found = []
    for kind in ("poise", "haproxy"):
        # Where `nobody` may write (tmp_path is root's alone).
        with tempfile.TemporaryDirectory(prefix="pzleftovers", dir="/tmp") as shared:
            os.chmod(shared, 0o777)
            ids = Path(shared) / "ids"
            more = (
                "program ids\n"
                f'    command /bin/sh -c "id -u > {ids}.new; id -g >> {ids}.new; '
                f'id -G >> {ids}.new; mv {ids}.new {ids}; exec sleep 60"\n'
                "    user nobody\n"
                "    group nogroup\n"
            )
            master = Master(kind, tmp_path, more)
            try:
                until(ids.exists, f"{kind}'s program writing its ids")
            finally:
                master.stop()
            found.append(ids.read_text().split())
    assert found[0] == found[1] == ["65534", "65534", "65534"]


@pytest.mark.parametrize(
    ("flags", "master_worker"), [((), ""), (("-W",), ""), ((), "master-worker")]
)
def test_a_program_section_needs_master_worker_mode_as_haproxy_c_says(
    tmp_path: Path, flags: tuple[str, ...], master_worker: str
) -> None:
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(
        f"global\n    {master_worker or 'maxconn 100'}\nprogram p\n    command /bin/true\n"
    )
    ours = subprocess.run(
        [*POISE, "-c", *flags, "-f", str(cfg)], capture_output=True, text=True, check=False
    )
    theirs = subprocess.run(
        ["haproxy", "-c", *flags, "-f", str(cfg)], capture_output=True, check=False
    )
    assert ours.returncode == theirs.returncode
    if ours.returncode:
        assert f"{cfg}:3: error: 'program': Can't use a 'program' section" in ours.stderr
