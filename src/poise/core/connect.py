"""The server side of a stream, as HAProxy names its states (stream-interface states,
SI_ST_*), and what follows a failed connection attempt: retry after the turn-around
delay, redispatch to another server, or give up.

INI (no request yet) -> REQ (a server is wanted) -> QUE (waiting in a queue) or ASS (a
server is assigned) -> CON (connecting) or EST (an idle connection reused) -> EST
(established). A failed attempt goes to TAR (the turn-around delay, then ASS again), or
back to REQ (redispatch), or gives up (CLO). The end of a transaction goes back to INI (a
kept connection waits in its pool); the end of the stream is CLO.

Pure: the shell (net/dispatch.py) does the queueing, the timers and the connecting, and
moves the state; TRANSITIONS lists every move it may make (tests/unit/test_connect.py).
"""

from __future__ import annotations

from enum import Enum

from poise.core.termination import Failure


class SrvState(Enum):
    INI = "INI"
    REQ = "REQ"
    QUE = "QUE"
    TAR = "TAR"
    ASS = "ASS"
    CON = "CON"
    EST = "EST"
    CLO = "CLO"


INI, REQ, QUE, TAR, ASS, CON, EST, CLO = SrvState

# Every move of the server side. Any state may go to INI (the transaction ended, whatever
# it was doing) and to CLO (no server to be had, the client gone, the stream ended); as
# in HAProxy, an HTTP stream's next transaction starts again from INI.
_ENDS = frozenset({INI, CLO})
TRANSITIONS: dict[SrvState, frozenset[SrvState]] = {
    INI: frozenset({REQ}) | _ENDS,
    REQ: frozenset({QUE, ASS}) | _ENDS,
    QUE: frozenset({ASS}) | _ENDS,
    ASS: frozenset({CON, EST}) | _ENDS,
    CON: frozenset({EST, TAR, REQ}) | _ENDS,  # REQ: redispatched
    TAR: frozenset({ASS}) | _ENDS,
    EST: frozenset({ASS}) | _ENDS,  # ASS: a reused connection died unanswered, sent anew
    CLO: _ENDS,
}

# Request bytes buffered while the server connection opens (HTTP and TCP alike); beyond
# that, reading from the client pauses.
PENDING_LIMIT = 64 * 1024

# HAProxy waits min(timeout connect, 1s) before retrying a server that failed at once.
TURNAROUND = 1.0


def abort_on_close(state: SrvState) -> Failure | None:
    """`option abortonclose` (configuration.txt 4.2): a client that shuts its side of the
    connection (FIN) while its request waits for a server gives it up, "either pending in
    the queue for a connection slot, or during the connection establishment": how the
    session ends then (logged CQ or CC), None once the request went to its server (or
    before it asked for one). Without the option the request is served, as HTTP wants
    (the client may only have closed its output)."""
    if state is QUE:
        return Failure.CLIENT_ABORT_QUEUE
    if state is TAR or state is ASS or state is CON:
        return Failure.CLIENT_ABORT_CONNECT
    return None


class After(Enum):
    """What follows a failed connection attempt."""

    RETRY = "retry"  # the same server, after the turn-around delay (TAR)
    REDISPATCH = "redispatch"  # another server, chosen again (REQ)
    GIVE_UP = "give-up"  # retries exhausted: the stream's error (503, or the TCP close)


def should_redispatch(retry: int, retries: int, interval: int | None) -> bool:
    """HAProxy's `option redispatch <interval>`: P > 0 redispatches on every P-th retry,
    N < 0 on the N-th retry before the last (-1: the last retry)."""
    if interval is None or interval == 0:
        return False
    if interval > 0:
        return retry % interval == 0
    return retry == retries + 1 + interval


def after_failure(retries_done: int, max_retries: int, redispatch: int | None) -> After:
    """After a failed attempt, `retries_done` retries having been made before it."""
    if retries_done >= max_retries:
        return After.GIVE_UP
    if should_redispatch(retries_done + 1, max_retries, redispatch):
        return After.REDISPATCH
    return After.RETRY


def turnaround(connect_timeout: float | None) -> float:
    """The delay before retrying the same server (HAProxy: min(timeout connect, 1s))."""
    if connect_timeout is None:
        return TURNAROUND
    return min(TURNAROUND, connect_timeout)
