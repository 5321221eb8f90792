"""Parts of the `global` section's model (config/model.py's Global) kept apart to hold
that module within its size: the `stats socket` lines, the `cache` and `program`
sections, and the `cpu-map` lines (config/cpumap.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from poise.config.cpumap import CpuMap

__all__ = ["Cache", "CpuMap", "Program", "StatsSocket"]

if TYPE_CHECKING:
    from poise.config.model import Address
    from poise.config.where import Where


@dataclass(frozen=True, slots=True)
class StatsSocket:
    """`stats socket ADDR [mode M] [level L] [expose-fd listeners] [user U] [group G]`."""

    address: Address
    where: Where
    mode: int | None = None  # permission bits for a unix socket, e.g. 0o600
    level: Literal["user", "operator", "admin"] = "operator"
    # `expose-fd listeners`: `_getsocks` hands the listening sockets to a new process.
    expose_fd: bool = False
    # Owner of a unix socket's file: a name or a number (`uid`/`gid`), None = ours.
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Cache:
    """One `cache` section, sizes in bytes, ages in seconds."""

    name: str
    where: Where
    total_max_size: int = 0  # 0: not given (an error)
    max_object_size: int = 0  # 0: a 256th of the total
    max_age: int = 60
    process_vary: bool = False
    max_secondary_entries: int = 10


@dataclass(frozen=True, slots=True)
class Program:
    """One `program` section. `user` and `group` are names, looked up when it starts."""

    name: str
    where: Where
    command: tuple[str, ...] = ()
    user: str | None = None
    group: str | None = None
    start_on_reload: bool = True
    user_where: Where | None = None  # where `user` and `group` are, for load.py's lookups
    group_where: Where | None = None
