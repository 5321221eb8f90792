"""HTTP checks, the pure part: the request bytes and the verdicts, compared with what
HAProxy 2.6.12 put on the wire and wrote in its logs for the same configuration (captured
on 127.0.0.1 against small HTTP servers; the lines below are copied from its output, with
the check duration it measured)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.config.model import HttpCheck, HttpExpect
from poise.core import health
from poise.core.httpcheck import (
    CHECK_BUFFER_BYTES,
    NO_BODY,
    NO_MATCH,
    UNWANTED_MATCH,
    Expectation,
    Response,
    build_request,
    invalid_response,
    parse_status_codes,
    timeout,
)

WHERE = model.NOWHERE


def send(**fields: object) -> bytes:
    return build_request(HttpCheck(WHERE, **fields))  # type: ignore[arg-type]


# -- the request: byte for byte what HAProxy 2.6 sent --------------------------------------


@pytest.mark.parametrize(
    ("fields", "wire"),
    [
        # option httpchk
        ({}, b"OPTIONS / HTTP/1.0\r\n\r\n"),
        # option httpchk GET /ping
        ({"method": "GET", "uri": "/ping"}, b"GET /ping HTTP/1.0\r\n\r\n"),
        # option httpchk HEAD /p + http-check send hdr Host h
        (
            {"method": "HEAD", "uri": "/p", "headers": (("Host", "h"),)},
            b"HEAD /p HTTP/1.0\r\nhost: h\r\n\r\n",
        ),
        # http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.com hdr X-A b
        # body ping
        (
            {
                "method": "GET",
                "uri": "/health",
                "version": "HTTP/1.1",
                "headers": (("Host", "example.com"), ("X-A", "b")),
                "body": "ping",
            },
            b"GET /health HTTP/1.1\r\nhost: example.com\r\nx-a: b\r\ncontent-length: 4\r\n"
            b"connection: close\r\n\r\nping",
        ),
        # http-check send meth HEAD uri /x ver HTTP/1.1 hdr Connection keep-alive
        (
            {
                "method": "HEAD",
                "uri": "/x",
                "version": "HTTP/1.1",
                "headers": (("Connection", "keep-alive"),),
            },
            b"HEAD /x HTTP/1.1\r\n\r\n",
        ),
        # http-check send meth POST uri /p ver HTTP/1.1
        (
            {"method": "POST", "uri": "/p", "version": "HTTP/1.1"},
            b"POST /p HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ),
        # http-check send meth POST uri /p body abc
        (
            {"method": "POST", "uri": "/p", "body": "abc"},
            b"POST /p HTTP/1.0\r\ncontent-length: 3\r\n\r\nabc",
        ),
        # http-check send hdr Connection keep-alive hdr Content-Length 99
        # hdr Transfer-Encoding chunked
        (
            {
                "headers": (
                    ("Connection", "keep-alive"),
                    ("Content-Length", "99"),
                    ("Transfer-Encoding", "chunked"),
                )
            },
            b"OPTIONS / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
        ),
        # http-check send ver HTTP/1.1 hdr Content-Length 99 body abc
        (
            {"version": "HTTP/1.1", "headers": (("Content-Length", "99"),), "body": "abc"},
            b"OPTIONS / HTTP/1.1\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        ),
        # http-check send ver HTTP/1.1 hdr Connection Close hdr X-Y z
        (
            {"version": "HTTP/1.1", "headers": (("Connection", "Close"), ("X-Y", "z"))},
            b"OPTIONS / HTTP/1.1\r\nx-y: z\r\nconnection: close\r\n\r\n",
        ),
        # http-check send ver HTTP/1.0 hdr Connection Close
        (
            {"headers": (("Connection", "Close"),)},
            b"OPTIONS / HTTP/1.0\r\n\r\n",
        ),
        # http-check send ver HTTP/1.1 hdr Connection upgrade hdr Upgrade foo
        (
            {"version": "HTTP/1.1", "headers": (("Connection", "upgrade"), ("Upgrade", "foo"))},
            b"OPTIONS / HTTP/1.1\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n",
        ),
        # http-check send meth GET uri /u ver HTTP/1.0 body hi
        (
            {"method": "GET", "uri": "/u", "body": "hi"},
            b"GET /u HTTP/1.0\r\ncontent-length: 2\r\n\r\nhi",
        ),
        # http-check send ver HTTP/1.1 hdr Connection keep-alive body hi
        (
            {"version": "HTTP/1.1", "headers": (("Connection", "keep-alive"),), "body": "hi"},
            b"OPTIONS / HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi",
        ),
        # http-check send hdr X-Long a\ b\ \ c
        ({"headers": (("X-Long", "a b  c"),)}, b"OPTIONS / HTTP/1.0\r\nx-long: a b  c\r\n\r\n"),
        # http-check send uri /a?b=c ver HTTP/1.1 hdr Host h
        (
            {"uri": "/a?b=c", "version": "HTTP/1.1", "headers": (("Host", "h"),)},
            b"OPTIONS /a?b=c HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        ),
        # option httpchk GET /x HTTP/1.1\r\nHost:\ www (the deprecated trick, which the
        # parser turns into a header)
        (
            {"method": "GET", "uri": "/x", "version": "HTTP/1.1", "headers": (("Host", "www"),)},
            b"GET /x HTTP/1.1\r\nhost: www\r\nconnection: close\r\n\r\n",
        ),
    ],
)
def test_request_is_what_haproxy_sends(fields: dict[str, object], wire: bytes) -> None:
    assert send(**fields) == wire


@pytest.mark.parametrize(
    ("method", "length"),
    [
        ("GET", False),
        ("HEAD", False),
        ("OPTIONS", False),
        ("DELETE", False),
        ("PUT", True),
        ("PATCH", True),
        ("TRACE", True),
        ("CONNECT", True),
        ("FOO", True),
        ("POST", True),
    ],
)
def test_content_length_zero_only_for_methods_that_carry_a_body(method: str, length: bool) -> None:
    # http-check send meth M uri /u ver HTTP/1.1: HAProxy's H1 multiplexer writes
    # "content-length: 0" except for GET, HEAD, OPTIONS and DELETE.
    wire = send(method=method, uri="/u", version="HTTP/1.1")
    middle = b"content-length: 0\r\n" if length else b""
    assert wire == f"{method} /u HTTP/1.1\r\n".encode() + middle + b"connection: close\r\n\r\n"


# -- expectations ------------------------------------------------------------------------


def test_status_codes_are_lists_of_codes_and_ranges() -> None:
    assert parse_status_codes("200") == ((200, 200),)
    assert parse_status_codes("200,201,300-310") == ((200, 200), (201, 201), (300, 310))
    # What HAProxy 2.6 accepts too: empty items, a range without its start (it passes a
    # 200 and fails a 503 with `-300`).
    assert parse_status_codes("503,,200") == ((503, 503), (200, 200))
    assert parse_status_codes(",503,") == ((503, 503),)
    assert parse_status_codes("-300") == ((0, 300),)
    # ... and what it refuses.
    for bad in ("2xx", "200-", "200-300-400", "a-b", "20 0"):
        with pytest.raises(ValueError):
            parse_status_codes(bad)


def expect(kind: str, pattern: str, negate: bool = False) -> Expectation:
    return Expectation.from_config(HttpExpect(kind, pattern, negate))  # type: ignore[arg-type]


def answer(code: int, reason: bytes = b"OK", body: bytes = b"", over: bool = True) -> Response:
    return Response(code, reason, bytearray(body), over)


IMPLICIT = Expectation.from_config(None)


@pytest.mark.parametrize("code", [200, 204, 301, 302, 399])
def test_without_expect_2xx_and_3xx_pass(code: int) -> None:
    result = IMPLICIT.evaluate(answer(code, over=False), 3)
    assert result == health.CheckResult(True, "Layer7 check passed", None, 3, code)
    assert result.status == "L7OK"


@pytest.mark.parametrize("code", [100, 199, 400, 404, 500, 503])
def test_without_expect_other_codes_fail_with_the_reason_as_info(code: int) -> None:
    result = IMPLICIT.evaluate(answer(code, b"Nope", over=False), 1)
    assert result == health.CheckResult(False, "Layer7 wrong status", "Nope", 1, code)
    assert result.status == "L7STS"


def test_a_status_expectation_decides_on_the_head_alone() -> None:
    head_only = answer(200, over=False)
    assert expect("status", "200").evaluate(head_only, 0) is not None
    assert expect("rstatus", "^2").evaluate(head_only, 0) is not None
    assert IMPLICIT.evaluate(Response(), 0) is None  # nothing yet: wait


@pytest.mark.parametrize(
    ("expectation", "code", "passes"),
    [
        (expect("status", "200"), 200, True),
        (expect("status", "200"), 301, False),
        (expect("status", "200,201,300-310"), 305, True),
        (expect("status", "200,201,300-310"), 503, False),
        (expect("status", "200", negate=True), 200, False),
        (expect("status", "200", negate=True), 503, True),
        (expect("rstatus", "^2"), 204, True),
        (expect("rstatus", "^2"), 503, False),
        (expect("rstatus", "^5", negate=True), 503, False),
        (expect("rstatus", "^5", negate=True), 200, True),
        (expect("rstatus", "0"), 404, True),  # a search, not a full match
    ],
)
def test_status_and_rstatus(expectation: Expectation, code: int, passes: bool) -> None:
    result = expectation.evaluate(answer(code, b"Why"), 0)
    assert result is not None
    assert result.passed is passes
    assert result.code == code
    assert result.info == (None if passes else "Why")


def test_an_empty_reason_gives_no_info() -> None:
    result = IMPLICIT.evaluate(answer(503, b""), 1)
    assert result == health.CheckResult(False, "Layer7 wrong status", None, 1, 503)


@pytest.mark.parametrize(
    ("expectation", "body", "passes", "info"),
    [
        (expect("string", "ready"), b"status: ready", True, None),
        (expect("string", "ready"), b"all good", False, NO_MATCH),
        (expect("string", "error", negate=True), b"an error occured", False, UNWANTED_MATCH),
        (expect("string", "foo", negate=True), b"all good", True, None),
        (expect("rstring", r"^status:\ r.*y$"), b"status: ready", True, None),
        (expect("rstring", r"^status:\ r.*y$"), b"all good", False, NO_MATCH),
        (expect("rstring", "^all", negate=True), b"all good", False, UNWANTED_MATCH),
        (expect("rstring", "close$"), b"body until close", True, None),
    ],
)
def test_string_and_rstring(
    expectation: Expectation, body: bytes, passes: bool, info: str | None
) -> None:
    result = expectation.evaluate(answer(200, body=body), 2)
    assert result is not None
    assert (result.passed, result.info) == (passes, info)
    # HAProxy shows the code for a pass (L7OK), not for an invalid response (L7RSP).
    assert result.code == (200 if passes else None)
    assert result.reason == ("Layer7 check passed" if passes else "Layer7 invalid response")


@pytest.mark.parametrize("negate", [False, True])
def test_an_empty_body_fails_a_body_expectation_negated_or_not(negate: bool) -> None:
    result = expect("string", "x", negate).evaluate(answer(200, body=b""), 1)
    assert result == health.CheckResult(False, "Layer7 invalid response", NO_BODY, 1)
    assert expect("string", "x", negate).evaluate(answer(200, over=False), 1) is None


def test_a_body_expectation_waits_while_a_match_may_still_come() -> None:
    ready = expect("string", "ready")
    assert ready.evaluate(answer(200, body=b"rea", over=False), 0) is None  # too short yet
    assert ready.evaluate(answer(200, body=b"status: x", over=False), 0) is None
    assert ready.evaluate(answer(200, body=b"status: ready", over=False), 0) is not None
    # With `!`, a match decides at once; its absence only at the end.
    unwanted = expect("string", "error", negate=True)
    assert unwanted.evaluate(answer(200, body=b"an error", over=False), 0) is not None
    assert unwanted.evaluate(answer(200, body=b"all good", over=False), 0) is None
    # The same for a regular expression.
    assert expect("rstring", "y$").evaluate(answer(200, body=b"x", over=False), 0) is None


def test_what_is_not_http_or_stops_short_is_an_invalid_response() -> None:
    assert IMPLICIT.evaluate(Response(invalid=True), 1) == invalid_response(1)
    assert IMPLICIT.evaluate(Response(over=True), 1) == invalid_response(1)  # no head
    assert expect("string", "x").evaluate(Response(200, invalid=True), 1) == invalid_response(1)
    assert invalid_response(1) == health.CheckResult(False, "Layer7 invalid response", None, 1)
    assert timeout(2) == health.CheckResult(False, "Layer7 timeout", None, 2)
    assert (invalid_response(1).status, timeout(1).status) == ("L7RSP", "L7TOUT")


def test_the_check_buffer_is_haproxys_default_bufsize() -> None:
    assert CHECK_BUFFER_BYTES == 16384


def test_a_bad_pattern_is_refused_when_compiled() -> None:
    with pytest.raises(ValueError):
        expect("status", "2xx")
    with pytest.raises(re.error):
        expect("rstring", "(")


@given(st.integers(100, 599), st.binary(max_size=64), st.booleans())
def test_a_decided_check_is_either_passed_with_its_code_or_failed(
    code: int, body: bytes, over: bool
) -> None:
    for expectation in (IMPLICIT, expect("string", "ok"), expect("rstring", "o+k", True)):
        result = expectation.evaluate(answer(code, body=body, over=over), 0)
        if result is None:
            assert not over
        elif result.passed:
            assert result.reason == "Layer7 check passed" and result.code == code


# -- the log lines, as HAProxy 2.6 wrote them -------------------------------------------


def down_line(backend: str, result: health.CheckResult) -> str:
    return health.server_down_message(backend, "s", active=0, backups=0, result=result).text


LEFT = ". 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."


@pytest.mark.parametrize(
    ("backend", "expectation", "response", "line"),
    [
        (
            "b503",
            IMPLICIT,
            answer(503, b"Service Unavailable"),
            'Server b503/s is DOWN, reason: Layer7 wrong status, code: 503, info: "Service '
            'Unavailable", check duration: 1ms' + LEFT,
        ),
        (
            "b301",
            expect("status", "200"),
            answer(301, b"Moved Permanently"),
            'Server b301/s is DOWN, reason: Layer7 wrong status, code: 301, info: "Moved '
            'Permanently", check duration: 1ms' + LEFT,
        ),
        (
            "bstr",
            expect("string", "ready"),
            answer(200, body=b"all good"),
            'Server bstr/s is DOWN, reason: Layer7 invalid response, info: "HTTP content '
            'check did not match", check duration: 1ms' + LEFT,
        ),
        (
            "bnstr",
            expect("string", "error", negate=True),
            answer(200, body=b"an error occured"),
            'Server bnstr/s is DOWN, reason: Layer7 invalid response, info: "HTTP check '
            'matched unwanted content", check duration: 1ms' + LEFT,
        ),
        (
            "bnstatus",
            expect("status", "200", negate=True),
            answer(200, b"OK"),
            'Server bnstatus/s is DOWN, reason: Layer7 wrong status, code: 200, info: "OK", '
            "check duration: 1ms" + LEFT,
        ),
        (
            "bnoreason",
            IMPLICIT,
            answer(503, b""),
            "Server bnoreason/s is DOWN, reason: Layer7 wrong status, code: 503, "
            "check duration: 1ms" + LEFT,
        ),
        (
            "butf",
            IMPLICIT,
            answer(503, 'Indisponible "é" <x>'.encode()),
            "Server butf/s is DOWN, reason: Layer7 wrong status, code: 503, info: "
            '"Indisponible <22><C3><A9><22> <3C>x<3E>", check duration: 1ms' + LEFT,
        ),
        (
            "bemptybody",
            expect("string", "x"),
            answer(200, body=b""),
            'Server bemptybody/s is DOWN, reason: Layer7 invalid response, info: "HTTP '
            'content check could not find a response body", check duration: 1ms' + LEFT,
        ),
        (
            "bgarb",
            IMPLICIT,
            Response(invalid=True),
            "Server bgarb/s is DOWN, reason: Layer7 invalid response, check duration: 1ms" + LEFT,
        ),
    ],
)
def test_down_lines_are_haproxys(
    backend: str, expectation: Expectation, response: Response, line: str
) -> None:
    result = expectation.evaluate(response, 1)
    assert result is not None
    assert down_line(backend, result) == line


def test_timeout_and_up_lines_are_haproxys() -> None:
    assert (
        down_line("btout", timeout(488))
        == "Server btout/s is DOWN, reason: Layer7 timeout, check duration: 488ms" + LEFT
    )
    up = health.server_up_message(
        "b503", "s", active=1, backups=0, result=IMPLICIT.evaluate(answer(200), 5)
    )
    assert up.text == (
        "Server b503/s is UP, reason: Layer7 check passed, code: 200, check duration: 5ms. "
        "1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    )


def test_log_health_checks_lines_are_haproxys() -> None:
    # option log-health-checks, rise 2 fall 3: a 503 takes the server down, 200s bring it
    # back; HAProxy's lines for the same sequence.
    counter = health.Health(2, 3)
    failed = IMPLICIT.evaluate(answer(503, b"Service Unavailable"), 1)
    passed = IMPLICIT.evaluate(answer(200), 1)
    assert failed is not None and passed is not None
    lines = []
    for result in (failed, passed, passed):
        counter.record(result)
        assert counter.report
        lines.append(health.health_check_message("blhc", "s", result, counter).text)
    assert lines == [
        "Health check for server blhc/s failed, reason: Layer7 wrong status, code: 503, "
        'info: "Service Unavailable", check duration: 1ms, status: 0/2 DOWN.',
        "Health check for server blhc/s succeeded, reason: Layer7 check passed, code: 200, "
        "check duration: 1ms, status: 1/2 DOWN.",
        "Health check for server blhc/s succeeded, reason: Layer7 check passed, code: 200, "
        "check duration: 1ms, status: 3/3 UP.",
    ]
    # The UP/DOWN lines then carry no reason.
    assert health.server_down_message("blhc", "s", active=0, backups=0).text == (
        "Server blhc/s is DOWN" + LEFT
    )
    assert health.server_up_message("blhc", "s", active=1, backups=0).text == (
        "Server blhc/s is UP. 1 active and 0 backup servers online. 0 sessions requeued, "
        "0 total in queue."
    )
