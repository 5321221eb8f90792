"""The other workers of one balancer (`nbthread N`: N worker processes), as a worker sees them.

With `nbthread 1` a worker is the whole balancer and this is `Alone`: nothing to tell, nobody
to ask. With N workers the master relays messages between them (process/ owns that bus) and
a worker's Context holds the bus's own Siblings. What must stay one state for the whole
balancer goes through here: a health check's verdict (checked by one worker, applied by
all), a runtime command that changes state (applied by every worker), and what the stats
report (each worker's counters, gathered and summed by the worker that answers).

A message is a `kind` (a short name the receiving side registered with `serve`) and a
payload of JSON values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Payload = dict[str, Any]
Handler = Callable[[Payload], Payload | None]

__all__ = ["Alone", "Handler", "Payload", "Siblings"]


class Siblings(Protocol):
    # This worker's slot (0 .. count-1) and the number of workers (`nbthread`). Slot 0 is
    # the one that runs what must happen once (health checks, DNS resolution).
    index: int
    count: int

    def serve(self, kind: str, handler: Handler) -> None:
        """Answer the messages of this kind from the other workers: a broadcast's handler's
        return value is dropped, a gather's is the answer sent back."""

    def broadcast(self, kind: str, payload: Payload) -> None:
        """Tell every other worker of this generation (no answer, no wait)."""

    async def gather(self, kind: str, payload: Payload, timeout: float = 1.0) -> list[Payload]:
        """Ask every other worker; their answers, without those of the workers that did
        not answer within `timeout` seconds (a worker being replaced)."""


class Alone:
    """One worker is the whole balancer: there is nobody else."""

    index = 0
    count = 1

    def serve(self, kind: str, handler: Handler) -> None:
        return None

    def broadcast(self, kind: str, payload: Payload) -> None:
        return None

    async def gather(self, kind: str, payload: Payload, timeout: float = 1.0) -> list[Payload]:
        return []
