"""An HTTP-mode session: one client connection, one request at a time (pipelined requests
wait their turn), each routed, balanced and relayed to a server connection that is kept
for the next request when both sides allow it.

accept -> read a request head (timeout http-request; 408) -> validate (400/501, nothing
forwarded) -> frontend rules (deny/redirect/return) -> use_backend -> backend rules ->
persistence cookie or balancing (net/dispatch.py: queue, connect, retries, redispatch) ->
forward the head and stream the body -> read the response head (timeout server; 504) ->
check its framing (502) -> response rules, persistence cookie -> stream the body -> log
(httplog) -> next request, or a WebSocket tunnel after `101 Switching Protocols`.

httptools parses heads only. Framing is pure code (core/http/framing.py: a RequestFramer
and a ResponseFramer per session hold the buffers, the phases and the body counts; every
phase change is theirs): bodies are counted (Content-Length, or chunks scanned by
core/http/chunked.py) and forwarded as received, so body bytes cost no Python per byte,
HEAD/1xx/204/304 responses are framed right, and a head nobody edited is forwarded as the
very bytes that arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from poise.core.backend import Backend, start
from poise.core.connect import CON, QUE
from poise.core.counters import STATUS_CLASS, account, status_class
from poise.core.errors import parse_error, reply
from poise.core.frontend import Frontend
from poise.core.http import compression, heads, persistence, request_analysers, rules, validate
from poise.core.http import response_analysers as analysers
from poise.core.http.chunked import ChunkError
from poise.core.http.framing import (
    BODY,
    CLOSED,
    HEAD,
    RESP_BODY,
    RESP_DONE,
    RESP_HEAD,
    TUNNEL,
    WAIT,
    RequestFramer,
    ResponseFramer,
)
from poise.core.http.hashkey import hash_key, source_key
from poise.core.http.headers import Headers
from poise.core.http.heads import MAX_HEAD, plain_status
from poise.core.http.message import Request, Response, keep_alive
from poise.core.http.readgate import CONNECTING, PIPELINED, TRANSACTION, ReadGate
from poise.core.httplog import capture_headers
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import Conn, Txn
from poise.net import services
from poise.net.context import Context
from poise.net.dispatch import PENDING_LIMIT, Dispatch, backend_tls
from poise.net.httplog import log_transaction
from poise.net.inspect import backend_rejects, content_rejects, refused, reject_content
from poise.net.proxied import take_addresses
from poise.net.tls import client_sni
from poise.net.upstream import Pool, Upstream

INFINITE = float("inf")


# A plain response's head is never read further nor changed (its headers stay empty), so
# one Response per status line serves them all.
_PLAIN_RESPONSES: dict[bytes, Response] = {}
PLAIN_RESPONSES_KEPT = 256


class HttpSession(asyncio.Protocol):
    # Slots: the attributes are read and written several times per request.
    __slots__ = (
        "accept_time",
        "backend",
        "client",
        "client_eof",
        "client_gone",
        "conn",
        "cookie_match",
        "counted",
        "ctx",
        "dispatch",
        "encoder",
        "frontend",
        "gate",
        "head_out",
        "holds_slot",
        "idle_callback",
        "idle_delay",
        "idle_since",
        "idle_timer",
        "keep_client",
        "keep_server",
        "last_active",
        "loop",
        "no_reuse",
        "out_head",
        "pending",
        "processing",
        "requests",
        "retried_fresh",
        "reused",
        "rq",
        "rs",
        "server",
        "service_wait",
        "t_sent",
        "txn",
        "upstream",
    )

    def __init__(self, ctx: Context, frontend: Frontend) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.frontend = frontend
        self.rq = RequestFramer()  # the client side's framing and phase (core/http/framing)
        self.rs = ResponseFramer()  # the server side's
        self.pending: list[bytes] = []  # request bytes waiting for the server connection
        self.requests = 0
        self.idle_timer: asyncio.TimerHandle | None = None  # the HTTP phase's timeout
        self.upstream: Upstream | None = None
        self.client_gone = False
        self.client_eof = False
        self.counted = False
        self.processing = False
        self.idle_delay = INFINITE
        self.idle_since = 0.0
        self.idle_callback: Callable[[], None] = self.close_session
        self.conn = Conn()
        self.gate = ReadGate()  # why reading from the client is paused (core/http/readgate)
        self.dispatch = Dispatch(self, ctx)  # the server side (net/dispatch.py)
        self.accept_time = self.last_active = 0.0
        self.reset_transaction()

    def reset_transaction(self, start: float = 0.0) -> None:
        self.txn = Txn(start)  # the record of the next request (core/txn.py)
        self.t_sent = 0.0
        self.backend: Backend | None = None
        self.server: ServerState | None = None
        self.holds_slot = False
        self.out_head = b""
        self.encoder: compression.Encoder | None = None
        self.head_out = b""  # the response head, waiting to go out with the body
        self.service_wait = -1  # the length of a service's request body being read
        self.keep_client = True
        self.keep_server = True
        self.cookie_match: persistence.CookieMatch | None = None
        self.reused = False
        self.retried_fresh = False  # sent again on a new connection after a reused one died
        self.no_reuse = False
        if self.pending:
            self.pending = []

    # -- the client connection ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.client = cast(asyncio.Transport, transport)
        take_addresses(self.conn, transport)  # the socket's, or a PROXY header's
        tls = self.client.get_extra_info("ssl_object")
        if tls is not None:
            self.conn.ssl = True
            self.conn.sni = client_sni(tls)  # the name the client asked for (SNI)
            self.conn.client_cert = tls.getpeercert(True) is not None
        frontend = self.frontend  # tcp-request connection and session rules (net/inspect.py)
        if frontend.tcp is not None and refused(self.ctx, frontend, self.conn, self.client):
            return
        # Counted in when it was accepted (net/accept.py).
        self.begin()

    def begin(self) -> None:
        self.counted = True
        self.ctx.sessions.add(self)
        self.accept_time = self.txn.start = self.last_active = self.loop.time()
        self.arm(self.frontend.first_head_timeout, self.head_timed_out)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        rq = self.rq
        phase = rq.phase
        if phase is TUNNEL:
            self.txn.bytes_in += len(data)
            self.forward_to_server(data)
        elif phase is BODY:
            used = self.request_body(data, 0)
            if used < len(data):
                rq.buf += data[used:]
                self.hold_client()
        else:
            if not rq.buf and phase is HEAD and self.requests:
                # The first byte of the next request: `timeout http-request` starts now.
                self.txn.start = self.last_active
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
            elif self.service_wait >= 0:
                self.service_body_ready()
            else:
                self.hold_client()

    def hold_client(self) -> None:
        """Pipelined data waits for its turn; beyond a head's worth, stop reading."""
        if self.rq.over_limit() and self.gate.pause(PIPELINED):
            self.client.pause_reading()

    def eof_received(self) -> bool:
        upstream = self.upstream
        phase = self.rq.phase
        if phase is TUNNEL and upstream is not None and upstream.transport is not None:
            if upstream.transport.can_write_eof():
                upstream.transport.write_eof()
                return True
            upstream.transport.close()  # a TLS server connection cannot be half-closed
            return False
        if phase is BODY or phase is WAIT:
            # Half-closed: the client still gets its response, then the connection ends.
            self.client_eof = True
            self.keep_client = False
            return True
        return False

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        if not self.counted:
            return
        phase = self.rq.phase
        if phase is not CLOSED:
            if self.txn.req is not None and phase is not TUNNEL:
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
            self.close_session()

    # -- reading requests ---------------------------------------------------------------

    def process(self) -> None:
        """Handle the complete request heads waiting in the buffer, one at a time."""
        self.processing = True
        try:
            self.process_heads()
        finally:
            self.processing = False

    def process_heads(self) -> None:
        rq = self.rq
        while rq.phase is HEAD and not self.client_gone:
            head = rq.take_head()
            if head is None:
                if rq.over_limit():
                    self.reject(Failure.BAD_REQUEST, "request head too large")
                return
            self.handle_head(head)
        if rq.phase is not HEAD and rq.buf:
            self.hold_client()

    def handle_head(self, raw: bytes) -> None:
        now = self.last_active  # the head's last bytes came just now (data_received)
        txn = self.txn
        txn.bytes_in = len(raw)
        txn.t_head = int((now - txn.start) * 1000)
        self.requests += 1
        if len(raw) > MAX_HEAD:  # HAProxy's limit, however the head arrived (core/http/heads)
            self.reject(Failure.BAD_REQUEST, "request head too large")
            return
        problem = validate.check_request_head(raw)
        if problem is not None and problem.reason == validate.BARE_LF:
            raw = self.with_crlf(raw)  # HAProxy takes a bare LF for CRLF (core/http/heads)
            problem = validate.check_request_head(raw)
        if problem is not None:
            self.reject(Failure.BAD_REQUEST, problem.reason, problem.status)
            return
        req = request_analysers.read_request(raw, self.conn)
        if isinstance(req, str):
            self.reject(Failure.BAD_REQUEST, req)
            return
        txn.req = req
        if frontend_captures := self.frontend.proxy.capture_request_headers:
            # Captured as they arrived, before any rule or poise itself edits them.
            txn.req_captures = capture_headers(frontend_captures, req.headers)
        problem = validate.check_request(req)  # the request's own checks
        if problem is None:
            # Only a request with an Upgrade header can be one (validate.py).
            upgrade = "upgrade" in req.headers.index() and validate.is_websocket_upgrade(req)
            if isinstance(upgrade, validate.HttpProblem):
                problem = upgrade
            else:
                txn.websocket = upgrade
        if problem is not None:
            self.reject(Failure.BAD_REQUEST, problem.reason, problem.status)
            return
        if (tcp := self.frontend.tcp) is not None and tcp.content and content_rejects(tcp, req):
            self.layer4_reject(True)
            return
        # `option httpclose` in the frontend closes the client side after each response;
        # so does a soft stop (a reload): the response says `Connection: close`, and the
        # client opens its next connection to the new worker, with nothing cut under it.
        self.keep_client = keep_alive(req.version, req.headers) and not (
            self.frontend.closes_client or self.ctx.stopping
        )
        frontend = self.frontend.proxy
        close = not self.keep_client
        runtime = self.frontend
        verdict = services.monitor(runtime, req, close) if runtime.monitor_uri else rules.CONTINUE
        if runtime.request_rules and verdict is rules.CONTINUE:
            verdict = rules.request_rules(runtime.rules, req, close=close)
        pages = runtime.pages  # worked out on the first request (services.has_pages)
        if pages is None:
            pages = services.has_pages(self.ctx, runtime)
        if verdict.kind != "continue" or pages:
            # The stats page and `use-service` answer here (net/services.py).
            verdict = services.serve(self.ctx, runtime, req, verdict, close=close)
            if verdict is services.NEEDS_BODY:
                self.read_service_body(req)
                return
            if self.answered(verdict):
                return
        backend = request_analysers.select_backend(runtime, req, self.ctx.backends)
        if backend is None:
            self.error_reply(Failure.NO_SERVER)
            return
        self.backend = backend
        backend.enter()
        if backend.tcp is not None and backend_rejects(backend, frontend, req):
            self.layer4_reject(False)
            return
        if (
            backend.request_rules
            and backend.proxy is not frontend
            and self.answered(rules.request_rules(backend.rules, req, close=close))
        ):
            return
        rq = self.rq
        rq.expect_body(validate.request_framing(req))
        # The head for the server, and what the persistence cookie says.
        client_ip, websocket = self.conn.client_ip, txn.websocket
        keep = request_analysers.server_headers(req, runtime, backend, client_ip, websocket)
        self.keep_server = keep
        if backend.compression is not None or runtime.compression is not None:
            self.encoder = compression.choose(backend.compression, runtime.compression, req)
        if (cookie := backend.proxy.cookie) is not None:
            now = self.ctx.wall()
            self.cookie_match = request_analysers.request_persistence(cookie, backend, req, now)
        self.out_head = request_analysers.request_head(raw, req)
        if rq.phase is BODY:
            self.arm(self.frontend.client_timeout, self.client_timed_out)
            # Body bytes that came with the head.
            if rq.buf:
                data = bytes(rq.buf)
                rq.buf.clear()
                used = self.request_body(data, 0)
                rq.buf += data[used:]
                if rq.phase is CLOSED:
                    return  # the body was malformed: refused before anything was forwarded
        else:
            self.disarm()  # connecting: `timeout connect` and `timeout queue` apply
        # A server: the one the persistence cookie names, else the balancer's choice.
        self.holds_slot = True
        match = self.cookie_match
        if match is not None and match.server is not None:
            self.dispatch.assign_to(match.server)
        else:
            self.dispatch.assign(None, self.upstream)

    def with_crlf(self, raw: bytes) -> bytes:
        """The first head in `raw`, whose lines may end in a bare LF, rewritten with CRLF;
        what followed its empty line goes back to the buffer."""
        head, used = heads.with_crlf(raw)
        if used < len(raw):
            self.rq.unread(raw[used:])
            self.txn.bytes_in = used
        return head

    def answered(self, verdict: rules.Verdict) -> bool:
        """A rule answered the request itself (deny, redirect, return)."""
        if verdict.kind == "continue":
            return False
        if verdict.close:
            self.keep_client = False
        self.txn.rule = verdict.reason
        response = verdict.response
        if response is None:
            response = reply(verdict.status, close=not self.keep_client)
        self.txn.status = verdict.status
        self.txn.bytes_out = len(response)
        self.client.write(response)
        self.txn.term = (verdict.termination or Failure.REJECTED.code)[:2]
        self.end_transaction(log=verdict.log)
        self.next_request()
        return True

    def read_service_body(self, req: Request) -> None:
        """The stats page's admin form: its body (at most services.MAX_BODY bytes, with a
        Content-Length, net/services.py checked) is read whole, then the page answers."""
        self.service_wait = validate.request_framing(req).length
        if validate.expects_continue(req):
            self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # RFC 9110 10.1.1
        self.rq.wait()
        self.arm(self.frontend.client_timeout, self.client_timed_out)
        self.service_body_ready()

    def service_body_ready(self) -> None:
        wanted = self.service_wait
        buf = self.rq.buf
        if len(buf) < wanted:
            return
        body = bytes(buf[:wanted])
        del buf[:wanted]
        self.service_wait = -1
        req = self.txn.req
        assert req is not None
        close = not self.keep_client
        self.answered(services.serve(self.ctx, self.frontend, req, close=close, body=body))

    def reject(self, failure: Failure, reason: str, status: int | None = None) -> None:
        """A request poise refuses: its error page (or the proxy's `errorfile`), the
        connection closed, and two log lines: HAProxy's, and the failure line that says
        why (net/httplog.py). `status`: the validator's, when it knows better (501...)."""
        txn = self.txn
        txn.status = status = status or failure.status or 400
        txn.refusal = reason
        page = self.frontend.proxy.errorfile(status) or parse_error(status)
        self.client.write(page)
        txn.term = failure.code
        self.keep_client = False
        if txn.req is None:
            txn.bad_request = True
            txn.bytes_out = txn.bytes_in = 0  # HAProxy counts no bytes for these either
        self.end_transaction(log=True)
        self.close_session()

    def layer4_reject(self, frontend_rule: bool) -> None:
        """`tcp-request content reject`: closed, no response (net/inspect.py says how)."""
        self.keep_client = False
        reject_content(self.txn, frontend_rule)
        self.end_transaction(log=True)
        self.close_session()

    # -- request bodies -----------------------------------------------------------------

    def request_body(self, data: bytes, start_at: int) -> int:
        """Forward the body bytes in `data[start_at:]`; return where the body ended."""
        try:
            stop = self.rq.body(data, start_at)
        except ChunkError as exc:
            self.reject(Failure.BAD_REQUEST, str(exc))
            return len(data)
        if stop > start_at:
            self.txn.bytes_in += stop - start_at
            self.forward_to_server(data[start_at:stop])
        return stop

    def forward_to_server(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None and upstream.session is self:
            upstream.transport.write(data)
            return
        self.pending.append(data)
        if sum(map(len, self.pending)) >= PENDING_LIMIT and self.gate.pause(CONNECTING):
            self.client.pause_reading()

    # -- choosing a server (persistence first) ------------------------------------------

    def balance_key(self) -> bytes | None:
        backend = self.backend
        if backend is None or self.txn.req is None:
            return b""
        if backend.hashes_source:
            return source_key(self.conn.client_ip)
        if backend.hashes_request:
            return hash_key(backend.proxy.balance, self.txn.req)
        return b""

    def server_protocol(self) -> asyncio.Protocol:
        assert self.server is not None
        return Upstream(self, self.pool(self.server))

    def pool(self, server: ServerState) -> Pool:
        assert self.backend is not None
        pools = self.ctx.io[self.backend].pools
        pool = pools.get(server.id)
        if pool is None:
            pool = pools[server.id] = Pool(self.ctx, server)
        return pool

    def reuse(self, server: ServerState) -> bool:
        """Keep-alive: this session's last connection to `server`, or an idle one."""
        if self.no_reuse:
            return False
        now = self.loop.time()
        home = self.pool(server)
        upstream = self.upstream
        io = self.ctx.io[self.backend] if self.backend is not None else None
        sni = self.varying_sni(server) if io is not None and io.server_tls else None
        if server.config.proxy_protocol:  # only this client's connections (net/dispatch.py)
            sni = self.dispatch.private_key(sni)
        if upstream is not None and (
            upstream.closed or upstream.home is not home or upstream.sni != sni
        ):
            upstream.release(now)  # kept for its own server (or dropped when closed)
            upstream = self.upstream = None
        if upstream is None and self.reuse_allowed():
            upstream = home.take(now, sni)
        if upstream is None:
            return False
        self.upstream = upstream
        self.reused = True
        self.txn.t_connect = 0
        self.send_request(upstream)
        return True

    def varying_sni(self, server: ServerState) -> str | None:
        """The SNI a new connection to `server` would send, when it depends on the request
        (`sni req.hdr(host)`); None when it does not (a constant, or no TLS)."""
        tls = backend_tls(self.ctx, self.backend, server)
        if tls is None or tls.dynamic is None:
            return None
        return tls.server_name(self.txn.req) or ""

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

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        upstream = cast(Upstream, protocol)
        if self.rq.phase is CLOSED or self.backend is None:
            upstream.close()  # the session ended (killed at stop) while connecting
            return
        upstream.sni = self.dispatch.tls_name
        self.txn.t_connect = connect_ms
        previous = self.upstream
        if previous is not None and previous is not upstream:
            previous.release(self.loop.time())
        self.upstream = upstream
        self.reused = False
        self.send_request(upstream)

    def send_request(self, upstream: Upstream) -> None:
        upstream.session = self
        assert upstream.transport is not None
        data = self.out_head
        if self.pending:
            data += b"".join(self.pending)
            self.pending = []
            if self.gate.resume(CONNECTING):
                self.client.resume_reading()
        upstream.transport.write(data)
        self.t_sent = self.loop.time()
        backend = self.backend
        assert backend is not None
        self.arm(backend.server_timeout, self.server_timed_out)

    def fail(self, failure: Failure) -> None:
        """No server could take the request: 503, as HAProxy answers."""
        if self.client_gone:
            self.finish()
            return
        self.error_reply(failure)

    def error_reply(self, failure: Failure) -> None:
        """poise answers in the server's place (502, 503, 504); the client connection
        stays open for its next request, as with HAProxy 2.6."""
        self.release_upstream(None, close=True)
        if not self.rq.body_done:
            self.keep_client = False  # the rest of the body would be read as a request
        status = failure.status or 503
        page, closes = analysers.error_page(
            self.backend, self.frontend, self.txn.req, status, close=not self.keep_client
        )
        if closes:
            self.keep_client = False
        self.client.write(page)
        txn = self.txn
        txn.status = status
        txn.bytes_out = len(page)
        txn.term = failure.code
        self.end_transaction(log=True)
        self.next_request()

    def finish(self) -> None:
        """The client left while a server connection was being made."""
        self.end_transaction(log=True)
        self.close_session()

    # -- responses ----------------------------------------------------------------------

    def server_data(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        if self.rq.phase is TUNNEL:
            self.txn.bytes_out += len(data)
            self.client.write(data)
            return
        rs = self.rs
        phase = rs.phase
        if phase is RESP_BODY:
            self.response_body(data, 0)
            return
        if phase is RESP_DONE:
            # Bytes after a complete response: the server broke the framing.
            self.release_upstream(None, close=True)
            return
        if self.plain_expected():
            status = rs.whole_plain(data)
            if status:  # a whole plain response, as small ones come: forwarded as it came
                self.plain_response(data, status)
                self.client.write(data)
                self.response_done()
                return
        buf = rs.buf
        buf += data
        while rs.phase is RESP_HEAD and not self.client_gone:
            # What follows the head stays in the buffer while the head is handled: a
            # response that ends there with bytes left over (a body after HEAD) ends its
            # connection.
            head = rs.take_head()
            if head is None:
                problem = rs.head_problem()
                if problem is not None:
                    self.bad_response(problem)
                return
            if not self.response_head(head) or rs.phase is RESP_DONE:
                return  # refused, or whole and the session closed: the rest is not read
            rest = bytes(buf)
            buf.clear()
            if not rest:
                self.flush_head()
            else:
                if self.rq.phase is TUNNEL:
                    self.txn.bytes_out += len(rest)
                    self.client.write(rest)
                    return
                if rs.phase is RESP_HEAD:
                    buf += rest
                    continue
                self.response_body(rest, 0)
            return

    def plain_expected(self) -> bool:
        """Nothing in the response to this request needs reading or changing, if it is a
        plain one (validate.plain_length): no response rule, capture or cookie, a kept
        HTTP/1.1 client, no upgrade, a method whose response has a body."""
        txn = self.txn
        req = txn.req
        backend = self.backend
        return (
            req is not None
            and backend is not None
            and backend.plain_responses
            and self.frontend.plain_responses
            and self.keep_client
            and req.version == "1.1"
            and not txn.websocket
            and req.method not in ("HEAD", "CONNECT")
        )

    def plain_response(self, raw: bytes, status: int) -> None:
        """Record the response that starts `raw` (a plain one, checked)."""
        txn = self.txn
        if txn.t_response < 0:
            # server_data set last_active just now
            txn.t_response = int((self.last_active - self.t_sent) * 1000)
        line = raw[: raw.find(b"\r\n")]
        server = self.server
        if server is not None:  # the server's response counters (core/counters.py)
            server.hrsp[STATUS_CLASS[status]] += 1
        resp = _PLAIN_RESPONSES.get(line)
        if resp is None:
            if len(_PLAIN_RESPONSES) >= PLAIN_RESPONSES_KEPT:
                _PLAIN_RESPONSES.clear()
            reason = line[13:].decode("latin-1")  # after "HTTP/1.1 NNN "
            resp = _PLAIN_RESPONSES[line] = Response(status, reason, "1.1", Headers())
        txn.resp = resp
        txn.status = status
        txn.bytes_out += len(raw)

    def response_head(self, raw: bytes) -> bool:
        if self.plain_expected():
            length = validate.plain_length(raw, len(raw))
            if length >= 0:
                return self.plain_response_head(raw, length)
        return self.full_response_head(raw)

    def plain_response_head(self, raw: bytes, length: int) -> bool:
        """The common case (validate.plain_length): checked by httptools, framed by its
        Content-Length, and forwarded as it came: nothing in it needs reading or changing.
        Any status with rules of its own (1xx, 204, 304) takes the full path."""
        status = plain_status(raw)
        if not status:
            return self.full_response_head(raw)
        self.plain_response(raw, status)
        self.head_out = raw
        if self.rs.body_follows("length", length):
            self.response_done()
        return True

    def full_response_head(self, raw: bytes) -> bool:
        """A response head read whole, checked, through the response rules and the
        persistence cookie, then rebuilt for the client (core/http/response_analysers)."""
        resp = analysers.read_response(raw)
        if isinstance(resp, str):
            self.bad_response(resp)
            return False
        txn = self.txn
        status = resp.status
        if self.server is not None:
            self.server.hrsp[status_class(status)] += 1
        req = txn.req
        assert req is not None
        if frontend_captures := self.frontend.proxy.capture_response_headers:
            txn.resp_captures = capture_headers(frontend_captures, resp.headers)
        if 100 <= status < 200 and status != 101:
            # Interim response (100 Continue): forwarded, the final one follows.
            self.client.write(raw)
            return True
        if txn.t_response < 0:
            txn.t_response = int((self.loop.time() - self.t_sent) * 1000)
        txn.resp = resp
        txn.status = status
        if status == 101 and txn.websocket:
            self.client.write(raw)
            txn.bytes_out += len(raw)
            self.start_tunnel()
            return True
        checked = analysers.check_response(req, resp)
        if isinstance(checked, validate.HttpProblem):
            self.bad_response(checked.reason)
            return False
        framing, keep_server, keep_client = checked
        self.keep_server = self.keep_server and keep_server
        if not keep_client:
            self.keep_client = False
        backend = self.backend
        assert backend is not None
        verdict = analysers.response_rules(backend, self.frontend, req, resp)
        if verdict is not None:
            self.release_upstream(None, close=True)
            self.answered(verdict)
            return False
        txn.status = resp.status  # as `http-response set-status` left it
        cookie = backend.proxy.cookie
        if cookie is not None and self.server is not None:
            match, now = self.cookie_match, self.ctx.wall()
            flags = analysers.response_cookie(cookie, match, self.server, req, resp, now=now)
            txn.cookie_status = flags
        if self.encoder is not None:  # compression (core/http/compression.py)
            self.encoder = self.encoder.start(req, resp, framing)
        # Written with the first body bytes: one write (one syscall) per small response.
        head = self.head_out = analysers.client_head(raw, req, resp, self.keep_client)
        txn.bytes_out += len(head)
        if self.rs.body_follows(framing.kind, framing.length):
            self.response_done()
        return True

    def response_body(self, data: bytes, start_at: int) -> None:
        end = len(data)
        rs = self.rs
        try:
            stop = rs.body(data, start_at)
        except ChunkError as exc:
            self.bad_response(str(exc), started=True)
            return
        chunk = data[start_at:stop] if start_at or stop != end else data
        if self.encoder is not None:  # compression (core/http/compression.py)
            chunk = self.encoder.feed(chunk, rs.phase is RESP_DONE)
        if chunk:
            self.txn.bytes_out += len(chunk)
            if self.head_out:
                chunk = self.head_out + chunk
                self.head_out = b""
            self.client.write(chunk)
        if rs.phase is RESP_DONE:
            if stop < end:
                self.keep_server = False  # extra bytes after the response: not reusable
            self.response_done()

    def flush_head(self) -> None:
        if self.head_out:
            self.client.write(self.head_out)
            self.head_out = b""

    def response_done(self) -> None:
        if self.head_out:
            self.flush_head()
        if self.rs.buf:
            self.keep_server = False  # bytes after the response: HAProxy closes, and so do we
        if self.rq.phase is BODY:
            # The server answered before the whole request body arrived: the rest of the
            # body is not worth reading; neither connection can be reused.
            self.keep_client = self.keep_server = False
        self.end_transaction(log=True)
        self.next_request()

    def bad_response(self, reason: str, started: bool = False) -> None:
        """Broken framing or garbage from the server: 502 (or an abort once the client
        has part of the response)."""
        self.txn.refusal = reason
        self.release_upstream(None, close=True)
        if started or (self.txn.resp is not None and self.txn.bytes_out):
            self.txn.term = Failure.SERVER_ABORT_DATA.code
            self.keep_client = False
            self.end_transaction(log=True)
            self.close_session(abort=True)
            return
        self.error_reply(Failure.BAD_RESPONSE)

    def server_eof(self) -> None:
        if self.rq.phase is TUNNEL:
            self.client.write_eof() if self.client.can_write_eof() else self.client.close()
            return
        if self.rs.server_closed():  # the end of a body framed by the close
            self.keep_server = False
            self.response_done()

    def server_lost(self, upstream: Upstream, exc: Exception | None) -> None:
        if upstream is not self.upstream:
            return
        self.upstream = None
        if self.rq.phase is TUNNEL:
            self.close_session()
            return
        rs = self.rs
        if rs.phase is RESP_DONE or self.txn.req is None:
            return
        if rs.server_closed():  # the end of a body framed by the close
            self.keep_server = False
            self.response_done()
            return
        if self.txn.resp is None and not rs.buf and self.reused and not self.retried_fresh:
            # A reused connection the server closed without answering (core/http/heads.py).
            after = self.after_dead_connection()
            if after == "resend":
                self.retried_fresh = self.no_reuse = True
                assert self.server is not None
                self.dispatch.connect(self.server)
                return
            if after == "close":
                self.keep_client = False
                self.end_transaction(log=False)
                self.close_session()
                return
        if self.txn.resp is None:
            self.error_reply(
                Failure.BAD_RESPONSE
                if heads.garbage_response(rs.buf)
                else Failure.SERVER_ABORT_HEADERS
            )
        else:
            self.txn.term = Failure.SERVER_ABORT_DATA.code
            self.keep_client = False
            self.end_transaction(log=True)
            self.close_session(abort=True)

    def on_redispatch(self) -> None:
        """Left the server the cookie named: the response sets a new cookie."""
        if self.cookie_match is not None:
            self.cookie_match.redispatched()

    def after_dead_connection(self) -> str:
        """A request sent on a reused connection that died before any answer: sent once
        more on a new one when idempotent without a body, else HAProxy's answer."""
        req = self.txn.req
        assert req is not None
        if self.txn.websocket:
            return "502"
        has_body = validate.request_framing(req) is not validate.NO_BODY
        return heads.after_dead_connection(req.method, has_body, first=self.requests == 1)

    # -- WebSocket tunnel ---------------------------------------------------------------

    def start_tunnel(self) -> None:
        rq = self.rq
        rq.tunnel()
        backend = self.backend
        assert backend is not None
        idle = backend.tunnel_timeout or self.frontend.client_timeout or backend.server_timeout
        self.arm(idle, self.tunnel_timed_out)
        if rq.buf:
            data = bytes(rq.buf)
            rq.buf.clear()
            self.txn.bytes_in += len(data)
            self.forward_to_server(data)
        if self.gate.resume(PIPELINED):  # the server connection may still be full
            self.client.resume_reading()

    # -- timeouts -----------------------------------------------------------------------

    def arm(self, delay: float | None, callback: Callable[[], None]) -> None:
        """The timeout of the current phase (http-request, client, server, tunnel).

        One timer serves every phase and is re-armed lazily: changing phase only records
        the new delay; when the timer fires early it moves itself to the real deadline.
        Phases change several times per request, so this saves a timer per change."""
        if delay is None:
            self.idle_delay = INFINITE
            return
        self.idle_delay = delay
        self.idle_callback = callback
        self.idle_since = self.last_active
        deadline = self.last_active + delay
        timer = self.idle_timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.idle_timer = self.loop.call_at(deadline, self.timer_fired)

    def disarm(self) -> None:
        self.idle_delay = INFINITE

    def stop_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def timer_fired(self) -> None:
        """The data path only records the time of last activity; the request head's
        timeout counts from the start of the request, the others from the last activity."""
        self.idle_timer = None
        phase = self.rq.phase
        if self.idle_delay == INFINITE or phase is CLOSED:
            return
        start = self.idle_since if phase is HEAD else self.last_active
        deadline = start + self.idle_delay
        if self.loop.time() < deadline:
            self.idle_timer = self.loop.call_at(deadline, self.timer_fired)
            return
        self.idle_delay = INFINITE
        self.idle_callback()

    def head_timed_out(self) -> None:
        if self.rq.buf or self.requests == 0:
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

    def tunnel_timed_out(self) -> None:
        self.txn.term = Failure.CLIENT_TIMEOUT.code
        self.close_session(abort=True)

    # -- the end of a transaction, of the session ---------------------------------------

    def release_upstream(self, upstream: Upstream | None, close: bool = False) -> None:
        upstream = upstream or self.upstream
        if upstream is None:
            return
        if upstream is self.upstream:
            self.upstream = None
        if close or not self.keep_server or upstream.closed:
            upstream.close()
        else:
            upstream.release(self.loop.time())

    def end_transaction(self, log: bool) -> None:
        backend = self.backend
        server = self.server
        if self.holds_slot and server is not None and backend is not None:
            self.holds_slot = False
            goes = backend.release(server)
            if goes:
                start(goes)
        self.dispatch.end()
        self.idle_delay = INFINITE  # disarm()
        txn = self.txn
        txn.server = server
        frontend = self.frontend
        if backend is not None:
            txn.backend = backend
            self.backend = None
        if log and frontend.log is not None:
            upstream = self.upstream
            server_side = upstream.transport if upstream is not None else None
            log_transaction(
                txn, self.conn, frontend, backend, self.ctx, self.loop.time(),
                self.client, server_side,
            )  # fmt: skip
        account(txn, frontend, True)
        if backend is None and frontend.proxy.is_backend:
            own = self.ctx.backends.get(frontend.name)
            if own is not None:
                # A `listen` answering before routing (HAProxy's stream is then on the
                # proxy itself): its backend counts the bytes, not the response.
                own.unserved_bytes_in += txn.bytes_in
                own.unserved_bytes_out += txn.bytes_out

    def next_request(self) -> None:
        """After a response: keep the server connection (or not), then the next request."""
        upstream = self.upstream
        if upstream is not None:
            if self.keep_server and not upstream.closed:
                upstream.session = None  # kept attached: the next request may reuse it
            else:
                self.release_upstream(upstream, close=True)
        if not self.keep_client or self.client_gone:
            self.close_session()
            return
        self.last_active = now = self.loop.time()
        self.reset_transaction(now)
        self.rq.next_request()
        self.rs.reset()
        self.arm(self.frontend.next_head_timeout, self.head_timed_out)
        gate = self.gate
        if gate.reasons and gate.resume(TRANSACTION):  # most often nothing paused it
            self.client.resume_reading()
        if self.rq.buf and not self.processing:
            self.process()

    def close_session(self, abort: bool = False) -> None:
        rq = self.rq
        if rq.phase is CLOSED:
            return
        tunnel = rq.phase is TUNNEL
        if tunnel and self.txn.req is not None:
            self.end_transaction(log=True)  # a WebSocket is logged when it ends
        rq.close()
        self.dispatch.close()
        self.stop_timer()
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            if abort or tunnel:
                upstream.abort()
            elif upstream.session is None and self.keep_server:
                upstream.release(self.loop.time())  # idle and reusable: back to its pool
            else:
                upstream.close()
        if not self.client_gone:
            if abort:
                self.client.abort()
            else:
                self.client.close()
        if self.counted:
            self.counted = False
            self.ctx.forget(self)
            self.ctx.release(self.frontend)

    def kill(self, code: str) -> None:
        self.txn.term = code
        if self.txn.req is not None and self.rq.phase is not TUNNEL:
            self.end_transaction(log=True)
        self.close_session(abort=True)
