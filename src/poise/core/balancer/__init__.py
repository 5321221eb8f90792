"""Balancing algorithms behind one small interface (as HAProxy's lb_*.c).

A Balancer is built over the backend's list of servers. The caller tells it when the
servers changed (a server went up or down, a weight or admin state changed, a server was
added) by calling `update()`; `pick()` then chooses a server for a new connection.

Which servers take part (HAProxy's rules): the usable active servers; when none is left,
the first usable backup server in declaration order, or every usable backup with
`option allbackups`.

Choices that must agree across processes and nodes (`source` hashing) depend only on the
configuration and the request key, never on local history or on Python's `hash()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from poise.core.server import ServerState


def eligible(servers: Sequence[ServerState], allbackups: bool) -> list[ServerState]:
    """The servers that take part in balancing now, in declaration order."""
    active = [s for s in servers if not s.backup and s.usable]
    if active:
        return active
    backups = [s for s in servers if s.backup and s.usable]
    if allbackups or not backups:
        return backups
    return backups[:1]


class Balancer(ABC):
    # A deterministic (hash) balancer keeps its choice even when that server is full:
    # the connection then waits in that server's queue, as in HAProxy.
    deterministic: ClassVar[bool] = False
    # IPVS's schedulers (ipvs.py): when none is chosen the connection is refused at once
    # (IPVS answers the client's SYN with ICMP port unreachable), never queued.
    refuses_unchosen = False
    # HAProxy's BE_LB_PROP_DYN: the weights may change at run time, and `slowstart` ramps
    # them (core/slowstart.py); static-rr and map-based hashing keep the configured ones.
    dynamic_weights = True

    def __init__(self, servers: Sequence[ServerState], allbackups: bool = False) -> None:
        self.servers = servers
        self.allbackups = allbackups
        self.update()

    @abstractmethod
    def update(self) -> None:
        """Recompute after any change of the servers' state, weight or membership."""

    @abstractmethod
    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        """Choose a server for a new connection.

        `key` is the hashed input of deterministic algorithms (the client address for
        `source`). `avoid` is a server that just failed (redispatch): another one is chosen
        when there is another. A non-deterministic balancer skips full servers. Returns
        None when no server can take the connection now.
        """

    def pick_without_key(self, avoid: ServerState | None = None) -> ServerState | None:
        """Choose for a request that has no key to hash (`balance url_param` without the
        parameter): hashing balancers fall back to round robin, as HAProxy does."""
        return self.pick(b"", avoid)
