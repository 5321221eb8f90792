"""The `poise` command: run, check, ctl, demo.

`poise run` keeps HAProxy's flags where they exist (-f, -db, -D, -p, -q), so a service file
written for haproxy needs only its binary name changed.
"""

# One argument parser, one module per subcommand (its parser and its `main`): run.py,
# reload.py, check.py, demo.py; ctl.py, cert.py, vrrp.py and doctor.py parse their own
# arguments (they are handed the rest of the command line). The command line sits on top
# of everything: nothing under poise imports poise.cli (tests/unit/test_layers.py).

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from poise import __version__
from poise.cli import check, demo, reload, run

# Subcommands that read the rest of the command line themselves.
OWN_PARSERS = ("ctl", "cert", "vrrp", "doctor")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in OWN_PARSERS:
        return _own_parser_main(args[0], args[1:])
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 1
    if ns.command == "check":
        return check.main(ns)
    if ns.command == "run":
        return run.main(ns)
    if ns.command == "reload":
        return reload.main(ns)
    if ns.command == "demo":
        return demo.main(ns)
    if ns.command == "version":
        print(f"poise {__version__}")
        return 0
    parser.error(f"unknown command {ns.command}")
    return 2


def _own_parser_main(command: str, argv: list[str]) -> int:
    # Imported on demand: `poise ctl` need not load the balancer, nor `poise run` the CA.
    if command == "ctl":
        from poise.cli.ctl import main as ctl_main

        return ctl_main(argv)
    if command == "cert":
        from poise.cli.cert import main as cert_main

        return cert_main(argv)
    if command == "vrrp":
        from poise.cli.vrrp import main as vrrp_main

        return vrrp_main(argv)
    from poise.cli.doctor import main as doctor_main

    return doctor_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poise", description=__doc__)
    parser.add_argument("--version", action="version", version=f"poise {__version__}")
    sub = parser.add_subparsers(dest="command")
    run.add_parser(sub)
    reload.add_parser(sub)
    check.add_parser(sub)
    demo.add_parser(sub)
    sub.add_parser("ctl", help="send a command to a stats socket: poise ctl -S SOCKET CMD")
    sub.add_parser("cert", help="a small CA: poise cert ca|issue|show (poise cert -h)")
    sub.add_parser("vrrp", help="run the VRRP daemon: poise vrrp -f keepalived.conf")
    sub.add_parser("doctor", help="test a service through the balancer: poise doctor URL")
    sub.add_parser("version", help="print the version")
    return parser
