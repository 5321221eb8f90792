"""`poise check -f FILE... [-k FILE...]`: validate haproxy.cfg and keepalived.conf files."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from poise.cli.files import add_files
from poise.config.haproxy_program import need_master_worker
from poise.system.load import load, print_diagnostics

if TYPE_CHECKING:
    from poise.config.model import Config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="check a configuration: exit 0 if valid, else 1")
    add_files(check, required=False)
    check.add_argument(
        "-k",
        dest="keepalived",
        action="append",
        metavar="FILE",
        help="a keepalived.conf to check (as `poise vrrp -f FILE` reads it; repeatable)",
    )
    check.add_argument(
        "-W",
        "-Ws",
        dest="master_worker",
        action="store_true",
        help="as `poise run -W` would run it: in master-worker mode (haproxy -c -W)",
    )
    check.add_argument(
        "-q", action="store_true", help="quiet: print nothing, the exit status says (haproxy -c -q)"
    )


def main(ns: argparse.Namespace) -> int:
    if not ns.q:
        return cmd_check(ns.files or [], ns.keepalived or [], ns.master_worker)
    with (
        open(os.devnull, "w") as nowhere,
        contextlib.redirect_stdout(nowhere),
        contextlib.redirect_stderr(nowhere),
    ):
        return cmd_check(ns.files or [], ns.keepalived or [], ns.master_worker)


def cmd_check(
    files: Sequence[str], keepalived: Sequence[str] = (), master_worker: bool = False
) -> int:
    """`-f` files are one haproxy.cfg configuration; each `-k` file is a keepalived.conf.
    The exit status is 1 when any of them has an error. `master_worker`: -W was given
    (`program` sections need that mode)."""
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
            problems = need_master_worker(config, master_worker)
            if names_descriptors(config):
                # fd@N, sockpair@N: checked on this process's descriptors, as `haproxy -c`
                # does (imported only then: net/ brings asyncio, issue 16's start-up time).
                from poise.net.inherited import check_inherited

                problems = check_inherited(config) + problems
            print_diagnostics(problems)
            if problems:
                config = None
        if config is None:
            print("Fatal errors found in configuration.", file=sys.stderr)
            status = 1
        else:
            print("Configuration file is valid")
    if keepalived:
        from poise.cli.vrrp import check_keepalived

        for path in keepalived:
            status = max(status, check_keepalived(path))
    return status


def names_descriptors(config: Config) -> bool:
    """Whether an address that net/inherited.py's inherited_addresses walks (stats
    sockets, binds, servers) is `fd@N` or `sockpair@N`."""
    addresses = [sock.address for sock in config.global_.stats_sockets]
    addresses += [bind.address for proxy in config.frontends for bind in proxy.binds]
    addresses += [server.address for proxy in config.backends for server in proxy.servers]
    return any(address.inherited_fd is not None for address in addresses)
