"""`http-errors NAME` sections (configuration.txt 3.8): named sets of `errorfile CODE FILE`
that proxies take with `errorfiles NAME [CODE ...]` and replies with `errorfiles NAME`.
Checked as HAProxy 2.6 checks them, with its words."""

from __future__ import annotations

from collections.abc import Sequence

from poise.config.acl_parse import ReadFile
from poise.config.diagnostics import Diagnostic, error
from poise.config.haproxy_draft import Problem
from poise.config.haproxy_http_settings import parse_errorfile
from poise.config.model import ErrorFile, Where


class HttpErrorsParser:
    """The lines of one `http-errors` section, into `files` (status -> file)."""

    def __init__(
        self,
        files: dict[int, ErrorFile],
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None,
    ) -> None:
        self.files = files
        self.diagnostics = diagnostics
        self.read_file = read_file

    def feed(self, where: Where, words: Sequence[str]) -> None:
        try:
            if words[0] != "errorfile":
                raise Problem(f"unknown keyword '{words[0]}' in 'http-errors' section")
            entry = parse_errorfile(words[1:], where, self.read_file, self.diagnostics)
            self.files[entry.status] = entry
        except ValueError as exc:
            self.diagnostics.append(error(where, str(exc), words[0]))


def section_name(args: Sequence[str], known: dict[str, Where], where: Where) -> str:
    """The name of a new `http-errors` section (raises Problem as HAProxy refuses it)."""
    if not args:
        raise Problem("missing name for http-errors section.")
    name = args[0]
    if name in known:
        raise Problem(f"http-errors section '{name}' already exists (declared at {known[name]}).")
    return name
