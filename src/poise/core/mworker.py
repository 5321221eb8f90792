"""The master of master-worker mode (`master-worker`, `-W`): which workers there are, what
each event does to them (a reload asked for; a worker loaded, serving, failed, exited; a
stop asked for), and the commands that follow (start a worker, signal one, log, tell
systemd, close the listening sockets no worker needs any more, exit). Pure: master.py runs
the commands, so every order of reloads, failures and exits is tested without a process.

HAProxy's management.txt (section 4, and `-W`) and configuration.txt (`master-worker`,
`mworker-max-reloads`) are the model, with HAProxy's messages:
- a reload starts a new worker on the configuration files as they are now; the worker in
  place keeps serving until the new one says it serves, and is then told to finish softly
  (SIGUSR1: stop accepting, end the open sessions, bounded by `hard-stop-after`);
- a new worker that fails leaves the one in place serving ("Loading failure!"), and the
  master logs why (the new worker's diagnostics);
- one reload at a time: a reload asked for during another one follows it;
- a current worker that exits with a failure takes every worker down with it ("exit-on-
  failure"), unless `master-worker no-exit-on-failure`; the master exits when no worker
  is left, as HAProxy's does ("All workers exited. Exiting...").

With `nbthread N > 1` a generation is N workers, one per slot (HAProxy's threads): a reload
starts N new ones, and the generation before is told to leave once all N serve; one that
fails fails the whole new generation. A current worker that dies is replaced in its slot
(HAProxy's threads cannot die alone, so there is no HAProxy rule to follow): at once the
first time, then after a back-off that doubles while it keeps dying, up to MAX_BACKOFF.

`program` sections (configuration.txt 3.7) are children of the master too, as HAProxy 2.6
runs them: started before the first worker; at each reload every start-on-reload program
starts again before the new workers, and once they serve every program started before is
sent SIGUSR1 (also the ones without start-on-reload: HAProxy 2.6 signals them and starts no
new one); a current program that exits with a failure takes everything down
(exit-on-failure, as a worker); a stop signals them with the workers, and the master leaves
once they are gone as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# Exit codes of a worker that was stopped on purpose: 0, or killed by SIGINT / SIGTERM
# (128 + signal number, as HAProxy counts them).
EXPECTED_EXITS = (0, 130, 143)
# A slot's replacement waits FIRST_BACKOFF after a second death within CALM seconds of the
# first, then twice as long at each new one, up to MAX_BACKOFF.
FIRST_BACKOFF, MAX_BACKOFF, CALM = 0.2, 10.0, 30.0


class Role(Enum):
    NEW = "new"  # started, not serving yet
    CURRENT = "current"  # serving the configuration in force
    OLD = "old"  # told to leave: finishing its sessions


class Phase(Enum):
    STARTING = "starting"  # the first worker is not serving yet
    RUNNING = "running"
    STOPPING = "stopping"  # every worker was told to stop; the master leaves after them
    DONE = "done"


@dataclass(slots=True)
class Worker:
    pid: int
    role: Role
    reloads: int = 0  # reloads it has outlived (HAProxy's `show proc` column)
    reported: bool = False  # it said why it could not start
    slot: int = 0  # its place in its generation (0 .. nbthread-1)
    generation: int = 0
    serving: bool = False  # it said it is ready (a NEW one waits for its generation)
    replacing: bool = False  # it replaces a dead worker of the current generation


@dataclass(slots=True)
class Program:
    """A running `program` section's process. NEW until the workers it came with serve."""

    pid: int
    name: str
    role: Role


# -- commands (the shell runs them in order) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start a new worker on the configuration files as they are now, in a slot of a
    generation of `count` workers (after `delay` seconds, then asking `due()` again)."""

    slot: int = 0
    count: int = 1
    replacing: bool = False
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Launch:
    """Start the `program` sections: all of them, or at a reload the start-on-reload ones,
    of the configuration as it is now."""

    reload: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """Signal a worker: SIGUSR1 when soft (finish the open sessions), SIGTERM otherwise."""

    pid: int
    soft: bool


@dataclass(frozen=True, slots=True)
class Log:
    """A master message: on the terminal as `[LEVEL] (PID) : text`, and to syslog."""

    level: str  # alert, warning or notice
    text: str


@dataclass(frozen=True, slots=True)
class Notify:
    """A state for the service manager (sd_notify), e.g. ("READY=1", "STATUS=Ready.")."""

    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Release:
    """Close every listening socket of the master that none of these workers holds."""

    keep: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Started:
    """How the start ended, for the process waiting for a daemon (exit status 0 or 1)."""

    ok: bool
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exit:
    """The master leaves with this status."""

    status: int


Command = Spawn | Launch | Stop | Log | Notify | Release | Started | Exit

READY = Notify(("READY=1", "STATUS=Ready."))


@dataclass(slots=True)
class Master:
    """The workers of one master and the rules between them."""

    exit_on_failure: bool = True
    max_reloads: int | None = None  # `mworker-max-reloads`
    workers: dict[int, Worker] = field(default_factory=dict)
    programs: dict[int, Program] = field(default_factory=dict)
    phase: Phase = Phase.STARTING
    pending: bool = False  # a reload asked for while one runs
    status: int = 0  # the master's exit status
    reloads: int = 0
    failed_reloads: int = 0
    failure: list[str] = field(default_factory=list)  # why the last new worker failed
    count: int = 1  # `nbthread` of the generation in place
    next_count: int = 1  # and of the one being started
    generation: int = 0  # the generation in place
    # Slots whose worker died, waiting for a replacement: the dead worker's pid (its
    # sockets are kept for the replacement).
    vacant: dict[int, int] = field(default_factory=dict)
    deaths: dict[int, tuple[int, float]] = field(default_factory=dict)  # slot: streak, when

    # -- who is who -----------------------------------------------------------------

    def _with(self, role: Role) -> list[Worker]:
        return [w for w in self.workers.values() if w.role is role]

    @property
    def new(self) -> Worker | None:
        found = [w for w in self._with(Role.NEW) if not w.replacing]
        return found[0] if found else None

    @property
    def current(self) -> Worker | None:
        found = self._with(Role.CURRENT)
        return found[0] if found else None

    @property
    def old(self) -> list[Worker]:
        return self._with(Role.OLD)

    def _keep(self) -> tuple[int, ...]:
        alive = [w.pid for w in self.workers.values() if w.role is not Role.OLD]
        return tuple(alive + list(self.vacant.values()))

    # -- events -----------------------------------------------------------------------

    def start(self, count: int = 1) -> list[Command]:
        """The master holds its listening sockets: start the programs and the first
        generation."""
        self.count = self.next_count = count
        return [Launch(reload=False), *self._generation()]

    def _generation(self) -> list[Command]:
        return [Spawn(slot, self.next_count) for slot in range(self.next_count)]

    def spawned(self, pid: int, spawn: Spawn = Spawn()) -> list[Command]:
        generation = self.generation if spawn.replacing else self.generation + 1
        self.workers[pid] = Worker(
            pid, Role.NEW, slot=spawn.slot, generation=generation, replacing=spawn.replacing
        )
        if not spawn.replacing:
            self.failure = []
        return [Log("notice", f"New worker ({pid}) forked")]

    def spawn_failed(self, reason: str, spawn: Spawn = Spawn()) -> list[Command]:
        """The worker process could not even be started (fork or exec failed)."""
        commands: list[Command] = [Log("alert", f"Cannot start a new worker: {reason}")]
        if spawn.replacing:
            return commands + self._replace(spawn.slot, None, self._last_death(spawn.slot))
        self.failure = [reason]
        return self._then_maybe_done(commands + self._new_failed())

    def due(self, slot: int) -> list[Command]:
        """A replacement's back-off is over: start it, if the slot still needs one."""
        if self.phase is not Phase.RUNNING or slot not in self.vacant or slot >= self.count:
            return []
        if any(w.replacing and w.slot == slot for w in self.workers.values()):
            return []
        return [Spawn(slot, self.count, replacing=True)]

    def reload(self, count: int | None = None) -> list[Command]:
        """SIGUSR2 (or SIGHUP, or `poise reload`); `count`: the new `nbthread`."""
        if self.phase in (Phase.STOPPING, Phase.DONE):
            return []
        if self.new is not None:
            self.pending = True
            return [Log("notice", "Reload asked for during a reload: it follows this one")]
        self.reloads += 1
        self.next_count = count or self.count
        return [
            Log("notice", "Reloading poise"),
            Notify(("RELOADING=1", "STATUS=Reloading configuration.")),
            Launch(reload=True),
            *self._generation(),
        ]

    def loaded(self, pid: int, warnings: list[str]) -> list[Command]:
        """The new worker read its configuration; the warnings are new, except at start,
        where the master read the same files and showed them already."""
        worker = self.workers.get(pid)
        if self.phase is Phase.STARTING or worker is None:
            return []
        if worker.replacing or worker.slot:  # the same files: said once per generation
            return []
        return [Log("warning", line) for line in warnings]

    def failed(self, pid: int, lines: list[str]) -> list[Command]:
        """The new worker says why it cannot serve (its diagnostics); it exits next."""
        worker = self.workers.get(pid)
        if worker is None or worker.role is not Role.NEW:
            return []
        worker.reported = True
        self.failure = list(lines)
        return [Log("alert", line) for line in lines]

    def ready(self, pid: int) -> list[Command]:
        """A new worker serves. Once every worker of its generation does, they become the
        current ones and the ones before leave."""
        worker = self.workers.get(pid)
        if worker is None or worker.role is not Role.NEW:
            return []
        if self.phase not in (Phase.STARTING, Phase.RUNNING):
            return []
        worker.serving = True
        if worker.replacing:  # a dead worker's slot is served again
            worker.role, worker.replacing = Role.CURRENT, False
            self.vacant.pop(worker.slot, None)
            return [Log("notice", f"Worker ({pid}) serves in place of worker #{worker.slot}")]
        generation = [w for w in self.workers.values() if w.role is Role.NEW and not w.replacing]
        if len(generation) < self.next_count or not all(w.serving for w in generation):
            return []
        commands: list[Command] = []
        for old in self.old:
            old.reloads += 1
            commands += self._too_old(old)
        previous = [w for w in self.workers.values() if w.role is Role.CURRENT]
        previous += [w for w in self.workers.values() if w.replacing]  # of the old ones
        for new in generation:
            new.role = Role.CURRENT
        self.generation, self.count = generation[0].generation, self.next_count
        self.vacant.clear()
        for program in self.programs.values():
            if program.role is Role.NEW:
                program.role = Role.CURRENT
            else:
                program.role = Role.OLD
                commands.append(Stop(program.pid, soft=True))
        for before in previous:
            before.role, before.replacing = Role.OLD, False
            before.reloads += 1
            commands.append(Stop(before.pid, soft=before.serving))
            commands += self._too_old(before)
        commands += [Log("notice", "Loading success."), Release(self._keep()), READY]
        if self.phase is Phase.STARTING:
            self.phase = Phase.RUNNING
            commands.append(Started(True))
        return commands + self._follow()

    def exited(self, pid: int, code: int, how: str, now: float = 0.0) -> list[Command]:
        """A worker is gone: `code` is its exit status, or 128 + the signal that killed
        it; `how` is "Exit" or the signal's name ("Terminated")."""
        worker = self.workers.pop(pid, None)
        if worker is None:
            return []
        said = f"exited with code {code} ({how})"
        commands: list[Command] = []
        if worker.role is Role.NEW and worker.replacing:
            commands.append(Log("alert", f"New worker ({pid}) {said}"))
            if self.phase is Phase.RUNNING:
                commands += self._replace(worker.slot, None, now)
        elif worker.role is Role.NEW:
            if self.phase is not Phase.STOPPING:
                if not worker.reported:
                    self.failure = [f"the new worker ({pid}) {said} before it served"]
                commands.append(Log("alert", f"New worker ({pid}) {said}"))
                commands += self._new_failed()
        elif worker.role is Role.OLD:
            commands.append(Log("warning", f"Former worker ({pid}) {said}"))
        else:
            commands.append(
                Log("warning" if code < 128 else "alert", f"Current worker ({pid}) {said}")
            )
            if self.phase is Phase.RUNNING and self.count > 1:
                commands += self._replace(worker.slot, pid, now)
            elif self.phase is Phase.RUNNING and code not in EXPECTED_EXITS:
                self.status = code
                if self.exit_on_failure:
                    commands.append(
                        Log("alert", "exit-on-failure: killing every processes with SIGTERM")
                    )
                    commands += self._stop_all(soft=False)
        return self._then_maybe_done(commands)

    def program_forked(self, pid: int, name: str) -> list[Command]:
        self.programs[pid] = Program(pid, name, Role.NEW)
        return [Log("notice", f"New program '{name}' ({pid}) forked")]

    def program_not_started(self, name: str, reason: str) -> list[Command]:
        """A program could not be started (its command, user or group): as HAProxy's
        forked program that cannot exec it, it fails with exit code 1."""
        commands: list[Command] = [Log("alert", f"{reason} (program '{name}')")]
        return self._then_maybe_done(commands + self._program_failed(1))

    def program_exited(self, pid: int, code: int, how: str) -> list[Command]:
        program = self.programs.pop(pid, None)
        if program is None:
            return []
        said = f"program '{program.name}' ({pid}) exited with code {code} ({how})"
        if program.role is Role.OLD:
            return self._then_maybe_done([Log("warning", f"Former {said}")])
        commands: list[Command] = [Log("alert", f"Current {said}")]
        return self._then_maybe_done(commands + self._program_failed(code))

    def _program_failed(self, code: int) -> list[Command]:
        if self.phase not in (Phase.STARTING, Phase.RUNNING) or code in EXPECTED_EXITS:
            return []
        self.status = code
        if not self.exit_on_failure:
            return []
        commands: list[Command] = [
            Log("alert", "exit-on-failure: killing every processes with SIGTERM")
        ]
        if self.phase is Phase.STARTING:
            commands.append(Started(False, ("poise: a program failed during start-up",)))
        return commands + self._stop_all(soft=False)

    def stop(self, soft: bool) -> list[Command]:
        """SIGTERM or SIGINT (soft=False), SIGUSR1 (soft=True) to the master: the same
        signal to every worker, and leave once they are gone."""
        if self.phase is Phase.DONE:
            return []
        if self.phase is Phase.STOPPING:  # asked again: no more waiting for sessions
            return [] if soft else self._stop_all(soft=False)
        commands: list[Command] = [
            Log("warning", "Exiting Master process..."),
            Notify(("STOPPING=1",)),
        ]
        if self.phase is Phase.STARTING:
            self.status = 1
            commands.append(Started(False, ("poise: interrupted during start-up",)))
        return commands + self._stop_all(soft) + self._maybe_done()

    # -- helpers ------------------------------------------------------------------------

    def _new_failed(self) -> list[Command]:
        """The new worker will not serve: the one in place goes on (or, at start, the
        master gives up)."""
        if self.phase is Phase.STARTING:
            self.phase = Phase.STOPPING
            self.status = 1
            commands: list[Command] = [
                Log("alert", "Loading failure!"),
                Started(False, tuple(self.failure)),
            ]
            return commands + self._stop_all(soft=False)
        self.failed_reloads += 1
        others = [w for w in self.workers.values() if w.role is Role.NEW and not w.replacing]
        for other in others:  # the rest of the generation that failed
            other.role = Role.OLD
        stops: list[Command] = [Stop(w.pid, soft=False) for w in others]
        errors = [line for line in self.failure if ": error: " in line] or self.failure
        reason = errors[0] if errors else "unknown reason"
        return [
            *stops,
            Log("warning", "Loading failure!"),
            Release(self._keep()),
            Notify(
                (
                    "READY=1",
                    f"STATUS=Reload failed ({reason}); still serving the previous configuration.",
                )
            ),
            *self._follow(),
        ]

    def _last_death(self, slot: int) -> float:
        return self.deaths.get(slot, (0, 0.0))[1]

    def _replace(self, slot: int, pid: int | None, now: float) -> list[Command]:
        """A replacement for a dead worker of the current generation, after its back-off
        (`now`: the master's monotonic clock)."""
        if pid is not None:
            self.vacant[slot] = pid
        streak, last = self.deaths.get(slot, (-1, 0.0))
        streak = streak + 1 if streak >= 0 and now - last < CALM else 0
        self.deaths[slot] = (streak, now)
        delay = 0.0 if streak == 0 else min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (streak - 1))
        return [Spawn(slot, self.count, replacing=True, delay=delay)]

    def _follow(self) -> list[Command]:
        if not self.pending or self.phase is not Phase.RUNNING:
            return []
        self.pending = False
        return self.reload()

    def _too_old(self, worker: Worker) -> list[Command]:
        if self.max_reloads is None or worker.reloads <= self.max_reloads:
            return []
        return [
            Log(
                "warning",
                f"Former worker ({worker.pid}) outlived {worker.reloads} reloads "
                f"(mworker-max-reloads {self.max_reloads}): sending SIGTERM",
            ),
            Stop(worker.pid, soft=False),
        ]

    def _stop_all(self, soft: bool) -> list[Command]:
        if self.phase is not Phase.DONE:
            self.phase = Phase.STOPPING
        self.pending = False
        stops: list[Command] = [
            Stop(w.pid, soft and w.role is not Role.NEW) for w in self.workers.values()
        ]
        return stops + [Stop(pid, soft) for pid in self.programs]

    def _then_maybe_done(self, commands: list[Command]) -> list[Command]:
        """`commands`, then the master's exit if no worker is left: unless these very
        commands start one (a reload that was waiting for this failure)."""
        if any(isinstance(command, Spawn) for command in commands):
            return commands
        return commands + self._maybe_done()

    def _maybe_done(self) -> list[Command]:
        # Also when every worker left on its own: HAProxy's master leaves then too.
        if self.workers or self.programs or self.phase in (Phase.STARTING, Phase.DONE):
            return []
        self.phase = Phase.DONE
        return [
            Log("warning", f"All workers exited. Exiting... ({self.status})"),
            Exit(self.status),
        ]
