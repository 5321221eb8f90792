"""HAProxy's and Keepalived's own command lines, for unit files and scripts written for them.

`poise -Ws -f haproxy.cfg -p PIDFILE` (or poise installed under the name `haproxy`) is read
as HAProxy reads its command line, and poise installed under the name `keepalived` as
Keepalived reads its own: Debian's haproxy.service (`haproxy -Ws -f $CONFIG -p $PIDFILE
$EXTRAOPTS`, and `-c -q` before a reload) and keepalived.service (`keepalived --dont-fork
$DAEMON_ARGS`) then run poise with only the binary swapped. Each command line is translated
into the arguments of poise's own subcommand (`run`, `check`, `vrrp`), so every flag means
one thing and has one implementation; a HAProxy flag poise does not have is an error that
names it, as HAProxy's own usage error does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["NativeError", "translate"]

# HAProxy's flags that `poise run` takes as they are, with the number of values each takes.
# In check mode (-c) they are accepted and have no use (-c only reads the files), except
# -W and -Ws: a `program` section is refused without master-worker mode, with -c as well.
RUN_FLAGS = {"-db": 0, "-D": 0, "-W": 0, "-Ws": 0, "-q": 0, "-p": 1, "-x": 1, "-S": 1, "-L": 1}
# poise's own words, which keep their meaning whatever the program is called.
OWN = ("-h", "--help", "--version")


class NativeError(Exception):
    """A HAProxy flag poise does not have, or one missing its value."""


def translate(program: str, args: Sequence[str]) -> list[str]:
    """poise's own arguments for a command line written for `program` (argv[0]): the
    same arguments when they are poise's already."""
    name = os.path.basename(program)
    if name == "keepalived":
        return ["vrrp", *args]
    if name == "haproxy" or (args and args[0].startswith("-") and args[0] not in OWN):
        return haproxy(args)
    return list(args)


def haproxy(args: Sequence[str]) -> list[str]:
    """HAProxy 2.6's command line (`haproxy` with no arguments prints it) as poise's."""
    files: list[str] = []
    kept: list[str] = []  # for `run`, in their order
    check = quiet = master_worker = False
    i = 0
    while i < len(args):
        flag = args[i]
        i += 1
        if flag == "--":  # the rest are configuration files
            files.extend(args[i:])
            break
        if flag == "-f":
            files.append(value(args, i, flag))
            i += 1
        elif flag == "-c":
            check = True
        elif flag == "-q":
            quiet = True
            kept.append(flag)
        elif flag in ("-v", "-vv"):
            return ["version"]
        elif flag == "-V":  # verbose: poise's messages are HAProxy's default ones
            continue
        elif flag in ("-sf", "-st"):
            pids = []
            while i < len(args) and args[i].isdigit():
                pids.append(args[i])
                i += 1
            kept += [flag, *pids]
        elif flag in RUN_FLAGS:
            master_worker = master_worker or flag in ("-W", "-Ws")
            count = RUN_FLAGS[flag]
            kept += [flag, *(value(args, i, flag) for _ in range(count))]
            i += count
        else:
            raise NativeError(f"'{flag}' (HAProxy's command line) is not supported by poise")
    if check:
        mode = ["-W"] if master_worker else []
        return ["check", *(a for f in files for a in ("-f", f)), *mode, *(["-q"] if quiet else [])]
    return ["run", *(a for f in files for a in ("-f", f)), *kept]


def value(args: Sequence[str], i: int, flag: str) -> str:
    if i >= len(args):
        raise NativeError(f"'{flag}' expects an argument")
    return args[i]
