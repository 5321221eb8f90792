"""The `poise` command: run, check, ctl, demo.

`poise run` keeps HAProxy's flags where they exist (-f, -db, -D, -p, -q), so a service file
written for haproxy needs only its binary name changed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from poise import __version__
from poise.config.diagnostics import Diagnostic, has_errors
from poise.config.load import load_config, resolve_servers
from poise.config.model import Config


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "ctl":
        from poise.cli_ctl import main as ctl_main

        return ctl_main(args[1:])
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 1
    if ns.command == "check":
        return cmd_check(ns.files)
    if ns.command == "run":
        from poise.start import run

        return run(
            ns.files,
            foreground=ns.db,
            daemon=ns.D,
            pidfile=ns.p,
            quiet=ns.q,
        )
    if ns.command == "demo":
        from poise.demo import demo

        return demo(port=ns.port, duration=ns.duration)
    if ns.command == "version":
        print(f"poise {__version__}")
        return 0
    parser.error(f"unknown command {ns.command}")
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poise", description=__doc__)
    parser.add_argument("--version", action="version", version=f"poise {__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the balancer (HAProxy's flags where they exist)")
    add_files(run)
    run.add_argument("-db", action="store_true", help="stay in the foreground (no daemon)")
    run.add_argument("-D", action="store_true", help="run as a daemon (as `daemon`)")
    run.add_argument("-p", metavar="PIDFILE", help="write the pid here (as `pidfile`)")
    run.add_argument("-q", action="store_true", help="quiet: no messages on the terminal")

    check = sub.add_parser("check", help="check a configuration: exit 0 if valid, else 1")
    add_files(check)

    demo = sub.add_parser("demo", help="two demo backends behind poise, on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="the balancer's port")
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")

    sub.add_parser("ctl", help="send a command to a stats socket: poise ctl -S SOCKET CMD")
    sub.add_parser("version", help="print the version")
    return parser


def add_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        dest="files",
        action="append",
        required=True,
        metavar="FILE|DIR",
        help="configuration file, or directory of *.cfg files (repeatable, read in order)",
    )


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)


def load(files: Sequence[str]) -> tuple[Config | None, dict[tuple[str, str], str]]:
    """Load, link and resolve; print every diagnostic. None when anything is wrong."""
    config, diagnostics = load_config(files, os.environ)
    addrs: dict[tuple[str, str], str] = {}
    if config is not None:
        addrs, more = resolve_servers(config)
        diagnostics = [*diagnostics, *more]
    print_diagnostics(diagnostics)
    if config is None or has_errors(diagnostics):
        return None, {}
    return config, addrs


def cmd_check(files: Sequence[str]) -> int:
    config, _ = load(files)
    if config is None:
        print("Fatal errors found in configuration.", file=sys.stderr)
        return 1
    print("Configuration file is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
