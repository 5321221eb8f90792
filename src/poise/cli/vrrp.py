"""`poise vrrp -f keepalived.conf [-D|-db] [-p PIDFILE]`: the VRRP daemon; and
`check_keepalived`, what `poise check -k FILE` does.

The flags are `poise run`'s: `-D` detaches (logs then go to syslog, /dev/log, facility
daemon), `-db` stays in the foreground (the default; logs on stderr), `-p PIDFILE`. Where
Keepalived's long flags mean the same they are accepted too (`--use-file`, `--dont-fork`,
`--log-console`, `--pid`/`--vrrp_pid`, `--vrrp`, `--config-test`); Keepalived's short `-D`
(log detail) is `--log-detail` here, since `-D` means "detach" for every poise command.
"""

from __future__ import annotations

import argparse
import sys

from poise import __version__

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


def check_keepalived(path: str) -> int:
    """Validate keepalived.conf (syntax and the running system): print every problem, then
    "Configuration file is valid" and 0, or "Fatal errors found in configuration." and 1."""
    from poise.vrrp.system import load

    config, diagnostics = load(path)
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
    if config is None:
        print("Fatal errors found in configuration.", file=sys.stderr)
        return 1
    print("Configuration file is valid")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "vrrp",
        help="run the VRRP daemon: poise vrrp -f keepalived.conf",
        description="Run the VRRP daemon on a Keepalived configuration (keepalived.conf).",
    )
    parser.add_argument("--version", action="version", version=f"poise {__version__}")
    parser.add_argument(
        "-f",
        "--use-file",
        dest="file",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"keepalived.conf (default {DEFAULT_CONFIG})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-D", dest="daemon", action="store_true", help="detach and run as a daemon (logs to syslog)"
    )
    mode.add_argument(
        "-db",
        "-n",
        "--dont-fork",
        dest="foreground",
        action="store_true",
        help="stay in the foreground (the default; logs on stderr)",
    )
    parser.add_argument(
        "--log-detail",
        dest="detail",
        action="store_true",
        help="log more detail (every advert dropped, every script result)",
    )
    parser.add_argument(
        "-l",
        "--log-console",
        dest="console",
        action="store_true",
        help="accepted for Keepalived's command line: in the foreground poise logs on stderr",
    )
    parser.add_argument(
        "-p",
        "--pid",
        "-r",
        "--vrrp_pid",
        dest="pidfile",
        metavar="PIDFILE",
        help="write the daemon's pid here",
    )
    parser.add_argument(
        "-P",
        "--vrrp",
        dest="vrrp_only",
        action="store_true",
        help="only VRRP (accepted for Keepalived's command line: always so)",
    )
    parser.add_argument(
        "-t",
        "--config-test",
        dest="test",
        action="store_true",
        help="check the configuration and exit (as poise check -k)",
    )


# keepalived -t's exit status for a file with errors (Keepalived 2.2.7's
# KEEPALIVED_EXIT_CONFIG_TEST), which scripts written for it may test
KEEPALIVED_EXIT_CONFIG_TEST = 5


def main(args: argparse.Namespace) -> int:
    if args.test:
        return KEEPALIVED_EXIT_CONFIG_TEST if check_keepalived(args.file) else 0
    from poise.process.vrrp import run

    return run(args.file, daemon=args.daemon, detail=args.detail, pidfile=args.pidfile)
