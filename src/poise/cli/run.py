"""`poise run`: the subcommand's parser, handing over to the process layer (process/start.py)."""

from __future__ import annotations

import argparse

from poise.cli.files import add_files


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the balancer (HAProxy's flags where they exist)")
    add_files(run)
    run.add_argument("-db", action="store_true", help="stay in the foreground (no daemon)")
    run.add_argument("-D", action="store_true", help="run as a daemon (as `daemon`)")
    run.add_argument("-p", metavar="PIDFILE", help="write the pid here (as `pidfile`)")
    run.add_argument("-q", action="store_true", help="quiet: no messages on the terminal")
    run.add_argument(
        "-W", "-Ws", action="store_true", help="master-worker mode (as `master-worker`)"
    )
    run.add_argument(
        "-L",
        metavar="NAME",
        help="this node's name in `peers` sections (as `localpeer`; default: the host name)",
    )
    run.add_argument(
        "-x",
        metavar="SOCKET",
        help="take the listening sockets of the old process from its stats socket "
        "(`expose-fd listeners`)",
    )
    for flag, signal_name in (("-sf", "SIGUSR1: finish"), ("-st", "SIGTERM: terminate")):
        run.add_argument(
            flag,
            nargs="*",
            type=int,
            metavar="PID",
            help=f"once serving, send {signal_name} to these (older) processes",
        )


def main(ns: argparse.Namespace) -> int:
    from poise.process.start import run

    return run(
        ns.files,
        foreground=ns.db,
        daemon=ns.D,
        pidfile=ns.p,
        quiet=ns.q,
        master_worker=ns.W,
        finish=ns.sf or (),
        terminate=ns.st or (),
        old_socket=ns.x,
        localpeer=ns.L,
    )
