"""The core stays pure: no module under the pure packages imports an I/O module, neither
itself nor through any module of poise it imports (transitively).

DESIGN.md: everything that decides is pure (no asyncio, socket, ssl or time), so that it is
tested exactly and instantly, and the shell around it stays thin. The pure packages are
the bottom layers of test_layers.py: config, core and admin (the runtime commands, the
stats model and its renderings; the stats sockets that carry them are net/admin_socket.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.imports import imports, module_name, reachable

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
PURE_PACKAGES = ("config", "core", "admin")
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


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_reaches_no_io(path: Path) -> None:
    # What a pure module imports from poise must be pure too, however far down.
    via = reachable(module_name(path))
    found = {}
    for module in via:
        for io_module in sorted(imports(module)[1] & IO_MODULES):
            chain = [module]
            while chain[-1] != via[chain[-1]]:
                chain.append(via[chain[-1]])
            found[io_module] = " <- ".join(chain)
    assert found == {}, found


def test_the_pure_set_is_not_empty() -> None:
    assert len(pure_modules()) >= 3
    assert {path.parent.name for path in pure_modules()} >= set(PURE_PACKAGES)


def test_the_reader_sees_io_through_poise() -> None:
    # A shell module reaches asyncio through what it imports; the reader must see it.
    via = reachable("poise.net.services")
    assert "poise.net.context" in via
    assert any("asyncio" in imports(module)[1] for module in via)


def test_every_admin_module_is_checked() -> None:
    # admin/ is pure as a whole: stats*, prometheus*, page and commands* are all walked.
    admin = {path.name for path in (SRC / "admin").glob("*.py")}
    checked = {path.name for path in pure_modules() if path.parent.name == "admin"}
    assert checked == admin
    assert {"page.py", "stats.py", "prometheus.py", "commands.py"} <= checked
