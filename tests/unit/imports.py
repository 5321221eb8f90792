"""The import graph of src/poise, read from the source (the AST, nothing imported): which
module imports which, for the tests that keep the house (test_layers.py, test_purity.py).

Every import counts, wherever it is written: at the top, inside a function (an import
put off until it is needed is still a dependency) and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "poise"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of poise by its dotted name."""
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported_names(path: Path) -> Iterator[str]:
    """The dotted names one module's import statements name, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            # `from poise.admin import stats` imports the module poise.admin.stats.
            yield from (f"{module}.{alias.name}" for alias in node.names)


@cache
def imports(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(modules of poise, top-level names of other modules) that module `name` imports."""
    own: set[str] = set()
    other: set[str] = set()
    for imported in _imported_names(modules()[name]):
        if imported == "poise" or imported.startswith("poise."):
            if imported in modules():
                own.add(imported)
        else:
            other.add(imported.split(".")[0])
    # Importing poise.a.b runs poise/__init__.py and poise/a/__init__.py first.
    for module in list(own):
        parts = module.split(".")
        own.update(".".join(parts[:i]) for i in range(1, len(parts)))
    own.discard(name)
    return frozenset(own), frozenset(other)


def reachable(name: str) -> dict[str, str]:
    """Every module of poise that importing `name` loads, with the one that imports it."""
    seen = {name: name}
    todo = [name]
    while todo:
        current = todo.pop()
        for module in imports(current)[0]:
            if module not in seen:
                seen[module] = current
                todo.append(module)
    return seen


def package_of(name: str) -> str:
    """poise.net.http -> net; the package's root modules (poise/__init__.py) -> poise."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "poise"
