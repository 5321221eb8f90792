"""`poise run`: load, bind, daemonize, write the pidfile, chroot, drop privileges, serve.

HAProxy's order: everything that can fail for a user's reason fails first, on the
terminal, with exit status 1 and nothing left running: the configuration, server names,
the listening sockets (a port in use, a privileged port), the stats sockets, the user to
switch to. Only then does poise detach (`daemon`), write its pidfile, enter its chroot and
give up root.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

from poise import process
from poise.admin.server import open_admin_sockets
from poise.cli import load
from poise.net.listener import BindError
from poise.net.logsink import CONSOLE, console
from poise.net.loop import new_event_loop
from poise.runtime import Runtime, run_until_stopped


def run(
    files: Sequence[str],
    *,
    foreground: bool = False,
    daemon: bool = False,
    pidfile: str | None = None,
    quiet: bool = False,
) -> int:
    if quiet:
        CONSOLE.quiet = True
    # Until the event loop takes over the signals, SIGTERM still ends poise cleanly
    # (the pidfile is removed on the way out).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config, addrs = load(files)
    if config is None:
        return 1
    global_ = config.global_
    runtime = Runtime(config, addrs)
    try:
        runtime.bind()
        runtime.admin_socks = open_admin_sockets(global_.stats_sockets)
    except (BindError, OSError) as exc:
        console("ALERT", str(exc))
        runtime.close_listeners()
        return 1
    pidfile = pidfile or global_.pidfile
    detach = (daemon or global_.daemon) and not foreground
    is_root = os.geteuid() == 0
    ready: process.Startup | None = None
    if global_.chroot and not is_root:
        console("WARNING", f"not entering chroot '{global_.chroot}': not running as root.")
    try:
        if detach:
            ready = process.daemonize()
            CONSOLE.quiet = True
        if pidfile:
            process.write_pidfile(pidfile, os.getpid())
        # Everything imported later must be imported before the chroot hides the venv.
        loop = new_event_loop()
        prepare_for_chroot()
        if global_.chroot and is_root:
            process.enter_chroot(global_.chroot)
        process.drop_privileges(global_.uid, global_.gid, global_.user)
        run_until_stopped(runtime, loop, on_ready=ready.ready if ready is not None else None)
    except process.ProcessError as exc:
        console("ALERT", str(exc))
        if ready is not None:
            ready.fail(str(exc))
        return 1
    finally:
        if pidfile:
            process.remove_pidfile(pidfile)
    return 0


def prepare_for_chroot() -> None:
    """Import now what Python loads lazily (codecs for host names, the stdlib pieces the
    loop uses on first use): inside the chroot the interpreter's files are out of reach."""
    import encodings.idna  # noqa: F401
    import socket

    socket.getaddrinfo("127.0.0.1", 0, type=socket.SOCK_STREAM)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
