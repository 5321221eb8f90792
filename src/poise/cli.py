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
    if args and args[0] == "cert":
        from poise.cli_cert import main as cert_main

        return cert_main(args[1:])
    if args and args[0] == "vrrp":
        from poise.cli_vrrp import main as vrrp_main

        return vrrp_main(args[1:])
    if args and args[0] == "doctor":
        from poise.cli_doctor import main as doctor_main

        return doctor_main(args[1:])
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 1
    if ns.command == "check":
        return cmd_check(ns.files or [], ns.keepalived or [])
    if ns.command == "run":
        from poise.start import run

        return run(
            ns.files,
            foreground=ns.db,
            daemon=ns.D,
            pidfile=ns.p,
            quiet=ns.q,
            master_worker=ns.W,
            finish=ns.sf or (),
            terminate=ns.st or (),
        )
    if ns.command == "reload":
        return cmd_reload(ns.p, ns.files or [])
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
    run.add_argument(
        "-W", "-Ws", action="store_true", help="master-worker mode (as `master-worker`)"
    )
    for flag, signal_name in (("-sf", "SIGUSR1: finish"), ("-st", "SIGTERM: terminate")):
        run.add_argument(
            flag,
            nargs="*",
            type=int,
            metavar="PID",
            help=f"once serving, send {signal_name} to these (older) processes",
        )

    reload = sub.add_parser(
        "reload", help="reload a master-worker poise: poise reload -p PIDFILE [-f FILE...]"
    )
    reload.add_argument("-p", metavar="PIDFILE", required=True, help="the master's pidfile")
    add_files(reload, required=False)

    check = sub.add_parser("check", help="check a configuration: exit 0 if valid, else 1")
    add_files(check, required=False)
    check.add_argument(
        "-k",
        dest="keepalived",
        action="append",
        metavar="FILE",
        help="a keepalived.conf to check (as `poise vrrp -f FILE` reads it; repeatable)",
    )

    demo = sub.add_parser("demo", help="two demo backends behind poise, on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="the balancer's port")
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")

    sub.add_parser("ctl", help="send a command to a stats socket: poise ctl -S SOCKET CMD")
    sub.add_parser("cert", help="a small CA: poise cert ca|issue|show (poise cert -h)")
    sub.add_parser("vrrp", help="run the VRRP daemon: poise vrrp -f keepalived.conf")
    sub.add_parser("doctor", help="test a service through the balancer: poise doctor URL")
    sub.add_parser("version", help="print the version")
    return parser


def add_files(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "-f",
        dest="files",
        action="append",
        required=required,
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


def cmd_reload(pidfile: str, files: Sequence[str]) -> int:
    """`poise reload`: SIGUSR2 to the master named by the pidfile. With `-f`, the
    configuration is checked first, and a bad one is not even tried."""
    import signal

    from poise.process import ProcessError, read_pidfile, signal_pids

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


def cmd_check(files: Sequence[str], keepalived: Sequence[str] = ()) -> int:
    """`-f` files are one haproxy.cfg configuration; each `-k` file is a keepalived.conf.
    The exit status is 1 when any of them has an error."""
    if not files and not keepalived:
        print(
            "poise check: give -f FILE (haproxy.cfg) and/or -k FILE (keepalived.conf)",
            file=sys.stderr,
        )
        return 2
    status = 0
    if files:
        config, _ = load(files)
        if config is not None:
            # fd@N, sockpair@N: checked on this process's descriptors, as `haproxy -c` does.
            from poise.net.inherited import check_inherited

            problems = check_inherited(config)
            print_diagnostics(problems)
            if problems:
                config = None
        if config is None:
            print("Fatal errors found in configuration.", file=sys.stderr)
            status = 1
        else:
            print("Configuration file is valid")
    if keepalived:
        from poise.cli_vrrp import check_keepalived

        for path in keepalived:
            status = max(status, check_keepalived(path))
    return status


if __name__ == "__main__":
    sys.exit(main())
