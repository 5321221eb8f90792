"""`option http-buffer-request` (configuration.txt 4.2): a request's body is waited for
before the http-request rules run, so that they can read it (core/request_body.py).

As HAProxy 2.6 does (measured side by side): the rules run once the whole body is in, or
once the buffer is full (tune.bufsize less tune.maxrewrite, the head included): a larger
body is judged on its first part, then forwarded whole. The wait is bounded by `timeout
http-request` (else `timeout client`) from the end of the head: then 408, logged `cR--`
with no request time. A client that sent `Expect: 100-continue` gets the `100 Continue`
from the balancer, and the header is not forwarded. A client that closes before its body
is whole leaves with nothing answered (`CR--`). A frontend's option waits before the
frontend's rules, a backend's before the backend's; `http-request wait-for-body time T
[at-least N]` waits in the middle of the rules (T instead of the timeouts, N bytes being
enough), and the rules go on after it. The request time (%TR) then ends with
the body.

Functions of the stream (core/http/stream.py), like stream_request.py's. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from poise.core.http import validate
from poise.core.http.heads import MAX_HEAD
from poise.core.http.message import Request
from poise.core.request_body import decode_chunks
from poise.core.termination import Failure

if TYPE_CHECKING:
    from poise.core.http.stream import HttpStream

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
Then = Callable[["HttpStream", bytes], None]


class BodyWait:
    """A request held for its body: where to go on (`then(stream, head)`), how much of
    the body is enough, and when the wait ends."""

    __slots__ = ("chunked", "deadline", "enough", "head", "length", "limit", "stream", "then")

    def __init__(  # noqa: PLR0917 (made in one place, wait())
        self,
        stream: HttpStream,
        head: bytes,
        then: Then,
        framing: validate.Framing,
        deadline: float,
        at_least: int = 0,
    ) -> None:
        self.stream = stream
        self.head = head
        self.then = then
        self.chunked = framing.kind == "chunked"
        self.length = framing.length
        self.limit = max(MAX_HEAD - len(head), 0)
        # `wait-for-body ... at-least N`: N bytes are enough to go on (all held are read).
        self.enough = min(self.limit, at_least) if at_least else self.limit
        self.deadline = deadline

    def held(self, buf: bytearray, req: Request) -> bool:
        """Whether what `buf` holds is the whole body or all that may be held (then it
        is the request's `body`)."""
        if self.chunked:
            data, declared, end = decode_chunks(buf, self.limit)
            if end < 0 and len(buf) < self.enough:
                return False
            req.body, req.body_size, req.body_end = data.decode("latin-1"), declared, end
            return True
        have = min(len(buf), self.length)
        if have < self.length and len(buf) < self.enough:
            return False
        req.body = bytes(buf[: min(have, self.limit)]).decode("latin-1")
        req.body_size = self.length
        req.body_end = have if have == self.length else -1
        return True

    def expired(self) -> None:
        """`timeout http-request` (or `client`) before the body was in: 408."""
        s = self.stream
        s.body_wait = None
        s.txn.t_head = -1
        s.reject(Failure.REQUEST_TIMEOUT, "request body timeout")


def wait(  # noqa: PLR0917 (the stream's facts, each a plain value)
    s: HttpStream,
    raw: bytes,
    req: Request,
    timeout: float | None,
    then: Then,
    at_least: int = 0,
) -> bool:
    """Hold the request until its body is in; True: `then(s, raw)` runs when it is (the
    caller stops here), False: it is there already (or there is none), go on."""
    framing = validate.request_framing(req)
    if framing.kind != "chunked" and not (framing.kind == "length" and framing.length > 0):
        req.body, req.body_size, req.body_end = "", 0, 0
        return False
    now = s.last_active
    deadline = now + timeout if timeout is not None else float("inf")
    held = BodyWait(s, raw, then, framing, deadline, at_least)
    if held.held(s.rq.buf, req):
        return False
    if validate.expects_continue(req):
        s.write_client(CONTINUE)
        req.headers.delete("expect")
    s.rq.hold_body()
    s.body_wait = held
    if timeout is not None:
        s.arm(timeout, held.expired)
    return True


def more(s: HttpStream) -> None:
    """More of the body came (it is in the stream's buffer)."""
    held = s.body_wait
    req = s.txn.req
    assert held is not None and req is not None
    if held.held(s.rq.buf, req):
        s.body_wait = None
        txn = s.txn
        txn.t_head = int((s.last_active - txn.start) * 1000)
        held.then(s, held.head)
        return
    now = s.last_active
    if now >= held.deadline:
        held.expired()
    elif held.deadline != float("inf"):
        s.arm(held.deadline - now, held.expired)  # from the head, not from the last read


def unread(req: Request) -> bool:
    """Whether the request has a body that is not all held: an answer made before it is
    read closes the connection (`answering`), and says so."""
    if req.body is not None:
        return req.body_end < 0
    index = req.headers.index()
    if "content-length" not in index and "transfer-encoding" not in index:
        return False
    framing = validate.request_framing(req)
    return framing.kind == "chunked" or (framing.kind == "length" and framing.length > 0)


def answering(s: HttpStream, req: Request) -> None:
    """A rule answers the request itself: a body held whole is dropped (the connection
    stays for the next request, as with HAProxy); one held in part closes it, and so does
    a body not waited for (HAProxy reads it away; poise closes rather than read what
    follows the head as the next request)."""
    end = req.body_end
    if end > 0:
        del s.rq.buf[:end]
        req.body_end = 0
    elif unread(req):
        s.keep_client = False


def client_left(s: HttpStream) -> None:
    """The client closed before its body was whole: nothing is answered (`CR--`)."""
    s.body_wait = None
    s.txn.status = -1
    s.txn.term = Failure.CLIENT_ABORT_REQUEST.code
    s.keep_client = False
    s.end_transaction(log=True)
    s.close_session()
