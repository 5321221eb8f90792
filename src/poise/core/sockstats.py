"""`option socket-stats`: the counters of each listening socket of a frontend, which the
stats show as rows of type 3 ("socket") after the frontend's, named by the bind's `name`
or "sock-N" (N: the listener's number in its frontend, from 1, as HAProxy numbers them).
One object per listener; the shell's gate counts its connections in and out, and the
sessions add their transactions' bytes (net/tcp.py, net/http.py)."""

from __future__ import annotations

from typing import Protocol

from poise.core.counters import failed_request
from poise.core.termination import NORMAL
from poise.core.txn import DENIED_FRONTEND, DENIED_REQUEST, DENIED_RESPONSE, Txn


class Waiting(Protocol):
    """A listener's accept loop (net/accept.py), as its status reads it."""

    @property
    def waiting(self) -> bool: ...


class SocketCounters:
    __slots__ = ("addr", "bytes_in", "bytes_out", "cum_conn", "cur_conn", "denied_conn",
                 "denied_req", "denied_resp", "denied_sess", "failed_req", "listener",
                 "max_conn_seen", "name", "sid")  # fmt: skip

    def __init__(self, sid: int, name: str | None, addr: str) -> None:
        self.sid = sid  # the listener's number in its frontend (HAProxy's luid)
        self.name = name or f"sock-{sid}"
        self.addr = addr  # where it listens, as the stats show it
        self.cur_conn = 0
        self.cum_conn = 0
        self.max_conn_seen = 0
        self.bytes_in = 0
        self.bytes_out = 0
        # As the frontend's (core/counters.py, core/layer4.py).
        self.denied_req = self.denied_resp = self.failed_req = 0
        self.denied_conn = self.denied_sess = 0
        self.listener: Waiting | None = None  # the shell's, once it listens

    @property
    def status(self) -> str:
        """WAITING: it found its frontend (or the process) full when it had a connection
        to accept, and waits for room (HAProxy's limited listener); else OPEN."""
        return "WAITING" if self.listener is not None and self.listener.waiting else "OPEN"

    def admit(self) -> None:
        self.cur_conn += 1
        self.cum_conn += 1
        self.max_conn_seen = max(self.max_conn_seen, self.cur_conn)

    def leave(self) -> None:
        self.cur_conn -= 1

    def clear(self, every: bool) -> None:
        """`clear counters [all]` (core/frontend.py)."""
        self.max_conn_seen = 0
        if every:
            self.cum_conn = self.bytes_in = self.bytes_out = 0
            self.denied_req = self.denied_resp = self.failed_req = 0
            self.denied_conn = self.denied_sess = 0

    def account(self, txn: Txn) -> None:
        """A transaction of one of its connections ended (counted with the frontend's)."""
        self.bytes_in += txn.bytes_in
        self.bytes_out += txn.bytes_out
        if txn.term != NORMAL:
            self.denied_req += txn.denied in (DENIED_REQUEST, DENIED_FRONTEND)
            self.denied_resp += txn.denied == DENIED_RESPONSE
            self.failed_req += failed_request(txn)
