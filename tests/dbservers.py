"""Real database servers from Debian's packages (redis-server, mariadb-server, postgresql),
each a private instance in a temporary directory on a free 127.0.0.1 port, for the
protocol health checks to talk to. They run as the packages' own unprivileged users
when the tests run as root (PostgreSQL refuses root), start within a bounded time, and
are stopped (by their PID) when the `with` block ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support import free_port

START_SECONDS = 60.0  # initdb and mariadb-install-db take a few seconds on a busy machine


def _as(user: str) -> list[str]:
    """The command prefix that runs a program as `user` when we are root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for item in [path, *path.rglob("*")]:
            os.chown(item, entry.pw_uid, entry.pw_gid)


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling for the port, bounded by the deadline
    raise RuntimeError(f"{what} did not listen on port {port} within {START_SECONDS}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def _workdir(user: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="poise-db-"))
    try:
        if os.geteuid() == 0:
            os.chmod(path, 0o755)
            _own(path, user)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[int]:
    """A redis-server; yields its port."""
    port = free_port()
    with _workdir("redis") as work:
        command = [
            *_as("redis"),
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(work),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            wait_port(port, process, "redis-server")
            yield port
        finally:
            stop(process)


@contextlib.contextmanager
def postgres() -> Iterator[int]:
    """A PostgreSQL server where user `postgres` logs in without a password (trust) and
    user `haproxy` does not exist; yields its port."""
    bindir = Path("/usr/lib/postgresql")
    versions = sorted(bindir.glob("*/bin/postgres"))
    if not versions:
        raise RuntimeError("postgresql is not installed (make debs)")
    bin_ = versions[-1].parent
    port = free_port()
    with _workdir("postgres") as work:
        data = work / "data"
        subprocess.run(
            [*_as("postgres"), str(bin_ / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=START_SECONDS,
        )  # fmt: skip
        command = [
            *_as("postgres"), str(bin_ / "postgres"), "-D", str(data), "-p", str(port),
            "-k", str(work), "-h", "127.0.0.1", "-c", "fsync=off",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, process, "postgres")
            yield port
        finally:
            stop(process)


@contextlib.contextmanager
def mariadb() -> Iterator[int]:
    """A MariaDB server with user 'haproxy'@'127.0.0.1' (no password), as HAProxy's
    documentation asks for mysql-check; yields its port."""
    port = free_port()
    with _workdir("mysql") as work:
        data = work / "data"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=START_SECONDS,
        )  # fmt: skip
        init = work / "init.sql"
        init.write_text("CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1';\n")
        _own(work, "mysql")
        command = [
            "mariadbd", "--no-defaults", f"--datadir={data}", "--user=mysql",
            f"--port={port}", "--bind-address=127.0.0.1", f"--socket={work}/sock",
            f"--pid-file={work}/pid", f"--init-file={init}", "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, process, "mariadbd")
            yield port
        finally:
            stop(process)
