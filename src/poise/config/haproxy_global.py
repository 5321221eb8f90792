"""The `global` section of haproxy.cfg, and the `log` line that proxies share with it.

HAProxy's configuration.txt section 3 (3.1 "Process management and security", 3.2
"Performance tuning") gives each keyword's arguments and units. As in HAProxy, a process
setting written twice keeps its first value and the second line is reported ("already
specified"), and `user`/`uid` (`group`/`gid`) are one setting written two ways. `user` and
`group` names are looked up by load.py (the shell), which reports an unknown one at its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from poise.config import address, default_path, haproxy_tls, keywords
from poise.config.cpumap import MAX_IDS, CpuMapError, parse_cpu_map
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import GlobalDraft, Problem
from poise.config.haproxy_server import parse_bind_options
from poise.config.lexer import Line, expand_address
from poise.config.model import LogFormatName, LogTarget, StatsSocket, Where
from poise.config.tune import LOG_LENGTH
from poise.config.units import parse_int, parse_time

_NODE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def parse_log_target(words: Sequence[str], where: Where) -> LogTarget:
    """`ADDR [len N] [format F] FACILITY [LEVEL [MINLEVEL]]` (the words after `log`)."""
    if len(words) < 2:
        raise Problem("expects an address and a facility (log ADDRESS [len N] [format F] FACILITY)")
    try:
        kind, host, port = address.parse_log(words[0])
    except address.AddressError as exc:
        raise Problem(str(exc)) from None
    # HAProxy's default format is `local`: rfc3164 without the host name.
    length, fmt = LOG_LENGTH, "local"
    rest = list(words[1:])
    while rest and rest[0] in ("len", "format", "sample"):
        option = rest.pop(0)
        if not rest:
            raise Problem(f"'{option}' expects a value")
        value = rest.pop(0)
        if option == "len":
            try:
                length = parse_int(value, 80, 65535)
            except ValueError as exc:
                raise Problem(f"invalid log length '{value}': {exc}") from None
        elif option == "format":
            if value not in keywords.LOG_FORMATS:
                raise Problem(
                    f"unknown log format '{value}' (known: {', '.join(keywords.LOG_FORMATS)})"
                )
            fmt = value
        else:
            raise Problem("log sampling ('sample') is not implemented yet in poise")
    if not rest:
        raise Problem("expects a facility after the address")
    facility = rest.pop(0)
    if facility not in keywords.LOG_FACILITIES:
        hint = keywords.did_you_mean(facility, keywords.LOG_FACILITIES)
        raise Problem(f"unknown log facility '{facility}'{hint}")
    levels: list[str] = []
    for level in rest:
        if len(levels) == 2:
            raise Problem(f"unexpected argument '{level}'")
        if level not in keywords.LOG_LEVELS:
            raise Problem(f"unknown log level '{level}' (known: {', '.join(keywords.LOG_LEVELS)})")
        levels.append(level)
    return LogTarget(
        kind=kind,
        address=host,
        port=port,
        facility=facility,
        where=where,
        level=levels[0] if levels else None,
        minlevel=levels[1] if len(levels) > 1 else None,
        format=cast(LogFormatName, fmt),
        length=length,
    )


def _arg(args: Sequence[str], what: str) -> str:
    if not args or not args[0]:
        raise Problem(f"expects {what}")
    if len(args) > 1:
        raise Problem(f"unexpected argument '{args[1]}'")
    return args[0]


def _time(args: Sequence[str]) -> int:
    try:
        return parse_time(_arg(args, "a duration"))
    except ValueError as exc:
        raise Problem(str(exc)) from None


def _int(args: Sequence[str], low: int | None = None, high: int | None = None) -> int:
    try:
        return parse_int(_arg(args, "a number"), low, high)
    except ValueError as exc:
        raise Problem(str(exc)) from None


class GlobalParser:
    """Applies the lines of `global` sections to one GlobalDraft."""

    def __init__(
        self,
        draft: GlobalDraft,
        diagnostics: list[Diagnostic],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.draft = draft
        self.diagnostics = diagnostics
        self.env = env or {}  # for `$VAR` in addresses (lexer.expand_address)
        self.handlers: dict[str, Callable[[Sequence[str], Where], None]] = {
            "maxconn": self.maxconn,
            "daemon": self.daemon,
            "pidfile": self.pidfile,
            "user": self.user,
            "uid": self.uid,
            "group": self.group,
            "gid": self.gid,
            "chroot": self.chroot,
            "default-path": self.default_path,
            "zero-warning": self.zero_warning,
            "log": self.log,
            "log-tag": self.log_tag,
            "log-send-hostname": self.log_send_hostname,
            "stats": self.stats,
            "hard-stop-after": self.hard_stop_after,
            "master-worker": self.master_worker,
            "mworker-max-reloads": self.mworker_max_reloads,
            "spread-checks": self.spread_checks,
            "node": self.node,
            "nbthread": self.nbthread,
            "cpu-map": self.cpu_map,
            "description": self.description,
            "noreuseport": self.noreuseport,
            "expose-experimental-directives": self.experimental,
            "tune.maxaccept": self.maxaccept,
            "server-state-file": lambda args, where: self.set(
                server_state_file=_arg(args, "a file name")
            ),
            "localpeer": lambda args, where: self.set(localpeer=_arg(args, "a peer name")),
            "server-state-base": lambda args, where: self.set(
                server_state_base=_arg(args, "a directory")
            ),
            **haproxy_tls.global_handlers(
                lambda: self.draft.values.tls, lambda tls: self.set(tls=tls)
            ),
        }

    def feed(self, line: Line) -> None:
        keyword, args = line.words[0], line.words[1:]
        handler = self.handlers.get(keyword)
        try:
            if handler is not None:
                handler(args, line.where)
            elif keyword in keywords.HARMLESS_GLOBAL:
                reason = keywords.HARMLESS_GLOBAL[keyword]
                self.diagnostics.append(warning(line.where, f"ignored: {reason}", keyword))
            elif keyword in keywords.REMOVED_KEYWORDS:
                instead = keywords.REMOVED_KEYWORDS[keyword]
                raise Problem(f"removed from HAProxy; use '{instead}' instead")
            elif keyword in keywords.GLOBAL_KEYWORDS:
                raise Problem("this HAProxy keyword is not implemented yet in poise")
            else:
                if keyword in keywords.PROXY_FIRST_WORDS:
                    hint = " (it belongs in a defaults, frontend, backend or listen section)"
                else:
                    hint = keywords.did_you_mean(keyword, keywords.GLOBAL_KEYWORDS)
                raise Problem(f"unknown keyword in 'global' section{hint}")
        except ValueError as exc:  # Problem, and the ValueErrors of units and addresses
            self.diagnostics.append(error(line.where, str(exc), keyword))

    def once(self, setting: str, where: Where, keyword: str) -> bool:
        """True the first time a setting is written; later ones are reported and ignored
        (HAProxy keeps the first value and goes on)."""
        first = self.draft.seen.get(setting)
        if first is None:
            self.draft.seen[setting] = where
            return True
        self.diagnostics.append(
            warning(where, f"already specified at {first}; this line is ignored", keyword)
        )
        return False

    def set(self, **changes: Any) -> None:
        self.draft.values = replace(self.draft.values, **changes)

    def maxconn(self, args: Sequence[str], where: Where) -> None:
        value = _int(args, 1)
        if self.once("maxconn", where, "maxconn"):
            self.set(maxconn=value)

    def experimental(self, args: Sequence[str], where: Where) -> None:
        """HAProxy's experimental keywords may follow (poise has `normalize-uri`)."""
        if args:
            raise Problem(f"unexpected argument '{args[0]}'")
        self.draft.experimental = True

    def daemon(self, args: Sequence[str], where: Where) -> None:
        if args:
            raise Problem(f"unexpected argument '{args[0]}'")
        self.set(daemon=True)

    def pidfile(self, args: Sequence[str], where: Where) -> None:
        path = _arg(args, "a file name")
        if self.once("pidfile", where, "pidfile"):
            self.set(pidfile=path)

    def zero_warning(self, args: Sequence[str], where: Where) -> None:
        """`zero-warning`: a configuration with any warning is refused (config/haproxy.py)."""
        if args:
            raise Problem(f"'zero-warning' cannot handle unexpected argument '{args[0]}'.")
        self.draft.zero_warning = where

    def default_path(self, args: Sequence[str], where: Where) -> None:
        """`default-path current|config|parent|origin PATH` (config/default_path.py);
        HAProxy 2.6's messages."""
        mode = args[0] if args else ""
        if mode not in default_path.MODES:
            raise Problem(
                f"{'unsupported' if mode else 'missing'} default-path mode '{mode}' for "
                "'default-path', supported modes include 'current', 'config', 'parent', "
                "and 'origin'."
            )
        origin = args[1] if len(args) > 1 else ""
        if mode == "origin" and not origin:
            raise Problem("'default-path origin' expects a directory as an argument.")
        if len(args) > (2 if mode == "origin" else 1):  # HAProxy 2.6 takes them silently
            self.diagnostics.append(
                warning(where, f"ignored: unexpected argument '{args[-1]}'", "default-path")
            )
        default_path.set_mode(where, mode, origin)

    def chroot(self, args: Sequence[str], where: Where) -> None:
        path = _arg(args, "a directory")
        if self.once("chroot", where, "chroot"):
            self.set(chroot=path)

    def user(self, args: Sequence[str], where: Where) -> None:
        name = _arg(args, "a user name")
        if self.once("user/uid", where, "user"):
            self.set(user=name, user_where=where)

    def uid(self, args: Sequence[str], where: Where) -> None:
        value = _int(args, 0)
        if self.once("user/uid", where, "uid"):
            self.set(uid=value)

    def group(self, args: Sequence[str], where: Where) -> None:
        name = _arg(args, "a group name")
        if self.once("group/gid", where, "group"):
            self.set(group=name, group_where=where)

    def gid(self, args: Sequence[str], where: Where) -> None:
        value = _int(args, 0)
        if self.once("group/gid", where, "gid"):
            self.set(gid=value)

    def log(self, args: Sequence[str], where: Where) -> None:
        if args[:1] == ("global",):
            raise Problem("'log global' is for proxies; the global section names its targets")
        target = parse_log_target([expand_address(args[0], self.env), *args[1:]], where)
        self.set(logs=(*self.draft.values.logs, target))

    def log_tag(self, args: Sequence[str], where: Where) -> None:
        """`log-tag TAG`: the syslog tag of every log line (HAProxy's is `haproxy`)."""
        if len(args) != 1 or not args[0]:
            raise Problem("expects a tag for the log messages")
        self.set(log_tag=args[0])

    def log_send_hostname(self, args: Sequence[str], where: Where) -> None:
        """`log-send-hostname [NAME]`: the host name in the syslog header, the system's
        when none is given (read by the shell)."""
        if len(args) > 1:
            raise Problem(f"unexpected argument '{args[1]}'")
        self.set(log_send_hostname=args[0] if args else "")

    def stats(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("expects 'socket' or 'timeout'")
        if args[0] == "timeout":
            self.set(stats_timeout=_time(args[1:]))
        elif args[0] == "socket":
            self.stats_socket(args[1:], where)
        elif args[0] in ("maxconn", "bind-process"):
            raise Problem(f"'stats {args[0]}' is not implemented yet in poise")
        else:
            raise Problem(f"unknown 'stats {args[0]}' in the global section (socket, timeout)")

    def stats_socket(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'stats socket' expects an address or a path")
        try:
            addr = address.parse_socket(expand_address(args[0], self.env))
        except address.AddressError as exc:
            raise Problem(f"'stats socket': {exc}") from None
        if addr.family == "sockpair":
            raise Problem("'stats socket': 'sockpair@' is not implemented yet in poise (fd@ is)")
        options = parse_bind_options(args[1:], where, self.diagnostics, "stats socket")
        self.set(
            stats_sockets=(
                *self.draft.values.stats_sockets,
                StatsSocket(
                    addr,
                    where,
                    mode=options.mode,
                    level=options.level,
                    expose_fd=options.expose_fd,
                    user=options.owner[0],
                    group=options.owner[1],
                ),
            )
        )

    def maxaccept(self, args: Sequence[str], where: Where) -> None:
        """`tune.maxaccept N`: -1 or more (HAProxy 2.6 takes -1 for "no limit")."""
        value = _int(args, -1)
        if value == 0:
            raise Problem("'tune.maxaccept' expects -1 or a strictly positive integer")
        self.set(maxaccept=value)

    def hard_stop_after(self, args: Sequence[str], where: Where) -> None:
        self.set(hard_stop_after=_time(args))

    def master_worker(self, args: Sequence[str], where: Where) -> None:
        """`master-worker [no-exit-on-failure]`, as `-W` (process/master.py)."""
        if args and args[0] != "no-exit-on-failure":
            raise Problem(f"unexpected argument '{args[0]}' (only 'no-exit-on-failure')")
        if len(args) > 1:
            raise Problem(f"unexpected argument '{args[1]}'")
        self.set(master_worker=True, exit_on_failure=not args)

    def mworker_max_reloads(self, args: Sequence[str], where: Where) -> None:
        self.set(mworker_max_reloads=_int(args, 0))

    def spread_checks(self, args: Sequence[str], where: Where) -> None:
        value = _int(args, 0, 50)
        if self.once("spread-checks", where, "spread-checks"):
            self.set(spread_checks=value)

    def node(self, args: Sequence[str], where: Where) -> None:
        name = args[0] if args else ""
        if not _NODE_NAME.fullmatch(name) or len(args) > 1:
            raise Problem("expects a name made of letters, digits, '.', '-' and '_'")
        self.set(node=name)

    def nbthread(self, args: Sequence[str], where: Where) -> None:
        """`nbthread N`: N worker processes (HAProxy's threads), 1 to 64 as in HAProxy."""
        word = _arg(args, "a number")
        try:
            value = int(word)
        except ValueError:
            raise Problem(f"passed a missing or unparsable integer value in '{word}'") from None
        if not 1 <= value <= MAX_IDS:
            raise Problem(f"value must be between 1 and {MAX_IDS} (was {value})")
        self.set(nbthread=value, nbthread_where=where)

    def cpu_map(self, args: Sequence[str], where: Where) -> None:
        try:
            line = parse_cpu_map(args)
        except CpuMapError as exc:
            raise Problem(str(exc)) from None
        if 1 not in line.processes:
            self.diagnostics.append(
                warning(where, "names no thread of process 1, poise's only process", "cpu-map")
            )
        line = replace(line, where=where)
        self.set(cpu_maps=(*self.draft.values.cpu_maps, line))

    def description(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("expects a text")
        self.set(description=" ".join(args))

    def noreuseport(self, args: Sequence[str], where: Where) -> None:
        if args:
            raise Problem(f"unexpected argument '{args[0]}'")
        self.draft.noreuseport = True
