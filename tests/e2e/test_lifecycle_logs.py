"""What a syslog target receives when the balancer starts, soft-stops, reloads and is
killed: the same configuration run under HAProxy 2.6 and under poise, the datagrams that
reach a UDP listener of the test compared (timestamps, tags and pids masked).

HAProxy 2.6 sends nothing at start-up (the first line is the first check result), nothing
from its master, nothing on SIGTERM, and on a soft stop "Proxy X stopped" at level warning,
in the order of core/stopping.py, then the internal <HTTPCLIENT> proxy's to `global`'s
targets. The terminal (stderr in -db mode) is compared too.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import free_port, wait_haproxy_master

pytestmark = pytest.mark.e2e

HAPROXY = shutil.which("haproxy")
POISE = [sys.executable, "-m", "poise.cli", "run"]
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

CONFIG = """\
global
    log 127.0.0.1:{log} local0
    stats socket {dir}/admin.sock level admin
defaults
    log global
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend b0
    server s0 127.0.0.1:{dead} check inter 200ms
frontend fa
    bind {dir}/fa.sock
    bind 127.0.0.1:{p1}
    default_backend b0
frontend fb
    bind 127.0.0.1:{p2}
    bind [::1]:{p3}
    default_backend b0
frontend off
    disabled
    bind 127.0.0.1:{p4}
    default_backend b0
frontend quiet
    no log
    bind 127.0.0.1:{p5}
    default_backend b0
listen li
    bind 127.0.0.1:{p6}
    server s1 127.0.0.1:{dead}
"""

SYSLOG = re.compile(rb"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d (\w+)\[(\d+)\]: (.*)\n?$", re.S)
CONSOLE = re.compile(r"^\[(\w+)\] +\((\d+)\) : (.*)$")


def masked(text: str) -> str:
    text = re.sub(r"check duration: \d+ms", "check duration: Nms", text)
    return text.replace("HAProxy", "NAME").replace("haproxy", "NAME").replace("poise", "NAME")


class Capture:
    """A UDP syslog listener: (priority, pid, message) of each datagram, in order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.lines: list[tuple[int, int, str]] = []

    def poll(self, until: Callable[[], bool], timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < end, f"timed out; received: {self.lines}"
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            match = SYSLOG.match(data)
            assert match, data
            self.lines.append((int(match[1]), int(match[3]), masked(match[4].decode())))

    def drain(self, quiet: float = 0.3) -> None:
        """Take what else arrives, until nothing has for `quiet` seconds."""
        while True:
            count, since = len(self.lines), time.monotonic()
            self.poll(lambda: len(self.lines) > count or time.monotonic() - since >= quiet)  # noqa: B023
            if len(self.lines) == count:
                return

    def has(self, text: str, count: int = 1) -> Callable[[], bool]:
        return lambda: sum(text in line for _, _, line in self.lines) >= count

    def close(self) -> None:
        self.sock.close()


def by_process(lines: list[tuple[int, int, str]]) -> list[list[tuple[int, str]]]:
    """The lines of each process, processes in the order they first appear (a new and an
    old worker interleave their lines at random during a reload)."""
    groups: dict[int, list[tuple[int, str]]] = {}
    for priority, pid, text in lines:
        groups.setdefault(pid, []).append((priority, text))
    return list(groups.values())


def console_lines(err: str) -> list[tuple[str, str]]:
    out = []
    for line in err.splitlines():
        match = CONSOLE.match(line)
        if match and "version is" not in line and "path to executable" not in line:
            out.append((match[1], masked(match[3])))
    return out


def config(tmp: Path, name: str, log: int) -> Path:
    ports = {f"p{i}": free_port() for i in range(1, 7)}
    with socket.socket(socket.AF_INET6) as six:
        six.bind(("::1", 0))
        ports["p3"] = six.getsockname()[1]
    work = tmp / name
    work.mkdir()
    path = work / "lb.cfg"
    path.write_text(CONFIG.format(log=log, dir=work, dead=free_port(), **ports))
    return path


def lifecycle(
    argv: list[str], tmp: Path, name: str, stop: signal.Signals
) -> tuple[list[tuple[int, str]], str]:
    capture = Capture()
    proc = subprocess.Popen(
        [*argv, "-db", "-f", str(config(tmp, name, capture.port))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # b0's first check result says it serves (and that it has no server left).
        capture.poll(capture.has("has no server available"))
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=10)
        capture.drain()
    finally:
        proc.kill()
        capture.close()
    return [(p, t) for p, _, t in capture.lines], err


@needs_haproxy
@pytest.mark.parametrize("stop", [signal.SIGUSR1, signal.SIGTERM], ids=["soft", "term"])
def test_start_and_stop_send_what_haproxy_sends(tmp_path: Path, stop: signal.Signals) -> None:
    assert HAPROXY is not None
    theirs, their_err = lifecycle([HAPROXY], tmp_path, "haproxy", stop)
    ours, our_err = lifecycle(POISE, tmp_path, "poise", stop)
    assert ours == theirs
    assert not any("started" in text for _, text in ours)
    if stop == signal.SIGUSR1:
        names = [t.split()[1] for p, t in theirs if t.startswith("Proxy ")]
        # fa stops with its unix socket, after the IPv4 ones; `quiet` logs nothing.
        assert names == ["fb", "li", "fa", "b0", "<HTTPCLIENT>"]
        assert {p for p, t in theirs if t.startswith("Proxy ")} == {132}  # local0.warning
    # The terminal: the same lines at the same levels (GLOBAL's stop is said there).
    assert console_lines(our_err) == console_lines(their_err)


def master_lifecycle(argv: list[str], tmp: Path, name: str) -> list[list[tuple[int, str]]]:
    capture = Capture()
    master_cli = ["-S", str(tmp / f"{name}-master.sock")] if argv == [HAPROXY] else []
    terminal = tmp / f"{name}.err"
    with terminal.open("w") as err:
        proc = subprocess.Popen(
            [*argv, "-W", "-db", *master_cli, "-f", str(config(tmp, name, capture.port))],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        capture.poll(capture.has("has no server available"))
        capture.poll(lambda: "Loading success." in terminal.read_text())
        # HAProxy's master loses a SIGUSR2 that comes before its loop runs, and says
        # nothing when it does: its master CLI answering is the sign that it listens.
        if master_cli:
            wait_haproxy_master(master_cli[1], 0)
        proc.send_signal(signal.SIGUSR2)  # a reload: the old worker soft-stops
        capture.poll(capture.has("has no server available", 2))
        capture.poll(capture.has("Proxy <HTTPCLIENT> stopped"))
        if master_cli:  # it re-executed itself: the same sign, one reload on
            wait_haproxy_master(master_cli[1], 1)
        proc.send_signal(signal.SIGUSR1)  # the master soft-stops the new worker
        capture.poll(capture.has("Proxy <HTTPCLIENT> stopped", 2))
        proc.wait(10)
        capture.drain()
    finally:
        proc.kill()
        proc.wait()
        capture.close()
    return by_process(capture.lines)


@needs_haproxy
def test_a_reload_sends_what_haproxy_sends(tmp_path: Path) -> None:
    assert HAPROXY is not None
    theirs = master_lifecycle([HAPROXY], tmp_path, "haproxy")
    ours = master_lifecycle(POISE, tmp_path, "poise")
    # Two workers, nothing from the master.
    assert len(theirs) == 2
    assert ours == theirs


def twice_soft_stopped(argv: list[str], tmp: Path, name: str) -> list[tuple[int, str]]:
    """SIGUSR1 twice while a request is still open (the process waits for it), then the
    request's client leaves: what reaches the syslog target."""
    capture = Capture()
    cfg = config(tmp, name, capture.port)
    port = int(re.findall(r"bind 127\.0\.0\.1:(\d+)", cfg.read_text())[0])  # fa's
    proc = subprocess.Popen(
        [*argv, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        capture.poll(capture.has("has no server available"))
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET / HTTP/1.1\r\n")  # a head begun: the session stays open
        proc.send_signal(signal.SIGUSR1)
        capture.poll(capture.has("Proxy <HTTPCLIENT> stopped"))
        assert proc.poll() is None  # still waiting for the open request
        proc.send_signal(signal.SIGUSR1)
        client.close()
        proc.wait(10)
        capture.drain()
    finally:
        proc.kill()
        proc.wait()
        capture.close()
    return [(p, t) for p, _, t in capture.lines]


@needs_haproxy
def test_a_second_soft_stop_says_nothing_more(tmp_path: Path) -> None:
    assert HAPROXY is not None
    theirs = twice_soft_stopped([HAPROXY], tmp_path, "haproxy")
    ours = twice_soft_stopped(POISE, tmp_path, "poise")
    assert ours == theirs
    stops = [t for _, t in ours if t.startswith("Proxy ")]
    assert len(stops) == len(set(stops)) == 5, stops
