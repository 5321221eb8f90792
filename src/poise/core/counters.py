"""When the per-request counters of the stats count, as in HAProxy 2.6 (management.txt 9.1;
stream.c `stream_free`/`stream_process_counters`, http_ana.c, backend.c). Pure.

- `hrsp_*`: a frontend counts every response it sends, poise's own too (403, 503,
  redirects, 400/408); a backend counts the responses of the requests routed to it (its
  503 and its own rules' answers too); a server counts the response heads it sent, an
  interim `100 Continue` included, when they are read. Classes 1xx..5xx; "other" is any
  other status. A request that got no response counts nowhere.
- `req_tot`: a frontend counts the requests it receives; a backend the requests routed to
  it that got a response; a server the responses it sent (as `hrsp`).
- `bin`/`bout`: the bytes a session received from its client and sent to it, counted on
  the frontend, the backend and the server of the session when the request (HTTP) or the
  connection (TCP) ends. poise counts bytes on the wire; HAProxy counts the size of its
  internal form of HTTP messages (HTX), a few bytes more or less per head.
- `cli_abrt`/`srv_abrt`: transfers ended by the client or the server (an abort or a
  timeout; termination state C/c or S/s in the data phase, and C while waiting for the
  response head).
- `eresp`: HTTP responses that failed: the server closed or timed out before its head
  (SH, sH), sent something that is not HTTP (PH), or aborted its body (`srv_abrt`).
- `dreq`/`dresp`: requests and responses refused by a rule (`http-request deny`,
  `tarpit`, `tcp-request content reject`; `http-response deny`, `tcp-response content
  reject`), counted on the frontend and its listener, and on the backend when its own
  HTTP rules refused (not a `listen`'s, which run as the frontend's, nor its `tcp-request
  content` rules), as HAProxy 2.6 counts them; a response's on its backend and server.
- `ereq`: requests poise refused before they could be served: malformed (400, or made
  invalid by `normalize-uri ... strict`), a
  timeout before a whole head (408), a client that left before a whole head (CR, 400),
  counted on the frontend and its listener.
- `wretr`/`wredis`: connection attempts retried on the same server, and sessions sent to
  another server after a failure (counted on the server left), with the backend's totals.

A transaction (an HTTP request, a TCP session) is counted once, when it ends, from its
record (core/txn.py) by `account()`: as few plain additions as can be, for speed.
`settle()` is that end for both modes, in one place: the server's slot given back, the
log lines and the counters, in HAProxy's order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from poise.core.backend import Backend, start
from poise.core.server import ServerState
from poise.core.termination import NORMAL
from poise.core.traffic import sample
from poise.core.txn import DENIED_FRONTEND, DENIED_REQUEST, DENIED_RESPONSE, REFUSED_BAD, Txn

# The index in the `hrsp` lists of each status (llhttp reads three digits at most).
STATUS_CLASS: tuple[int, ...] = tuple(n if 1 <= (n := s // 100) <= 5 else 0 for s in range(1000))


def status_class(status: int) -> int:
    """The index of `status` in the `hrsp` lists: 1 to 5 for 1xx..5xx, 0 otherwise."""
    return STATUS_CLASS[status] if 0 <= status < 1000 else 0


class FrontendCounters(Protocol):
    """The counters of a frontend that a transaction adds to (net/context.py)."""

    bytes_in: int
    bytes_out: int
    hrsp: list[int]
    unanswered: int
    denied_req: int
    denied_resp: int
    failed_req: int


class Logger(Protocol):
    """Who writes a transaction's log lines (the HTTP stream's port, a TCP session)."""

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None: ...


def settle(  # noqa: PLR0917 (the transaction's facts, each a plain value)
    txn: Txn,
    frontend: FrontendCounters,
    backend: Backend | None,
    server: ServerState | None,
    slot: bool,
    http: bool,
    logger: Logger | None,
    clock: Callable[[], float],
) -> None:
    """The end of a transaction, TCP and HTTP alike: where it went recorded, the server's
    slot given back (`slot`: it held one; the queue's next waiters go ahead), its log
    lines (`logger`, None: none), and the counters. HAProxy writes an HTTP request's
    line before its backend counts it out (beconn includes it), a TCP session's after."""
    txn.server = server
    if backend is not None:
        txn.backend = backend
        if slot and server is not None:
            goes = backend.release(server)
            if goes:
                start(goes)
    # A transaction that reached a server (and, in HTTP, got its response head) adds its
    # times to its server's and backend's averages (core/traffic.py), as HAProxy's
    # stream_update_time_stats does: in the queue, to connect, to the response head (0 in
    # TCP mode: the connection is the data), and in all (from its first byte). Inline:
    # this is every request's path.
    if not http:
        account(txn, frontend, False)
        if txn.t_connect >= 0 and backend is not None:
            now = clock()
            q = txn.t_queue if txn.t_queue > 0 else 0
            t = int((now - txn.start) * 1000)
            if server is not None:
                sample(server.traffic, server.traffic.lbconn, q, txn.t_connect, 0, t)
            sample(backend.traffic, backend.traffic.lbconn, q, txn.t_connect, 0, t)
            if logger is not None:
                logger.log(txn, backend, now)
        elif logger is not None:
            logger.log(txn, backend, clock())
        return
    if txn.t_response >= 0 and backend is not None:
        now = clock()
        if logger is not None:
            logger.log(txn, backend, now)
        account(txn, frontend, True)
        q = txn.t_queue if txn.t_queue > 0 else 0
        t = int((now - txn.start) * 1000)
        if server is not None:
            sample(server.traffic, server.total_sess, q, txn.t_connect, txn.t_response, t)
        sample(backend.traffic, backend.cum_sess, q, txn.t_connect, txn.t_response, t)
        return
    if logger is not None:
        logger.log(txn, backend, clock())
    account(txn, frontend, True)


def account(txn: Txn, frontend: FrontendCounters, http: bool) -> None:
    """A transaction that ended, counted on its frontend, backend and server; the backend
    counts it out (`leave`). The requests are counted with the responses (`req_tot` is
    their sum); a request that got no response counts as `unanswered`."""
    bytes_in = txn.bytes_in
    bytes_out = txn.bytes_out
    frontend.bytes_in += bytes_in
    frontend.bytes_out += bytes_out
    server = txn.server
    backend = txn.backend
    if server is not None:
        server.bytes_in += bytes_in
        server.bytes_out += bytes_out
    if http:
        status = txn.status
        if status:
            n = STATUS_CLASS[status] if status < 1000 else 0
            frontend.hrsp[n] += 1
            if backend is not None:
                backend.hrsp[n] += 1
        else:
            frontend.unanswered += 1
    if backend is not None:
        if server is None:  # the backend counts its servers' bytes and these
            backend.unserved_bytes_in += bytes_in
            backend.unserved_bytes_out += bytes_out
        if txn.term != NORMAL and not txn.denied:  # a denied response is no failed one
            count_failure(txn.term, backend, server, http)
        backend.leave()
    if txn.term != NORMAL:
        count_refusal(txn, frontend, backend, server)


def failed_request(txn: Txn) -> bool:
    """A request poise refused as malformed, timed out or left before a whole head: it
    answered 400 or 408 (a `tcp-request content reject` has no status)."""
    if txn.denied:
        return txn.denied == REFUSED_BAD  # a rule found it malformed
    return bool(txn.status) and (txn.bad_request or (bool(txn.refusal) and txn.term[1:2] == "R"))


def count_refusal(
    txn: Txn, frontend: FrontendCounters, backend: Backend | None, server: ServerState | None
) -> None:
    """A transaction refused by a rule, or a request poise refused (`dreq`, `dresp`,
    `ereq`; the listener's are counted by core/sockstats.py)."""
    denied = txn.denied
    if denied == DENIED_REQUEST:
        frontend.denied_req += 1
        if backend is not None:
            backend.denied_req += 1
    elif denied == DENIED_FRONTEND:
        frontend.denied_req += 1
    elif denied == DENIED_RESPONSE:
        frontend.denied_resp += 1
        if backend is not None:
            backend.denied_resp += 1
        if server is not None:
            server.denied_resp += 1
    elif failed_request(txn):
        frontend.failed_req += 1


def count_failure(
    term: str, backend: Backend | None, server: ServerState | None, http: bool
) -> None:
    """A session or request that ended with termination state `term` (not "--")."""
    if len(term) < 2:
        return
    who, phase = term[0], term[1]
    client_abort = who in "Cc" and (phase == "D" or (http and term == "CH"))
    server_abort = who in "Ss" and phase == "D"
    failed_resp = http and (server_abort or term in ("SH", "sH", "PH"))
    if backend is not None:
        backend.cli_abrt += client_abort
        backend.srv_abrt += server_abort
        backend.failed_resp += failed_resp
    if server is not None:
        server.cli_abrt += client_abort
        server.srv_abrt += server_abort
        server.failed_resp += failed_resp


def count_retry(backend: Backend, server: ServerState, redispatched: bool) -> None:
    """A failed connection attempt to `server` is tried again: on the same server
    (`wretr`), or on another one (`wredis`, counted on the server left)."""
    if redispatched:
        server.redispatches += 1
        backend.redispatches += 1
    else:
        server.retries += 1
        backend.retries += 1


def clear(backend: Backend) -> None:
    """`clear counters all`: the per-request counters of a backend and its servers."""
    backend.unserved_bytes_in = backend.unserved_bytes_out = 0
    items: list[Backend | ServerState] = [backend, *backend.servers]
    for item in items:
        item.traffic.clear()
        item.cli_abrt = item.srv_abrt = item.failed_resp = 0
        item.retries = item.redispatches = 0
        item.hrsp[:] = [0] * 6
        item.denied_resp = 0
    backend.denied_req = 0
    for server in backend.servers:
        server.bytes_in = server.bytes_out = 0
