"""The HTTP stream's way back (core/http/stream.py): the server's bytes read into a
response head (the plain fast path, or read whole and checked), through the response rules
and the persistence cookie (core/http/response_analysers.py), its body counted and
forwarded, the end of the response; a server that closes, breaks the framing or goes
silent on a reused connection.

These functions are the methods of HttpStream that handle the server's events, kept in
their own module by a coherent cut (HttpStream binds them: `server_data =
stream_response.server_data`); `s` is the stream. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.core.counters import STATUS_CLASS, status_class
from poise.core.http import after_response, heads, validate
from poise.core.http import response_analysers as analysers
from poise.core.http.chunked import ChunkError
from poise.core.http.framing import BODY, RESP_BODY, RESP_DONE, RESP_HEAD, TUNNEL
from poise.core.http.headers import Headers
from poise.core.http.heads import plain_status
from poise.core.http.message import Response
from poise.core.httplog import capture_headers
from poise.core.termination import Failure

if TYPE_CHECKING:
    from poise.core.http.stream import HttpStream

# A plain response's head is never read further nor changed (its headers stay empty), so
# one Response per status line serves them all.
_PLAIN_RESPONSES: dict[bytes, Response] = {}
PLAIN_RESPONSES_KEPT = 256


def server_data(s: HttpStream, data: bytes, now: float) -> None:
    s.last_active = now
    rs = s.rs
    phase = rs.phase
    if phase is RESP_BODY:
        response_body(s, data, 0)
        return
    if phase is RESP_DONE:
        # Bytes after a complete response: the server broke the framing.
        s.drop_server()
        return
    if plain_expected(s):
        status = rs.whole_plain(data)
        if status:  # a whole plain response, as small ones come: forwarded as it came
            if not s.keep_client:  # its head edited for a closing client
                req = s.txn.req
                assert req is not None
                size = data.find(b"\r\n\r\n") + 4
                data = analysers.closing_plain_head(data[:size], req) + data[size:]
            plain_response(s, data, status)
            s.write_client(data)
            s.response_done()
            return
    buf = rs.buf
    buf += data
    while rs.phase is RESP_HEAD and not s.client_gone:
        # What follows the head stays in the buffer while the head is handled: a
        # response that ends there with bytes left over (a body after HEAD) ends its
        # connection.
        head = rs.take_head()
        if head is None:
            problem = rs.head_problem()
            if problem is not None:
                s.bad_response(problem)
            return
        if not response_head(s, head) or rs.phase is RESP_DONE:
            return  # refused, or whole and the session closed: the rest is not read
        rest = bytes(buf)
        buf.clear()
        if not rest:
            flush_head(s)
        else:
            if s.rq.phase is TUNNEL:
                s.txn.bytes_out += len(rest)
                s.write_client(rest)
                return
            if rs.phase is RESP_HEAD:
                buf += rest
                continue
            response_body(s, rest, 0)
        return


def plain_expected(s: HttpStream) -> bool:
    """Nothing in the response to this request needs reading or changing, if it is a
    plain one (validate.plain_length), but its connection header for a closing client
    (response_analysers.closing_plain_head): no response rule, capture or cookie, an
    HTTP/1.1 client, no upgrade, a method whose response has a body."""
    txn = s.txn
    req = txn.req
    backend = s.backend
    return (
        req is not None
        and backend is not None
        and backend.plain_responses
        and s.frontend.plain_responses
        and req.version == "1.1"
        and not txn.websocket
        and req.method not in ("HEAD", "CONNECT")
    )


def plain_response(s: HttpStream, raw: bytes, status: int) -> None:
    """Record the response that starts `raw` (a plain one, checked)."""
    txn = s.txn
    if txn.t_response < 0:
        # server_data set last_active just now
        txn.t_response = int((s.last_active - s.t_sent) * 1000)
    line = raw[: raw.find(b"\r\n")]
    server = s.server
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


def response_head(s: HttpStream, raw: bytes) -> bool:
    if plain_expected(s):
        length = validate.plain_length(raw, len(raw))
        if length >= 0:
            return plain_response_head(s, raw, length)
    return full_response_head(s, raw)


def plain_response_head(s: HttpStream, raw: bytes, length: int) -> bool:
    """The common case (validate.plain_length): checked by httptools, framed by its
    Content-Length, and forwarded as it came: nothing in it needs reading or changing.
    Any status with rules of its own (1xx, 204, 304) takes the full path."""
    status = plain_status(raw)
    if not status:
        return full_response_head(s, raw)
    if not s.keep_client:
        req = s.txn.req
        assert req is not None
        raw = analysers.closing_plain_head(raw, req)
    plain_response(s, raw, status)
    s.head_out = raw
    if s.rs.body_follows("length", length):
        s.response_done()
    return True


def full_response_head(s: HttpStream, raw: bytes) -> bool:
    """A response head read whole, checked, through the response rules and the
    persistence cookie, then rebuilt for the client (core/http/response_analysers)."""
    resp = analysers.read_response(raw)
    if isinstance(resp, str):
        s.bad_response(resp)
        return False
    txn = s.txn
    status = resp.status
    if s.server is not None:
        s.server.hrsp[status_class(status)] += 1
    req = txn.req
    assert req is not None
    if frontend_captures := s.frontend.proxy.capture_response_headers:
        # `http-response capture ... id N` fill the declared slots (core/http/txn_rules.py).
        txn.resp_captures = req.resp_captures = list(
            capture_headers(frontend_captures, resp.headers)
        )
    if 100 <= status < 200 and status != 101:
        # Interim response (100 Continue): forwarded, the final one follows.
        s.write_client(raw)
        return True
    if txn.t_response < 0:
        txn.t_response = int((s.clock() - s.t_sent) * 1000)
    txn.resp = resp
    txn.status = status
    if status == 101 and txn.websocket:
        s.write_client(raw)
        txn.bytes_out += len(raw)
        s.start_tunnel()
        return True
    checked = analysers.check_response(req, resp)
    if isinstance(checked, validate.HttpProblem):
        s.bad_response(checked.reason)
        return False
    framing, keep_server, keep_client = checked
    s.keep_server = s.keep_server and keep_server
    if not keep_client:
        s.keep_client = False
    backend = s.backend
    assert backend is not None
    verdict = analysers.response_rules(backend, s.frontend, req, resp)
    if verdict is not None:
        s.drop_server()
        s.answered(verdict)
        return False
    txn.status = resp.status  # as `http-response set-status` left it
    cookie = backend.proxy.cookie
    if cookie is not None and s.server is not None:
        match, wall = s.cookie_match, s.runtime.wall()
        flags = analysers.response_cookie(cookie, match, s.server, req, resp, now=wall)
        txn.cookie_status = flags
    if after := after_response.programs(backend.rules, s.frontend.rules):
        after_response.apply(after, req, resp)  # http-after-response
        txn.status = resp.status
    if s.encoder is not None:  # compression (core/http/compression.py)
        s.encoder = s.encoder.start(req, resp, framing)
    # Written with the first body bytes: one write (one syscall) per small response.
    head = s.head_out = analysers.client_head(raw, req, resp, s.keep_client)
    txn.bytes_out += len(head)
    if s.rs.body_follows(framing.kind, framing.length):
        s.response_done()
    return True


def response_body(s: HttpStream, data: bytes, start_at: int) -> None:
    end = len(data)
    rs = s.rs
    try:
        stop = rs.body(data, start_at)
    except ChunkError as exc:
        s.bad_response(str(exc), started=True)
        return
    chunk = data[start_at:stop] if start_at or stop != end else data
    if (cached := s.txn.req) is not None and cached.cache is not None and cached.cache.store:
        cached.cache.store.feed(chunk)  # `cache-store` (core/http/cache.py)
    if s.encoder is not None:  # compression (core/http/compression.py)
        chunk = s.encoder.feed(chunk, rs.phase is RESP_DONE)
    if chunk:
        s.txn.bytes_out += len(chunk)
        if s.head_out:
            chunk = s.head_out + chunk
            s.head_out = b""
        s.write_client(chunk)
    if rs.phase is RESP_DONE:
        if stop < end:
            s.keep_server = False  # extra bytes after the response: not reusable
        s.response_done()


def flush_head(s: HttpStream) -> None:
    if s.head_out:
        s.write_client(s.head_out)
        s.head_out = b""


def response_done(s: HttpStream) -> None:
    if (req := s.txn.req) is not None and req.cache is not None and req.cache.store:
        req.cache.store.finish()
        req.cache.store = None
    if s.head_out:
        flush_head(s)
    if s.rs.buf:
        s.keep_server = False  # bytes after the response: HAProxy closes, and so do we
    if s.rq.phase is BODY:
        # The server answered before the whole request body arrived: the rest of the
        # body is not worth reading; neither connection can be reused.
        s.keep_client = s.keep_server = False
    s.end_transaction(log=True)
    s.next_request()


def bad_response(s: HttpStream, reason: str, started: bool = False) -> None:
    """Broken framing or garbage from the server: 502 (or an abort once the client
    has part of the response)."""
    s.txn.refusal = reason
    s.drop_server()
    if started or (s.txn.resp is not None and s.txn.bytes_out):
        s.txn.term = Failure.SERVER_ABORT_DATA.code
        s.keep_client = False
        s.end_transaction(log=True)
        s.close_session(abort=True)
        return
    s.error_reply(Failure.BAD_RESPONSE)


def server_eof(s: HttpStream) -> None:
    if s.rs.server_closed():  # the end of a body framed by the close
        s.keep_server = False
        s.response_done()


def server_lost(s: HttpStream) -> None:
    """The server connection of this transaction closed."""
    s.sending = False
    rs = s.rs
    if rs.phase is RESP_DONE or s.txn.req is None:
        return
    if rs.server_closed():  # the end of a body framed by the close
        s.keep_server = False
        s.response_done()
        return
    if s.txn.resp is None and not rs.buf and s.reused and not s.retried_fresh:
        # A reused connection the server closed without answering (core/http/heads.py).
        after = after_dead_connection(s)
        if after == "resend":
            s.retried_fresh = s.no_reuse = True
            assert s.server is not None
            s.dispatch.connect(s.server)
            return
        if after == "close":
            s.keep_client = False
            s.end_transaction(log=False)
            s.close_session()
            return
    if s.txn.resp is None:
        s.error_reply(
            Failure.BAD_RESPONSE if heads.garbage_response(rs.buf) else Failure.SERVER_ABORT_HEADERS
        )
    else:
        s.txn.term = Failure.SERVER_ABORT_DATA.code
        s.keep_client = False
        s.end_transaction(log=True)
        s.close_session(abort=True)


def after_dead_connection(s: HttpStream) -> str:
    """A request sent on a reused connection that died before any answer: sent once
    more on a new one when idempotent without a body, else HAProxy's answer."""
    req = s.txn.req
    assert req is not None
    if s.txn.websocket:
        return "502"
    has_body = validate.request_framing(req) is not validate.NO_BODY
    return heads.after_dead_connection(req.method, has_body, first=s.requests == 1)
