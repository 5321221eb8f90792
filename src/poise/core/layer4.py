"""What the layer-4 rules (core/tcprules.py) decide at a session's edges, pure: the
connection as a Request the rules' fetches read, the connection and session rules run at
accept, an HTTP request's content rules (the frontend's, then its backend's), and how a
request refused by them is recorded. net/inspect.py does the I/O around them (the
sockets' addresses in, a refused connection's reset or close out).

HAProxy 2.6, observed on the same configuration: a connection refused by a `tcp-request
connection reject` rule is reset (RST) and not logged; one refused by a `tcp-request
session reject` rule is closed (FIN) and not logged; a `tcp-request content reject` is
logged, with PR as its termination state (the session's own log line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from poise.config.tune import BUFSIZE, MAXREWRITE
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.tcprules import Decision, TcpRuleSets, run_rules
from poise.core.termination import Failure
from poise.core.txn import DENIED_FRONTEND, DENIED_REQUEST, Conn, Txn

if TYPE_CHECKING:
    from poise.config.model import Proxy
    from poise.core.backend import Backend

# Content rules see at most a buffer's worth of bytes: once that much is held, the
# contents are final (HAProxy: channel_full, the buffer less its reserve).
HELD_LIMIT = BUFSIZE - MAXREWRITE


def connection_facts(conn: Conn, sockname: object, tls: bool, sni: str | None) -> Request:
    """The connection's facts as a request for fetches: addresses, ports, TLS and its
    server name; no method, URI or header (an HTTP fetch finds nothing there).
    `sockname`: the accepting socket's address (a tuple for IP), unless a PROXY header
    named the destination (conn.dst_ip)."""
    dst, dst_port = (sockname[0], sockname[1]) if isinstance(sockname, tuple) else ("", 0)
    if conn.dst_ip:  # from a PROXY header
        dst, dst_port = conn.dst_ip, conn.dst_port
    return Request(
        "", "", "1.1", Headers(), conn.client_ip, conn.client_port, dst, dst_port,
        tls, sni, conn=conn,
    )  # fmt: skip


def connection_decision(rules: TcpRuleSets, req: Request) -> Decision:
    """The `tcp-request connection` rules then the `session` ones (ACCEPT or REJECT:
    nothing waits there). A REJECT of the connection rules comes back as CLOSE, to tell
    the two apart (the first is a reset)."""
    if rules.connection:
        decision, _ = run_rules(rules.connection, req)
        if decision is Decision.REJECT:
            return Decision.CLOSE
    if rules.session:
        decision, _ = run_rules(rules.session, req)
        if decision is Decision.REJECT:
            return Decision.REJECT
    return Decision.ACCEPT


def content_rejects(rules: TcpRuleSets, req: Request) -> bool:
    """An HTTP request's `tcp-request content` rules (HAProxy runs them on each request,
    its head parsed: nothing to wait for there)."""
    return run_rules(rules.content, req)[0] is Decision.REJECT


def backend_rejects(backend: Backend, frontend: Proxy, req: Request) -> bool:
    """The content rules of the backend an HTTP request was routed to (a `listen`
    section's ran as the frontend's)."""
    rules = backend.tcp
    if rules is None or not rules.content or backend.proxy is frontend:
        return False
    return content_rejects(rules, req)


def reject_content(txn: Txn, frontend_rule: bool) -> None:
    """An HTTP request refused by `tcp-request content reject`, as HAProxy 2.6 logs it:
    PR--, no request time, no status, no bytes; refused by the frontend's rules, before
    HAProxy's HTTP analysers, the request shows as <BADREQ>."""
    txn.term = Failure.REJECTED.code
    txn.t_head = -1
    txn.bad_request = frontend_rule
    txn.bytes_out = 0
    txn.denied = DENIED_REQUEST if frontend_rule else DENIED_FRONTEND


class Refusals(Protocol):
    """The counters a connection refused at accept adds to (a frontend, its listener)."""

    denied_conn: int
    denied_sess: int


def count_refused(decision: Decision, *counted: Refusals | None) -> None:
    """A connection refused by `tcp-request connection reject` (`dcon`; CLOSE, see
    connection_decision) or `tcp-request session reject` (`dses`), counted on the
    frontend and its listener as HAProxy 2.6 counts them."""
    for counters in counted:
        if counters is None:
            continue
        if decision is Decision.CLOSE:
            counters.denied_conn += 1
        else:
            counters.denied_sess += 1
