"""The HTTP stream, pure: one client connection's requests, one at a time (pipelined ones
wait their turn), each routed, balanced and relayed to a server connection that is kept
for the next request when both sides allow it.

accept -> read a request head (timeout http-request; 408) -> validate (400/501, nothing
forwarded) -> frontend rules (deny/redirect/return) -> use_backend -> backend rules ->
persistence cookie or balancing (a Dispatcher: queue, connect, retries, redispatch) ->
forward the head and stream the body -> read the response head (timeout server; 504) ->
check its framing (502) -> response rules, persistence cookie -> stream the body
(core/http/stream_response.py) -> log -> next request, or after `101 Switching Protocols`
the two connections handed to the byte relay TCP mode uses (the port's `tunnel`).

Events come in as method calls with the time: client_data(data, now), server_data(data,
now), timer(now), client_eof(), client_lost(), server_eof(), server_lost(), and from the
Dispatcher server_connected, fail, finish. The stream acts through its Port
(core/http/stream_port.py): writes, pausing reading *for a reason* (core/http/readgate.py),
the one deadline, the server connection's release, the close. Framing is the framers'
(core/http/framing.py), the checks and edits the analysers' (request_analysers.py,
response_analysers.py), the record of each request a Txn (core/txn.py).
"""

from __future__ import annotations

from collections.abc import Callable

from poise.core import stickrules, sticktrack
from poise.core.backend import Backend
from poise.core.connect import CON, PENDING_LIMIT, QUE, abort_on_close
from poise.core.counters import settle
from poise.core.errors import reply
from poise.core.frontend import Frontend
from poise.core.http import after_response, body_wait, compression, persistence, rules
from poise.core.http import response_analysers as analysers
from poise.core.http import stream_request as request
from poise.core.http import stream_response as response
from poise.core.http.framing import (
    BODY,
    CLOSED,
    HEAD,
    TUNNEL,
    WAIT,
    RequestFramer,
    ResponseFramer,
)
from poise.core.http.hashkey import hash_key, source_key
from poise.core.http.message import Request
from poise.core.http.readgate import CONNECTING, PIPELINED, TRANSACTION, ReadGate
from poise.core.http.stream_port import Dispatcher, Port, Runtime
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import DENIED_REQUEST, DENIED_RESPONSE, Conn, Txn

INFINITE = float("inf")
# The rules' answers that count as refusals (`dreq`, `dresp`).
DENIALS = frozenset({"deny", "tarpit"})


def _no_write(data: bytes) -> None:
    """Where writes go before the shell gives the stream its transports."""
    raise AssertionError("no connection to write to")


class HttpStream:
    # Slots: the attributes are read and written several times per request.
    __slots__ = (
        "accept_time",
        "backend",
        "body_wait",
        "client_gone",
        "clock",
        "conn",
        "cookie_match",
        "deadline",
        "dispatch",
        "encoder",
        "frontend",
        "gate",
        "half_closed",
        "head_out",
        "holds_slot",
        "idle_callback",
        "idle_delay",
        "idle_since",
        "keep_client",
        "keep_server",
        "last_active",
        "no_reuse",
        "out_head",
        "pending",
        "port",
        "processing",
        "requests",
        "retried_fresh",
        "reused",
        "routed",
        "rq",
        "rs",
        "runtime",
        "sending",
        "server",
        "service_wait",
        "t_sent",
        "txn",
        "write_client",
        "write_server",
    )

    def __init__(  # noqa: PLR0917 (what the shell hands over, once per connection)
        self,
        port: Port,
        runtime: Runtime,
        frontend: Frontend,
        clock: Callable[[], float],
        rq: RequestFramer,
        rs: ResponseFramer,
    ) -> None:
        self.port = port
        self.runtime = runtime
        self.frontend = frontend
        self.clock = clock  # the time, in events that do not bring it (the Dispatcher's)
        self.rq = rq  # the client side's framing and phase (core/http/framing)
        self.rs = rs  # the server side's
        # The transports' own write methods (set by the shell: no Python call per write).
        self.write_client: Callable[[bytes], None] = _no_write
        self.write_server: Callable[[bytes], None] = _no_write
        self.dispatch: Dispatcher  # set by the shell, which makes the server side
        self.pending: list[bytes] = []  # request bytes waiting for the server connection
        self.requests = 0
        self.client_gone = False
        self.half_closed = False
        self.processing = False
        self.idle_delay = INFINITE
        self.idle_since = 0.0
        self.idle_callback: Callable[[], None] = self.close_session
        self.deadline = INFINITE  # when the port's timer is set to fire
        self.conn = Conn()
        self.gate = ReadGate()  # why reading from the client is paused (core/http/readgate)
        self.accept_time = self.last_active = 0.0
        # The backend a TCP frontend's rules chose before its connection turned HTTP
        # (HAProxy's implicit upgrade, net/upgrade.py): the first request goes there,
        # those rules already run; the next ones run them again, as HAProxy does.
        self.routed: Backend | None = None
        self.reset_transaction()

    def reset_transaction(self, start: float = 0.0) -> None:
        self.txn = Txn(start)  # the record of the next request (core/txn.py)
        self.t_sent = 0.0
        self.backend: Backend | None = None
        self.server: ServerState | None = None
        self.holds_slot = False
        self.sending = False  # the request goes out on a server connection
        self.out_head = b""
        self.encoder: compression.Encoder | None = None  # core/http/compression.py
        self.head_out = b""  # the response head, waiting to go out with the body
        self.service_wait = -1  # the length of a service's request body being read
        self.body_wait: body_wait.BodyWait | None = None  # option http-buffer-request
        self.keep_client = True
        self.keep_server = True
        self.cookie_match: persistence.CookieMatch | None = None
        self.reused = False
        self.retried_fresh = False  # sent again on a new connection after a reused one died
        self.no_reuse = False
        if self.pending:
            self.pending = []

    # -- events from the client connection ------------------------------------------------

    def begin(self, now: float) -> None:
        """The client connection is accepted: `timeout http-request` starts (arm()'s
        first call, inlined: no deadline is set yet; one Python call less per connection,
        bench/instructions.py's `http close`)."""
        self.accept_time = self.txn.start = self.last_active = now
        delay = self.frontend.first_head_timeout
        if delay is not None:
            self.idle_delay, self.idle_callback, self.idle_since = delay, self.head_timed_out, now
            self.deadline = deadline = now + delay
            self.port.set_deadline(deadline)

    def client_data(self, data: bytes, now: float) -> None:
        self.last_active = now
        rq = self.rq
        phase = rq.phase
        if phase is BODY:
            used = self.request_body(data, 0)
            if used < len(data):
                rq.buf += data[used:]
                self.hold_client()
        else:
            if not rq.buf and phase is HEAD and self.requests:
                # The first byte of the next request: `timeout http-request` starts now.
                self.txn.start = now
                self.arm(self.frontend.first_head_timeout, self.head_timed_out)
            if rq.whole_head(data):
                # One whole head in one read, as most requests come: no buffering.
                self.processing = True
                try:
                    self.handle_head(data)
                    if rq.buf:  # what followed a head with bare LF line ends
                        self.process_heads()
                finally:
                    self.processing = False
                return
            rq.buf += data
            if phase is HEAD:
                self.process()
            elif self.body_wait is not None:
                body_wait.more(self)
            elif self.service_wait >= 0:
                self.service_body_ready()
            else:
                self.hold_client()

    def hold_client(self) -> None:
        """Pipelined data waits for its turn; beyond a head's worth, stop reading."""
        if self.rq.over_limit() and self.gate.pause(PIPELINED):
            self.port.pause_reading()

    def client_eof(self) -> bool:
        """The client closed its side; True: keep the connection half-open."""
        phase = self.rq.phase
        if self.body_wait is not None:
            body_wait.client_left(self)
            return False
        if phase is WAIT and (backend := self.backend) is not None and backend.abortonclose:
            gives_up = abort_on_close(self.dispatch.state)  # `option abortonclose`
            if gives_up is not None:
                self.txn.term = gives_up.code
                self.keep_client = False
                self.end_transaction(log=True)  # out of the queue, nothing sent
                self.close_session()
                return False
        if phase is BODY or phase is WAIT:
            # Half-closed: the client still gets its response, then the connection ends.
            self.half_closed = True
            self.keep_client = False
            return True
        return False

    def client_lost(self) -> None:
        self.client_gone = True
        phase = self.rq.phase
        if phase is not CLOSED:
            if self.txn.req is not None:
                # Left in the middle of a transaction.
                dispatch = self.dispatch
                if dispatch.state is QUE:
                    dispatch.leave_queue()
                    self.txn.term = Failure.CLIENT_ABORT_QUEUE.code
                elif dispatch.state is CON:
                    self.txn.term = Failure.CLIENT_ABORT_CONNECT.code
                    return  # the connect callback ends the session
                elif self.txn.resp is None:
                    left = Failure.CLIENT_ABORT_HEADERS
                    if self.server is None:
                        left = Failure.CLIENT_ABORT_REQUEST
                    self.txn.term = left.code
                else:
                    self.txn.term = Failure.CLIENT_ABORT_DATA.code
                self.end_transaction(log=True)
            elif phase is HEAD and (self.rq.buf or self.requests == 0):
                request.left_before_head(self)  # HAProxy's `CR-- 400 "<BADREQ>"`
            self.close_session()

    # -- reading requests (core/http/stream_request.py) ---------------------------------

    process_heads = request.process_heads
    handle_head = request.handle_head
    service_body_ready = request.service_body_ready
    reject = request.reject
    request_body = request.request_body

    def process(self) -> None:
        """Handle the complete request heads waiting in the buffer, one at a time."""
        self.processing = True
        try:
            self.process_heads()
        finally:
            self.processing = False

    def answered(self, verdict: rules.Verdict) -> bool:
        """A rule answered the request itself (deny, redirect, return)."""
        if verdict.kind == "continue":
            return False
        if verdict.close:
            self.keep_client = False
        self.txn.rule = verdict.reason
        if verdict.kind in DENIALS:  # counted as refused (core/counters.py)
            if verdict.counts:
                self.txn.denied = verdict.counts
            else:
                self.txn.denied = DENIED_REQUEST if self.txn.resp is None else DENIED_RESPONSE
        answer = verdict.response
        if answer is None:
            answer = reply(verdict.status, close=not self.keep_client)
        self.txn.status = verdict.status
        answer = self.after_response(answer)
        self.txn.bytes_out += len(answer)  # after any 103 (stream_request.send_hints)
        self.write_client(answer)
        self.txn.term = (verdict.termination or Failure.REJECTED.code)[:2]
        self.end_transaction(log=verdict.log)
        self.next_request()
        return True

    def after_response(self, answer: bytes) -> bytes:
        """`http-after-response` on an answer poise made (the status it leaves is the
        transaction's)."""
        req = self.txn.req
        backend = self.backend.rules if self.backend is not None else None
        after = after_response.programs(backend, self.frontend.rules)
        if not after or req is None:
            return answer
        answer, status = after_response.rewrite(after, req, answer)
        if status is not None:
            self.txn.status = status
        return answer

    def forward_to_server(self, data: bytes) -> None:
        if self.sending:
            self.write_server(data)
            return
        self.pending.append(data)
        if sum(map(len, self.pending)) >= PENDING_LIMIT and self.gate.pause(CONNECTING):
            self.port.pause_reading()

    # -- the server side (what the Dispatcher asks and tells) ----------------------------

    def balance_key(self) -> bytes | None:
        backend = self.backend
        if backend is None or self.txn.req is None:
            return b""
        if backend.hashes_source:
            return source_key(self.conn.client_ip)
        if backend.hashes_request:
            return hash_key(backend.proxy.balance, self.txn.req)
        return b""

    def sni_request(self) -> Request | None:
        return self.txn.req

    def reuse_allowed(self) -> bool:
        backend = self.backend
        assert backend is not None
        mode = backend.proxy.http_reuse
        if mode == "never":
            return False
        # "safe": a client's first request never goes on a connection another client used.
        return mode in ("aggressive", "always") or self.requests > 1

    def on_redispatch(self) -> None:
        """Left the server the cookie named: the response sets a new cookie."""
        if self.cookie_match is not None:
            self.cookie_match.redispatched()

    def server_connected(self, transport: object, upstream: object, connect_ms: int) -> None:
        """A new server connection is up (EST)."""
        if self.rq.phase is CLOSED or self.backend is None:
            self.port.discard(upstream)  # the session ended (killed at stop) while connecting
            return
        self.txn.t_connect = connect_ms
        self.port.attach(upstream)
        self.send_request(False)

    def send_request(self, reused: bool) -> None:
        """The server connection is there (write_server goes to it): send the request."""
        self.reused = reused
        if reused:
            self.txn.t_connect = 0
        data = self.out_head
        if self.pending:
            data += b"".join(self.pending)
            self.pending = []
            if self.gate.resume(CONNECTING):
                self.port.resume_reading()
        self.sending = True
        self.write_server(data)
        self.t_sent = self.clock()
        backend = self.backend
        assert backend is not None
        timeout = backend.server_timeout
        if (req := self.txn.req) is not None and req.server_timeout is not None:
            timeout = req.server_timeout  # http-request set-timeout server
        self.arm(timeout, self.server_timed_out)

    def fail(self, failure: Failure) -> None:
        """No server could take the request: 503, as HAProxy answers."""
        if self.client_gone:
            self.finish()
            return
        self.error_reply(failure)

    def error_reply(self, failure: Failure) -> None:
        """poise answers in the server's place (502, 503, 504); the client connection
        stays open for its next request, as with HAProxy 2.6."""
        self.drop_server()
        if not self.rq.body_done:
            self.keep_client = False  # the rest of the body would be read as a request
        status = failure.status or 503
        page, closes = analysers.error_page(
            self.backend, self.frontend, self.txn.req, status, close=not self.keep_client
        )
        if closes:
            self.keep_client = False
        txn = self.txn
        txn.status = status
        page = self.after_response(page)
        self.write_client(page)
        txn.bytes_out = len(page)
        txn.term = failure.code
        self.end_transaction(log=True)
        self.next_request()

    def finish(self) -> None:
        """The client left while a server connection was being made."""
        self.end_transaction(log=True)
        self.close_session()

    def drop_server(self) -> None:
        """The server connection is closed: not reusable."""
        self.sending = False
        self.port.close_server()

    # -- the response (core/http/stream_response.py) ------------------------------------

    server_data = response.server_data
    server_eof = response.server_eof
    server_lost = response.server_lost
    response_done = response.response_done
    bad_response = response.bad_response

    def start_tunnel(self) -> None:
        """A `101 Switching Protocols` went to the client: HTTP is over on this
        connection. Both connections go to the port's byte relay (the one TCP mode
        uses: `timeout tunnel`, half-close, back-pressure), with what the client sent
        after its request head; the transaction is logged when the relay ends."""
        rq = self.rq
        rq.tunnel()
        self.idle_delay = INFINITE
        data = b""
        if rq.buf:
            data = bytes(rq.buf)
            rq.buf.clear()
            self.txn.bytes_in += len(data)
        if self.gate.resume(PIPELINED):  # the server connection may still be full
            self.port.resume_reading()
        self.port.tunnel(data)

    # -- timeouts -----------------------------------------------------------------------

    def arm(self, delay: float | None, callback: Callable[[], None]) -> None:
        """The timeout of the current phase (http-request, client, server).

        One deadline serves every phase and is moved lazily: changing phase only records
        the new delay; the port's timer is set again only for an earlier deadline, and
        when it fires early it moves itself to the real one. Phases change several times
        per request, so this saves a timer per change."""
        if delay is None:
            self.idle_delay = INFINITE
            return
        self.idle_delay = delay
        self.idle_callback = callback
        self.idle_since = self.last_active
        deadline = self.last_active + delay
        if deadline < self.deadline:
            self.deadline = deadline
            self.port.set_deadline(deadline)

    def timer(self, now: float) -> None:
        """The port's timer fired. The data path only records the time of last activity;
        the request head's timeout counts from the start of the request, the others from
        the last activity."""
        self.deadline = INFINITE
        phase = self.rq.phase
        if self.idle_delay == INFINITE or phase is CLOSED:
            return
        start_at = self.idle_since if phase is HEAD else self.last_active
        deadline = start_at + self.idle_delay
        if now < deadline:
            self.deadline = deadline
            self.port.set_deadline(deadline)
            return
        self.idle_delay = INFINITE
        self.idle_callback()

    def head_timed_out(self) -> None:
        if not self.rq.buf and self.requests == 0 and self.frontend.ignore_probes:
            self.close_session()  # `option http-ignore-probes`: a probe, closed unseen
        elif self.rq.buf or self.requests == 0:
            self.reject(Failure.REQUEST_TIMEOUT, "request head timeout")
        else:
            self.close_session()  # an idle keep-alive connection closes silently

    def client_timed_out(self) -> None:
        """The client stopped sending its request body."""
        self.txn.term = Failure.CLIENT_TIMEOUT.code
        self.keep_client = False
        self.end_transaction(log=True)
        self.close_session(abort=True)

    def server_timed_out(self) -> None:
        if self.txn.resp is None:
            self.error_reply(Failure.SERVER_TIMEOUT_HEADERS)
        else:
            self.txn.term = Failure.SERVER_TIMEOUT.code
            self.keep_client = False
            self.end_transaction(log=True)
            self.close_session(abort=True)

    # -- the end of a transaction, of the stream ----------------------------------------

    def end_transaction(self, log: bool) -> None:
        self.dispatch.end()
        self.idle_delay = INFINITE
        backend = self.backend
        self.backend = None
        txn = self.txn
        frontend = self.frontend
        req = txn.req
        stores, server = txn.stick_stores, self.server
        if stores is not None and server is not None and req is not None and txn.resp:
            if backend is not None and backend.stick is not None:  # `stick store-response`
                backend.stick.response(req, txn.resp, stores)
            stickrules.commit(stores, server)
        if req is not None and (req.track is not None or self.conn.track is not None):
            served = txn.resp.status if txn.resp is not None else 0
            denied = txn.term[:2] in ("PR", "PT")  # a deny or a tarpit
            sticktrack.request_ended(req, served, denied, txn.bytes_in, txn.bytes_out)
        elif req is None and txn.status == 400 and self.conn.track is not None:
            sticktrack.bad_request(self.conn)
        logger = self.port if log and frontend.log is not None else None
        settle(txn, frontend, backend, self.server, self.holds_slot, True, logger, self.clock)
        if self.conn.sock is not None:  # `option socket-stats`
            self.conn.sock.account(txn)
        self.holds_slot = False
        if backend is None and frontend.proxy.is_backend:
            own = self.runtime.backends.get(frontend.name)
            if own is not None:
                # A `listen` answering before routing (HAProxy's stream is then on the
                # proxy itself): its backend counts the bytes, not the response.
                own.unserved_bytes_in += txn.bytes_in
                own.unserved_bytes_out += txn.bytes_out

    def next_request(self) -> None:
        """After a response: keep the server connection (or not), then the next request."""
        if not self.keep_client or self.client_gone:
            self.close_session(finished=True)
            return
        self.port.release_server(self.keep_server)
        self.last_active = now = self.clock()
        self.reset_transaction(now)
        self.rq.next_request()
        self.rs.reset()
        self.arm(self.frontend.next_head_timeout, self.head_timed_out)
        gate = self.gate
        if gate.reasons and gate.resume(TRANSACTION):  # most often nothing paused it
            self.port.resume_reading()
        if self.rq.buf and not self.processing:
            self.process()

    def close_session(self, abort: bool = False, finished: bool = False) -> None:
        """The end of the stream; `finished`: right after a whole transaction."""
        rq = self.rq
        if rq.phase is CLOSED:
            return
        tunnel = rq.phase is TUNNEL
        if tunnel and self.txn.req is not None:
            self.end_transaction(log=True)  # a WebSocket is logged when it ends
        rq.close()
        if self.conn.track is not None:
            sticktrack.connection_ended(self.conn)
        self.dispatch.close()
        # The server connection goes back to its pool when the server allows it and no
        # transaction is under way on it.
        reusable = self.keep_server and (finished or not self.sending)
        self.sending = False
        self.deadline = INFINITE
        self.port.close(abort, tunnel, reusable)

    def kill(self, code: str) -> None:
        """Ended from outside (the runtime API, a stop)."""
        self.txn.term = code
        if self.txn.req is not None and self.rq.phase is not TUNNEL:
            self.end_transaction(log=True)
        self.close_session(abort=True)
