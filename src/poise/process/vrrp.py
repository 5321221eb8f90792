"""`poise vrrp` as a process: load the configuration, open the sockets, detach (-D), write
the pidfile, then serve until SIGTERM or SIGINT; SIGHUP reloads the configuration (the
daemon re-reads it between two events; a file with errors is refused with each error at
FILE:LINE in the log, and the running configuration is kept). Under systemd
(`Type=notify`, $NOTIFY_SOCKET) the daemon says READY=1 once it serves, RELOADING=1 then
READY=1 around a reload, and STOPPING=1, as Keepalived 2.2.7 does. keepalived.conf's
virtual servers are served alongside (vrrp/lvs.py): listening from the start, checking
their real servers until the daemon stops. `vrrp_priority`, `vrrp_cpu_affinity`,
`vrrp_no_swap` (vrrp/tuning.py) and the real-time settings (vrrp/realtime.py) are applied at
start-up and again by each reload, as Keepalived 2.2.7 applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from poise.process import unix
from poise.vrrp.daemon import Daemon
from poise.vrrp.log import Logger
from poise.vrrp.lvs import Lvs
from poise.vrrp.realtime import Realtime
from poise.vrrp.router import StartError
from poise.vrrp.system import load
from poise.vrrp.tuning import Tuning


def run(
    path: str, *, daemon: bool = False, detail: bool = False, pidfile: str | None = None
) -> int:
    """`poise vrrp`: exit status 1 for anything that stops it from starting."""
    log = Logger(detail=detail)
    config, diagnostics = load(path)
    for diagnostic in diagnostics:
        log.info(str(diagnostic))
    if config is None:
        log.error("Fatal errors found in configuration.")
        return 1
    services = Lvs(config, log)
    vrrp = Daemon(config, log, path)
    try:
        vrrp.open()
        services.open()
    except (StartError, OSError) as exc:
        log.error(f"cannot start: {exc}")
        services.close()
        vrrp.close()
        return 1
    ready: unix.Startup | None = None
    try:
        if daemon:
            ready = unix.daemonize()
            log.use_syslog()
        if pidfile:
            unix.write_pidfile(pidfile, os.getpid())
        log.info(f"Starting VRRP child process, pid={os.getpid()}")
        tuning = Tuning(log)
        tuning.apply(config.global_defs)
        realtime = Realtime(config.global_defs, log)
        vrrp.reloaded.append(lambda new: tuning.apply(new.global_defs))
        vrrp.reloaded.append(lambda new: realtime.reload(new.global_defs))
        asyncio.run(_main(vrrp, services, ready, realtime))
    except unix.ProcessError as exc:
        log.error(str(exc))
        if ready is not None:
            ready.fail(str(exc))
        return 1
    finally:
        services.close()
        vrrp.close()
        if pidfile:
            with contextlib.suppress(unix.ProcessError):
                unix.remove_pidfile(pidfile)
        log.close()
    return 0


async def _main(
    vrrp: Daemon, services: Lvs, ready: unix.Startup | None, realtime: Realtime
) -> None:
    loop = asyncio.get_running_loop()
    realtime.start(loop)
    services.start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        vrrp.reload()
        task = loop.create_task(services.reload(vrrp.path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    serving = loop.create_task(vrrp.serve(stop))
    if ready is not None:
        ready.ready()
    try:
        await serving
    finally:
        realtime.stop()
        await services.stop()
