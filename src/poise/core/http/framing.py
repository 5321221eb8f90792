"""HTTP/1 framing, pure: where each request and response head ends, how long its body is,
and which phase each side of an HTTP session is in.

A session holds one `RequestFramer` (the client side) and one `ResponseFramer` (the
server side) for its whole life. The request framer buffers what the client sends, cuts
complete heads off it (pipelined requests wait in the buffer), and counts the body by its
Content-Length or by scanning its chunks (core/http/chunked.py); the response framer does
the same for the server's answer, with the shortcut for the commonest response: a plain
one that came whole in one read (`whole_plain`). Body bytes are counted, never copied or
decoded: the session forwards them as they came.

Every phase change is made here, and `TRANSITIONS` lists every one a framer may make
(tests/unit/test_framing.py checks that no other happens). A head longer than `MAX_HEAD`
is refused whichever way it arrived (core/http/heads.py).
"""

from __future__ import annotations

from enum import Enum

from poise.core.http import heads, validate
from poise.core.http.chunked import ChunkedScanner
from poise.core.http.heads import MAX_HEAD, plain_status


class Phase(Enum):
    # The client side (RequestFramer).
    HEAD = "head"  # reading a request head (or idle between requests)
    BODY = "body"  # forwarding the request body
    WAIT = "wait"  # the request is whole: waiting for the response
    TUNNEL = "tunnel"  # after `101 Switching Protocols`: bytes both ways, unframed
    CLOSED = "closed"
    # The server side (ResponseFramer).
    RESP_HEAD = "resp-head"  # reading the response head (or a 1xx before it)
    RESP_BODY = "resp-body"  # forwarding the response body
    RESP_DONE = "resp-done"  # the response is whole


# Module names, so that the hot path compares with `is` and no attribute lookup.
HEAD, BODY, WAIT, TUNNEL, CLOSED = Phase.HEAD, Phase.BODY, Phase.WAIT, Phase.TUNNEL, Phase.CLOSED
RESP_HEAD, RESP_BODY, RESP_DONE = Phase.RESP_HEAD, Phase.RESP_BODY, Phase.RESP_DONE

# Every phase change a framer makes: phase -> the phases it may go to. HEAD -> HEAD is a
# request answered before its body was looked at (a rule, a refusal), RESP_* -> RESP_HEAD
# the next request's response; CLOSED is the end.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    HEAD: frozenset({HEAD, BODY, WAIT, CLOSED}),
    BODY: frozenset({HEAD, WAIT, TUNNEL, CLOSED}),
    WAIT: frozenset({HEAD, BODY, TUNNEL, CLOSED}),  # BODY: after core/http/body_wait.py
    TUNNEL: frozenset({CLOSED}),
    CLOSED: frozenset(),
    RESP_HEAD: frozenset({RESP_HEAD, RESP_BODY, RESP_DONE}),
    RESP_BODY: frozenset({RESP_HEAD, RESP_DONE}),
    RESP_DONE: frozenset({RESP_HEAD}),
}

HEAD_END = b"\r\n\r\n"


class RequestFramer:
    """The client side: the bytes not yet handled, the phase, the request body's count."""

    __slots__ = ("body_done", "buf", "chunks", "phase", "remaining")

    def __init__(self) -> None:
        self.buf = bytearray()  # received, not yet handled (a partial or pipelined head)
        self.phase = HEAD
        self.remaining = 0  # Content-Length bytes of the body still to come
        self.chunks: ChunkedScanner | None = None  # a chunked body's scanner
        self.body_done = True

    def whole_head(self, data: bytes) -> bool:
        """`data` is one whole request head and nothing else, as most requests come: it
        needs no buffering."""
        # `>= 0`: three bytes or fewer are no head (find's -1 would equal len - 4).
        return self.phase is HEAD and not self.buf and data.find(HEAD_END) == len(data) - 4 >= 0

    def take_head(self) -> bytes | None:
        """The first complete head in the buffer, cut off it; None: none yet (see
        `over_limit`). A head may end its lines with a bare LF (core/http/heads.py)."""
        buf = self.buf
        end = buf.find(HEAD_END) + 4
        if end < 4:
            end = heads.lf_head_end(buf)
            if end < 0:
                return None
        head = bytes(buf[:end])
        del buf[:end]
        return head

    def over_limit(self) -> bool:
        """More is buffered than a head may be long: a head still incomplete is refused,
        pipelined data stops being read."""
        return len(self.buf) > MAX_HEAD

    def unread(self, data: bytes) -> None:
        """Bytes found after a head that was taken whole go back before the buffer."""
        self.buf[0:0] = data

    def expect_body(self, framing: validate.Framing) -> None:
        """The head is through (HEAD): its body, if any, comes next (BODY), else WAIT."""
        if framing.kind == "chunked":
            self.chunks = ChunkedScanner()
            self.body_done = False
        elif framing.kind == "length" and framing.length > 0:
            self.remaining = framing.length
            self.body_done = False
        self.phase = WAIT if self.body_done else BODY

    def body(self, data: bytes, start: int) -> int:
        """Count the body bytes in `data[start:]`; return where the body ends in `data`
        (len(data) while it goes on). Raises ChunkError on a malformed chunked body."""
        chunks = self.chunks
        if chunks is not None:
            stop = chunks.feed(data, start)
            if chunks.done:
                self.body_done = True
        else:
            stop = min(len(data), start + self.remaining)
            self.remaining -= stop - start
            if self.remaining == 0:
                self.body_done = True
        if self.body_done and self.phase is BODY:
            self.phase = WAIT
        return stop

    def wait(self) -> None:
        """The request is answered by poise itself after its body (a service's form)."""
        self.phase = WAIT

    def hold_body(self) -> None:
        """The head is read and its body waited for before the rules (WAIT, then
        `expect_body`: core/http/body_wait.py)."""
        self.phase = WAIT
        self.body_done = False

    def tunnel(self) -> None:
        self.phase = TUNNEL

    def close(self) -> None:
        self.phase = CLOSED

    def next_request(self) -> None:
        """The transaction is over: the next head (maybe in the buffer already)."""
        self.phase = HEAD
        self.remaining = 0
        self.chunks = None
        self.body_done = True


class ResponseFramer:
    """The server side: the bytes of a response head being read, the phase, the body's
    count (Content-Length, chunks, or until the server closes)."""

    __slots__ = ("buf", "chunks", "phase", "remaining", "until_close")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.phase = RESP_HEAD
        self.remaining = 0
        self.chunks: ChunkedScanner | None = None
        self.until_close = False

    def reset(self) -> None:
        """The next request's response."""
        self.phase = RESP_HEAD
        self.remaining = 0
        self.chunks = None
        self.until_close = False
        if self.buf:  # most responses leave nothing behind: no call
            self.buf.clear()

    def whole_plain(self, data: bytes) -> int:
        """The status of `data` when it is one whole plain response (validate.plain_length:
        checked, framed by its Content-Length, nothing in it to read or change) that came
        in one read with nothing buffered before it: it is then complete (RESP_DONE).
        0: not that case, nothing done."""
        if self.buf:
            return 0
        size = data.find(HEAD_END) + 4
        if size < 4 or size > MAX_HEAD:
            return 0
        length = validate.plain_length(data, size)
        if length < 0 or len(data) != size + length:
            return 0
        status = plain_status(data)
        if status:
            self.phase = RESP_DONE
        return status

    def take_head(self) -> bytes | None:
        """The response head at the start of the buffer, cut off it; None: not complete
        yet, or refused (see `head_problem`)."""
        buf = self.buf
        end = buf.find(HEAD_END) + 4
        if end < 4 or end > MAX_HEAD:
            return None
        head = bytes(buf[:end])
        del buf[:end]
        return head

    def head_problem(self) -> str | None:
        """Why what is buffered can never be a response head, if it cannot."""
        if len(self.buf) > MAX_HEAD:
            return "response head too large"
        if heads.garbage_response(self.buf):
            return "not an HTTP response"
        return None

    def body_follows(self, kind: str, length: int = 0) -> bool:
        """The head is through; its body is framed by `kind` (validate.Framing). True:
        there is no body, the response is complete."""
        if kind == "length":
            self.remaining = length
            if length == 0:
                self.phase = RESP_DONE
                return True
        elif kind == "chunked":
            self.chunks = ChunkedScanner()
        elif kind == "none":
            self.phase = RESP_DONE
            return True
        else:
            self.until_close = True
        self.phase = RESP_BODY
        return False

    def body(self, data: bytes, start: int) -> int:
        """Count the body bytes in `data[start:]`; return where the response ends in
        `data` (len(data) while it goes on); complete: RESP_DONE. Raises ChunkError."""
        end = len(data)
        chunks = self.chunks
        if self.until_close:
            return end
        if chunks is not None:
            stop = chunks.feed(data, start)
            if chunks.done:
                self.phase = RESP_DONE
            return stop
        stop = min(end, start + self.remaining)
        self.remaining -= stop - start
        if self.remaining == 0:
            self.phase = RESP_DONE
        return stop

    def server_closed(self) -> bool:
        """The server closed: a body framed by the close is complete (True)."""
        if self.until_close and self.phase is RESP_BODY:
            self.phase = RESP_DONE
            return True
        return False
