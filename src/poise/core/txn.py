"""The record of one transaction (`Txn`: an HTTP request and its response, or a whole TCP
session) and of the client connection it came on (`Conn`). Pure.

The shells (net/http.py, net/tcp.py, net/dispatch.py) fill a Txn as the transaction goes;
the log lines (core/txnlog.py) and the stats' counters (core/counters.py `account`) read
only these two records, never a session. A fresh Txn per request replaces resetting the
session's fields one by one: a slotted object costs one allocation.

HAProxy's timers (configuration.txt 8.4), in milliseconds, -1 when the step never happened:
TR `t_head`, Tw `t_queue`, Tc `t_connect`, Tr `t_response`; Ta and Tt are measured from
`start` when the line is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from poise.core.termination import NORMAL

if TYPE_CHECKING:
    from poise.core.backend import Backend
    from poise.core.fetch import Value
    from poise.core.http.message import Request, Response
    from poise.core.payload import Held
    from poise.core.proxyproto import ProxyHeader
    from poise.core.server import ServerState
    from poise.core.sockstats import SocketCounters
    from poise.core.stickfetch import Counter
    from poise.core.stickrules import Store

Captures = Sequence[str | None]


class Conn:
    """What belongs to the client connection rather than to one transaction."""

    __slots__ = (
        "client_cert",
        "client_ip",
        "client_port",
        "dst_ip",
        "dst_port",
        "held",
        "proxied",
        "sni",
        "sock",
        "ssl",
        "track",
        "vars",
    )

    def __init__(self) -> None:
        self.client_ip = ""
        self.client_port = 0
        self.dst_ip = ""  # the address the client connected to (%fi, %fp)
        self.dst_port = 0
        self.ssl = False  # the client connection is TLS (ssl_fc)
        self.sni: str | None = None  # the name the client asked for
        self.client_cert = False  # ssl_c_used
        # The PROXY protocol header the client sent (`bind ... accept-proxy`), whose
        # addresses the session takes instead of the socket's (net/proxied.py).
        self.proxied: ProxyHeader | None = None
        # The `sess` variables (core/variables.py), None until one is set.
        self.vars: dict[str, Value] | None = None
        # The bytes held for content rules while they run (core/payload.py), else None.
        self.held: Held | None = None
        # The stick counters its `tcp-request` rules track (core/sticktrack.py), or None.
        self.track: list[Counter | None] | None = None
        # `option socket-stats`: the counters of the listener that accepted it, else None.
        self.sock: SocketCounters | None = None

    def use_proxied(self) -> None:
        """The client's and destination's addresses from the PROXY header."""
        header = self.proxied
        if header is not None and header.src is not None and header.dst is not None:
            self.client_ip, self.client_port = header.src
            self.dst_ip, self.dst_port = header.dst


# What refused a transaction (Txn.denied): a request rule (`http-request deny|tarpit`, a
# frontend's `tcp-request content reject`), a response rule (`http-response deny`,
# `tcp-response content reject`), or one HAProxy 2.6 counts as a denied request on the
# frontend and its listener only (a backend's `tcp-request content reject`, `silent-drop`).
DENIED_REQUEST = 1
DENIED_RESPONSE = 2
DENIED_FRONTEND = 3
# Not a denial: a rule found the request malformed (`normalize-uri ... strict`), which
# HAProxy counts as a request error (ereq).
REFUSED_BAD = 4


class Txn:
    """One transaction, as its log line and the counters see it."""

    __slots__ = (
        "backend",
        "bad_request",
        "bytes_in",
        "bytes_out",
        "connect_error",
        "cookie_status",
        "denied",
        "persist",
        "redispatched",
        "refusal",
        "req",
        "req_captures",
        "resp",
        "resp_captures",
        "retries",
        "rule",
        "server",
        "start",
        "status",
        "stick_stores",
        "t_connect",
        "t_head",
        "t_queue",
        "t_response",
        "term",
        "websocket",
    )

    def __init__(self, start: float) -> None:
        self.start = start  # when the request began (its first byte, or the accept)
        self.t_head = -1  # TR
        self.t_queue = -1  # Tw
        self.t_connect = -1  # Tc
        self.t_response = -1  # Tr
        self.status = 0  # the status sent to the client; 0: none (yet)
        # The keys `stick store-*` rules store once the server serves (core/stickrules.py).
        self.stick_stores: list[Store] | None = None
        self.bytes_in = 0  # from the client: heads as received, bodies, a tunnel
        self.bytes_out = 0  # to the client
        self.term = NORMAL  # the termination state (core/termination.py)
        self.cookie_status = NORMAL  # the persistence cookie's two flags
        self.req: Request | None = None
        self.resp: Response | None = None
        self.req_captures: Captures | None = None  # `capture request header`, as received
        self.resp_captures: Captures | None = None
        self.websocket = False  # an upgrade was asked for
        # Filled when the transaction ends: where it went (core objects, for the counters).
        self.backend: Backend | None = None
        self.server: ServerState | None = None  # the last server tried
        self.retries = 0
        self.redispatched = False
        # What `force-persist` (True) or `ignore-persist` (False) said; None: no rule held.
        self.persist: bool | None = None
        self.connect_error: BaseException | None = None  # why the last connect failed
        self.rule = ""  # the rule that answered (deny, return, redirect)
        self.refusal = ""  # why poise refused the request or the response
        self.bad_request = False  # refused before a request could be read (<BADREQ>)
        # Refused by a rule (core/counters.py counts it): DENIED_REQUEST, DENIED_RESPONSE,
        # DENIED_FRONTEND; 0: not.
        self.denied = 0
