"""The global `default-path { current | config | parent | origin <path> }` (configuration.txt
3.1): where the relative file names of the lines after it start from. HAProxy changes its
working directory while it parses (the directory of the file being parsed for `config`,
its parent for `parent`, the path given for `origin`, the start-up one for `current`, the
default) and opens each file it names then: error files, map and ACL files, certificates,
CA files. poise reads the same files from the same places: while a configuration is parsed
(`tracking`), each `default-path` line is recorded, and `resolve` puts the directory in
force at a line before a relative file name written there. The mode lasts across files, as
in HAProxy; `config` and `parent` follow the file each line is in. Pure: paths are text.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

from poise.config.where import Where

MODES = ("current", "config", "parent", "origin")


@dataclass(slots=True)
class _Tracking:
    files: list[str] = field(default_factory=list)  # in the order they are parsed
    # (file's rank, line, mode, origin): each `default-path` line, in parse order.
    changes: list[tuple[int, int, str, str]] = field(default_factory=list)
    where: Where | None = None  # the line being parsed


_CURRENT: contextvars.ContextVar[_Tracking | None] = contextvars.ContextVar(
    "poise_default_path", default=None
)


@contextlib.contextmanager
def tracking() -> Iterator[None]:
    """While a configuration is parsed and linked."""
    token = _CURRENT.set(_Tracking())
    try:
        yield
    finally:
        _CURRENT.reset(token)


def at_line(where: Where) -> None:
    """The parser reads this line now (the files it names resolve against it)."""
    state = _CURRENT.get()
    if state is not None:
        if where.file not in state.files:
            state.files.append(where.file)
        state.where = where


def set_mode(where: Where, mode: str, origin: str = "") -> None:
    """A `default-path MODE [ORIGIN]` line (checked by the caller)."""
    state = _CURRENT.get()
    if state is not None:
        at_line(where)
        state.changes.append((state.files.index(where.file), where.line, mode, origin))


def directory(where: Where | None = None) -> str | None:
    """The directory relative names start from at `where` (the line being parsed when
    None); None: the current directory (`default-path current`, or none written)."""
    state = _CURRENT.get()
    where = where or (state.where if state is not None else None)
    if state is None or where is None or not state.changes:
        return None
    rank = state.files.index(where.file) if where.file in state.files else len(state.files)
    mode, origin = "current", ""
    for file_rank, line, changed, path in state.changes:
        if (file_rank, line) <= (rank, where.line):
            mode, origin = changed, path
    if mode == "origin":
        return origin
    if mode in ("config", "parent"):
        folder = where.file.rpartition("/")[0] if "/" in where.file else ""
        if mode == "parent":
            return f"{folder}/.." if folder else ".."
        return folder or None
    return None


def resolve(path: str, where: Where | None = None) -> str:
    """`path` as the line at `where` (the one being parsed when None) names it."""
    if not path or path.startswith("/"):
        return path
    folder = directory(where)
    return f"{folder.rstrip('/')}/{path}" if folder else path
