"""The `program NAME` section (configuration.txt 3.7): an external command that the master
of master-worker mode starts, signals on each reload and stops with itself
(process/programs.py runs them). Keywords: `command` (mandatory), `user`, `group` and
`option start-on-reload` / `no option start-on-reload`. The messages are `haproxy -c`
2.6's. HAProxy refuses a `program` section outside master-worker mode; whether poise runs
in that mode is known only with the command line (`-W`), so that check is
`need_master_worker()`, called by `poise run` and `poise check`.
"""

from __future__ import annotations

from dataclasses import replace

from poise.config.diagnostics import Diagnostic, error
from poise.config.model import Config, Where
from poise.config.model_global import Program


class ProgramParser:
    """The lines of one `program` section."""

    def __init__(self, name: str, where: Where, diagnostics: list[Diagnostic]) -> None:
        self.value = Program(name, where)
        self.diagnostics = diagnostics

    def feed(self, where: Where, words: tuple[str, ...]) -> None:
        keyword, args = words[0], words[1:]
        negated = keyword == "no" and bool(args)
        if negated:
            keyword, args = args[0], args[1:]
        if keyword == "command" and not negated:
            if not args:
                self.problem(
                    where,
                    "'command' expects a command with optional arguments separated in words.",
                    keyword,
                )
            else:
                self.value = replace(self.value, command=tuple(args))
        elif keyword == "option":
            if not args:
                self.problem(where, "'option' expects an option name.", keyword)
            elif args[0] != "start-on-reload":
                self.problem(where, f"unknown option '{args[0]}'.", keyword)
            elif len(args) > 1:
                self.too_many(where, "option", args[1])
            else:
                self.value = replace(self.value, start_on_reload=not negated)
        elif keyword in ("user", "group") and not negated:
            self.owner(where, keyword, args)
        else:
            self.problem(where, f"unknown keyword '{words[0]}' in 'program' section", words[0])

    def owner(self, where: Where, keyword: str, args: tuple[str, ...]) -> None:
        what = "a user name" if keyword == "user" else "a group name"
        if not args:
            self.problem(where, f"'{keyword}' expects {what}.", keyword)
        elif len(args) > 1:
            self.too_many(where, keyword, args[1])
        elif getattr(self.value, keyword) is not None:
            other = "uid" if keyword == "user" else "gid"
            self.problem(where, f"{keyword}/{other} already specified.", keyword)
        elif keyword == "user":
            self.value = replace(self.value, user=args[0], user_where=where)
        else:
            self.value = replace(self.value, group=args[0], group_where=where)

    def too_many(self, where: Where, keyword: str, extra: str) -> None:
        self.problem(where, f"'{keyword}' cannot handle unexpected argument '{extra}'.", keyword)

    def problem(self, where: Where, message: str, keyword: str) -> None:
        self.diagnostics.append(error(where, message, keyword))

    def finish(self) -> Program:
        if not self.value.command:
            message = f"The program section '{self.value.name}' lacks a command to launch."
            self.diagnostics.append(error(self.value.where, message, "program"))
        return self.value


def need_master_worker(config: Config, master_worker: bool) -> list[Diagnostic]:
    """HAProxy 2.6 refuses `program` sections unless it runs in master-worker mode
    (`master-worker` in global, or -W on the command line)."""
    if master_worker or config.global_.master_worker or not config.programs:
        return []
    message = (
        "Can't use a 'program' section without master worker mode "
        "('master-worker' in global, or -W)."
    )
    return [error(config.programs[0].where, message, "program")]
