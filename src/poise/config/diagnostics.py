"""Diagnostics: every problem found in a configuration, with its place and keyword.

Parsing never stops at the first problem: each pass appends Diagnostics to a list and goes
on, so `poise check` shows everything wrong at once. An error makes the configuration
unusable; a warning is printed and the configuration still runs.

A diagnostic is one line of text whatever the file holds: characters that are not printable
(control bytes, a newline or a carriage return inside a word, a terminal escape, a
direction override) are written as `\\xNN` (or `\\uNNNN`), so that one FILE:LINE message
stays on one line and cannot rewrite the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from poise.config.model import Where


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"  # `.notice` lines (config/conditions.py)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    where: Where
    message: str
    keyword: str | None = None

    def __str__(self) -> str:
        keyword = f"'{self.keyword}': " if self.keyword else ""
        return printable(f"{self.where}: {self.severity.value}: {keyword}{self.message}")


def printable(text: str) -> str:
    """`text` with every character that is not printable escaped (`\\x1b`, `\\u202e`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def error(where: Where, message: str, keyword: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, where, message, keyword)


def warning(where: Where, message: str, keyword: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, where, message, keyword)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
