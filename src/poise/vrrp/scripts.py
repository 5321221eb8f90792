"""Running scripts: the tracked `vrrp_script`s every `interval` (killed after `timeout`,
which counts as a failure) and the notify scripts on state changes, with Keepalived's
arguments, each as its user (`user`, else `script_user`, else keepalived_script when that
user exists, else poise's own user).

A tracked script runs in its own process group, so that a timeout kills what it started
too. Notify scripts of one instance or group run one after the other, in the order of the
changes (a script that has not finished after NOTIFY_WAIT seconds is left running and the
next one starts). `notify` gets four more arguments: "INSTANCE"|"GROUP", the name, the
state (MASTER, BACKUP, FAULT, STOP) and the priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
from collections.abc import Callable
from dataclasses import dataclass

from poise.config.keepalived_model import Command, KeepalivedConfig, Notify
from poise.vrrp.fsm import State
from poise.vrrp.system import script_user

NOTIFY_WAIT = 10.0  # seconds a notify script may hold the next one of the same instance


@dataclass(frozen=True, slots=True)
class RunAs:
    user: str | None
    group: str | None


def run_as(config: KeepalivedConfig, command: Command) -> RunAs:
    """Whom to run a command as; None fields mean "as poise itself"."""
    user, group = script_user(config, command)
    if os.geteuid() != 0:
        return RunAs(None, None)
    if pwd.getpwnam(user).pw_uid == 0 and group is None:
        return RunAs(None, None)
    return RunAs(user, group)


async def spawn(argv: tuple[str, ...], who: RunAs) -> asyncio.subprocess.Process:
    """Start a script in its own process group, as `who`, with nothing on its stdio."""
    extra: dict[str, object] = {}
    if who.user is not None:
        extra["user"] = who.user
        extra["group"] = who.group or pwd.getpwnam(who.user).pw_gid
        extra["extra_groups"] = []
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        **extra,  # type: ignore[arg-type]
    )


def kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_check(argv: tuple[str, ...], who: RunAs, timeout: float) -> tuple[bool, str]:
    """Run a tracked script once: (success, what happened)."""
    try:
        process = await spawn(argv, who)
    except OSError as exc:
        return False, f"cannot run: {exc.strerror or exc}"
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        kill_group(process)
        await process.wait()
        return False, f"timed out after {timeout:g}s"
    except asyncio.CancelledError:
        kill_group(process)
        await process.wait()
        raise
    if code == 0:
        return True, "exited with status 0"
    if code < 0:
        return False, f"killed by signal {-code}"
    return False, f"exited with status {code}"


class Notifier:
    """The notify scripts of one instance or sync group, run in order."""

    def __init__(
        self,
        config: KeepalivedConfig,
        kind: str,
        name: str,
        notify: Notify,
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.kind = kind  # "INSTANCE" or "GROUP"
        self.name = name
        self.notify = notify
        self.log = log
        self.queue: asyncio.Queue[tuple[State, int]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.running: set[asyncio.subprocess.Process] = set()

    def push(self, state: State, priority: int) -> None:
        if not self._commands(state, priority):
            return
        self.queue.put_nowait((state, priority))
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())

    def _commands(self, state: State, priority: int) -> list[tuple[tuple[str, ...], RunAs]]:
        notify = self.notify
        specific = {
            State.MASTER: notify.master,
            State.BACKUP: notify.backup,
            State.FAULT: notify.fault,
            State.STOP: notify.stop,
        }.get(state)
        out = []
        if specific is not None:
            out.append((specific.argv, run_as(self.config, specific)))
        if notify.any is not None:
            extra = (self.kind, self.name, state.value, str(priority))
            out.append(((*notify.any.argv, *extra), run_as(self.config, notify.any)))
        return out

    async def _work(self) -> None:
        while True:
            state, priority = await self.queue.get()
            for argv, who in self._commands(state, priority):
                await self._run(argv, who)
            self.queue.task_done()

    async def _run(self, argv: tuple[str, ...], who: RunAs) -> None:
        try:
            process = await spawn(argv, who)
        except OSError as exc:
            self.log(f"({self.name}) cannot run notify script {argv[0]}: {exc.strerror or exc}")
            return
        self.running.add(process)
        waiter = asyncio.get_running_loop().create_task(process.wait())
        waiter.add_done_callback(lambda _t: self.running.discard(process))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), NOTIFY_WAIT)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until the queued scripts have run, at shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
