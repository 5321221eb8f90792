"""What the pure core reads of the process it runs in, for the fetches that need it
(configuration.txt 7.3.2): the clock (`date`), the environment (`env`), and the running
backends (`nbsrv`, `be_conn`, `queue`, `avg_queue`, `connslots`, `srv_is_up`).

The shell sets `clock` and `environ` when it starts (process/runtime.py); a Backend puts
itself in `BACKENDS` when it is made (core/backend.py), so a fetch finds the backend of
that name as it is now. They are described here by what the fetches read of them, so that
this module depends on nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol


class ServerView(Protocol):
    name: str
    up: bool
    backup: bool
    cur_sess: int
    queued: int
    maxconn: int

    @property
    def usable(self) -> bool: ...

    @property
    def in_maint(self) -> bool: ...

    @property
    def maxqueue(self) -> int: ...


class BackendView(Protocol):
    cur_sess: int

    @property
    def servers(self) -> Sequence[ServerView]: ...

    @property
    def queued(self) -> int: ...


def _no_clock() -> float:
    return 0.0


# Seconds since the epoch (the shell's time.time).
clock: Callable[[], float] = _no_clock
environ: Mapping[str, str] = {}
BACKENDS: dict[str, BackendView] = {}
