"""`poise run`: load, bind, daemonize, write the pidfile, chroot, drop privileges, serve.

HAProxy's order: everything that can fail for a user's reason fails first, on the
terminal, with exit status 1 and nothing left running: the configuration, server names,
the listening sockets (a port in use, a privileged port), the stats sockets, the user to
switch to. Only then does poise detach (`daemon`), write its pidfile, enter its chroot and
give up root.

In master-worker mode (`master-worker`, `-W`) the sequence is split in two: the master
(master.py) loads, binds, detaches and writes the pidfile; each worker (worker.py) loads the
configuration again, takes the master's sockets, enters the chroot, gives up root and
serves. `open_runtime()` and `confine()` are the steps both take, so that what a process
needs before it serves is set up in one place for both.

`-sf PID...` / `-st PID...` (a start without a master, HAProxy's hand-over): once it
serves, the new process sends SIGUSR1 (finish the open sessions) or SIGTERM (stop at once)
to the old ones. SO_REUSEPORT lets it bind while they still listen. With `-x SOCKET` (a
stats socket of the old process with `expose-fd listeners`), it takes the old process's
listening sockets instead of binding its own (net/getsocks.py), so that no connection
waiting in their queues is refused when the old process closes them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence

from poise.config import model
from poise.config.haproxy_program import need_master_worker
from poise.net import getsocks
from poise.net.admin_socket import open_admin_sockets
from poise.net.inherited import open_bind, server_sockpairs
from poise.net.listener import BindError
from poise.net.logsink import CONSOLE, console
from poise.net.loop import new_event_loop
from poise.process import unix
from poise.process.handover import Inherited
from poise.process.runtime import Runtime, run_until_stopped
from poise.system.load import load, print_diagnostics
from poise.system.notify import notify


def run(
    files: Sequence[str],
    *,
    foreground: bool = False,
    daemon: bool = False,
    pidfile: str | None = None,
    quiet: bool = False,
    master_worker: bool = False,
    finish: Sequence[int] = (),
    terminate: Sequence[int] = (),
    old_socket: str | None = None,
    localpeer: str | None = None,
) -> int:
    if quiet:
        CONSOLE.quiet = True
    if localpeer is not None:  # `-L`: HAProxy exports the local peer's name likewise
        os.environ["HAPROXY_LOCALPEER"] = localpeer
    # Until the event loop takes over the signals, SIGTERM still ends poise cleanly
    # (the pidfile is removed on the way out).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config, addrs = load(files)
    if config is None:
        return 1
    global_ = config.global_
    pidfile = pidfile or global_.pidfile
    detach = (daemon or global_.daemon) and not foreground
    problems = need_master_worker(config, master_worker)
    if problems:
        print_diagnostics(problems)
        return 1
    # `nbthread N > 1`: N workers, so a master that holds their sockets (HAProxy runs
    # threads in one process: it needs no -W for it).
    if master_worker or global_.master_worker or global_.nbthread > 1:
        if old_socket is not None:
            console("ALERT", "'-x' in master-worker mode is not implemented yet in poise")
            return 1
        from poise.process.master import run_master

        return run_master(
            files,
            config,
            detach=detach,
            pidfile=pidfile,
            quiet=quiet,
            finish=finish,
            terminate=terminate,
        )
    taken: list[socket.socket] = []
    if old_socket is not None and old_socket != "/dev/null":  # HAProxy's "no socket"
        try:
            taken = getsocks.take(old_socket)
        except getsocks.TransferError as exc:
            console("WARNING", str(exc))
            console("ALERT", "Failed to get the sockets from the old process!")
            return 1
    try:
        runtime = open_runtime(config, addrs, taken=taken)
    except (BindError, OSError) as exc:
        console("ALERT", str(exc))
        return 1
    finally:
        for sock in taken:  # those no `bind` line of ours wanted
            sock.close()
    warn_chroot(global_)
    ready: unix.Startup | None = None
    try:
        if detach:
            ready = unix.daemonize()
            CONSOLE.quiet = True
        if pidfile:
            unix.write_pidfile(pidfile, os.getpid())
        loop = confine(global_)
        on_ready = serving(ready.ready if ready is not None else None, finish, terminate)
        run_until_stopped(runtime, loop, on_ready=on_ready)
    except unix.ProcessError as exc:
        console("ALERT", str(exc))
        if ready is not None:
            ready.fail(str(exc))
        return 1
    finally:
        if pidfile:
            unix.remove_pidfile(pidfile)
    return 0


def open_runtime(
    config: model.Config,
    addrs: dict[tuple[str, str], str],
    inherited: Inherited | None = None,
    taken: list[socket.socket] | None = None,
) -> Runtime:
    """The runtime with its listening and stats sockets: bound here (or `taken` from an
    old process, `-x`), or (in a worker) the master's. Raises BindError or OSError, with
    nothing left open."""
    runtime = Runtime(config, addrs)
    try:
        if inherited is None:
            runtime.bind(getsocks.taking(taken) if taken else open_bind)
            runtime.admin_socks = open_admin_sockets(config.global_.stats_sockets)
            runtime.sockpairs = server_sockpairs(config)
        else:
            runtime.in_worker = True
            runtime.bind(inherited.listener)
            runtime.admin_socks = inherited.admin_sockets(config.global_.stats_sockets)
            runtime.sockpairs = inherited.server_sockpairs(config)
    except BaseException:
        runtime.close_listeners()
        raise
    return runtime


def confine(global_: model.Global) -> asyncio.AbstractEventLoop:
    """The event loop, then `chroot` and the privilege drop; raises ProcessError."""
    is_root = os.geteuid() == 0
    # Everything imported later must be imported before the chroot hides the venv.
    loop = new_event_loop()
    prepare_for_chroot()
    try:
        if global_.chroot and is_root:
            unix.enter_chroot(global_.chroot)
        unix.drop_privileges(global_.uid, global_.gid, global_.user)
    except BaseException:
        loop.close()
        raise
    return loop


def warn_chroot(global_: model.Global) -> None:
    if global_.chroot and os.geteuid() != 0:
        console("WARNING", f"not entering chroot '{global_.chroot}': not running as root.")


def serving(
    then: Callable[[], None] | None, finish: Sequence[int], terminate: Sequence[int]
) -> Callable[[], None]:
    """What to do once poise serves: tell the waiting parent (`then`) and systemd, and
    hand over from the old processes (`-sf`, `-st`)."""

    def ready() -> None:
        if then is not None:
            then()
        notify(("READY=1", f"MAINPID={os.getpid()}", "STATUS=Ready."))
        problems = unix.signal_pids(finish, signal.SIGUSR1)
        problems += unix.signal_pids(terminate, signal.SIGTERM)
        for problem in problems:
            console("WARNING", problem)

    return ready


def prepare_for_chroot() -> None:
    """Import now what Python loads lazily (codecs for host names, the stdlib pieces the
    loop uses on first use): inside the chroot the interpreter's files are out of reach."""
    import encodings.idna  # noqa: F401
    import socket

    socket.getaddrinfo("127.0.0.1", 0, type=socket.SOCK_STREAM)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
