"""The pure HTTP stream (core/http/stream.py) under random orders of events: a Hypothesis
state machine drives one stream through the recording port of test_http_stream.py
(requests whole, split or pipelined, connections made, responses, timers firing, EOF, the
client or the server leaving) and checks after every step:

- nothing is written to a server before its connection is up, nor after it closed (the
  stream's write_server raises until the port attaches a connection; a closed one
  raises);
- one response per request, in the order the requests came;
- reading is paused whenever a buffer is over its limit;
- every transaction is logged exactly once, with a termination code that matches what
  happened (a 504 with sH, a 408 with cR, a client that left with C?, ...)."""

from __future__ import annotations

import re

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poise.core.connect import CON, PENDING_LIMIT
from poise.core.http.framing import CLOSED
from poise.core.http.heads import MAX_HEAD
from tests.unit.test_http_stream import World

RESPONSE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n")
# What each termination code says happened, and the status it goes with (None: any).
TERMS = {
    "--": 200,
    "sH": 504,  # the server did not answer within `timeout server`
    "SH": 502,  # the server closed before its response
    "cR": 408,  # the request head did not come within `timeout http-request`
    "PR": 400,  # what came was no request (a partial head followed by another)
    "CR": None,  # the client left before its head came whole (400 "<BADREQ>"), or before
    # its request went to a server
    "CC": None,  # the client left while connecting
    "CH": None,  # the client left while waiting for the response
    "CD": None,  # the client left during the response's body
}


class StreamMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = World()
        self.next_id = 0
        self.client_left = False
        self.answered: dict[int, int] = {}  # server connection -> responses it sent

    def open(self) -> bool:
        return self.w.stream.rq.phase is not CLOSED and not self.client_left

    def request(self, pad: int = 0) -> bytes:
        self.next_id += 1
        extra = b"X-Pad: " + b"a" * pad + b"\r\n" if pad else b""
        return b"GET /%04d HTTP/1.1\r\nHost: h\r\n%s\r\n" % (self.next_id, extra)

    # -- the client ---------------------------------------------------------------------

    @precondition(open)
    @rule(count=st.integers(1, 3), pad=st.sampled_from([0, 0, 6000]))
    def send_requests(self, count: int, pad: int) -> None:
        self.w.client(b"".join(self.request(pad) for _ in range(count)))

    @precondition(open)
    @rule(cut=st.integers(1, 30))
    def send_a_request_in_two_reads(self, cut: int) -> None:
        data = self.request()
        self.w.client(data[:cut])
        self.w.client(data[cut:])

    @precondition(open)
    @rule(cut=st.integers(1, 20))
    def send_part_of_a_head(self, cut: int) -> None:
        self.w.client(self.request()[:cut])

    @precondition(open)
    @rule()
    def client_half_closes(self) -> None:
        self.w.stream.client_eof()

    @precondition(open)
    @rule()
    def client_leaves(self) -> None:
        self.client_left = True
        self.w.stream.client_lost()

    # -- the server ---------------------------------------------------------------------

    @precondition(lambda self: self.w.dispatch.state is CON)
    @rule()
    def connection_comes_up(self) -> None:
        self.w.dispatch.up()

    def waiting(self) -> int:
        """The request the attached server connection owes a response to, or 0."""
        conn = self.w.port.conn
        if conn is None or not self.w.stream.sending:
            return 0
        ids = re.findall(rb"GET /(\d{4}) ", bytes(conn.data))
        done = self.answered.get(id(conn), 0)
        return int(ids[-1]) if len(ids) > done else 0

    @precondition(lambda self: self.waiting() > 0)
    @rule(split=st.booleans())
    def server_responds(self, split: bool) -> None:
        conn = self.w.port.conn
        assert conn is not None
        response = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n%04d" % self.waiting()
        self.answered[id(conn)] = self.answered.get(id(conn), 0) + 1
        if split:
            self.w.server(response[:20])
            self.w.server(response[20:])
        else:
            self.w.server(response)

    @precondition(lambda self: self.w.port.conn is not None)
    @rule()
    def server_closes(self) -> None:
        self.w.port.lose_server()

    @precondition(lambda self: self.w.port.deadline < float("inf"))
    @rule()
    def time_passes_to_the_deadline(self) -> None:
        self.w.until(self.w.port.deadline)

    @rule()
    def nothing_happens(self) -> None:
        """Always possible: the client may have left, with nothing left to happen."""

    # -- what must hold -----------------------------------------------------------------

    @invariant()
    def reading_is_paused_while_a_buffer_is_over_its_limit(self) -> None:
        stream = self.w.stream
        if stream.rq.phase is CLOSED:
            return
        over = len(stream.rq.buf) > MAX_HEAD or sum(map(len, stream.pending)) >= PENDING_LIMIT
        if over:
            assert self.w.port.paused

    @invariant()
    def one_response_per_request_in_order(self) -> None:
        client = bytes(self.w.port.client)
        ids = [int(body) for body in re.findall(rb"\r\n\r\n(\d{4})", client)]
        assert ids == sorted(set(ids)), ids  # each once, in the requests' order
        logged = [
            int(txn.req.uri[1:]) for txn in self.w.port.logged if txn.req and txn.term == "--"
        ]
        assert logged == ids  # each 200 forwarded is one logged transaction
        assert len(RESPONSE.findall(client)) <= len(self.w.port.logged)

    @invariant()
    def every_termination_code_matches_what_happened(self) -> None:
        for txn in self.w.port.logged:
            assert txn.term in TERMS, txn.term
            status = TERMS[txn.term]
            if status is not None:
                assert txn.status == status, (txn.term, txn.status)
            if txn.term.startswith("C"):
                assert self.client_left

    def teardown(self) -> None:
        """The client leaves; then every transaction begun is logged exactly once, but one:
        a later request of a keep-alive connection, sent on a reused server connection that
        closed without answering, which cannot be sent again (a body, or not idempotent),
        ends the client connection with no answer and no log line, as HAProxy 2.6 ends it
        (core/http/heads.py after_dead_connection: the client retries as after any
        keep-alive race)."""
        w = self.w
        txn = w.stream.txn
        silent = (
            w.port.closed is not None
            and w.stream.requests > 1
            and txn.req is not None
            and txn.status == 0
            and all(txn is not seen for seen in w.port.logged)
        )
        if w.stream.rq.phase is not CLOSED:
            self.client_left = True
            w.stream.client_lost()
        if w.dispatch.state is CON:
            w.dispatch.up()  # the attempt ends: the stream that left is logged (CC)
        assert w.port.closed is not None
        # Each head read, one line; and one for each head that never came whole: a 408
        # when it timed out, a 400 when the client left (as HAProxy 2.6 logs them).
        unread = sum(
            1
            for txn in w.port.logged
            if txn.term == "cR" or (txn.term == "CR" and txn.req is None and txn.status == 400)
        )
        assert len(w.port.logged) == w.stream.requests + unread - silent
        self.every_termination_code_matches_what_happened()


StreamMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_the_stream_under_random_events = StreamMachine.TestCase
