"""A place in a configuration file (file and line), carried by every part of the model
that a diagnostic may name. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a configuration file, for diagnostics."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NOWHERE = Where("<built-in>", 0)
