"""The HTTP/1 framers (core/http/framing.py): heads cut whole however the bytes are split,
pipelined requests kept for their turn, bodies counted to their last byte (Content-Length,
chunked, until the close), the head limit, and every phase change one of TRANSITIONS."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from poise.core.http.framing import (
    BODY,
    CLOSED,
    HEAD,
    RESP_BODY,
    RESP_DONE,
    RESP_HEAD,
    TRANSITIONS,
    TUNNEL,
    WAIT,
    Phase,
    RequestFramer,
    ResponseFramer,
)
from poise.core.http.heads import MAX_HEAD
from poise.core.http.validate import CHUNKED, NO_BODY, Framing

from .fuzzing import fuzz_settings

SRC = Path(__file__).resolve().parents[2] / "src" / "poise"


class Recording:
    """Mixed into a framer for the test: every phase change is recorded."""

    moves: list[tuple[Phase, Phase]]

    def __setattr__(self, name: str, value: object) -> None:
        if name == "phase" and hasattr(self, "phase"):
            self.moves.append((self.phase, value))  # type: ignore[arg-type]
        super().__setattr__(name, value)


class RecordingRequests(Recording, RequestFramer):
    def __init__(self) -> None:
        self.moves = []
        super().__init__()


class RecordingResponses(Recording, ResponseFramer):
    def __init__(self) -> None:
        self.moves = []
        super().__init__()


def assert_in_table(moves: list[tuple[Phase, Phase]]) -> None:
    outside = [(a, b) for a, b in moves if b not in TRANSITIONS[a]]
    assert outside == [], f"transitions not in framing.TRANSITIONS: {outside}"


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)] if body else []
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# A request: its head, how its body is framed, its body on the wire.
requests = st.builds(
    lambda path, body, kind, size: (
        f"POST /{path} HTTP/1.1\r\nHost: a\r\n".encode()
        + (b"Transfer-Encoding: chunked\r\n" if kind == "chunked" else b"")
        + (b"Content-Length: %d\r\n" % len(body) if kind == "length" else b"")
        + b"\r\n",
        kind,
        chunked(body, size) if kind == "chunked" else body if kind == "length" else b"",
    ),
    st.text("abcxyz", max_size=8),
    st.binary(max_size=40),
    st.sampled_from(["length", "chunked", "none"]),
    st.integers(1, 9),
)


def request_framing(kind: str, body: bytes) -> Framing:
    if kind == "chunked":
        return CHUNKED
    if kind == "length":
        return Framing("length", len(body))
    return NO_BODY


@fuzz_settings(300)
@given(st.lists(requests, min_size=1, max_size=4), st.lists(st.integers(0, 2000), max_size=8))
def test_pipelined_requests_are_cut_at_their_exact_ends(
    messages: list[tuple[bytes, str, bytes]], cuts: list[int]
) -> None:
    """Driven as the session drives it: heads come out whole and in order, each body is
    counted to its last byte, and what follows is the next request."""
    wire = b"".join(head + body for head, _, body in messages)
    framer = RecordingRequests()
    seen: list[bytes] = []
    bodies: list[bytes] = []
    body = b""

    def finish() -> None:
        bodies.append(body)
        framer.next_request()

    for piece in cut(wire, cuts):
        data = piece
        if framer.phase is BODY:
            stop = framer.body(data, 0)
            body += data[:stop]
            data = data[stop:]
            if framer.phase is WAIT:
                finish()
        framer.buf += data
        while framer.phase is HEAD:
            head = framer.take_head()
            if head is None:
                assert not framer.over_limit()
                break
            _, kind, wire_body = messages[len(seen)]
            seen.append(head)
            framer.expect_body(request_framing(kind, wire_body))
            body = b""
            if framer.phase is BODY and framer.buf:
                rest = bytes(framer.buf)
                framer.buf.clear()
                stop = framer.body(rest, 0)
                body = rest[:stop]
                framer.buf += rest[stop:]
            if framer.phase is WAIT:
                finish()
    assert seen == [head for head, _, _ in messages]
    assert bodies == [body for _, _, body in messages]
    assert not framer.buf
    assert_in_table(framer.moves)


def test_a_whole_head_in_one_read_needs_no_buffer() -> None:
    framer = RequestFramer()
    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert framer.whole_head(head)
    assert not framer.whole_head(head + b"GET")  # a pipelined request follows: buffered
    assert not framer.whole_head(head[:-2])
    framer.buf += b"G"
    assert not framer.whole_head(head)


def test_a_head_with_bare_lf_line_ends_is_cut_there() -> None:
    framer = RequestFramer()
    framer.buf += b"GET / HTTP/1.1\nHost: a\n\nGET /2"
    assert framer.take_head() == b"GET / HTTP/1.1\nHost: a\n\n"
    assert framer.take_head() is None
    assert bytes(framer.buf) == b"GET /2"


def test_a_request_head_over_the_limit_is_refused_however_it_came() -> None:
    framer = RequestFramer()
    framer.buf += b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD
    assert framer.take_head() is None
    assert framer.over_limit()


def test_session_phases_tunnel_and_close() -> None:
    framer = RecordingRequests()
    framer.expect_body(NO_BODY)
    framer.tunnel()
    framer.close()
    assert framer.moves == [(HEAD, WAIT), (WAIT, TUNNEL), (TUNNEL, CLOSED)]
    assert_in_table(framer.moves)
    service = RecordingRequests()
    service.wait()  # a service reading its form: answered by poise after the body
    service.next_request()
    assert_in_table(service.moves)


# A response: its bytes on the wire, and the framing its head says.
responses = st.builds(
    lambda status, body, kind, size: (
        f"HTTP/1.1 {status} OK\r\nServer: x\r\n".encode()
        + (b"Transfer-Encoding: chunked\r\n" if kind == "chunked" else b"")
        + (b"Content-Length: %d\r\n" % len(body) if kind in ("length", "plain") else b"")
        + b"\r\n"
        + (chunked(body, size) if kind == "chunked" else body),
        kind,
        len(body),
    ),
    st.sampled_from([200, 404, 503]),
    st.binary(max_size=40),
    st.sampled_from(["plain", "length", "chunked"]),
    st.integers(1, 9),
)


@fuzz_settings(300)
@given(responses, st.lists(st.integers(0, 2000), max_size=6))
def test_a_response_is_cut_at_its_exact_end(
    response: tuple[bytes, str, int], cuts: list[int]
) -> None:
    """Whole in one read (the plain shortcut) or in pieces, the response ends at its last
    byte; RESP_HEAD -> RESP_BODY -> RESP_DONE, each move in the table."""
    wire, kind, length = response
    framer = RecordingResponses()
    pieces = cut(wire, cuts)
    end = None
    offset = 0
    for piece in pieces:
        plain = framer.phase is RESP_HEAD and not framer.buf and kind == "plain"
        if plain and framer.whole_plain(piece):
            assert piece == wire
            end = len(wire)
            break
        if framer.phase is RESP_BODY:
            stop = framer.body(piece, 0)
            if framer.phase is RESP_DONE:
                end = offset + stop
                break
            offset += len(piece)
            continue
        framer.buf += piece
        offset += len(piece)
        head = framer.take_head()
        if head is None:
            assert framer.head_problem() is None
            continue
        framing = CHUNKED if kind == "chunked" else Framing("length", length)
        rest = bytes(framer.buf)
        framer.buf.clear()
        offset -= len(rest)
        if framer.body_follows(framing.kind, framing.length):
            end = offset
            break
        stop = framer.body(rest, 0)
        if framer.phase is RESP_DONE:
            end = offset + stop
            break
        offset += len(rest)
    assert end == len(wire)
    framer.reset()
    assert framer.phase is RESP_HEAD
    assert_in_table(framer.moves)


def test_a_body_framed_by_the_close_ends_when_the_server_closes() -> None:
    framer = RecordingResponses()
    framer.buf += b"HTTP/1.0 200 OK\r\n\r\nabc"
    assert framer.take_head() == b"HTTP/1.0 200 OK\r\n\r\n"
    assert not framer.body_follows("close")
    assert framer.body(b"abc", 0) == 3
    assert framer.phase is RESP_BODY
    assert framer.server_closed()
    assert framer.phase is RESP_DONE
    assert not framer.server_closed()  # once
    assert_in_table(framer.moves)


def test_a_response_with_no_body_is_complete_with_its_head() -> None:
    framer = RecordingResponses()
    assert framer.body_follows("none")
    assert framer.phase is RESP_DONE
    framer.reset()
    assert framer.body_follows("length", 0)
    assert_in_table(framer.moves)


def test_what_can_never_be_a_response_head_is_named() -> None:
    framer = ResponseFramer()
    framer.buf += b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD
    assert framer.take_head() is None
    assert framer.head_problem() == "response head too large"
    garbage = ResponseFramer()
    garbage.buf += b"SSH-2.0-OpenSSH\r\n"
    assert garbage.take_head() is None
    assert garbage.head_problem() == "not an HTTP response"


def test_the_whole_plain_shortcut_takes_only_what_it_can_forward_untouched() -> None:
    plain = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
    assert ResponseFramer().whole_plain(plain) == 200
    assert ResponseFramer().whole_plain(plain[:-1]) == 0  # the body is not all there
    assert ResponseFramer().whole_plain(plain + b"x") == 0  # more than the response
    chunked_response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert ResponseFramer().whole_plain(chunked_response) == 0
    busy = ResponseFramer()
    busy.buf += b"HTTP/1.1 1"
    assert busy.whole_plain(plain) == 0  # part of a head came before: the full path


def test_the_table_covers_every_phase() -> None:
    assert set(TRANSITIONS) == set(Phase)
    client = {HEAD, BODY, WAIT, TUNNEL, CLOSED}
    server = {RESP_HEAD, RESP_BODY, RESP_DONE}
    for phase, targets in TRANSITIONS.items():
        assert targets <= (client if phase in client else server)


def test_the_session_changes_phases_only_through_the_framers() -> None:
    """net/http.py moves no phase itself, so the table is every move there is."""
    text = (SRC / "net" / "http.py").read_text()
    assert ".phase = " not in text
    assert "RequestFramer()" in text and "ResponseFramer()" in text
