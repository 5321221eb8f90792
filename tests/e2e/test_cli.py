"""The `poise` command as a user types it: `check` says valid or names every problem with
FILE:LINE, and `run` refuses bad input with one clear message, exit status 1 and nothing
left running; SIGTERM stops at once, SIGUSR1 lets open sessions finish."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port

SEEDS = Path(__file__).resolve().parents[2] / "examples"
POISE = [sys.executable, "-m", "poise.cli"]

pytestmark = pytest.mark.e2e


def poise(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POISE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write(tmp: Path, text: str, name: str = "poise.cfg") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


TCP = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 {server}
"""


def test_check_accepts_the_seed_configs_as_haproxy_does() -> None:
    result = poise("check", "-f", str(SEEDS / "haproxy.cfg"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Configuration file is valid"
    # HAProxy 2.6 warns about exactly these when it checks this file.
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert [w.split(":")[1] for w in warnings] == ["29", "32", "32"], result.stderr


def test_check_names_every_error_with_file_line_and_keyword(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        "defaults\n    mode tcp\n    timeout conect 5s\n"
        "frontend fe\n    bind 127.0.0.1:8080\n    balanse roundrobin\n"
        "    default_backend nowhere\n",
    )
    result = poise("check", "-f", cfg)
    assert result.returncode == 1
    errors = result.stderr
    assert f"{cfg}:3: error:" in errors and "conect" in errors and "connect" in errors
    assert f"{cfg}:6: error: 'balanse'" in errors and "did you mean 'balance'" in errors
    assert f"{cfg}:7: error:" in errors and "nowhere" in errors
    assert "Fatal errors found in configuration." in errors


def test_check_says_when_a_haproxy_keyword_is_not_implemented_yet(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        TCP.format(port=8080, server="127.0.0.1:9") + "    email-alert mailers m\n",
    )
    result = poise("check", "-f", cfg)
    assert result.returncode == 1
    assert f"{cfg}:11: error: 'email-alert mailers'" in result.stderr
    assert "not implemented" in result.stderr


def test_run_refuses_a_missing_file(tmp_path: Path) -> None:
    result = poise("run", "-db", "-f", str(tmp_path / "absent.cfg"))
    assert result.returncode == 1
    assert "absent.cfg" in result.stderr and "No such file" in result.stderr


def test_run_refuses_a_port_in_use_and_leaves_nothing_running(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    pidfile = tmp_path / "poise.pid"
    cfg = write(tmp_path, TCP.format(port=port, server="127.0.0.1:9"))
    result = poise("run", "-f", cfg, "-p", str(pidfile))
    holder.close()
    assert result.returncode == 1
    assert "cannot bind socket (Address already in use)" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert not pidfile.exists()


def test_run_refuses_an_unresolvable_server_name(tmp_path: Path) -> None:
    cfg = write(tmp_path, TCP.format(port=free_port(), server="no-such-host.invalid:80"))
    result = poise("run", "-db", "-f", cfg)
    assert result.returncode == 1
    assert f"{cfg}:10:" in result.stderr and "no-such-host.invalid" in result.stderr


def test_run_refuses_an_unknown_user(tmp_path: Path) -> None:
    text = "global\n    user no-such-user-here\n" + TCP.format(
        port=free_port(), server="127.0.0.1:9"
    )
    cfg = write(tmp_path, text)
    result = poise("run", "-db", "-f", cfg)
    assert result.returncode == 1
    assert f"{cfg}:2:" in result.stderr and "no-such-user-here" in result.stderr


def start(cfg: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*POISE, "run", "-db", "-f", cfg, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def connect_when_ready(port: int, deadline: float = 10.0) -> socket.socket:
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def listening(port: int) -> bool:
    """Is anything listening on 127.0.0.1:port? (/proc/net/tcp, state 0A = LISTEN)."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


def test_sigterm_stops_at_once(tmp_path: Path) -> None:
    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen()
    port = free_port()
    cfg = write(tmp_path, TCP.format(port=port, server=f"127.0.0.1:{echo.getsockname()[1]}"))
    proc = start(cfg)
    try:
        client = connect_when_ready(port)
        upstream, _ = echo.accept()  # the session is established through poise
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        client.settimeout(5)
        # The open session was cut (a reset, as it was aborted, or an end of stream).
        with contextlib.suppress(ConnectionResetError):
            assert client.recv(10) == b""
        client.close()
        upstream.close()
    finally:
        proc.kill()
        proc.communicate()
        echo.close()


def test_sigusr1_finishes_open_sessions_then_exits(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = free_port()
    cfg = write(tmp_path, TCP.format(port=port, server=f"127.0.0.1:{server.getsockname()[1]}"))
    proc = start(cfg)
    try:
        client = connect_when_ready(port)
        upstream, _ = server.accept()
        proc.send_signal(signal.SIGUSR1)
        # No new connections once stopping: the listening socket is closed ...
        end = time.monotonic() + 5
        while listening(port):
            assert time.monotonic() < end, "still listening after SIGUSR1"
            time.sleep(0.02)
        # ... but the open session still works, and poise exits when it ends.
        client.sendall(b"ping")
        assert upstream.recv(4) == b"ping"
        upstream.sendall(b"pong")
        client.settimeout(5)
        assert client.recv(4) == b"pong"
        assert proc.poll() is None
        client.close()
        upstream.close()
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        _, err = proc.communicate()
        server.close()
    # HAProxy 2.6 says it when the listeners close (no "Stopping frontend" line).
    assert "Proxy fe stopped (cumulated conns: FE: 1" in err
    assert "Stopping frontend" not in err


def test_hard_stop_after_bounds_a_soft_stop(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = free_port()
    text = "global\n    hard-stop-after 300ms\n" + TCP.format(
        port=port, server=f"127.0.0.1:{server.getsockname()[1]}"
    )
    proc = start(write(tmp_path, text))
    try:
        client = connect_when_ready(port)
        server.accept()
        started = time.monotonic()
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(5) == 0
        assert 0.25 <= time.monotonic() - started < 4
        client.close()
    finally:
        proc.kill()
        proc.communicate()
        server.close()


def test_pidfile_is_written_and_removed(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "poise.pid"
    proc = start(write(tmp_path, TCP.format(port=port, server="127.0.0.1:9")), "-p", str(pidfile))
    try:
        connect_when_ready(port).close()
        # The kernel accepts on a bound listener before the pidfile is written (poise binds,
        # then writes it, as HAProxy does): wait for the whole line, not just the port.
        end = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().endswith("\n")):
            assert time.monotonic() < end, "no pidfile written"
            time.sleep(0.02)
        assert int(pidfile.read_text()) == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert not pidfile.exists()
    finally:
        proc.kill()
        proc.communicate()
