"""The per-request record (core/txn.py), what is made of it without a socket (the log
record, core/txnlog.py; the counters, core/counters.py `account`), and the one table of
failures (core/termination.py) that the shells take every termination code from."""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from poise.config import model
from poise.config.haproxy import parse
from poise.core import counters, termination
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.httplog import format_httplog
from poise.core.logline import format_tcplog
from poise.core.server import ServerState
from poise.core.termination import FAILURES, Cause, Failure, Phase
from poise.core.txn import Conn, Txn
from poise.core.txnlog import failed, http_extras, http_record, tcp_record

NET = Path(__file__).resolve().parents[2] / "src" / "poise" / "net"

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:8080
    capture request header Host len 20
    default_backend app
backend app
    server web1 127.0.0.1:8001
"""


def world() -> tuple[model.Proxy, Backend, ServerState]:
    parsed, diagnostics = parse([("test.cfg", CONFIG)], {})
    assert parsed is not None, diagnostics
    proxy = parsed.backends[0]
    servers = [ServerState(s, proxy.name) for s in proxy.servers]
    rng = random.Random(0)
    backend = Backend(
        proxy, servers, lambda states: make_balancer(proxy.balance, states, False, rng)
    )
    frontend = parsed.frontends[0]
    return frontend, backend, servers[0]


def conn() -> Conn:
    c = Conn()
    c.client_ip, c.client_port, c.dst_ip, c.dst_port = "10.0.1.2", 33313, "10.0.0.1", 8080
    return c


# -- the failure table --------------------------------------------------------------------


# HAProxy 2.6's codes and statuses for each failure, as its logs show them.
EXPECTED = {
    Failure.REQUEST_TIMEOUT: (408, "cR"),
    Failure.BAD_REQUEST: (400, "PR"),
    Failure.REJECTED: (None, "PR"),
    Failure.CLIENT_ABORT_REQUEST: (None, "CR"),
    Failure.CLIENT_ABORT_QUEUE: (None, "CQ"),
    Failure.CLIENT_ABORT_CONNECT: (None, "CC"),
    Failure.CLIENT_ABORT_HEADERS: (None, "CH"),
    Failure.CLIENT_ABORT_DATA: (None, "CD"),
    Failure.CLIENT_TIMEOUT: (None, "cD"),
    Failure.NO_SERVER: (503, "SC"),
    Failure.CONNECT_TIMEOUT: (503, "sC"),
    Failure.QUEUE_TIMEOUT: (503, "sQ"),
    Failure.BAD_RESPONSE: (502, "PH"),
    Failure.SERVER_ABORT_HEADERS: (502, "SH"),
    Failure.SERVER_TIMEOUT_HEADERS: (504, "sH"),
    Failure.SERVER_ABORT_DATA: (None, "SD"),
    Failure.SERVER_TIMEOUT: (None, "sD"),
    Failure.KILLED_QUEUE: (None, "KQ"),
    Failure.KILLED_CONNECT: (None, "KC"),
    Failure.KILLED_DATA: (None, "KD"),
    Failure.HTTP_TO_TCP: (None, "IR"),
}


def test_every_failure_has_one_row() -> None:
    assert set(FAILURES) == set(Failure)
    assert {f: (f.status, f.code) for f in Failure} == EXPECTED


@pytest.mark.parametrize("failure", list(Failure))
def test_a_failure_code_is_its_cause_and_phase(failure: Failure) -> None:
    assert failure.code == termination.code(failure.cause, failure.phase)
    assert termination.parse(failure.code) == (failure.cause, failure.phase)


def test_timeouts_are_lower_case_and_aborts_upper_case() -> None:
    for failure in Failure:
        timeout = "TIMEOUT" in failure.name
        assert failure.cause in (Cause.CLIENT_TIMEOUT, Cause.SERVER_TIMEOUT) or not timeout
    assert Failure.CLIENT_ABORT_HEADERS.phase is Phase.HEADERS


TERMINATION = {termination.code(c, p) for c in Cause for p in Phase} - {termination.NORMAL}


def test_net_spells_no_termination_code() -> None:
    """The shells take every code from the table: no two-letter literal is left in net/."""
    found = []
    for path in sorted(NET.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in TERMINATION:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found


# -- the record ---------------------------------------------------------------------------


def test_a_fresh_record_has_haproxy_unset_values() -> None:
    txn = Txn(12.5)
    assert (txn.t_head, txn.t_queue, txn.t_connect, txn.t_response) == (-1, -1, -1, -1)
    assert (txn.status, txn.bytes_in, txn.bytes_out, txn.retries) == (0, 0, 0, 0)
    assert txn.term == txn.cookie_status == "--"
    assert txn.start == 12.5 and not hasattr(txn, "__dict__")


def served(backend: Backend, server: ServerState) -> Txn:
    txn = Txn(0.0)
    # As read_request makes it: the connection's addresses are the request's (until a
    # `set-src-port` rule changes them), and the log line shows the request's.
    txn.req = Request("GET", "/index.html", "1.1", Headers([("Host", "www")]), "10.0.1.2", 33313)
    txn.req_captures = ("www",)
    txn.resp = Response(200, "OK", "1.1", Headers())
    txn.t_head, txn.t_queue, txn.t_connect, txn.t_response = 3, 0, 1, 7
    txn.status, txn.bytes_in, txn.bytes_out = 200, 78, 212
    txn.backend, txn.server = backend, server
    return txn


def test_the_httplog_line_from_a_record() -> None:
    frontend, backend, server = world()
    backend.enter()  # the transaction is in its backend until counted out
    txn = served(backend, server)
    record = http_record(txn, conn(), frontend, date=0.0, ta=9, actconn=1, feconn=1)
    line = format_httplog(record)
    head, tail = line.split("] ", 1)
    assert head.startswith("10.0.1.2:33313 [")
    assert tail == (
        'fe app/web1 3/0/1/7/9 200 212 - - ---- 1/1/0/0/0 0/0 {www} "GET /index.html HTTP/1.1"'
    )
    assert not failed(txn)


def test_a_bad_request_has_no_request_line_nor_captures() -> None:
    frontend, _, _ = world()
    txn = Txn(0.0)
    txn.t_head, txn.status, txn.term, txn.bad_request = 5, 400, Failure.BAD_REQUEST.code, True
    record = http_record(txn, conn(), frontend, date=0.0, ta=5, actconn=1, feconn=1)
    tail = format_httplog(record).split("] ", 1)[1]
    assert tail == 'fe fe/<NOSRV> -1/-1/-1/-1/5 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"'
    assert failed(txn)


def test_log_format_extras_from_the_records() -> None:
    _, backend, server = world()
    extras = http_extras(served(backend, server), conn(), frozenset({"fi"}))
    assert (extras.frontend_ip, extras.frontend_port) == ("10.0.0.1", 8080)
    assert extras.response_version == "1.1"


def test_the_tcplog_line_from_a_record() -> None:
    frontend, backend, server = world()
    txn = Txn(0.0)
    txn.t_queue, txn.t_connect, txn.bytes_out = 0, 5, 212
    txn.term, txn.backend, txn.server = Failure.SERVER_ABORT_DATA.code, backend, server
    record = tcp_record(txn, conn(), frontend, date=0.0, tt=5007, actconn=1, feconn=1, final=True)
    tail = format_tcplog(record).split("] ", 1)[1]
    assert tail == "fe app/web1 0/5/5007 212 SD 1/1/0/0/0 0/0"


# -- the counters -------------------------------------------------------------------------


@dataclass
class FrontendCounts:
    bytes_in: int = 0
    bytes_out: int = 0
    hrsp: list[int] = field(default_factory=lambda: [0] * 6)
    unanswered: int = 0
    denied_req: int = 0
    denied_resp: int = 0
    failed_req: int = 0


def test_a_served_request_counts_once_everywhere() -> None:
    _, backend, server = world()
    backend.enter()
    front = FrontendCounts()
    counters.account(served(backend, server), front, http=True)
    assert (front.bytes_in, front.bytes_out, front.hrsp[2]) == (78, 212, 1)
    assert (server.bytes_in, server.bytes_out) == (78, 212)
    assert backend.hrsp[2] == 1 and backend.cur_sess == 0
    assert backend.unserved_bytes_in == 0


def test_a_failure_counts_its_abort_and_an_unanswered_request() -> None:
    _, backend, server = world()
    backend.enter()
    txn = Txn(0.0)
    txn.term, txn.bytes_in, txn.backend = Failure.CLIENT_ABORT_DATA.code, 10, backend
    front = FrontendCounts()
    counters.account(txn, front, http=True)
    assert front.unanswered == 1 and backend.cli_abrt == 1
    assert backend.unserved_bytes_in == 10  # no server: the backend's own bytes
    assert server.cli_abrt == 0


def test_tcp_counts_no_response() -> None:
    _, backend, server = world()
    backend.enter()
    txn = Txn(0.0)
    txn.backend, txn.server, txn.bytes_in = backend, server, 5
    front = FrontendCounts()
    counters.account(txn, front, http=False)
    assert front.unanswered == 0 and front.hrsp == [0] * 6 and front.bytes_in == 5
