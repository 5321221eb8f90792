"""`peers` sections as data (configuration.txt 3.5): the peers of a section, the address the
local peer listens on, the tables the section declares, and which peer is this process
(`localpeer` in `global`, `-L NAME` on the command line, the host name otherwise). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poise.config.model import Address
    from poise.config.model_stick import StickTable
    from poise.config.where import Where


@dataclass(frozen=True, slots=True)
class Peer:
    """`peer NAME ADDR:PORT` or `server NAME [ADDR:PORT]` (None: the local peer written as a
    `server` line without an address, whose address is the section's `bind`)."""

    name: str
    address: Address | None
    where: Where


@dataclass(frozen=True, slots=True)
class Peers:
    """One `peers NAME` section. `bind` is the address of a `bind` line (the 2.x form, with
    `server` lines); with `peer` lines the local peer's own address is the one it listens on.
    `tables` are the section's `table` lines, named `SECTION/NAME` as HAProxy names them."""

    name: str
    where: Where
    peers: tuple[Peer, ...] = ()
    bind: Address | None = None
    bind_where: Where | None = None
    disabled: bool = False
    tables: tuple[StickTable, ...] = ()

    def peer(self, name: str) -> Peer | None:
        return next((p for p in self.peers if p.name == name), None)

    def listen(self, local: str) -> Address | None:
        """Where the local peer `local` accepts its peers' connections (None: it is not in
        this section, and HAProxy removes the section with a warning)."""
        me = self.peer(local)
        if me is None:
            return None
        return self.bind if self.bind is not None else me.address

    def remotes(self, local: str) -> tuple[Peer, ...]:
        """The peers this process connects to: every one but itself."""
        return tuple(p for p in self.peers if p.name != local and p.address is not None)
