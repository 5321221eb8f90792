"""The core stays pure: no module under the pure packages imports an I/O module.

DESIGN.md: everything that decides is pure (no asyncio, socket, ssl or time), so that it is
tested exactly and instantly, and the shell around it stays thin.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "poise"
IO_MODULES = {
    "asyncio",
    "socket",
    "ssl",
    "time",
    "selectors",
    "subprocess",
    "uvloop",
    "signal",
    "threading",
    "os",
    "pwd",
    "grp",
}
# Shell modules inside otherwise pure packages (file loading, name resolution).
SHELL_FILES: set[str] = set()
PURE_PACKAGES = ("config", "core")
# Pure modules inside shell packages.
PURE_FILES = (
    "doctor/report.py",
    "doctor/static.py",
    "doctor/facts.py",
    "doctor/judge.py",
    "doctor/judge_session.py",
)


def pure_modules() -> list[Path]:
    files = []
    for package in PURE_PACKAGES:
        for path in sorted((SRC / package).rglob("*.py")):
            if str(path.relative_to(SRC)) not in SHELL_FILES:
                files.append(path)
    files.extend(SRC / name for name in PURE_FILES)  # a missing one fails to parse
    return files


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports_no_io(path: Path) -> None:
    assert imported(path).isdisjoint(IO_MODULES), imported(path) & IO_MODULES


def test_the_pure_set_is_not_empty() -> None:
    assert len(pure_modules()) >= 3
