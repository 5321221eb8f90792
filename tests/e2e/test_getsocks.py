"""`stats socket ... expose-fd listeners` and `poise run -x SOCKET`: a new process takes
the old one's listening sockets through its stats socket (HAProxy's `_getsocks`, the
descriptors passed with SCM_RIGHTS), so the connections waiting in their queue when the
old process leaves are served, not refused. Against poise and against a real haproxy 2.6
in either role; the sockets are compared by their inode in /proc.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = pytest.mark.e2e
POISE = [sys.executable, "-m", "poise.cli", "run", "-db"]
DEADLINE = 20.0

CONFIG = """global
    stats socket {sock} mode 600 level admin {expose}
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""


@contextlib.contextmanager
def greeter() -> Iterator[int]:
    """A real TCP backend that says "s1" to each connection and closes; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(b"s1\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)  # polling for the condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


def listening_inodes(port: int) -> list[int]:
    """The inodes of the TCP sockets listening on 127.0.0.1:port (/proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], int(fields[9])
        if state == "0A" and local == f"0100007F:{port:04X}":
            found.append(inode)
    return found


def holds(pid: int, inode: int) -> bool:
    """Has process `pid` a descriptor on socket `inode`?"""
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return True
    return False


class Balancer:
    """poise or haproxy started as a user would, stopped by its PID at the end."""

    def __init__(self, kind: str, config: Path, *extra: str) -> None:
        command = POISE if kind == "poise" else ["haproxy", "-db"]
        self.process = subprocess.Popen(
            [*command, "-f", str(config), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self.process.pid

    def stop(self) -> str:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.process.terminate()
        output, _ = self.process.communicate(timeout=DEADLINE)
        return output


def write(
    tmp: Path, name: str, sock: Path, port: int, backend: int, *, expose: bool = True
) -> Path:
    path = tmp / name
    text = CONFIG.format(
        sock=sock, port=port, backend=backend, expose="expose-fd listeners" if expose else ""
    )
    path.write_text(text)
    return path


def ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 5) as conn:
        conn.settimeout(5)
        return conn.recv(100)


@pytest.mark.parametrize(
    ("old", "new"), [("poise", "poise"), ("haproxy", "poise"), ("poise", "haproxy")]
)
def test_new_process_takes_the_listening_socket(tmp_path: Path, old: str, new: str) -> None:
    port = free_port()
    with greeter() as backend:
        old_sock, new_sock = tmp_path / "old.sock", tmp_path / "new.sock"
        first = Balancer(old, write(tmp_path, "old.cfg", old_sock, port, backend))
        second: Balancer | None = None
        try:
            wait(lambda: old_sock.exists() and listening_inodes(port), "the old process")
            [inode] = listening_inodes(port)
            assert ask(port) == b"s1\n"
            config = write(tmp_path, "new.cfg", new_sock, port, backend)
            second = Balancer(new, config, "-x", str(old_sock), "-sf", str(first.pid))
            wait(lambda: first.process.poll() is not None, "the old process to leave")
            wait(lambda: holds(second.pid, inode) if second else False, "the socket")
            # One socket, the same: the new process bound nothing of its own.
            assert listening_inodes(port) == [inode]
            assert ask(port) == b"s1\n"
        finally:
            first.stop()
            if second is not None:
                second.stop()


def test_connections_queued_when_the_old_process_leaves_are_served(tmp_path: Path) -> None:
    port = free_port()
    with greeter() as backend:
        old_sock, new_sock = tmp_path / "old.sock", tmp_path / "new.sock"
        first = Balancer("poise", write(tmp_path, "old.cfg", old_sock, port, backend))
        second: Balancer | None = None
        clients: list[socket.socket] = []
        try:
            wait(lambda: old_sock.exists() and listening_inodes(port), "the old process")
            [inode] = listening_inodes(port)
            config = write(tmp_path, "new.cfg", new_sock, port, backend)
            second = Balancer("poise", config, "-x", str(old_sock))
            wait(lambda: new_sock.exists() and holds(second.pid, inode) if second else False, "it")
            # Neither process accepts: the connections wait in the queue of the one socket.
            os.kill(second.pid, signal.SIGSTOP)
            os.kill(first.pid, signal.SIGSTOP)
            for _ in range(20):
                clients.append(socket.create_connection(("127.0.0.1", port), 5))
            # The old process leaves (it may serve some first); the rest wait for the new.
            os.kill(first.pid, signal.SIGUSR1)
            os.kill(first.pid, signal.SIGCONT)
            wait(lambda: not holds(first.pid, inode), "the old process to close its socket")
            os.kill(second.pid, signal.SIGCONT)
            answers = []
            for client in clients:
                client.settimeout(10)
                answers.append(client.recv(100))
            assert answers == [b"s1\n"] * 20
        finally:
            for client in clients:
                client.close()
            first.stop()
            if second is not None:
                second.stop()


def test_x_without_expose_fd_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    old_sock = tmp_path / "old.sock"
    first = Balancer("poise", write(tmp_path, "old.cfg", old_sock, port, 9, expose=False))
    try:
        wait(old_sock.exists, "the old process")
        config = write(tmp_path, "new.cfg", tmp_path / "new.sock", port, 9)
        for target, warning in (
            (old_sock, "Failed to get the number of sockets to be transferred !"),
            (tmp_path / "none.sock", f"Failed to connect to the old process socket '{tmp_path}"),
        ):
            result = subprocess.run(
                [*POISE, "-f", str(config), "-x", str(target)],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
            )
            assert result.returncode == 1
            assert warning in result.stderr
            assert "Failed to get the sockets from the old process!" in result.stderr
    finally:
        first.stop()


def test_stats_socket_user_and_group_own_its_file(tmp_path: Path) -> None:
    """`user`/`group` (or `uid`/`gid`) give the unix socket's file to its users, as the
    Debian haproxy.cfg's `stats socket ... user haproxy group haproxy` does."""
    nobody, nogroup = pwd.getpwnam("nobody"), grp.getgrgid(pwd.getpwnam("nobody").pw_gid)
    sock = tmp_path / "admin.sock"
    config = write(tmp_path, "own.cfg", sock, free_port(), 9)
    text = config.read_text().replace(
        "level admin", f"level admin user nobody group {nogroup.gr_name}"
    )
    config.write_text(text)
    balancer = Balancer("poise", config)
    try:
        if os.geteuid() == 0:
            wait(sock.exists, "the stats socket")
            owner = sock.stat()
            assert (owner.st_uid, owner.st_gid) == (nobody.pw_uid, nogroup.gr_gid)
        else:  # only root may give a file away: poise says so and does not start
            assert balancer.process.wait(DEADLINE) == 1
    finally:
        output = balancer.stop()
    if os.geteuid() != 0:
        assert "Operation not permitted" in output
