"""Process set-up for `poise run`, as HAProxy's `global` section asks for it: the pidfile,
`daemon` (double fork, detached from the terminal), `chroot`, and `user`/`group`/`uid`/
`gid` (privilege drop). Every failure is a ProcessError with a one-line message naming the
cause, which the caller prints as an alert before it exits with status 1.

The order is HAProxy's: bind every listening socket first (so that a bind error still
reaches the terminal and the exit status), then `daemonize()`, `write_pidfile()` (still
root, outside the chroot), `enter_chroot()`, `drop_privileges()`, start serving, and only
then tell the waiting parent `ready()`: a start-up script that sees exit status 0 knows
poise is serving. After the chroot and the privilege drop the pidfile is usually out of
reach, so `remove_pidfile()` belongs to a process that kept it in reach (a master).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import sys
from collections.abc import Iterable

# The start-up pipe carries one word, ending with a LF: R (ready) or E and a message.
_READY = b"R\n"
_FAILED = b"E"


class ProcessError(Exception):
    """Process set-up failed; the message is one line naming the cause."""


def write_pidfile(path: str, pid: int) -> None:
    """Write `PID\\n` to `path` (created with mode 0644 or truncated), as HAProxy does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise ProcessError(f"cannot create pidfile '{path}': {exc.strerror}") from None
    try:
        os.write(fd, f"{pid}\n".encode())
    except OSError as exc:
        raise ProcessError(f"cannot write pidfile '{path}': {exc.strerror}") from None
    finally:
        os.close(fd)


def read_pidfile(path: str) -> int:
    """The pid in a pidfile (its first line, as HAProxy writes it)."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read(4096)
    except OSError as exc:
        raise ProcessError(f"cannot read pidfile '{path}': {exc.strerror}") from None
    first = text.split("\n", 1)[0].strip()
    if not first.isdigit() or int(first) <= 0:
        raise ProcessError(f"pidfile '{path}' holds no pid")
    return int(first)


def signal_pids(pids: Iterable[int], signum: signal.Signals) -> list[str]:
    """Send `signum` to each pid (`-sf`, `-st`, `poise reload`); the problems, one line
    each. A pid that is already gone is not one: the old process finished on its own."""
    problems: list[str] = []
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except OSError as exc:
            problems.append(f"cannot send {signum.name} to process {pid}: {exc.strerror}")
    return problems


def exit_status(returncode: int) -> tuple[int, str]:
    """A child's exit as HAProxy's master reports it: (code, how), the code being 128 +
    the signal for a process killed by one, `how` "Exit" or the signal's description."""
    if returncode >= 0:
        return returncode, "Exit"
    number = -returncode
    try:
        how = signal.strsignal(number) or f"signal {number}"
    except ValueError:
        how = f"signal {number}"
    return 128 + number, how


def remove_pidfile(path: str) -> None:
    """Remove the pidfile; one that is already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ProcessError(f"cannot remove pidfile '{path}': {exc.strerror}") from None


class Startup:
    """The daemon's side of the start-up pipe: tell the waiting parent how start-up ended.
    The parent exits 0 on `ready()`, and 1 on `fail()` or when the daemon exits (or
    crashes) before saying anything."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def ready(self) -> None:
        """Start-up succeeded: the parent exits 0."""
        self._send(_READY)

    def fail(self, message: str) -> None:
        """Start-up failed: the parent prints `message` on its stderr and exits 1."""
        self._send(_FAILED + message.removesuffix("\n").encode("utf-8", "replace") + b"\n")

    def _send(self, data: bytes) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, data)
        except OSError:  # the parent is gone: nobody to tell
            pass
        finally:
            os.close(fd)


def _wait_for_daemon(read_fd: int, child: int) -> int:
    """In the original process: wait for the daemon's word, return the exit status. The
    word ends with a LF, so a worker the daemon forked, which holds a copy of the pipe,
    does not keep the parent waiting for end of file."""
    word = b""
    try:
        os.waitpid(child, 0)  # the intermediate child exits at once
        while not word.endswith(b"\n"):
            data = os.read(read_fd, 65536)
            if not data:
                break
            word += data
    except KeyboardInterrupt:
        word = _FAILED + b"poise: interrupted during start-up\n"
    finally:
        os.close(read_fd)
    if word == _READY:
        return 0
    if not (word.startswith(_FAILED) and word.endswith(b"\n")):
        word = _FAILED + b"poise: the daemon exited during start-up\n"
    with contextlib.suppress(OSError):
        os.write(2, word[len(_FAILED) :])
    return 1


def daemonize() -> Startup:
    """Detach from the terminal: fork, `setsid`, fork again; in the daemon, chdir to "/"
    and point stdin, stdout and stderr at /dev/null. Returns in the daemon only.

    The original process does not return: it waits until the daemon calls `ready()` or
    `fail()` on the returned Startup (or exits), then exits with status 0 or 1. Call it
    before starting an event loop or threads, and after binding the listening sockets."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    try:
        first = os.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        raise ProcessError(f"cannot fork: {exc.strerror}") from None
    if first > 0:
        os.close(write_fd)
        os._exit(_wait_for_daemon(read_fd, first))

    # Intermediate child: a new session without a controlling terminal, then a child
    # that is not its leader, so that it can never acquire one again.
    os.close(read_fd)
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
    except OSError as exc:
        os.write(write_fd, _FAILED + f"poise: cannot daemonize: {exc.strerror}\n".encode())
        os._exit(1)

    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    return Startup(write_fd)


def drop_privileges(uid: int | None, gid: int | None, user: str | None = None) -> None:
    """Become `uid`/`gid` for good (real, effective and saved ids).

    As root: supplementary groups first (`initgroups(user)` when the user's name is known,
    none otherwise), then the gid, then the uid, so that nothing can be taken back. Not as
    root: asking for another uid or gid than the current one is an error, as HAProxy
    refuses to start then; the current ones are fine. None leaves that id as it is."""
    if uid is None and gid is None:
        return
    if os.geteuid() != 0:
        if uid is not None and uid != os.geteuid():
            raise ProcessError(f"cannot set uid {uid}: not running as root")
        if gid is not None and gid != os.getegid():
            raise ProcessError(f"cannot set gid {gid}: not running as root")
        return
    try:
        if user is not None:
            primary = gid if gid is not None else pwd.getpwnam(user).pw_gid
            os.initgroups(user, primary)
        else:
            os.setgroups([])
    except KeyError:
        raise ProcessError(f"unknown user '{user}'") from None
    except OSError as exc:
        raise ProcessError(f"cannot set supplementary groups: {exc.strerror}") from None
    if gid is not None:
        try:
            os.setgid(gid)
        except OSError as exc:
            raise ProcessError(f"cannot set gid {gid}: {exc.strerror}") from None
    if uid is not None:
        try:
            os.setuid(uid)
        except OSError as exc:
            raise ProcessError(f"cannot set uid {uid}: {exc.strerror}") from None
        if uid != 0 and _can_regain_root():
            raise ProcessError(f"uid {uid} could take root back")


def _can_regain_root() -> bool:
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True


def enter_chroot(path: str) -> None:
    """`chroot DIR`: make `path` the root directory and go there. Only as root."""
    if os.geteuid() != 0:
        raise ProcessError(f"cannot chroot to '{path}': not running as root")
    if not os.path.isdir(path):
        raise ProcessError(f"cannot chroot to '{path}': no such directory")
    try:
        os.chroot(path)
        os.chdir("/")
    except OSError as exc:
        raise ProcessError(f"cannot chroot to '{path}': {exc.strerror}") from None
