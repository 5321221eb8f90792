"""Test support for keepalived.conf: files from a dict (the parser reads through a
Source), and picking errors or warnings out of the diagnostics."""

from __future__ import annotations

import fnmatch

from poise.config.diagnostics import Diagnostic, Severity


class FakeSource:
    """keepalived.conf's files, by absolute path."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read(self, path: str) -> str:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None

    def glob(self, pattern: str) -> list[str]:
        return sorted(p for p in self.files if fnmatch.fnmatch(p, pattern))


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def warnings(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.WARNING]
