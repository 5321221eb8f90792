"""`balance first`: the first server, by id, that has a free connection slot (HAProxy's
lb_fas.c). Once a server reaches its `maxconn` the next one is used, so the fewest servers
carry the load and idle ones can be powered down. Weights do not matter beyond 0 (a server
with weight 0 takes no new traffic); without `maxconn` the first server takes everything,
as HAProxy's documentation warns.
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.core.balancer import Balancer, eligible
from poise.core.server import ServerState


class First(Balancer):
    def __init__(self, servers: Sequence[ServerState], allbackups: bool = False) -> None:
        self._order: list[ServerState] = []
        super().__init__(servers, allbackups)

    def update(self) -> None:
        self._order = sorted(eligible(self.servers, self.allbackups), key=lambda s: s.id)

    def pick(self, key: bytes = b"", avoid: ServerState | None = None) -> ServerState | None:
        avoided = False
        for server in self._order:
            if server.full:
                continue
            if server is avoid:
                avoided = True
                continue
            return server
        return avoid if avoided else None
