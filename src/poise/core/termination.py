"""The two-character session state at disconnection that HAProxy writes in its TCP and
HTTP logs (`%ts`, configuration.txt section 8.5): who or what ended the session, and in
which phase the session was then. Pure.

Log parsers and operators read these two letters first when a session went wrong, so poise
uses exactly HAProxy's letters (log.c: `sess_term_cond` and `sess_fin_state`). The relay
decides a `Cause` and a `Phase` where the session ends; `code()` makes the log field.
"""

from __future__ import annotations

from enum import Enum


class Cause(Enum):
    """First character: the first event that made the session end."""

    NONE = "-"
    """Normal completion: both sides closed and nothing was left in the buffers."""

    CLIENT_ABORT = "C"
    """The client aborted the TCP session unexpectedly."""

    SERVER_ABORT = "S"
    """The server aborted the TCP session unexpectedly, or refused the connection."""

    PROXY = "P"
    """The proxy cut the session short: a connection limit, a deny rule, or a security
    check that blocked a dangerous response."""

    LOCAL = "L"
    """The proxy answered by itself and no server was involved (stats page, redirect)."""

    RESOURCE = "R"
    """A resource of the proxy ran out (memory, sockets, source ports); usually while
    connecting. A serious anomaly: the system logs should say more."""

    INTERNAL = "I"
    """The proxy found an internal inconsistency in a self-check: a bug, never expected."""

    DOWN = "D"
    """The proxy killed the session because its server went down and was configured to
    shut its sessions down when that happens."""

    UP = "U"
    """The proxy killed the session on this backup server because an active server came
    back up and was configured to shut backup sessions down when that happens."""

    KILLED = "K"
    """An administrator killed the session through the runtime API."""

    CLIENT_TIMEOUT = "c"
    """The client-side timeout expired while waiting for the client to send or read."""

    SERVER_TIMEOUT = "s"
    """The server-side timeout expired while waiting for the server to send or read."""


class Phase(Enum):
    """Second character: the phase the session was in when it ended."""

    NONE = "-"
    """Normal completion after the end of the data transfer."""

    REQUEST = "R"
    """Waiting for a complete, valid request from the client (HTTP only); nothing was
    sent to any server."""

    QUEUE = "Q"
    """Waiting in a queue for a free connection slot on a server (servers with
    `maxconn`), or in the backend queue after a redispatch."""

    CONNECT = "C"
    """Waiting for the connection to the server to be established."""

    HEADERS = "H"
    """Waiting for complete, valid response headers from the server (HTTP only)."""

    DATA = "D"
    """Transferring data."""

    LAST = "L"
    """Still sending the last data to the client after the server had finished."""

    TARPIT = "T"
    """The request was tarpitted: held open for `timeout tarpit` or until the client left."""


NORMAL = "--"


def code(cause: Cause, phase: Phase) -> str:
    """The `%ts` field: e.g. `code(Cause.SERVER_ABORT, Phase.CONNECT) == "SC"`."""
    return cause.value + phase.value


def parse(text: str) -> tuple[Cause, Phase]:
    """The inverse of `code()`: the first two characters of a `%ts`/`%tsc` field.
    Raises ValueError for characters HAProxy never writes there."""
    if len(text) < 2:
        raise ValueError(f"termination state too short: {text!r}")
    return Cause(text[0]), Phase(text[1])
