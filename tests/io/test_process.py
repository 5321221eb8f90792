"""Process set-up for real: pidfiles on disk, a daemon started in a subprocess (found by
its pidfile and stopped by its pid), privileges dropped to `nobody` and a chroot entered
in subprocesses, as root."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poise.process.unix import (
    ProcessError,
    enter_chroot,
    remove_pidfile,
    write_pidfile,
)


def nobody() -> tuple[int, int]:
    """The uid and gid of `nobody`, the user the privilege tests drop to."""
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid, chroot)")
WAIT = 10.0  # seconds: deadline of every wait for another process


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def state_of(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    for line in status.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return None


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT
    while state_of(pid) not in (None, "Z"):  # a zombie is dead, waiting for init
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------
# pidfile


def test_pidfile_is_written_truncated_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "poise.pid"
    write_pidfile(str(path), 123456)
    assert path.read_text() == "123456\n"
    write_pidfile(str(path), 42)
    assert path.read_text() == "42\n"
    remove_pidfile(str(path))
    assert not path.exists()
    remove_pidfile(str(path))  # already gone: fine


def test_pidfile_in_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "poise.pid"
    with pytest.raises(ProcessError) as err:
        write_pidfile(str(path), 1)
    assert str(err.value) == f"cannot create pidfile '{path}': No such file or directory"


# ---------------------------------------------------------------------------------------
# daemon

DAEMON = """
    import os, signal, socket, sys
    from poise.process.unix import daemonize, write_pidfile

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound before daemonizing, as poise run does
    listener.listen()
    startup = daemonize()
    write_pidfile(sys.argv[1], os.getpid())
    startup.ready()
    while True:
        signal.pause()
"""


@pytest.fixture
def daemon_pid(tmp_path: Path) -> Iterator[tuple[subprocess.CompletedProcess[str], int]]:
    pidfile = tmp_path / "daemon.pid"
    done = run_python(DAEMON, str(pidfile))
    pid = int(pidfile.read_text()) if pidfile.exists() else 0
    try:
        yield done, pid
    finally:
        if pid and state_of(pid) not in (None, "Z"):
            os.kill(pid, signal.SIGKILL)


def test_daemon_parent_exits_0_after_readiness(
    daemon_pid: tuple[subprocess.CompletedProcess[str], int],
) -> None:
    done, pid = daemon_pid
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""
    assert pid > 0
    assert state_of(pid) in ("S", "R")
    # Detached: in a session of its own that it does not lead, no terminal, cwd "/",
    # stdin/stdout/stderr on /dev/null.
    assert os.getsid(pid) != os.getsid(0)
    assert os.getsid(pid) != pid
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert stat.rsplit(")", 1)[1].split()[4] == "0"  # tty_nr: no controlling terminal

    os.kill(pid, signal.SIGTERM)
    wait_until_gone(pid)


def test_daemon_failure_reaches_the_parent() -> None:
    done = run_python(
        """
        from poise.process.unix import daemonize
        startup = daemonize()
        startup.fail("[ALERT]    (1) : Starting frontend fe: cannot bind socket")
        """
    )
    assert done.returncode == 1
    assert done.stderr == "[ALERT]    (1) : Starting frontend fe: cannot bind socket\n"


def test_daemon_that_dies_before_readiness_fails_the_parent() -> None:
    done = run_python(
        """
        import os
        from poise.process.unix import daemonize
        daemonize()
        os._exit(3)
        """
    )
    assert done.returncode == 1
    assert done.stderr == "poise: the daemon exited during start-up\n"


# ---------------------------------------------------------------------------------------
# users, groups, privileges


@as_root
def test_drop_privileges_to_nobody() -> None:
    uid, gid = nobody()
    done = run_python(
        """
        import os, pwd
        from poise.process.unix import ProcessError, drop_privileges
        uid, gid = pwd.getpwnam("nobody")[2:4]
        drop_privileges(uid, gid, "nobody")
        print(os.getuid(), os.geteuid(), os.getgid(), os.getegid())
        print(*sorted(os.getgroups()))
        try:
            drop_privileges(0, None)
        except ProcessError as exc:
            print(exc)
        try:
            os.setuid(0)
        except PermissionError:
            print("root is gone")
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{uid} {uid} {gid} {gid}"
    member_of = {g.gr_gid for g in grp.getgrall() if "nobody" in g.gr_mem} | {gid}
    assert {int(g) for g in lines[1].split()} == member_of
    assert lines[2] == "cannot set uid 0: not running as root"
    assert lines[3] == "root is gone"


@as_root
def test_drop_privileges_without_a_name_clears_supplementary_groups() -> None:
    done = run_python(
        """
        import os, pwd
        from poise.process.unix import drop_privileges
        uid, gid = pwd.getpwnam("nobody")[2:4]
        os.setgroups([0, 1, 2])
        drop_privileges(uid, gid)
        print(os.getuid(), os.getgid(), os.getgroups())
        drop_privileges(uid, gid)  # what it already is: fine without root
        drop_privileges(None, None)
        print("again fine")
        """
    )
    uid, gid = nobody()
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{uid} {gid} []\nagain fine\n"


# ---------------------------------------------------------------------------------------
# chroot


@as_root
def test_chroot_into_a_directory(tmp_path: Path) -> None:
    jail = tmp_path / "jail"
    jail.mkdir()
    (jail / "inside").write_text("")
    done = run_python(
        """
        import os, sys
        from poise.process.unix import enter_chroot
        enter_chroot(sys.argv[1])
        print(sorted(os.listdir("/")), os.getcwd())
        """,
        str(jail),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "['inside'] /\n"


def test_chroot_into_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ProcessError) as err:
        enter_chroot(str(missing))
    if os.geteuid() == 0:
        assert str(err.value) == f"cannot chroot to '{missing}': no such directory"
    else:
        assert str(err.value) == f"cannot chroot to '{missing}': not running as root"


@as_root
def test_chroot_when_not_root_is_an_error(tmp_path: Path) -> None:
    done = run_python(
        """
        import pwd, sys
        from poise.process.unix import ProcessError, drop_privileges, enter_chroot
        drop_privileges(*pwd.getpwnam("nobody")[2:4])
        try:
            enter_chroot(sys.argv[1])
        except ProcessError as exc:
            print(exc)
        """,
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cannot chroot to '{tmp_path}': not running as root\n"
