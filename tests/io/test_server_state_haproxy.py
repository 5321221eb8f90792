"""`server-state-file` and `load-server-state-from-file` as a reload uses them: HAProxy 2.6
runs, the operator changes servers on its CLI (maintenance, drain, a weight) and a check
takes one DOWN; `show servers state` is saved to the file; then a new HAProxy and poise
start on the same configuration and file, and their `show servers state` and stats
statuses must agree on every server (the time and check-result fields aside).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing")

CONFIG = """\
global
    stats socket {sock} level admin
    server-state-base {dir}
    server-state-file saved.state
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    load-server-state-from-file global
frontend fe
    bind 127.0.0.1:{web}
    default_backend be
backend be
    server up 127.0.0.1:{live} check inter 100
    server maint 127.0.0.1:{live}
    server drain 127.0.0.1:{live} weight 10
    server weighted 127.0.0.1:{live} weight 10
    server down 127.0.0.1:{closed} check inter 100 fall 1
    server off 127.0.0.1:{live} disabled
backend local
    load-server-state-from-file local
    server-state-file-name other.state
    server l1 127.0.0.1:{live}
backend none
    load-server-state-from-file none
    server n1 127.0.0.1:{live}
"""


def cli(sock: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(command.encode() + b"\n")
        out = b""
        while data := conn.recv(65536):
            out += data
    return out.decode()


@contextlib.contextmanager
def running(command: list[str], tmp: Path, name: str, live: int, closed: int) -> Iterator[Path]:
    sock = tmp / f"{name}.sock"
    cfg = tmp / f"{name}.cfg"
    cfg.write_text(CONFIG.format(sock=sock, dir=tmp, web=free_port(), live=live, closed=closed))
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr
            with contextlib.suppress(OSError):
                if cli(sock, "show servers state be").startswith("1\n"):
                    break
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def states(sock: Path) -> dict[str, tuple[str, ...]]:
    """Each server's operational and admin state, weights and check state."""
    found: dict[str, tuple[str, ...]] = {}
    for line in cli(sock, "show servers state").splitlines()[2:]:
        f = line.split(" ")
        if len(f) > 13:
            found[f"{f[1]}/{f[3]}"] = (f[5], f[6], f[7], f[8], f[13])
    return found


def statuses(sock: Path) -> dict[str, str]:
    rows = [row.split(",") for row in cli(sock, "show stat").splitlines()[1:] if row]
    return {f"{r[0]}/{r[1]}": r[17] for r in rows if r[1] not in ("FRONTEND", "BACKEND")}


def wait_down(sock: Path) -> None:
    deadline = time.monotonic() + 10
    while statuses(sock)["be/down"] != "DOWN":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_saved_states_are_applied_as_haproxy_applies_them(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        live, closed = listener.getsockname()[1], free_port()
        with running(["haproxy"], tmp_path, "before", live, closed) as sock:
            for command in (
                "set server be/maint state maint",
                "set server be/drain state drain",
                "set weight be/weighted 5",
                "set server local/l1 state maint",
                "set server none/n1 state maint",
                "enable server be/off",
            ):
                assert cli(sock, command).strip() == "", command
            wait_down(sock)
            saved = cli(sock, "show servers state")
        (tmp_path / "saved.state").write_text(saved)
        (tmp_path / "other.state").write_text(saved)
        with running(["haproxy"], tmp_path, "haproxy", live, closed) as sock:
            want, want_status = states(sock), statuses(sock)
        poise = [sys.executable, "-m", "poise.cli", "run"]
        with running(poise, tmp_path, "poise", live, closed) as sock:
            got, got_status = states(sock), statuses(sock)
    assert want["be/maint"][1] == "1" and want["be/drain"][1] == "8"
    assert want["be/weighted"][2:4] == ("5", "10") and want["be/down"][0] == "0"
    assert want["local/l1"][1] == "1" and want["none/n1"][1] == "0"
    assert got == want
    assert got_status == want_status


def test_a_missing_state_file_is_a_warning_and_the_servers_start_as_configured(
    tmp_path: Path,
) -> None:
    poise = [sys.executable, "-m", "poise.cli", "run"]
    with running(poise, tmp_path, "poise", free_port(), free_port()) as sock:
        assert states(sock)["be/maint"][1] == "0"
