"""The two-character session state at disconnection that HAProxy writes in its TCP and
HTTP logs (`%ts`, configuration.txt section 8.5): who or what ended the session, and in
which phase the session was then. Pure.

Log parsers and operators read these two letters first when a session went wrong, so poise
uses exactly HAProxy's letters (log.c: `sess_term_cond` and `sess_fin_state`). The shells
(net/) name what went wrong as a `Failure`; one table (`FAILURES`) gives each its status to
answer (if any) and its two letters, so no termination code is spelled out anywhere else.
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


class Failure(Enum):
    """What went wrong with a session or a transaction, in the words of its log line."""

    # Each member carries its row of FAILURES (below), set once at import.
    status: int | None
    """The HTTP status poise answers with (HTTP mode), None when nothing is answered."""
    cause: Cause
    phase: Phase
    code: str
    """The `%ts` field: `cause.value + phase.value`."""

    REQUEST_TIMEOUT = "timeout http-request (or client) before a whole request head"
    BAD_REQUEST = "a request poise refuses (malformed, too large, smuggling)"
    REJECTED = "refused by the proxy before any server (TCP: no backend)"
    CLIENT_ABORT_REQUEST = "the client left before its request was routed"
    CLIENT_ABORT_QUEUE = "the client left while waiting in a queue"
    CLIENT_ABORT_CONNECT = "the client left while its server connection was being made"
    CLIENT_ABORT_HEADERS = "the client left while waiting for the response head"
    CLIENT_ABORT_DATA = "the client aborted during the data transfer"
    CLIENT_TIMEOUT = "timeout client (or tunnel) during the data transfer"
    NO_SERVER = "no backend, or no server usable, or connecting failed after the retries"
    CONNECT_TIMEOUT = "timeout connect on the last attempt"
    QUEUE_TIMEOUT = "timeout queue while waiting for a server slot"
    BAD_RESPONSE = "the server sent something that is not a valid HTTP response head"
    SERVER_ABORT_HEADERS = "the server closed before its response head"
    SERVER_TIMEOUT_HEADERS = "timeout server while waiting for the response head"
    SERVER_ABORT_DATA = "the server aborted during the data transfer"
    SERVER_TIMEOUT = "timeout server during the data transfer"
    KILLED_QUEUE = "killed by the runtime API while waiting in a queue"
    KILLED_CONNECT = "killed by the runtime API while connecting"
    KILLED_DATA = "killed by the runtime API during the data transfer"
    HTTP_TO_TCP = "an HTTP request routed to a TCP backend (a TCP frontend's later request)"


_C, _S, _P, _K = Cause.CLIENT_ABORT, Cause.SERVER_ABORT, Cause.PROXY, Cause.KILLED
_c, _s = Cause.CLIENT_TIMEOUT, Cause.SERVER_TIMEOUT

# The one table: failure -> (status to answer, cause, phase). The statuses are HAProxy 2.6's
# (http_ana.c, `http_reply_and_close` and `http_server_error`; 400 and 408 in h1_mux.c).
FAILURES: dict[Failure, tuple[int | None, Cause, Phase]] = {
    Failure.REQUEST_TIMEOUT: (408, _c, Phase.REQUEST),
    Failure.BAD_REQUEST: (400, _P, Phase.REQUEST),
    Failure.REJECTED: (None, _P, Phase.REQUEST),
    Failure.CLIENT_ABORT_REQUEST: (None, _C, Phase.REQUEST),
    Failure.CLIENT_ABORT_QUEUE: (None, _C, Phase.QUEUE),
    Failure.CLIENT_ABORT_CONNECT: (None, _C, Phase.CONNECT),
    Failure.CLIENT_ABORT_HEADERS: (None, _C, Phase.HEADERS),
    Failure.CLIENT_ABORT_DATA: (None, _C, Phase.DATA),
    Failure.CLIENT_TIMEOUT: (None, _c, Phase.DATA),
    Failure.NO_SERVER: (503, _S, Phase.CONNECT),
    Failure.CONNECT_TIMEOUT: (503, _s, Phase.CONNECT),
    Failure.QUEUE_TIMEOUT: (503, _s, Phase.QUEUE),
    Failure.BAD_RESPONSE: (502, _P, Phase.HEADERS),
    Failure.SERVER_ABORT_HEADERS: (502, _S, Phase.HEADERS),
    Failure.SERVER_TIMEOUT_HEADERS: (504, _s, Phase.HEADERS),
    Failure.SERVER_ABORT_DATA: (None, _S, Phase.DATA),
    Failure.SERVER_TIMEOUT: (None, _s, Phase.DATA),
    Failure.KILLED_QUEUE: (None, _K, Phase.QUEUE),
    Failure.KILLED_CONNECT: (None, _K, Phase.CONNECT),
    Failure.KILLED_DATA: (None, _K, Phase.DATA),
    Failure.HTTP_TO_TCP: (None, Cause.INTERNAL, Phase.REQUEST),
}

for _failure, (_status, _cause, _phase) in FAILURES.items():
    _failure.status, _failure.cause, _failure.phase = _status, _cause, _phase
    _failure.code = _cause.value + _phase.value


def code(cause: Cause, phase: Phase) -> str:
    """The `%ts` field: e.g. `code(Cause.SERVER_ABORT, Phase.CONNECT) == "SC"`."""
    return cause.value + phase.value


def parse(text: str) -> tuple[Cause, Phase]:
    """The inverse of `code()`: the first two characters of a `%ts`/`%tsc` field.
    Raises ValueError for characters HAProxy never writes there."""
    if len(text) < 2:
        raise ValueError(f"termination state too short: {text!r}")
    return Cause(text[0]), Phase(text[1])
