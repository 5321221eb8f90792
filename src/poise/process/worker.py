"""A worker of a master (master-worker mode): `python -m poise.process.worker --channel FD
-f FILE`.

The master starts one at start-up and one at each reload. It reads the configuration
files as they are now (so a reload takes every change: servers, certificates, rules),
asks the master for its listening sockets (handover.py), enters the chroot, gives up root
and serves; then it tells the master it is ready, and the master tells the worker before
it to leave. Anything wrong before that (a configuration error, a port the master cannot
bind, a user that does not exist) is sent to the master as the lines to log, and the worker
exits: the worker in place was never touched.

The master's signals: SIGUSR1 finish the open sessions and leave (`hard-stop-after`
bounds it), SIGTERM leave at once. SIGHUP and SIGUSR2 (a reload, for the master) are
ignored. A master that goes away (its end of the channel closes) takes the worker with it,
as HAProxy's workers do.

With `nbthread N > 1` the master starts N workers per generation, each with its slot
(`--slot K --count N`): worker K takes shard K of each `bind` (handover.py), runs on the
CPUs `cpu-map` gives thread K+1, and talks with the others of its generation over the
master's channel (bus.py: its Context's `siblings`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence

from poise.config import model
from poise.config.cpumap import cpus_for
from poise.config.diagnostics import has_errors
from poise.net.listener import BindError
from poise.net.logsink import CONSOLE, console
from poise.process import unix
from poise.process.bus import Bus
from poise.process.handover import Channel, Inherited, specs_for
from poise.process.runtime import Runtime
from poise.process.start import confine, open_runtime, warn_chroot
from poise.system.load import load_config, resolve_servers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="poise-worker", description=__doc__)
    parser.add_argument("--channel", type=int, required=True, help="the master's channel fd")
    parser.add_argument("-f", dest="files", action="append", required=True)
    parser.add_argument("-q", action="store_true", help="quiet")
    parser.add_argument("--slot", type=int, default=0, help="this worker's slot (nbthread)")
    parser.add_argument("--count", type=int, default=1, help="workers per generation")
    args = parser.parse_args(argv)
    if args.q:
        CONSOLE.quiet = True
    # A reload is the master's business; SIGTERM ends the worker until the loop serves.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    channel = Channel(socket.socket(fileno=args.channel))
    try:
        return run(args.files, channel, args.slot, args.count)
    except Exception as exc:  # a bug: still say why to the master, then show it
        fail(channel, [f"the new worker failed: {exc!r}"])
        raise
    finally:
        channel.close()


def fail(channel: Channel, lines: list[str]) -> None:
    with contextlib.suppress(OSError):  # the master is gone: nobody to tell
        channel.send({"op": "failed", "lines": lines})


def run(files: Sequence[str], channel: Channel, slot: int = 0, count: int = 1) -> int:
    config, diagnostics = load_config(files)
    addrs: dict[tuple[str, str], str] = {}
    if config is not None and not has_errors(diagnostics):
        addrs, more = resolve_servers(config)
        diagnostics = [*diagnostics, *more]
    lines = [str(d) for d in diagnostics]
    if config is None or has_errors(diagnostics):
        fail(channel, [*lines, "Fatal errors found in configuration."])
        return 1
    specs = specs_for(config, slot, count)
    try:
        fds = channel.request_sockets(specs, lines)
    except BindError as exc:
        fail(channel, [str(exc)])
        return 1
    inherited = Inherited(specs, fds, slot if count > 1 else 0)
    try:
        runtime = open_runtime(config, addrs, inherited)
    except (BindError, OSError) as exc:
        fail(channel, [str(exc)])
        return 1
    finally:
        inherited.close_unused()
    warn_chroot(config.global_)
    if count > 1:
        runtime.siblings = Bus(slot, count, channel.send)
        pin(config.global_, slot)
    try:
        loop = confine(config.global_)
    except unix.ProcessError as exc:
        runtime.close_listeners()
        fail(channel, [str(exc)])
        return 1
    serve(runtime, loop, channel)
    return 0


def serve(runtime: Runtime, loop: asyncio.AbstractEventLoop, channel: Channel) -> None:
    def ready() -> None:
        try:
            channel.send({"op": "ready"})
        except OSError:
            master_gone()

    def master_gone() -> None:
        loop.remove_reader(channel.fileno())
        if runtime.stopped is None or not runtime.stopped.is_set():
            console("ALERT", "The master process is gone: stopping.")
            runtime.stop_now()

    def from_master() -> None:
        try:
            message, fds = channel.receive()
        except BlockingIOError:
            return
        except (OSError, ValueError):
            message, fds = None, []
        for fd in fds:
            socket.socket(fileno=fd).close()
        if message is None:
            master_gone()
        elif isinstance(runtime.siblings, Bus):
            runtime.siblings.receive(message)

    async def main() -> None:
        runtime.install_signals()
        channel.sock.setblocking(False)
        loop.add_reader(channel.fileno(), from_master)
        await runtime.serve(on_ready=ready)

    try:
        loop.run_until_complete(main())
    finally:
        runtime.close()
        loop.close()


def pin(global_: model.Global, slot: int) -> None:
    """Run on the CPUs `cpu-map` gives thread slot+1, those that exist (load.py warned
    about the others); nowhere in particular when none is left."""
    wanted = cpus_for(slot + 1, global_.cpu_maps)
    if wanted is None:
        return
    cpus = wanted & os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)


if __name__ == "__main__":
    sys.exit(main())
