"""The `poise` command: run, reload, check, demo, ctl, cert, vrrp, doctor.

`poise run` keeps HAProxy's flags where they exist (-f, -db, -D, -W, -Ws, -p, -q, -sf,
-st, -x), and `poise -Ws -f FILE ...` (HAProxy's own command line, or poise installed as
`haproxy` or `keepalived`) is read as those programs read theirs, so a service file
written for them needs only its binary swapped.
"""

# One argument parser (build_parser), one module per subcommand with its part of the parser
# (add_parser) and its `main`, which gets the parsed arguments. The command line sits on top
# of everything: nothing under poise imports poise.cli (tests/unit/test_layers.py).

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from poise import __version__
from poise.cli import native

# `poise -h` lists them in this order. A command's module is imported only when it runs
# or a help lists it: `poise ctl` and `poise check`, which Keepalived's track scripts run
# every second, do not import cryptography, asyncio, the event loop... (issue 16).
COMMANDS = ("run", "reload", "check", "demo", "ctl", "cert", "vrrp", "doctor")
# These read their own command line before there was one parser: an argument they do not
# know is still reported with their own usage line, as it was.
OWN_USAGE = ("ctl", "cert", "vrrp", "doctor")


def main(argv: Sequence[str] | None = None, program: str | None = None) -> int:
    """`program` is the name poise was called by (argv[0]): as `haproxy` or `keepalived`
    it reads their command lines (native.py), as does `poise -f FILE ...`."""
    try:
        args = native.translate(
            sys.argv[0] if program is None else program,
            sys.argv[1:] if argv is None else argv,
        )
    except native.NativeError as e:
        print(f"poise: {e}", file=sys.stderr)
        return 1
    parser = build_parser(args[0] if args and args[0] in COMMANDS else None)
    ns, extra = parser.parse_known_args(args)
    if extra:
        subparser = parser if ns.command not in OWN_USAGE else ns.subparser
        subparser.error(f"unrecognized arguments: {' '.join(extra)}")
    if ns.command is None:
        parser.print_help()
        return 1
    if ns.command == "version":
        print(f"poise {__version__}")
        return 0
    status: int = command(ns.command).main(ns)
    return status


def command(name: str) -> ModuleType:
    """The module of the command `name` (poise.cli.NAME)."""
    return importlib.import_module(f"poise.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the command line of that command, the
    others being names without their arguments (the command is the first argument, so
    nothing else is parsed: their modules are not imported)."""
    parser = argparse.ArgumentParser(prog="poise", description=__doc__)
    parser.add_argument("--version", action="version", version=f"poise {__version__}")
    sub = parser.add_subparsers(dest="command")
    for name in COMMANDS:
        if only is None or name == only:
            command(name).add_parser(sub)
        else:
            sub.add_parser(name)
        sub.choices[name].set_defaults(subparser=sub.choices[name])
    sub.add_parser("version", help="print the version")
    return parser
