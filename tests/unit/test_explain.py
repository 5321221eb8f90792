"""The failure line's sentence for every termination state HAProxy writes (configuration.txt
8.5: each cause letter with each phase letter), the cases the issue names, and HAProxy's line
for a client's failed TLS handshake, byte for byte as Debian's haproxy 2.6.12 wrote it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from itertools import product

import pytest

from poise.core import explain
from poise.core.explain import Facts, Handshake, ServerCounts
from poise.core.termination import Cause, Phase

# A session of frontend fe through backend be and its server gw1.
GW1 = Facts("--", "fe", "127.0.0.1:40000", "be", "gw1", "127.0.0.1:8443")
# One that never reached a server.
NOSRV = Facts("--", "fe", "127.0.0.1:40000", "be")


def sentence(facts: Facts) -> str:
    failure = explain.explain(facts)
    assert failure is not None
    return failure.sentence


def phase(facts: Facts) -> str:
    failure = explain.explain(facts)
    assert failure is not None
    return failure.phase


@pytest.mark.parametrize(
    ("cause", "where"), list(product(list(Cause), list(Phase))), ids=lambda v: str(v.value)
)
def test_every_termination_state_has_a_sentence_or_is_a_success(cause: Cause, where: Phase) -> None:
    term = cause.value + where.value
    for http in (False, True):
        failure = explain.explain(replace(GW1, term=term, http=http))
        if cause in (Cause.NONE, Cause.LOCAL):
            assert failure is None  # a success, or a local answer (redirect, stats page)
            continue
        assert failure is not None
        assert failure.sentence and failure.phase.startswith(("while", "during", "in", "at"))
        line = explain.failure_line(replace(GW1, term=term + "--"), failure)
        assert explain.FAILURE_LINE.match(line), line


# The combinations configuration.txt 8.5 lists, with what the line must say.
DOCUMENTED = {
    "CC": "client aborted while poise was connecting to server be/gw1 (127.0.0.1:8443)",
    "CD": "client aborted the connection during the data transfer",
    "cD": "client sent and read nothing after 30s (timeout client)",
    "CH": "client aborted while waiting for server be/gw1 (127.0.0.1:8443) to answer",
    "cH": "client stopped sending the request body after 30s (timeout client)",
    "CQ": "client aborted while waiting in the queue for a free server",
    "CR": "client closed the connection before sending a complete request",
    "cR": "client sent no complete request after 30s (timeout client)",
    "CT": "client aborted while tarpitted",
    "SC": "connection refused by server be/gw1 (127.0.0.1:8443)",
    "sC": "connection to server be/gw1 (127.0.0.1:8443) timed out after 30s (timeout client)",
    "SD": "server be/gw1 (127.0.0.1:8443) aborted the connection during the data transfer",
    "sD": "server be/gw1 (127.0.0.1:8443) sent and read nothing after 30s (timeout client)",
    "SH": "server be/gw1 (127.0.0.1:8443) closed the connection before sending complete "
    "response headers",
    "sH": "server be/gw1 (127.0.0.1:8443) timed out after 30s waiting for response headers "
    "(timeout client)",
    "sQ": "no server of backend be was free in time after 30s (timeout client)",
    "PC": "poise could not open a connection to server be/gw1 (127.0.0.1:8443): socket limit "
    "reached",
    "PD": "invalid message body from server be/gw1 (127.0.0.1:8443) (broken chunked encoding)",
    "PH": "bad response from server be/gw1 (127.0.0.1:8443)",
    "PR": "invalid request",
    "PT": "request tarpitted",
    "RC": "poise ran out of a resource (memory, sockets, source ports) while connecting to "
    "server be/gw1 (127.0.0.1:8443)",
}


@pytest.mark.parametrize("term", sorted(DOCUMENTED))
def test_documented_combinations(term: str) -> None:
    facts = replace(GW1, term=term, timeout=("client", 30_000), connect_error="connection refused")
    assert sentence(facts) == DOCUMENTED[term]


def test_the_phase_in_words() -> None:
    assert phase(replace(GW1, term="SC")) == "while connecting"
    assert phase(replace(GW1, term="sH")) == "while waiting for the response headers"
    assert phase(replace(GW1, term="CD")) == "during the data transfer"
    assert phase(replace(NOSRV, term="cR")) == "while reading the request"
    assert phase(replace(NOSRV, term="sQ")) == "while waiting in the queue"
    assert phase(replace(NOSRV, term="CT")) == "while tarpitted"
    assert phase(replace(GW1, term="CL")) == "while sending the last data"


def test_successes_are_not_failures() -> None:
    for facts in (
        GW1,
        replace(GW1, term="----", http=True, status=200),
        replace(GW1, term="--NI", http=True, status=404),
        replace(NOSRV, term="LR--", http=True, status=302),
        replace(GW1, term="----", http=True, status=101, websocket=True, tunnel=True),
        # A retry that then succeeded is not a failure: the client was served.
        replace(GW1, term="----", http=True, status=200, retries=2, redispatched=True),
    ):
        assert explain.explain(facts) is None, facts


def test_connection_refused_with_retries_and_the_whole_line() -> None:
    facts = replace(
        GW1, term="SC--", http=True, status=503, retries=3, connect_error="connection refused"
    )
    failure = explain.explain(facts)
    assert failure is not None
    assert explain.failure_line(facts, failure) == (
        "fe/be/gw1 127.0.0.1:40000: failed while connecting: connection refused by server "
        "be/gw1 (127.0.0.1:8443) after 3 retries (SC--)"
    )
    again = replace(
        GW1, term="SC", retries=1, redispatched=True, connect_error="connection refused"
    )
    assert sentence(again) == (
        "connection refused by server be/gw1 (127.0.0.1:8443) after 1 retry, redispatched"
    )


def test_other_connect_errors_and_tls() -> None:
    assert sentence(replace(GW1, term="SC", connect_error="no route to host")) == (
        "cannot connect to server be/gw1 (127.0.0.1:8443): no route to host"
    )
    assert (
        sentence(replace(GW1, term="SC")) == "connection to server be/gw1 (127.0.0.1:8443) failed"
    )
    mismatch = "name mismatch: the certificate is for 'rms.test', not 'gw.test'"
    assert sentence(replace(GW1, term="SC", tls_error=mismatch)) == (
        f"TLS handshake with server be/gw1 (127.0.0.1:8443) failed: {mismatch}"
    )


@pytest.mark.parametrize(
    ("counts", "end"),
    [
        (ServerCounts(total=2, down=2), "(all DOWN)"),
        (ServerCounts(total=2, maint=2), "(all in maintenance)"),
        (ServerCounts(total=3, down=1, maint=2), "(all DOWN or in maintenance)"),
        (ServerCounts(total=3, down=1, drain=1, no_weight=1), "(1 DOWN, 1 draining, 1 with "
         "weight 0 of 3)"),
        (ServerCounts(), "(it has no server)"),
        (None, "be"),
    ],
)  # fmt: skip
def test_no_server_available(counts: ServerCounts | None, end: str) -> None:
    text = sentence(replace(NOSRV, term="SC", servers=counts))
    assert text.startswith("no server available in backend be")
    assert text.endswith(end)


def test_timeouts_name_the_setting() -> None:
    assert sentence(replace(GW1, term="sH", timeout=("server", 30_000))) == (
        "server be/gw1 (127.0.0.1:8443) timed out after 30s waiting for response headers "
        "(timeout server)"
    )
    assert sentence(replace(GW1, term="sH")) == (
        "server be/gw1 (127.0.0.1:8443) timed out waiting for response headers (timeout server)"
    )
    assert sentence(replace(GW1, term="sC", timeout=("connect", 200))).endswith(
        "after 200ms (timeout connect)"
    )
    assert sentence(replace(NOSRV, term="cR", timeout=("http-request", 10_000))) == (
        "client sent no complete request after 10s (timeout http-request)"
    )
    assert sentence(replace(NOSRV, term="sQ", timeout=("queue", 60_000))) == (
        "no server of backend be was free in time after 1m (timeout queue)"
    )
    tunnel = replace(GW1, http=True, websocket=True, tunnel=True, status=101)
    assert sentence(replace(tunnel, term="cD", timeout=("tunnel", 3_600_000))) == (
        "WebSocket connection idle after 1h (timeout tunnel)"
    )
    assert sentence(replace(tunnel, term="CD")) == "client aborted the WebSocket connection"
    assert (
        sentence(replace(tunnel, term="SD"))
        == "server be/gw1 (127.0.0.1:8443) aborted the WebSocket connection"
    )


def test_http_data_phase_says_which_way() -> None:
    assert sentence(replace(GW1, term="CD", http=True, status=200)) == (
        "client aborted while the response was being sent"
    )
    assert sentence(replace(GW1, term="CL")) == "client aborted while the response was being sent"
    assert (
        sentence(replace(GW1, term="CD", http=True))
        == "client aborted while sending the request body"
    )


def test_websocket_upgrade_refused_by_the_server() -> None:
    facts = replace(GW1, term="----", http=True, status=403, websocket=True)
    failure = explain.explain(facts)
    assert failure == explain.Failure(
        "at the WebSocket upgrade",
        "WebSocket upgrade refused by server be/gw1 (127.0.0.1:8443): it answered 403",
    )
    assert phase(replace(GW1, term="SH", http=True, websocket=True)) == "at the WebSocket upgrade"
    assert sentence(replace(GW1, term="SH", http=True, websocket=True)) == (
        "server be/gw1 (127.0.0.1:8443) closed the connection instead of answering the "
        "WebSocket upgrade"
    )
    assert sentence(
        replace(GW1, term="sH", http=True, websocket=True, timeout=("server", 5000))
    ) == (
        "server be/gw1 (127.0.0.1:8443) did not answer the WebSocket upgrade after 5s "
        "(timeout server)"
    )


def test_5xx_and_local_answers() -> None:
    assert sentence(replace(GW1, term="----", http=True, status=500)) == (
        "server be/gw1 (127.0.0.1:8443) answered 500"
    )
    assert (
        sentence(replace(NOSRV, term="LR--", http=True, status=503)) == "poise answered 503 itself"
    )


def test_denied_and_refused_requests() -> None:
    rule = "http-request deny at poise.cfg:12"
    assert (
        sentence(replace(NOSRV, term="PR", http=True, status=403, rule=rule))
        == f"request denied by {rule} (403)"
    )
    assert (
        sentence(replace(NOSRV, term="PR", http=True, status=403))
        == "request denied by a rule (403)"
    )
    assert sentence(
        replace(NOSRV, term="PR", http=True, status=400, reason="request head too large")
    ) == ("request refused (400): request head too large")
    assert sentence(replace(NOSRV, term="PR", http=True, status=400)) == "invalid request (400)"
    assert sentence(replace(GW1, term="PH", http=True, status=502, reason="invalid header")) == (
        "bad response from server be/gw1 (127.0.0.1:8443): invalid header (502)"
    )


def test_server_state_and_admin_causes() -> None:
    assert sentence(replace(GW1, term="DD")) == (
        "server be/gw1 (127.0.0.1:8443) went DOWN and its sessions were shut down (on-marked-down)"
    )
    assert "came back UP" in sentence(replace(GW1, term="UD"))
    assert sentence(replace(GW1, term="KD")) == (
        "session killed by an administrator during the data transfer (runtime API)"
    )
    assert "please report it" in sentence(replace(GW1, term="ID"))


def test_an_unknown_state_is_still_reported() -> None:
    failure = explain.explain(Facts("X", "fe"))
    assert failure is not None and "termination state" in failure.sentence


def test_durations() -> None:
    assert [explain.duration(ms) for ms in (0, 200, 1000, 1500, 30_000, 60_000, 90_000)] == [
        "0ms", "200ms", "1s", "1500ms", "30s", "1m", "90s",
    ]  # fmt: skip
    assert explain.duration(7_200_000) == "2h"


def test_client_addresses() -> None:
    assert explain.client_address("127.0.0.1", 40000) == "127.0.0.1:40000"
    assert explain.client_address("::1", 40000) == "[::1]:40000"


# -- a client's TLS handshake ----------------------------------------------------------------


def test_haproxys_handshake_line_byte_for_byte() -> None:
    # Debian's haproxy 2.6.12, `log ... format raw`, a TLS bind as the first of frontend fe,
    # a plain HTTP request sent to it; the date is the accept date in local time.
    accepted = datetime(2026, 11, 21, 13, 5, 30, 593_400).timestamp()
    line = explain.handshake_line(
        "127.0.0.1", 51380, accepted, "fe", bind="1", message=explain.HS_FAILURE
    )
    assert line == "127.0.0.1:51380 [21/Nov/2026:13:05:30.593] fe/1: SSL handshake failure"
    named = explain.handshake_line(
        "127.0.0.1", 47844, accepted, "fe", bind="mytls", message=explain.HS_CLOSED
    )
    assert named.endswith("] fe/mytls: Connection closed during SSL handshake")


def test_handshake_sentences_carry_openssl_reason_and_a_hint() -> None:
    cases = {
        "no shared cipher": "no cipher in common with the bind's ciphers",
        "unsupported protocol": "ssl-min-ver/ssl-max-ver",
        "http request": "plain HTTP sent to a TLS port",
        "tlsv1 alert unknown ca": "the client does not trust the CA of poise's certificate",
        "sslv3 alert bad certificate": "wrong name, expired or untrusted",
        "certificate verify failed: self-signed certificate": "the bind's ca-file",
        "peer did not return a certificate": "verify required",
    }
    for reason, hint in cases.items():
        failure = explain.explain_handshake(Handshake(explain.HS_FAILURE, reason))
        assert failure.phase == "during the TLS handshake"
        assert failure.sentence.startswith(f"TLS handshake with client failed: {reason} (")
        assert hint in failure.sentence
    plain = explain.explain_handshake(Handshake(explain.HS_FAILURE, "something new"))
    assert plain.sentence == "TLS handshake with client failed: something new"
    line = explain.handshake_failure_line(
        "fe", "1", "127.0.0.1:40000", Handshake(explain.HS_FAILURE, "no shared cipher")
    )
    assert line == (
        "fe/1 127.0.0.1:40000: failed during the TLS handshake: TLS handshake with client "
        "failed: no shared cipher (no cipher in common with the bind's ciphers)"
    )
    assert explain.FAILURE_LINE.match(line)


def test_probes_are_empty_handshakes() -> None:
    assert Handshake(explain.HS_CLOSED, "the client closed the connection").empty
    assert Handshake(explain.HS_ERROR, "x").empty
    assert not Handshake(explain.HS_FAILURE, "http request").empty
    assert not Handshake(explain.HS_TIMEOUT, "x").empty


def test_haproxy_lines_are_not_failure_lines() -> None:
    for line in (
        "127.0.0.1:51380 [21/Nov/2026:13:05:30.593] fe/1: SSL handshake failure",
        "127.0.0.1:53114 [21/Nov/2026:11:38:55.718] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- "
        '1/1/0/0/0 0/0 "<BADREQ>"',
        "Server be/gw1 is DOWN, reason: Layer4 connection problem",
        "Proxy fe started.",
    ):
        assert not explain.FAILURE_LINE.match(line)
