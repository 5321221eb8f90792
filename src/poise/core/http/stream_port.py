"""What the HTTP stream (core/http/stream.py) asks of the world, as typing Protocols: the
`Port` the shell implements (net/http.py: transports, the one timer, server connections
and their pools, the log sink, the services), the `Runtime` facts it reads (the process's
Context), and the `Dispatcher` that gets it a server connection (net/dispatch.py).

The two hottest actions are not methods of the Port but attributes of the stream that the
shell sets to the transports' own bound `write` (HttpStream.write_client, write_server):
a request then costs no Python call for its writes. Pure: no I/O imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from poise.core.backend import Backend
    from poise.core.connect import SrvState
    from poise.core.frontend import Frontend
    from poise.core.http.message import Request
    from poise.core.http.rules import Verdict
    from poise.core.server import ServerState
    from poise.core.txn import Txn


class Port(Protocol):
    """The actions of an HTTP stream on its connections."""

    def pause_reading(self) -> None:
        """Stop reading from the client (the stream's ReadGate decided it)."""

    def resume_reading(self) -> None:
        """Read from the client again (no reason is left in the ReadGate)."""

    def set_deadline(self, when: float) -> None:
        """Call the stream's timer(now) at `when` (clock time), instead of any earlier
        setting: the stream's one deadline."""

    def attach(self, upstream: object) -> None:
        """A new server connection is up: it carries this transaction (and the stream's
        write_server writes to it)."""

    def discard(self, upstream: object) -> None:
        """A server connection that came up after the stream ended: closed."""

    def close_server(self) -> None:
        """Close the server connection, if any (not reusable)."""

    def release_server(self, keep: bool) -> None:
        """The transaction is over: the server connection stays attached, idle, for the
        next request (`keep`), or closes."""

    def tunnel(self, data: bytes) -> None:
        """A `101 Switching Protocols` went to the client: hand both connections to the
        byte relay, after writing `data` (what the client sent after its request head)
        to the server. The relay ends the stream (close_session) when both are closed."""

    def close(self, abort: bool, tunnel: bool, reusable: bool) -> None:
        """The stream is over: the timer stopped, the server connection back to its pool
        (`reusable`: no transaction under way on it, the server keeps it), else closed or
        aborted (`abort`, `tunnel`), the client connection closed or aborted, the session
        forgotten."""

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None:
        """Write the transaction's log lines (the frontend has a log sink)."""

    def has_pages(self, frontend: Frontend) -> bool:
        """Whether a stats page may answer in this frontend (worked out once)."""

    def serve(
        self, frontend: Frontend, req: Request, verdict: Verdict, close: bool, body: bytes | None
    ) -> Verdict | None:
        """The verdict to act on (a service's answer, or `verdict`); None: a service
        (the stats page's admin form) needs the request body first."""


class Runtime(Protocol):
    """The running process as a stream reads it (net/context.py's Context)."""

    stopping: bool  # a soft stop: responses say `Connection: close`
    backends: dict[str, Backend]

    def wall(self) -> float:
        """Wall-clock time (epoch seconds): cookie dates."""


class Dispatcher(Protocol):
    """The server side of the stream (net/dispatch.py's Dispatch, in core/connect.py's
    states)."""

    tls_name: str | None  # the SNI of the last server connection, when the server's varies

    @property
    def state(self) -> SrvState: ...

    def assign(self, avoid: ServerState | None) -> None:
        """Pick a server and connect (or reuse, queue, or fail)."""

    def assign_to(self, server: ServerState) -> None:
        """Use this server (persistence)."""

    def connect(self, server: ServerState) -> None:
        """Connect to (or reuse a connection to) this server."""

    def leave_queue(self) -> None:
        """The client left while waiting in a queue."""

    def end(self) -> None:
        """The transaction is over."""

    def close(self) -> None:
        """The stream is over."""
