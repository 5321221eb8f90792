"""Where and why a session failed, in one sentence for the operator. Pure.

HAProxy's traffic line says it in two letters (`SC`, `sH`: core/termination.py) that one
must know section 8.5 of configuration.txt to read. poise writes that line unchanged, then,
for a failed session only, a second line that spells it out with the names involved:

    fe/be/gw1 127.0.0.1:40000: failed while connecting: connection refused by server
    be/gw1 (127.0.0.1:8443) after 3 retries (SC--)

`explain()` takes the facts of a finished session (`Facts`, which the shell fills) and
returns None for a success (a healthy service logs no more than before), else a `Failure`:
the phase in words and the sentence. `failure_line()` makes the logged text; its fixed shape
(`FRONTEND/BACKEND/SERVER CLIENT: failed PHASE: SENTENCE (STATE)`) lets a log parser tell it
from HAProxy's lines (`FAILURE_LINE` matches it).

A failed TLS handshake of a client ends before any session: HAProxy logs a short line of
its own for it (configuration.txt 8.2.5, with the messages of the `fc_err_str` fetch);
`handshake_line()` writes it byte for byte and `explain_handshake()` the sentence with
OpenSSL's reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from poise.core.logline import NOSRV, format_date
from poise.core.termination import Cause, Phase

# The phase a session was in when it ended (second letter of the termination state).
PHASES: dict[Phase, str] = {
    Phase.REQUEST: "while reading the request",
    Phase.QUEUE: "while waiting in the queue",
    Phase.CONNECT: "while connecting",
    Phase.HEADERS: "while waiting for the response headers",
    Phase.DATA: "during the data transfer",
    Phase.LAST: "while sending the last data",
    Phase.TARPIT: "while tarpitted",
    Phase.NONE: "in the response",
}
WEBSOCKET_PHASE = "at the WebSocket upgrade"
HANDSHAKE_PHASE = "during the TLS handshake"

# A failure line: `fe/be/srv client: failed phase: sentence (state)`; the state is absent
# from the line of a failed TLS handshake (no session was made).
FAILURE_LINE = re.compile(r"^\S+/\S+ \S+: failed (?:[a-zA-Z ]+): .+$")


@dataclass(frozen=True, slots=True)
class ServerCounts:
    """The servers of a backend when it had none to offer."""

    total: int = 0
    down: int = 0
    maint: int = 0
    drain: int = 0  # `set server ... state drain`: no new clients
    no_weight: int = 0  # weight 0: no new clients either


@dataclass(frozen=True, slots=True)
class Facts:
    """What the shell knows of a finished session (TCP) or transaction (HTTP)."""

    term: str  # the termination state: two letters (TCP) or four (HTTP)
    frontend: str
    client: str = ""  # "127.0.0.1:40000", "[::1]:40000"
    backend: str | None = None  # None: the session never reached a backend
    server: str | None = None  # the server tried last (connected or not)
    server_address: str | None = None  # "127.0.0.1:8443"
    http: bool = False
    status: int = 0  # HTTP: the status the client got (0: none)
    websocket: bool = False  # HTTP: the request asked for a WebSocket upgrade
    tunnel: bool = False  # the session was a tunnel (a WebSocket after its 101)
    retries: int = 0
    redispatched: bool = False
    # Why the last connection attempt to the server failed, in the system's words
    # ("connection refused", "no route to host"); None when unknown.
    connect_error: str | None = None
    tls_error: str | None = None  # why the TLS handshake with the server failed
    timeout: tuple[str, int] | None = None  # the timeout that struck: (name, ms)
    rule: str | None = None  # the rule that answered ("http-request deny at f.cfg:12")
    reason: str | None = None  # why poise refused the request (PR: "malformed request")
    servers: ServerCounts | None = None  # the backend's servers, for "no server available"


@dataclass(frozen=True, slots=True)
class Failure:
    phase: str  # "while connecting"
    sentence: str  # "connection refused by server be/gw1 (127.0.0.1:8443)"


def duration(ms: int) -> str:
    """A timeout as configuration files write it: 200ms, 5s, 2m, 1h."""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def explain(facts: Facts) -> Failure | None:
    """None for a success, else where the session failed and why. A failure is any end but
    a normal one or a local answer (configuration.txt 8.5), a 5xx, or a WebSocket upgrade
    the server did not accept (HAProxy's `option log-separate-errors` counts the first two
    as errors as well)."""
    cause, phase = _parse(facts.term)
    if cause is None or phase is None:
        return Failure("in an unknown state", f"termination state {facts.term[:2]!r}")
    if cause is Cause.NONE or cause is Cause.LOCAL:
        return _after_response(facts, cause)
    where = PHASES[phase]
    if facts.websocket and not facts.tunnel and phase in (Phase.HEADERS, Phase.NONE):
        where = WEBSOCKET_PHASE
    return Failure(where, _SENTENCES.get(cause, _other)(facts, phase))


def failure_line(facts: Facts, failure: Failure) -> str:
    """The logged text: `fe/be/srv client: failed phase: sentence (state)`."""
    backend = facts.backend or facts.frontend
    server = facts.server or NOSRV
    return (
        f"{facts.frontend}/{backend}/{server} {facts.client}: "
        f"failed {failure.phase}: {failure.sentence} ({facts.term})"
    )


# -- sentences ---------------------------------------------------------------------------


def _parse(term: str) -> tuple[Cause | None, Phase | None]:
    try:
        return Cause(term[0]), Phase(term[1])
    except (ValueError, IndexError):
        return None, None


def _server(facts: Facts) -> str:
    """`server be/gw1 (127.0.0.1:8443)`."""
    name = f"server {facts.backend}/{facts.server}"
    return f"{name} ({facts.server_address})" if facts.server_address else name


def _timeout(facts: Facts, default: str) -> str:
    """` after 30s (timeout server)`, or ` (timeout server)` when the shell did not say."""
    if facts.timeout is None:
        return f" (timeout {default})"
    name, ms = facts.timeout
    return f" after {duration(ms)} (timeout {name})"


def _retries(facts: Facts) -> str:
    text = ""
    if facts.retries:
        text = f" after {facts.retries} {'retry' if facts.retries == 1 else 'retries'}"
    if facts.redispatched:
        text += ", redispatched"
    return text


def _after_response(facts: Facts, cause: Cause) -> Failure | None:
    """A normal end (`--`) or a local answer (`LR`): a failure only by its status."""
    status = facts.status
    if cause is Cause.NONE and facts.websocket and not facts.tunnel and 0 < status != 101:
        return Failure(
            WEBSOCKET_PHASE,
            f"WebSocket upgrade refused by {_server(facts)}: it answered {status}",
        )
    if status >= 500:
        if cause is Cause.LOCAL:
            return Failure(PHASES[Phase.REQUEST], f"poise answered {status} itself")
        return Failure(PHASES[Phase.NONE], f"{_server(facts)} answered {status}")
    return None


def _client_abort(facts: Facts, phase: Phase) -> str:
    if phase is Phase.REQUEST:
        return "client closed the connection before sending a complete request"
    if phase is Phase.QUEUE:
        return "client aborted while waiting in the queue for a free server"
    if phase is Phase.CONNECT:
        return f"client aborted while poise was connecting to {_server(facts)}"
    if phase is Phase.HEADERS:
        return f"client aborted while waiting for {_server(facts)} to answer"
    if phase is Phase.TARPIT:
        return "client aborted while tarpitted"
    if facts.tunnel:
        return "client aborted the WebSocket connection"
    if phase is Phase.LAST or (facts.http and facts.status):
        return "client aborted while the response was being sent"
    if facts.http:
        return "client aborted while sending the request body"
    return "client aborted the connection during the data transfer"


def _client_timeout(facts: Facts, phase: Phase) -> str:
    if phase is Phase.REQUEST:
        return "client sent no complete request" + _timeout(facts, "http-request")
    if phase is Phase.HEADERS:
        return "client stopped sending the request body" + _timeout(facts, "client")
    if facts.tunnel:
        return "WebSocket connection idle" + _timeout(facts, "tunnel")
    if phase is Phase.DATA or phase is Phase.LAST:
        return "client sent and read nothing" + _timeout(facts, "client")
    return "client timed out" + _timeout(facts, "client")


def _server_abort(facts: Facts, phase: Phase) -> str:
    if phase is Phase.CONNECT:
        return _connect_failed(facts)
    if phase is Phase.HEADERS:
        server = _server(facts)
        if facts.websocket:
            return f"{server} closed the connection instead of answering the WebSocket upgrade"
        return f"{server} closed the connection before sending complete response headers"
    if phase is Phase.QUEUE:
        return f"{_server(facts)} failed while the session waited in the queue"
    if facts.tunnel:
        return f"{_server(facts)} aborted the WebSocket connection"
    return f"{_server(facts)} aborted the connection during the data transfer"


def _connect_failed(facts: Facts) -> str:
    if facts.server is None:
        return _no_server(facts)
    server = _server(facts)
    if facts.tls_error:
        return f"TLS handshake with {server} failed: {facts.tls_error}{_retries(facts)}"
    error = facts.connect_error
    if error == "connection refused":
        return f"connection refused by {server}{_retries(facts)}"
    if error:
        return f"cannot connect to {server}: {error}{_retries(facts)}"
    return f"connection to {server} failed{_retries(facts)}"


def _no_server(facts: Facts) -> str:
    if facts.backend is None:
        return "no backend: no 'use_backend' matched and there is no 'default_backend'"
    text = f"no server available in backend {facts.backend}"
    counts = facts.servers
    if counts is None:
        return text
    if counts.total == 0:
        return text + " (it has no server)"
    if counts.down == counts.total:
        return text + " (all DOWN)"
    if counts.maint == counts.total:
        return text + " (all in maintenance)"
    if counts.down + counts.maint == counts.total:
        return text + " (all DOWN or in maintenance)"
    parts = [
        f"{n} {what}"
        for n, what in (
            (counts.down, "DOWN"),
            (counts.maint, "in maintenance"),
            (counts.drain, "draining"),
            (counts.no_weight, "with weight 0"),
        )
        if n
    ]
    return text + f" ({', '.join(parts)} of {counts.total})" if parts else text


def _server_timeout(facts: Facts, phase: Phase) -> str:
    if phase is Phase.CONNECT:
        return (
            f"connection to {_server(facts)} timed out{_timeout(facts, 'connect')}{_retries(facts)}"
        )
    if phase is Phase.QUEUE:
        return f"no server of backend {facts.backend} was free in time{_timeout(facts, 'queue')}"
    if phase is Phase.HEADERS:
        after = _timeout(facts, "server")
        if facts.websocket:
            return f"{_server(facts)} did not answer the WebSocket upgrade{after}"
        if facts.timeout is not None:
            name, ms = facts.timeout
            return (
                f"{_server(facts)} timed out after {duration(ms)} waiting for response "
                f"headers (timeout {name})"
            )
        return f"{_server(facts)} timed out waiting for response headers{after}"
    if facts.tunnel:
        return "WebSocket connection idle" + _timeout(facts, "tunnel")
    return f"{_server(facts)} sent and read nothing{_timeout(facts, 'server')}"


def _proxy(facts: Facts, phase: Phase) -> str:
    status = f" ({facts.status})" if facts.status else ""
    if phase is Phase.REQUEST:
        if facts.rule:
            return f"request denied by {facts.rule}{status}"
        if facts.reason:
            return f"request refused{status}: {facts.reason}"
        if facts.status == 403:
            return "request denied by a rule (403)"
        if facts.status == 500:
            return "request rewrite failed (500)"
        return f"invalid request{status}"
    if phase is Phase.HEADERS:
        if facts.reason:
            return f"bad response from {_server(facts)}: {facts.reason}{status}"
        return f"bad response from {_server(facts)}{status}"
    if phase is Phase.DATA:
        return f"invalid message body from {_server(facts)} (broken chunked encoding)"
    if phase is Phase.TARPIT:
        return f"request tarpitted{' by ' + facts.rule if facts.rule else ''}{status}"
    if phase is Phase.CONNECT:
        return f"poise could not open a connection to {_server(facts)}: socket limit reached"
    return f"session cut short by poise (connection limit or rule){status}"


def _other(facts: Facts, phase: Phase) -> str:
    """R, I, D, U and K: the proxy's resources, a bug, a server's state, an administrator."""
    cause = Cause(facts.term[0])
    where = PHASES[phase]
    server = _server(facts) if facts.server else "the server"
    if cause is Cause.RESOURCE:
        target = f" to {server}" if phase is Phase.CONNECT else ""
        return f"poise ran out of a resource (memory, sockets, source ports) {where}{target}"
    if cause is Cause.INTERNAL:
        return f"internal error in poise {where} (please report it)"
    if cause is Cause.DOWN:
        return f"{server} went DOWN and its sessions were shut down (on-marked-down)"
    if cause is Cause.UP:
        return (
            f"session on backup {server} shut down because an active server came back UP "
            "(on-marked-up)"
        )
    return f"session killed by an administrator {where} (runtime API)"


_SENTENCES = {
    Cause.CLIENT_ABORT: _client_abort,
    Cause.CLIENT_TIMEOUT: _client_timeout,
    Cause.SERVER_ABORT: _server_abort,
    Cause.SERVER_TIMEOUT: _server_timeout,
    Cause.PROXY: _proxy,
}


# -- a client's failed TLS handshake -----------------------------------------------------

# HAProxy's messages (the `fc_err_str` fetch) for the ways a handshake with a client fails.
HS_CLOSED = "Connection closed during SSL handshake"
HS_ERROR = "Connection error during SSL handshake"
HS_TIMEOUT = "Timeout during SSL handshake"
HS_CA_FAIL = "SSL client CA chain cannot be verified"
HS_CRT_FAIL = "SSL client certificate not trusted"
HS_FAILURE = "SSL handshake failure"
# With `option dontlognull` HAProxy does not log these: nothing was exchanged (a probe).
EMPTY_HANDSHAKES = frozenset({HS_CLOSED, HS_ERROR})

# What an OpenSSL reason usually means on a listener, for the operator.
_HINTS = {
    "http request": "plain HTTP sent to a TLS port",
    "https proxy request": "plain HTTP proxy request sent to a TLS port",
    "wrong version number": "the client does not speak TLS, or an old SSL version",
    "unsupported protocol": "the client's TLS versions are outside the bind's "
    "ssl-min-ver/ssl-max-ver",
    "no shared cipher": "no cipher in common with the bind's ciphers",
    "no suitable signature algorithm": "no signature algorithm in common with the client",
    "tlsv1 alert unknown ca": "the client does not trust the CA of poise's certificate",
    "sslv3 alert bad certificate": "the client rejected poise's certificate "
    "(wrong name, expired or untrusted)",
    "sslv3 alert certificate expired": "the client says poise's certificate has expired",
    "tlsv1 alert decrypt error": "the client could not verify poise's certificate",
    "peer did not return a certificate": "the bind requires a client certificate "
    "(verify required) and the client sent none",
    "tlsv13 alert certificate required": "the bind requires a client certificate",
    "tlsv1 unrecognized name": "the client asked for a name no certificate of the bind has "
    "(strict-sni)",
}


@dataclass(frozen=True, slots=True)
class Handshake:
    """A client's failed TLS handshake: HAProxy's message for it and what happened."""

    message: str  # HAProxy's fc_err_str text (HS_*)
    reason: str  # OpenSSL's reason (lowercase), or what the client did

    @property
    def empty(self) -> bool:
        """A probe: hidden by `option dontlognull`, as HAProxy does."""
        return self.message in EMPTY_HANDSHAKES


def handshake_line(
    client_ip: str, client_port: int, accept_date: float, frontend: str, *, bind: str, message: str
) -> str:
    """HAProxy's fixed error line (configuration.txt 8.2.5):
    `127.0.0.1:56059 [03/Dec/2012:17:35:10.380] frt/f1: Connection error during SSL handshake`;
    `bind` is the bind's `name`, else its number in the frontend (from 1)."""
    return f"{client_ip}:{client_port} [{format_date(accept_date)}] {frontend}/{bind}: {message}"


def explain_handshake(handshake: Handshake) -> Failure:
    reason = handshake.reason
    hint = _HINTS.get(reason)
    if hint is None and reason.startswith("certificate verify failed"):
        hint = "the client's certificate is not issued by a CA of the bind's ca-file"
    text = f"TLS handshake with client failed: {reason}"
    return Failure(HANDSHAKE_PHASE, f"{text} ({hint})" if hint else text)


def handshake_failure_line(frontend: str, bind: str, client: str, handshake: Handshake) -> str:
    """`fe/1 127.0.0.1:40000: failed during the TLS handshake: TLS handshake with client
    failed: no shared cipher (...)`."""
    failure = explain_handshake(handshake)
    return f"{frontend}/{bind} {client}: failed {failure.phase}: {failure.sentence}"


def client_address(ip: str, port: int) -> str:
    """`127.0.0.1:40000`, `[::1]:40000`."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
