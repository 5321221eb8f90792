"""The processes of the `program` sections (configuration.txt 3.7), run by the master of
master-worker mode: what to start, with whose ids, and which of them exited. When and why
is decided in core/mworker.py (Launch, Stop, program_exited); this module only starts and
reaps them.

A program is started as HAProxy's master starts it: its command looked up in PATH, in the
master's directory and environment (less systemd's NOTIFY_SOCKET, which is the master's),
none of the master's sockets open in it, and with the ids of `group` (no supplementary
groups) and `user` when they are given. At a reload the master reads the configuration
files again (master.py) and gives their `program` sections here: a configuration that
does not load starts no program (its new workers fail and say why).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from poise.config.model_global import Program
from poise.process import unix
from poise.system.notify import ENV as NOTIFY_ENV


@dataclass(frozen=True, slots=True)
class Forked:
    pid: int
    name: str


@dataclass(frozen=True, slots=True)
class NotStarted:
    name: str
    reason: str


class Programs:
    """The program processes of one master."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.programs: tuple[Program, ...] | None = ()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def configure(self, programs: Sequence[Program] | None) -> None:
        """The `program` sections of the configuration as it is now (None: it does not
        load)."""
        self.programs = None if programs is None else tuple(programs)

    def launch(self, reload: bool) -> list[Forked | NotStarted]:
        """Start the programs (at a reload: those with `option start-on-reload`, the
        default)."""
        if self.programs is None:
            return []
        return [
            self.start(program)
            for program in self.programs
            if program.start_on_reload or not reload
        ]

    def start(self, program: Program) -> Forked | NotStarted:
        env = {k: v for k, v in os.environ.items() if k != NOTIFY_ENV}
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        owner: dict[str, object] = {}
        if program.group is not None:
            owner.update(group=program.group, extra_groups=[])
        if program.user is not None:
            owner["user"] = program.user
        try:
            proc = subprocess.Popen(  # type: ignore[call-overload]
                list(program.command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, **owner
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            return NotStarted(program.name, f"Cannot execute {program.command[0]}: {reason}")
        self.procs[proc.pid] = proc
        return Forked(proc.pid, program.name)

    def reap(self) -> list[tuple[int, int, str]]:
        """Every program that exited: (pid, exit code or 128 + signal, how)."""
        gone = []
        for pid, proc in list(self.procs.items()):
            returncode = proc.poll()
            if returncode is None:
                continue
            del self.procs[pid]
            code, how = unix.exit_status(returncode)
            gone.append((pid, code, how))
        return gone
