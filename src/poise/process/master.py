"""The master process of master-worker mode (`master-worker` in global, or `poise run -W`).

The master binds nothing for itself and serves nothing: it owns the listening sockets. It
opens them once, before any worker, and keeps them open as long as it lives, so that they
are never closed between two workers. It starts a worker (worker.py) that serves them, and
on a reload (SIGUSR2, `poise reload`, or SIGHUP as systemd's convention has it) starts a new
worker on the configuration as it is now, hands it the sockets (handover.py: the same ones,
and new ones for the addresses the new configuration adds), and once the new worker serves
tells the old one to finish softly (SIGUSR1). A new worker that fails leaves the old one
serving, and its diagnostics are logged here. Sockets for addresses the new configuration
dropped are closed by the master once the new worker serves: the old worker, told to stop
at that moment, stops listening on them too.

The master writes the pidfile, tells systemd how things go (system/notify.py: READY=1, RELOADING=1,
STOPPING=1), and stops every worker on SIGTERM (at once) or SIGUSR1 (softly). What to do on
each event is decided in core/mworker.py; this module runs processes, signals and sockets.
Its messages go to the terminal in HAProxy's format; its alerts (a reload that failed, a
worker that died) also go to the global `log` servers (syslog), where a daemon's reload
failures can be read. Its other messages do not: HAProxy's master sends nothing there.

The processes of `program` sections are the master's children too (programs.py).

Settings read once by the master (a restart changes them): `daemon`, `pidfile`,
`master-worker`, `mworker-max-reloads`. Everything else is the worker's, re-read at each
reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from poise.config import model
from poise.core import mworker
from poise.net.listener import BindError
from poise.net.logsink import CONSOLE, LogSink, LogSinkError, console, log_hostname
from poise.process import unix
from poise.process.bus import RELAYED, Relay
from poise.process.handover import Channel, SocketSpec, SocketTable, specs_for
from poise.process.programs import Forked, Programs
from poise.system.load import load_config
from poise.system.notify import ENV as NOTIFY_ENV
from poise.system.notify import notify


def run_master(
    files: Sequence[str],
    config: model.Config,
    *,
    detach: bool,
    pidfile: str | None,
    quiet: bool,
    finish: Sequence[int] = (),
    terminate: Sequence[int] = (),
) -> int:
    """`poise run` as a master: bind, detach, write the pidfile, run the workers. The exit
    status is 1 when the first worker cannot serve, else the master's (0 when asked to
    stop)."""
    table = SocketTable()
    count = config.global_.nbthread
    try:
        for slot in range(count):  # every shard of every `bind`, before any worker
            table.provide(specs_for(config, slot, count))
    except (BindError, OSError) as exc:
        console("ALERT", str(exc))
        table.close()
        return 1
    cwd = os.getcwd()
    files = [os.path.abspath(f) for f in files]
    startup: unix.Startup | None = None
    try:
        if detach:
            startup = unix.daemonize()
            CONSOLE.quiet = True
        if pidfile:
            unix.write_pidfile(pidfile, os.getpid())
    except unix.ProcessError as exc:
        console("ALERT", str(exc))
        if startup is not None:
            startup.fail(str(exc))
        table.close()
        return 1
    global_ = config.global_
    state = mworker.Master(
        exit_on_failure=global_.exit_on_failure, max_reloads=global_.mworker_max_reloads
    )
    master = Master(
        state,
        table,
        files=files,
        cwd=cwd,
        quiet=quiet or CONSOLE.quiet,
        startup=startup,
        log=syslog(global_),
    )
    master.handover = (tuple(finish), tuple(terminate))
    master.count = count
    master.programs.configure(config.programs)
    try:
        return master.run()
    finally:
        table.close()
        if pidfile:
            try:
                unix.remove_pidfile(pidfile)
            except unix.ProcessError as exc:
                console("WARNING", str(exc))


def syslog(global_: model.Global) -> LogSink | None:
    """The global `log` servers, for the master's own messages (stdout and stderr are
    the terminal's, where they already go)."""
    targets = [t for t in global_.logs if t.kind in ("udp", "unix")]
    if not targets:
        return None
    try:
        return LogSink(targets, tag=global_.log_tag, hostname=log_hostname(global_))
    except (LogSinkError, OSError):
        return None


@dataclass(slots=True)
class Child:
    """A worker process and the master's end of its channel."""

    proc: subprocess.Popen[bytes]
    channel: Channel
    reading: bool = True
    serving: bool = False  # it said it is ready
    slot: int = 0
    generation: int = 0


class Master:
    """Runs the commands of core/mworker.py: processes, signals, sockets, messages."""

    def __init__(
        self,
        state: mworker.Master,
        table: SocketTable,
        *,
        files: Sequence[str],
        cwd: str,
        quiet: bool,
        startup: unix.Startup | None,
        log: LogSink | None,
    ) -> None:
        self.state = state
        self.table = table
        self.files = list(files)
        self.cwd = cwd
        self.quiet = quiet
        self.startup = startup
        self.log = log
        self.children: dict[int, Child] = {}
        self.status: int | None = None
        self.handover: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        self.count = 1  # `nbthread` at start
        self.programs = Programs(cwd)
        self.bus = Relay(self.children)
        self.loop = asyncio.new_event_loop()

    def run(self) -> int:
        loop = self.loop
        handlers = {
            signal.SIGUSR2: self.reload,
            signal.SIGHUP: self.reload,
            signal.SIGTERM: lambda: self.apply(self.state.stop(soft=False)),
            signal.SIGINT: lambda: self.apply(self.state.stop(soft=False)),
            signal.SIGUSR1: lambda: self.apply(self.state.stop(soft=True)),
            signal.SIGCHLD: self.reap,
        }
        try:
            for signum, handler in handlers.items():
                loop.add_signal_handler(signum, handler)
            self.apply(self.state.start(self.count))
            if self.status is None:
                loop.run_forever()
        finally:
            for child in self.children.values():
                child.channel.close()
            for signum in handlers:
                loop.remove_signal_handler(signum)
            loop.close()
            if self.log is not None:
                self.log.close()
        return 1 if self.status is None else self.status

    # -- events -------------------------------------------------------------------------

    def reload(self) -> None:
        config, _ = load_config(self.files)  # the paths are absolute
        self.programs.configure(None if config is None else config.programs)
        self.apply(self.state.reload(None if config is None else config.global_.nbthread))

    def reap(self) -> None:
        """SIGCHLD: every worker that exited (what it said before is read first), and
        every program."""
        for pid, code, how in self.programs.reap():
            self.apply(self.state.program_exited(pid, code, how))
        for pid, child in list(self.children.items()):
            returncode = child.proc.poll()
            if returncode is None:
                continue
            self.read(pid)
            self.forget(pid)
            code, how = unix.exit_status(returncode)
            self.apply(self.state.exited(pid, code, how, time.monotonic()))

    def read(self, pid: int) -> None:
        """Every message waiting on a worker's channel."""
        child = self.children.get(pid)
        while child is not None and child.reading:
            try:
                message, fds = child.channel.receive()
            except BlockingIOError:
                return
            except ValueError:
                self.say("warning", f"Worker ({pid}) sent a message that is not JSON")
                continue
            except OSError:
                message, fds = None, []
            for fd in fds:
                os.close(fd)
            if message is None:  # it closed its end: its exit follows (SIGCHLD)
                child.reading = False
                self.loop.remove_reader(child.channel.fileno())
                return
            self.handle(pid, child, message)

    def handle(self, pid: int, child: Child, message: dict[str, object]) -> None:
        op = message.get("op")
        if op == "sockets":
            self.give_sockets(pid, child, message)
        elif op == "failed":
            self.apply(self.state.failed(pid, lines(message.get("lines"))))
        elif op == "ready":
            child.serving = True
            self.apply(self.state.ready(pid))
        elif op in RELAYED:
            for problem in self.bus.relay(pid, message):
                self.say("warning", problem)

    def give_sockets(self, pid: int, child: Child, message: dict[str, object]) -> None:
        self.apply(self.state.loaded(pid, lines(message.get("warnings"))))
        want = message.get("want")
        try:
            if not isinstance(want, list):
                raise ValueError("no list of sockets")
            specs = [SocketSpec.from_wire(item) for item in want]
            socks = self.table.provide(specs, holder=pid)
        except (BindError, OSError, ValueError, TypeError) as exc:
            answer: dict[str, object] = {"op": "sockets", "ok": False, "error": str(exc)}
            with contextlib.suppress(OSError):
                child.channel.send(answer)
            return
        try:
            child.channel.send_sockets(socks)
        except OSError as exc:
            self.say("alert", f"Cannot pass the listening sockets to worker ({pid}): {exc}")

    # -- commands -----------------------------------------------------------------------

    def apply(self, commands: Sequence[mworker.Command]) -> None:
        for command in commands:
            if isinstance(command, mworker.Spawn) and command.delay > 0:
                self.loop.call_later(command.delay, self.due, command.slot)
            elif isinstance(command, mworker.Spawn):
                self.spawn(command)
            elif isinstance(command, mworker.Launch):
                for started in self.programs.launch(command.reload):
                    if isinstance(started, Forked):
                        self.apply(self.state.program_forked(started.pid, started.name))
                    else:
                        self.apply(self.state.program_not_started(started.name, started.reason))
            elif isinstance(command, mworker.Stop):
                signum = signal.SIGUSR1 if command.soft else signal.SIGTERM
                for problem in unix.signal_pids([command.pid], signum):
                    self.say("warning", problem)
            elif isinstance(command, mworker.Log):
                self.say(command.level, command.text)
            elif isinstance(command, mworker.Notify):
                self.notify(command.fields)
            elif isinstance(command, mworker.Release):
                self.table.release(command.keep)
            elif isinstance(command, mworker.Started):
                self.started(command)
            elif isinstance(command, mworker.Exit):
                self.status = command.status
                self.loop.stop()

    def due(self, slot: int) -> None:
        self.apply(self.state.due(slot))

    def spawn(self, command: mworker.Spawn) -> None:
        if self.state.phase in (mworker.Phase.STOPPING, mworker.Phase.DONE):
            return  # a program failed at start: the master is leaving
        ours, theirs = Channel.pair()
        argv = [sys.executable, "-m", "poise.process.worker", "--channel", str(theirs.fileno())]
        if command.count > 1:
            argv += ["--slot", str(command.slot), "--count", str(command.count)]
        if self.quiet:
            argv.append("-q")
        for path in self.files:
            argv += ["-f", path]
        env = {k: v for k, v in os.environ.items() if k != NOTIFY_ENV}  # the master's
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        try:
            proc = subprocess.Popen(
                argv, pass_fds=(theirs.fileno(),), cwd=cwd, env=env, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            ours.close()
            self.apply(self.state.spawn_failed(exc.strerror or str(exc), command))
            return
        finally:
            theirs.close()
        ours.sock.setblocking(False)
        commands = self.state.spawned(proc.pid, command)
        generation = self.state.workers[proc.pid].generation
        self.children[proc.pid] = Child(proc, ours, slot=command.slot, generation=generation)
        self.loop.add_reader(ours.fileno(), self.read, proc.pid)
        self.apply(commands)

    def forget(self, pid: int) -> None:
        child = self.children.pop(pid)
        if child.reading:
            self.loop.remove_reader(child.channel.fileno())
        child.channel.close()

    def say(self, level: str, text: str) -> None:
        console(level, text)
        # HAProxy 2.6's master sends nothing to syslog; poise sends its alerts only (why a
        # reload failed, a worker that died), so the normal sequence there is HAProxy's.
        if self.log is not None and level.lower() in ("alert", "emerg"):
            self.log.send(level, text)

    def notify(self, fields: Sequence[str]) -> None:
        fields = list(fields)
        if "READY=1" in fields:
            fields.insert(1, f"MAINPID={os.getpid()}")
        notify(fields)

    def started(self, command: mworker.Started) -> None:
        if command.ok:
            finish, terminate = self.handover
            problems = unix.signal_pids(finish, signal.SIGUSR1)
            problems += unix.signal_pids(terminate, signal.SIGTERM)
            for problem in problems:
                self.say("warning", problem)
        if self.startup is None:
            return
        if command.ok:
            self.startup.ready()
        else:
            self.startup.fail("\n".join(command.lines) or "poise: the worker could not start")


def lines(value: object) -> list[str]:
    """The text lines of a message field (anything else is dropped)."""
    if not isinstance(value, list):
        return []
    return [str(item) for item in value]
