"""LogSink against real receivers: a UDP syslog socket on 127.0.0.1, a unix datagram
socket in a temporary directory (closed and re-created under the sink), and stdout/stderr
of a real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from poise.config.model import NOWHERE, LogFormatName, LogTarget
from poise.core.logline import frame
from poise.net.logsink import Console, LogSink, Registry

MSG = "127.0.0.1:51922 [21/Nov/2026:10:40:27.830] fnt bck/srv1 1/0/1 212 -- 1/1/0/0/0 0/0"
NOW = datetime(2026, 11, 21, 10, 40, 27, 832_119, tzinfo=UTC).timestamp()
WAIT = 5.0  # seconds: the deadline of every wait for a datagram


@pytest.fixture
def utc_tz() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    yield reg
    assert len(reg) == 0, "a sink was left open"


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(WAIT)
    yield sock
    sock.close()


def udp(
    port: int, format: LogFormatName = "local", level: str | None = None, length: int = 1024
) -> LogTarget:
    """A `log 127.0.0.1:PORT [len L] [format F] local0 [level]` line. The format is given:
    HAProxy's default is `local` (configuration.txt, "log")."""
    return LogTarget(
        kind="udp", address="127.0.0.1", port=port, facility="local0", where=NOWHERE,
        format=format, level=level, length=length,
    )  # fmt: skip


def unix(path: Path, format: LogFormatName = "local") -> LogTarget:
    return LogTarget(
        kind="unix", address=str(path), port=0, facility="local0", where=NOWHERE, format=format
    )


def unix_receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(WAIT)
    return sock


def test_udp_receiver_gets_the_frame(
    utc_tz: None, registry: Registry, udp_receiver: socket.socket
) -> None:
    port = udp_receiver.getsockname()[1]
    with LogSink(
        [udp(port)], tag="haproxy", pid=4823, registry=registry, clock=lambda: NOW
    ) as sink:
        sink.send("info", MSG)
        # The datagram haproxy 2.6.12 sent for this line (default `local` format, local0).
        assert (
            udp_receiver.recv(65536)
            == b"<134>Nov 21 10:40:27 haproxy[4823]: " + MSG.encode() + b"\n"
        )
        assert sink.dropped == 0


def test_udp_formats_levels_and_facility(registry: Registry, udp_receiver: socket.socket) -> None:
    port = udp_receiver.getsockname()[1]
    targets = [
        udp(port, format="raw"),
        udp(port, format="priority", level="notice"),
        udp(port, format="short", length=80),
    ]
    with LogSink(targets, tag="poise", pid=1, registry=registry) as sink:
        assert len(registry) == 1  # one socket for the three lines of the same server
        sink.send("info", "x" * 100)
        got = {udp_receiver.recv(65536) for _ in range(2)}
        assert got == {b"x" * 100 + b"\n", b"<6>" + b"x" * 77 + b"\n"}  # priority filtered
        sink.send("warning", "w", facility="daemon")
        got = {udp_receiver.recv(65536) for _ in range(3)}
        assert got == {b"w\n", b"<28>w\n", b"<4>w\n"}


def test_udp_ipv6(registry: Registry) -> None:
    try:
        receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        receiver.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with receiver:
        receiver.settimeout(WAIT)
        target = LogTarget(
            kind="udp", address="::1", port=receiver.getsockname()[1], facility="user",
            where=NOWHERE, format="short",
        )  # fmt: skip
        with LogSink([target], registry=registry) as sink:
            sink.send("err", "v6")
            assert receiver.recv(100) == b"<3>v6\n"


def test_sinks_share_the_socket_of_a_target(
    registry: Registry, udp_receiver: socket.socket
) -> None:
    port = udp_receiver.getsockname()[1]
    a = LogSink([udp(port, format="raw")], registry=registry)
    b = LogSink([udp(port, format="raw")], registry=registry)
    assert len(registry) == 1
    a.close()
    assert len(registry) == 1
    b.send("info", "still open")
    assert udp_receiver.recv(100) == b"still open\n"
    b.close()
    assert len(registry) == 0
    b.send("info", "closed sinks send nothing")


def test_unix_receiver_gets_it_and_the_sink_survives_a_restart(
    tmp_path: Path, registry: Registry
) -> None:
    path = tmp_path / "log.sock"
    receiver = unix_receiver(path)
    with LogSink([unix(path, format="short")], pid=7, registry=registry) as sink:
        sink.send("notice", "first")
        assert receiver.recv(100) == b"<5>first\n"

        # The syslog daemon stops: its socket is closed and the path removed.
        receiver.close()
        path.unlink()
        sink.send("notice", "lost while absent")
        assert sink.dropped == 1

        # It stops without removing the path: nobody is bound there.
        stale = unix_receiver(path)
        stale.close()
        sink.send("notice", "lost on a stale path")
        assert sink.dropped == 2
        path.unlink()

        # It comes back at the same path: the next line reaches it.
        receiver = unix_receiver(path)
        sink.send("notice", "after restart")
        assert receiver.recv(100) == b"<5>after restart\n"
        assert sink.dropped == 2
    receiver.close()


def test_unix_receiver_that_does_not_read_never_blocks_the_sink(
    tmp_path: Path, registry: Registry
) -> None:
    path = tmp_path / "slow.sock"
    receiver = unix_receiver(path)
    with LogSink([unix(path, format="raw")], registry=registry) as sink:
        deadline = time.monotonic() + WAIT
        sent = 0
        while sink.dropped == 0 and time.monotonic() < deadline:
            sink.send("info", "y" * 500)
            sent += 1
        assert sink.dropped > 0, f"{sent} lines and nothing dropped"
        # What was queued is intact, line by line.
        assert receiver.recv(1000) == b"y" * 500 + b"\n"
    receiver.close()


def run_python(code: str, *, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "TZ": "UTC"},
    )


def test_stdout_and_stderr_lines_in_a_subprocess() -> None:
    done = run_python(
        """
        import os
        from poise.config.model import NOWHERE, LogTarget
        from poise.net.logsink import LogSink, console, CONSOLE

        targets = [
            LogTarget(kind="stdout", address="stdout", port=0, facility="local0",
                      where=NOWHERE, format="raw"),
            LogTarget(kind="stderr", address="stderr", port=0, facility="local0",
                      where=NOWHERE, format="local", length=80),
        ]
        sink = LogSink(targets, tag="haproxy", pid=4823, clock=lambda: 1795257627.832119)
        sink.send("info", "one")
        sink.send("info", "two\\n")
        sink.send("info", "z" * 200)
        console("warning", "a state change")
        CONSOLE.quiet = True
        console("alert", "silenced")
        sink.close()
        print(os.get_blocking(1), os.get_blocking(2), flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"one\ntwo\n" + b"z" * 200 + b"\nTrue True\n"
    lines = done.stderr.split(b"\n")
    head = b"<134>Nov 21 10:40:27 haproxy[4823]: "
    assert lines[0] == head + b"one"
    assert lines[1] == head + b"two"
    assert lines[2] == head + b"z" * (80 - 1 - len(head))  # 80 bytes with the LF
    assert lines[3] == f"[WARNING]  ({pid_of(done)}) : a state change".encode()
    assert lines[4:] == [b""]


def test_a_closed_stderr_is_counted_not_fatal() -> None:
    done = run_python(
        """
        import os, sys
        from poise.config.model import NOWHERE, LogTarget
        from poise.net.logsink import LogSink
        os.close(2)
        t = LogTarget(kind="stderr", address="stderr", port=0, facility="local0",
                      where=NOWHERE, format="raw")
        with LogSink([t]) as sink:
            sink.send("info", "nowhere to go")
            sink.send("info", "still nowhere")
            print(sink.dropped)
        """
    )
    assert done.returncode == 0
    # Two lines, and the one alert about it, which goes through the same stderr.
    assert done.stdout == b"3\n"


def pid_of(done: subprocess.CompletedProcess[bytes]) -> int:
    """The pid the child wrote in its console line (it is not known to the parent)."""
    line = done.stderr.split(b"\n")[3]
    return int(line.split(b"(")[1].split(b")")[0])


def test_stdout_that_nobody_reads_does_not_block() -> None:
    # The child writes 1,000 lines of 10 kB to a pipe nobody reads (64 kB of room): it
    # must go on, dropping whole lines, instead of waiting for a reader.
    code = """
        import sys
        from poise.config.model import NOWHERE, LogTarget
        from poise.net.logsink import LogSink
        t = LogTarget(kind="stdout", address="stdout", port=0, facility="local0",
                      where=NOWHERE, format="raw", length=65535)
        sink = LogSink([t])
        for i in range(1000):
            sink.send("info", f"{i:09d}" + "q" * 10_000)
        sys.stderr.write(f"dropped={sink.dropped}\\n")
        sys.stderr.flush()
        sys.stdin.readline()  # the parent reads stdout from now on
        sink.close()
        """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    try:
        report = child.stderr.readline().decode()
        assert report.startswith("dropped="), report + child.stderr.read().decode()
        dropped = int(report.split("=")[1])
        reader = ThreadPoolExecutor(1)
        output = reader.submit(child.stdout.read)
        child.stdin.write(b"go\n")
        child.stdin.close()
        assert child.wait(timeout=30) == 0
        lines = output.result(timeout=30).split(b"\n")
        reader.shutdown()
    finally:
        child.kill()
        child.wait()
    assert dropped > 0
    assert lines[-1] == b""
    kept = lines[:-1]
    assert len(kept) == 1000 - dropped
    numbers = [int(line[:9]) for line in kept]
    assert numbers == sorted(numbers)
    assert all(len(line) == 10_009 and line.endswith(b"q" * 10_000) for line in kept)


def test_console_instance_can_be_silenced(registry: Registry, tmp_path: Path) -> None:
    # Through a `log stderr` target of the registry: the line goes through its transport.
    target = LogTarget(kind="stderr", address="stderr", port=0, facility="local0", where=NOWHERE)
    quiet = Console(registry)
    quiet.quiet = True
    with LogSink([target], registry=registry) as sink:
        transport = registry.find(("stderr", "", 0))
        assert transport is not None
        before = transport.sent
        quiet("notice", "nothing")
        assert transport.sent == before
        Console(registry)("notice", "through the transport")
        assert transport.sent == before + 1
        assert sink.dropped == 0


def test_frame_used_by_the_sink_is_the_pure_one(
    registry: Registry, udp_receiver: socket.socket
) -> None:
    port = udp_receiver.getsockname()[1]
    with LogSink(
        [udp(port, format="rfc5424")], tag="t", pid=9, hostname="h", registry=registry,
        clock=lambda: NOW,
    ) as sink:  # fmt: skip
        sink.send("debug", "m")
        expected = frame("m", format="rfc5424", facility="local0", level="debug", tag="t",
                         pid=9, now=NOW, hostname="h")  # fmt: skip
        assert udp_receiver.recv(1000) == expected
