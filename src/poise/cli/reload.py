"""`poise reload -p PIDFILE [-f FILE...]`: SIGUSR2 to a master-worker poise."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from poise.cli.files import add_files
from poise.system.load import load


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reload = sub.add_parser(
        "reload", help="reload a master-worker poise: poise reload -p PIDFILE [-f FILE...]"
    )
    reload.add_argument("-p", metavar="PIDFILE", required=True, help="the master's pidfile")
    add_files(reload, required=False)


def main(ns: argparse.Namespace) -> int:
    return cmd_reload(ns.p, ns.files or [])


def cmd_reload(pidfile: str, files: Sequence[str]) -> int:
    """`poise reload`: SIGUSR2 to the master named by the pidfile. With `-f`, the
    configuration is checked first, and a bad one is not even tried."""
    import signal

    from poise.process.unix import ProcessError, read_pidfile, signal_pids

    if files:
        config, _ = load(files)
        if config is None:
            print("Fatal errors found in configuration: not reloading.", file=sys.stderr)
            return 1
    try:
        pid = read_pidfile(pidfile)
    except ProcessError as exc:
        print(f"poise reload: {exc}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print(f"poise reload: no process {pid} (from '{pidfile}')", file=sys.stderr)
        return 1
    except PermissionError:
        pass  # signal_pids says it
    problems = signal_pids([pid], signal.SIGUSR2)
    for problem in problems:
        print(f"poise reload: {problem}", file=sys.stderr)
    return 1 if problems else 0
