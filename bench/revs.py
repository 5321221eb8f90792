"""poise at a given commit, for the benchmarks that compare commits (instructions.py,
compare.py): a git worktree of the commit in a temporary directory, removed after, and a
command that runs that commit's `poise` with this checkout's Python environment."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What the `poise` console script runs (pyproject.toml's project.scripts), without going
# through the editable install, which points at one checkout only.
POISE_MAIN = "import sys; from poise.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class Source:
    src: Path  # the directory that holds the `poise` package
    label: str  # what it is: a short commit id, with a note when the tree is changed

    def argv(self, wrapper: Sequence[str] = ()) -> list[str]:
        """The command that runs this source's `poise` (its arguments follow), under
        `wrapper` (more NAME=VALUE settings for `env`, then a command such as valgrind)."""
        return ["env", f"PYTHONPATH={self.src}", *wrapper, sys.executable, "-c", POISE_MAIN]

    def script(self, directory: Path, name: str) -> Path:
        """An executable file in `directory` that runs this source's `poise` with its
        arguments (for harnesses that take the path of a `poise` binary)."""
        path = directory / name
        path.write_text(f'#!/bin/sh\nexec {shlex.join(self.argv())} "$@"\n')
        path.chmod(0o755)
        return path


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@contextmanager
def checkout(rev: str | None) -> Iterator[Source]:
    """This checkout's source (`rev` None), or a temporary worktree of `rev`, removed after."""
    if rev is None:
        changed = " with uncommitted changes" if git("status", "--porcelain", "src") else ""
        yield Source(REPO / "src", git("rev-parse", "--short=12", "HEAD") + changed)
        return
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    tmp = Path(tempfile.mkdtemp(prefix="poise-rev-"))
    tree = tmp / "tree"
    git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield Source(tree / "src", f"{commit[:12]} ({rev})" if rev != commit else commit[:12])
    finally:
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
