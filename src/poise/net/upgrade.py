"""HAProxy's implicit HTTP upgrade: a `mode tcp` frontend whose switching rules
(`use_backend`, `default_backend`) choose a `mode http` backend hands the connection to
an HTTP session, which reads it as requests from then on.

What HAProxy 2.6 does, observed on the same configuration: the bytes the layer-4 rules
already held are the start of the first request; that request goes to the chosen backend
without running the frontend's rules again; each later request on the connection runs
the frontend's `tcp-request content` and switching rules on its head (one routed to a
`mode tcp` backend then ends the connection, unanswered, logged IR). The frontend being
TCP, every request is logged in its format (`option tcplog`, HAProxy's fallback from
`option httplog` there, or its `log-format`), its times counted for the first request
from the connection's accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.core.backend import Backend
from poise.core.termination import Failure
from poise.core.txn import Txn
from poise.core.txnlog import failed
from poise.net.http import HttpSession
from poise.net.httplog import http_facts
from poise.net.sessionlog import log_failure, tcp_line

if TYPE_CHECKING:
    from poise.net.tcp import TcpSession


class UpgradedSession(HttpSession):
    """An HTTP session on a TCP frontend's connection: logged in the frontend's format."""

    # When the stream of the next request began, in HAProxy's terms: the connection's
    # accept for the first, the end of the one before for the others (so a line's date
    # and total time include the idle time before the request, as HAProxy's do).
    __slots__ = ("began",)

    began: float

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted and self.requests == 0 and self.txn.req is None and self.rq.buf:
            # The client left in the middle of its first request: HAProxy 2.6 logs it PR,
            # under the frontend's name, <NOSRV>, nothing sent or received.
            self.txn.term = Failure.REJECTED.code
            self.log(self.txn, None, self.loop.time())
        super().connection_lost(exc)

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None:
        frontend = self.frontend
        began, self.began = self.began, now
        if frontend.log is None:
            return
        upstream = self.upstream
        server_side = upstream.transport if upstream is not None else None
        if frontend.tcplog:
            tcp_line(
                frontend, txn, self.conn, self.client, server_side, began, now,
                self.ctx.actconn, True,
            )  # fmt: skip
        if failed(txn):
            log_failure(frontend, http_facts(txn, self.conn, frontend, backend, self.ctx))


def upgrade(tcp: TcpSession, backend: Backend) -> None:
    """Hand `tcp`'s client connection, and the bytes read from it so far, to an HTTP
    session whose first request goes to `backend`. The TCP session ends here without a
    log line of its own; the connection stays counted in its frontend, and the HTTP
    session counts it out when it closes."""
    ctx = tcp.ctx
    session = UpgradedSession(ctx, tcp.frontend)
    session.conn = tcp.conn  # its addresses (a PROXY header's), its `sess` variables
    session.routed = backend
    client = tcp.client
    tcp.finished = True
    tcp.cancel_timer()
    ctx.forget(tcp)
    client.set_protocol(session)
    session.connection_made(client)
    session.accept_time = session.began = session.txn.start = tcp.accept_time
    data = b"".join(tcp.pending)
    tcp.pending = []
    client.resume_reading()  # paused when the held bytes reached PENDING_LIMIT
    if data:
        session.data_received(data)
    if tcp.client_eof and not session.eof_received():
        client.close()
