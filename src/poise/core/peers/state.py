"""What the running peers sections are doing, as `show peers` and `show info` report it
(HAProxy 2.6's struct peers and struct peer): each peer's last handshake status, its
counters (new connections, protocol errors, collisions, heartbeats sent and received),
and the session it has now. The shell (net/peers.py) writes it; the runtime API reads it.
Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Handshake status codes as `show peers` names them (peers.c statuscode_str).
STATUS_NAMES = {100: "CONN", 110: "HSHK", 200: "ESTA", 300: "RETR", 501: "PROT",
                502: "VERS", 503: "NAME", 504: "UNKN"}  # fmt: skip
CONNECTING, CONNECTED = 100, 110


@dataclass(slots=True)
class PeerState:
    """One peer of a section (the local one included). Times are the loop's, in s."""

    name: str
    local: bool
    address: str
    status: int = 0
    last_handshake: float | None = None
    reconnect: float | None = None  # when the next call is due
    heartbeat: float | None = None  # when our next heartbeat is due
    active: bool = False  # a session (connecting or established)
    established: bool = False
    new_conn: int = 0
    proto_err: int = 0
    coll: int = 0
    tx_hbt: int = 0
    rx_hbt: int = 0
    src: str = ""  # the session's ends, while there is one
    dst: str = ""


@dataclass(slots=True)
class SectionState:
    name: str
    since: str  # the local time of its last change, as `show peers` prints it
    peers: list[PeerState] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    disabled: bool = False

    def peer(self, name: str) -> PeerState | None:
        return next((p for p in self.peers if p.name == name), None)


# The running sections, in HAProxy's order (the last declared first).
SECTIONS: list[SectionState] = []


def active_peers() -> int:
    """`show info` ActivePeers: the sessions there are, being set up or established."""
    return sum(p.active for s in SECTIONS for p in s.peers)


def connected_peers() -> int:
    """`show info` ConnectedPeers: the established sessions."""
    return sum(p.established for s in SECTIONS for p in s.peers)
