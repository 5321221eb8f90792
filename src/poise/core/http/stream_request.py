"""The HTTP stream's way in (core/http/stream.py): complete request heads cut from the
client's bytes, read and checked (core/http/validate.py, request_analysers.py), through the
frontend's rules and services, the switching rules, the backend's rules and the
persistence cookie to a server (the Dispatcher); the request body counted and forwarded; a
request refused with its status.

These functions are the methods of HttpStream that read requests, kept in their own
module by a coherent cut (HttpStream binds them: `handle_head =
stream_request.handle_head`); `s` is the stream. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from poise.core import layer4, sticktrack
from poise.core.backend import seconds
from poise.core.errors import parse_error
from poise.core.http import (
    body_wait,
    compression,
    heads,
    request_analysers,
    rules,
    tarpit,
    validate,
)
from poise.core.http.chunked import ChunkError
from poise.core.http.framing import BODY, CLOSED, HEAD
from poise.core.http.heads import MAX_HEAD
from poise.core.http.message import Request, keep_alive
from poise.core.httplog import capture_headers
from poise.core.termination import Failure

INFINITE = float("inf")

if TYPE_CHECKING:
    from poise.core.backend import Backend
    from poise.core.http.stream import HttpStream


def process_heads(s: HttpStream) -> None:
    rq = s.rq
    while rq.phase is HEAD and not s.client_gone:
        head = rq.take_head()
        if head is None:
            if rq.over_limit():
                s.reject(Failure.BAD_REQUEST, "request head too large")
            return
        s.handle_head(head)
    if rq.phase is not HEAD and rq.buf:
        s.hold_client()


def handle_head(s: HttpStream, raw: bytes) -> None:
    now = s.last_active  # the head's last bytes came just now (client_data)
    txn = s.txn
    txn.bytes_in = len(raw)
    txn.t_head = int((now - txn.start) * 1000)
    s.requests += 1
    if len(raw) > MAX_HEAD:  # HAProxy's limit, however the head arrived (core/http/heads)
        s.reject(Failure.BAD_REQUEST, "request head too large")
        return
    problem = validate.check_request_head(raw)
    if problem is not None and problem.reason == validate.BARE_LF:
        raw = with_crlf(s, raw)  # HAProxy takes a bare LF for CRLF (core/http/heads)
        problem = validate.check_request_head(raw)
    if problem is not None:
        s.reject(Failure.BAD_REQUEST, problem.reason, problem.status)
        return
    req = request_analysers.read_request(raw, s.conn)
    if isinstance(req, str):
        s.reject(Failure.BAD_REQUEST, req)
        return
    txn.req = req
    if frontend_captures := s.frontend.proxy.capture_request_headers:
        # Captured as they arrived, before any rule or poise itself edits them.
        # `http-request capture` fill the others (core/http/txn_rules.py).
        txn.req_captures = req.captures = list(capture_headers(frontend_captures, req.headers))
        req.capture_lengths = s.frontend.capture_lengths
    problem = validate.check_request(req)  # the request's own checks
    if problem is None:
        # Only a request with an Upgrade header can be one (validate.py).
        upgrade = "upgrade" in req.headers.index() and validate.is_websocket_upgrade(req)
        if isinstance(upgrade, validate.HttpProblem):
            problem = upgrade
        else:
            txn.websocket = upgrade
    if problem is not None:
        s.reject(Failure.BAD_REQUEST, problem.reason, problem.status)
        return
    # The first request of a TCP connection turned HTTP (net/upgrade.py) was judged already.
    if (
        s.routed is None
        and (tcp := s.frontend.tcp) is not None
        and tcp.content
        and layer4.content_rejects(tcp, req)
    ):
        layer4_reject(s, True)
        return
    if s.conn.track is not None:  # the connection's stick counters count the request
        sticktrack.request_started(req)
    # `option httpclose` in the frontend closes the client side after each response;
    # so does a soft stop (a reload): the response says `Connection: close`, and the
    # client opens its next connection to the new worker, with nothing cut under it.
    s.keep_client = keep_alive(req.version, req.headers) and not (
        s.frontend.closes_client or s.runtime.stopping
    )
    runtime = s.frontend
    if runtime.buffers_body and body_wait.wait(s, raw, req, runtime.first_head_timeout, route):
        return  # `option http-buffer-request`: route() when the body is in
    route(s, raw)


def route(s: HttpStream, raw: bytes, start: int = 0, backend_side: bool = False) -> None:
    """The frontend's rules and services, the switching rules, to the backend; then the
    backend's rules, the head for the server, the body, a server. `start`: the rules go
    on from there (after a `wait-for-body`); `backend_side`: the frontend's part is done
    (to_server). One function rather than one calling the other: a Python call costs
    about 500 instructions of every request (bench/README.md, issue 16)."""
    req, txn = s.txn.req, s.txn
    assert req is not None
    close = not s.keep_client
    runtime = s.frontend
    frontend = runtime.proxy
    if not backend_side:
        verdict = (
            request_analysers.monitor(runtime, req, close)
            if runtime.monitor_uri and not start
            else rules.CONTINUE
        )
        if runtime.request_rules and verdict is rules.CONTINUE:
            # A rule's answer to a request whose body is not read closes
            # (body_wait.answering).
            answer_closes = close or body_wait.unread(req)
            verdict = rules.request_rules(runtime.rules, req, close=answer_closes, start=start)
            if req.hints:
                send_hints(s, req)
            if verdict.kind == "wait":
                wait_for_body(s, raw, req, verdict, route)
                return
        pages = runtime.pages  # worked out on the first request (net/services.has_pages)
        if pages is None:
            pages = s.port.has_pages(runtime)
        if verdict.kind != "continue" or pages:
            # The stats page and `use-service` answer here (net/services.py).
            served = s.port.serve(runtime, req, verdict, close, None)
            if served is None:
                read_service_body(s, req)
                return
            if served.kind != "continue":
                body_wait.answering(s, req)
            if served.kind == "tarpit":
                tarpit.hold(s, served, frontend)
                return
            if s.answered(served):
                return
        routed = s.routed
        if routed is not None:
            s.routed = None
            chosen_backend: Backend | None = routed
        else:
            chosen_backend = request_analysers.select_backend(runtime, req, s.runtime.backends)
        if chosen_backend is None:
            body_wait.answering(s, req)  # the body is never read: closed after the 503
            s.error_reply(Failure.NO_SERVER)
            return
        s.backend = backend = chosen_backend
        if not backend.http:
            # A TCP frontend's later request routed to a TCP backend: HAProxy 2.6 ends the
            # connection, nothing answered, and logs IR (an HTTP stream has no way back).
            txn.term = Failure.HTTP_TO_TCP.code
            s.keep_client = False
            s.end_transaction(log=True)
            s.close_session()
            return
        backend.enter()
        if backend.persist_rules:  # `force-persist`, `ignore-persist`: asked once, here
            txn.persist = backend.persistence(req)
        if backend.buffers_body and req.body is None:  # the backend's http-buffer-request
            timeout = seconds(backend.proxy.timeouts.http_request) or runtime.client_timeout
            if body_wait.wait(s, raw, req, timeout, to_server):
                return
        start = 0
    else:
        assert s.backend is not None
        backend = s.backend
    # The backend's part (HAProxy's process_switching_rules onwards).
    if not start and backend.tcp is not None and layer4.backend_rejects(backend, frontend, req):
        layer4_reject(s, False)
        return
    if backend.request_rules and backend.proxy is not frontend:
        answer_closes = close or body_wait.unread(req)
        verdict = rules.request_rules(backend.rules, req, close=answer_closes, start=start)
        if req.hints:
            send_hints(s, req)
        if verdict.kind == "wait":
            wait_for_body(s, raw, req, verdict, to_server)
            return
        if verdict.kind != "continue":
            body_wait.answering(s, req)
            if verdict.kind == "tarpit":
                tarpit.hold(s, verdict, backend.proxy)
            else:
                s.answered(verdict)
            return
    rq = s.rq
    rq.expect_body(validate.request_framing(req))
    # The head for the server, and what the persistence cookie says.
    client_ip, websocket = s.conn.client_ip, txn.websocket
    keep = request_analysers.server_headers(req, runtime, backend, client_ip, websocket)
    s.keep_server = keep
    if backend.compression is not None or runtime.compression is not None:
        s.encoder = compression.choose(backend.compression, runtime.compression, req)
    # `use-server` rules, then the persistence cookie (HAProxy's SRV_RULES, HTTP_INNER).
    chosen = backend.rule_server(req, txn.persist is True) if backend.use_servers else None
    if (cookie := backend.proxy.cookie) is not None:
        wall = s.runtime.wall()
        s.cookie_match = request_analysers.request_persistence(
            cookie, backend, req, wall, rule=txn.persist, assigned=chosen
        )
    s.out_head = request_analysers.request_head(raw, req)
    if rq.phase is BODY:
        s.arm(runtime.client_timeout, s.client_timed_out)
        # Body bytes that came with the head.
        if rq.buf:
            data = bytes(rq.buf)
            rq.buf.clear()
            used = s.request_body(data, 0)
            rq.buf += data[used:]
            if rq.phase is CLOSED:
                return  # the body was malformed: refused before anything was forwarded
    else:
        s.idle_delay = INFINITE  # connecting: `timeout connect` and `timeout queue`
    # A server: the one the persistence cookie names, else the balancer's choice.
    s.holds_slot = True
    match = s.cookie_match
    cookie_server = match.server if match is not None else None
    if (cookie_server or chosen) is not None and backend.stick is not None:
        # Chosen already: the `stick` rules match nothing but still store (as HAProxy's).
        txn.stick_stores = []
        backend.stick.request(req, txn.stick_stores, True)
    if cookie_server is not None:
        s.dispatch.assign_to(cookie_server)
    elif chosen is not None:
        s.dispatch.assign_to(chosen)
    else:
        s.dispatch.assign(None)


def to_server(s: HttpStream, raw: bytes, start: int = 0) -> None:
    """The backend's part of route() (from its `start`-th rule): where a wait for the
    body, the backend's own, goes on."""
    route(s, raw, start, True)


def wait_for_body(
    s: HttpStream,
    raw: bytes,
    req: Request,
    verdict: rules.Verdict,
    rules_from: Callable[[HttpStream, bytes, int], None],
) -> None:
    """`http-request wait-for-body`: the rules go on from the next one once the body is
    in (at once when it is there already)."""
    resume = verdict.resume

    def go_on(stream: HttpStream, head: bytes) -> None:
        rules_from(stream, head, resume)

    timeout = verdict.status / 1000 or None
    if not body_wait.wait(s, raw, req, timeout, go_on, verdict.at_least):
        go_on(s, raw)


def send_hints(s: HttpStream, req: Request) -> None:
    """The `103 Early Hints` the rules made, before anything else is answered."""
    assert req.hints is not None
    data = b"".join(req.hints)
    req.hints = None
    s.txn.bytes_out += len(data)
    s.write_client(data)


def with_crlf(s: HttpStream, raw: bytes) -> bytes:
    """The first head in `raw`, whose lines may end in a bare LF, rewritten with CRLF;
    what followed its empty line goes back to the buffer."""
    head, used = heads.with_crlf(raw)
    if used < len(raw):
        s.rq.unread(raw[used:])
        s.txn.bytes_in = used
    return head


def read_service_body(s: HttpStream, req: Request) -> None:
    """The stats page's admin form: its body (at most services.MAX_BODY bytes, with a
    Content-Length, net/services.py checked) is read whole, then the page answers."""
    s.service_wait = validate.request_framing(req).length
    if validate.expects_continue(req):
        s.write_client(b"HTTP/1.1 100 Continue\r\n\r\n")  # RFC 9110 10.1.1
    s.rq.wait()
    s.arm(s.frontend.client_timeout, s.client_timed_out)
    s.service_body_ready()


def service_body_ready(s: HttpStream) -> None:
    wanted = s.service_wait
    buf = s.rq.buf
    if len(buf) < wanted:
        return
    body = bytes(buf[:wanted])
    del buf[:wanted]
    s.service_wait = -1
    req = s.txn.req
    assert req is not None
    close = not s.keep_client
    served = s.port.serve(s.frontend, req, rules.CONTINUE, close, body)
    assert served is not None  # the body is there
    s.answered(served)


def reject(s: HttpStream, failure: Failure, reason: str, status: int | None = None) -> None:
    """A request poise refuses: its error page (or the proxy's `errorfile`), the
    connection closed, and two log lines: HAProxy's, and the failure line that says
    why (net/httplog.py). `status`: the validator's, when it knows better (501...)."""
    txn = s.txn
    txn.status = status = status or failure.status or 400
    txn.refusal = reason
    page = s.frontend.proxy.errorfile(status) or parse_error(status)
    s.write_client(page)
    txn.term = failure.code
    s.keep_client = False
    # A head timeout on a connection that sent nothing is answered but, under
    # `option dontlognull`, not logged: HAProxy logs no stream whose request channel
    # received no byte.
    quiet = failure is Failure.REQUEST_TIMEOUT and txn.req is None and not s.rq.buf
    log = not (quiet and s.frontend.dontlognull)
    if txn.req is None:
        txn.bad_request = True
        txn.bytes_out = txn.bytes_in = 0  # HAProxy counts no bytes for these either
    s.end_transaction(log=log)
    s.close_session()


def left_before_head(s: HttpStream) -> None:
    """The client closed before it sent a whole request head (on a new connection, or in
    the middle of the next head on a kept one): HAProxy logs `CR-- 400 "<BADREQ>"` and
    counts a failed request answered 400 (its bytes are not counted), unless nothing was
    received and the frontend has `option dontlognull`."""
    if not s.rq.buf and s.frontend.dontlognull:
        return
    txn = s.txn
    txn.status = 400
    txn.term = Failure.CLIENT_ABORT_REQUEST.code
    txn.bad_request = True
    txn.bytes_out = txn.bytes_in = 0
    s.end_transaction(log=True)


def layer4_reject(s: HttpStream, frontend_rule: bool) -> None:
    """`tcp-request content reject`: closed, no response (core/layer4.py)."""
    s.keep_client = False
    layer4.reject_content(s.txn, frontend_rule)
    s.end_transaction(log=True)
    s.close_session()


def request_body(s: HttpStream, data: bytes, start_at: int) -> int:
    """Forward the body bytes in `data[start_at:]`; return where the body ended."""
    try:
        stop = s.rq.body(data, start_at)
    except ChunkError as exc:
        s.reject(Failure.BAD_REQUEST, str(exc))
        return len(data)
    if stop > start_at:
        s.txn.bytes_in += stop - start_at
        s.forward_to_server(data[start_at:stop])
    return stop
