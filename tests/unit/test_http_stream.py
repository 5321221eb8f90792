"""The pure HTTP stream (core/http/stream.py) driven without sockets: events in as method
calls with an explicit clock, actions out through a recording port (the interface of
core/http/stream_port.py, implemented here in memory: the stream's interface, not a mock
of the network; net/http.py's real-socket tests stay).

The Dispatcher here does what net/dispatch.py does minus the sockets: it asks the real
backend for a server, reuses the connection the port keeps attached, and leaves the
connection attempt to the test, which says how it ends (up, refused)."""

from __future__ import annotations

from poise.config.haproxy import parse
from poise.core.backend import Backend, Outcome
from poise.core.balancer.factory import make_balancer
from poise.core.connect import ASS, CLO, CON, EST, INI, QUE, REQ, SrvState
from poise.core.frontend import Frontend
from poise.core.http.framing import TUNNEL, RequestFramer, ResponseFramer
from poise.core.http.message import Request
from poise.core.http.rules import Verdict
from poise.core.http.stream import HttpStream
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import Txn

BASE = (
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
    "    timeout server 3s\n    timeout http-request 2s\n    timeout tunnel 7s\n"
    "frontend f\n    bind :80\n    default_backend b\n"
)
INFINITE = float("inf")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sink:
    """The frontend's log sink: the lines themselves are core/httplog.py's tests'."""

    def send(
        self, level: str, message: str, facility: str | None = None, sd: str | None = None
    ) -> None:
        pass

    def explain(self, message: str) -> None:
        pass


class ServerConn:
    """A server connection: what the stream wrote to it, and whether it is open."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.data = bytearray()
        self.open = True
        self.half_closed = False

    def write(self, data: bytes) -> None:
        assert self.open, "written to a closed server connection"
        self.data += data


class Runtime:
    def __init__(self, backends: dict[str, Backend]) -> None:
        self.stopping = False
        self.backends = backends

    def wall(self) -> float:
        return 1_700_000_000.0


class Port:
    """The recording port: the client's bytes, the server connections, reading paused
    or not, the deadline, the log, the close."""

    def __init__(self) -> None:
        self.stream: HttpStream
        self.client = bytearray()
        self.conn: ServerConn | None = None  # attached to the stream
        self.conns: list[ServerConn] = []  # every one made
        self.paused = False
        self.deadline = INFINITE
        self.logged: list[Txn] = []
        self.closed: str | None = None  # "close" or "abort"
        self.tunneled: bytes | None = None  # handed to the relay, with these bytes

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused = True

    def resume_reading(self) -> None:
        assert self.paused
        self.paused = False

    def set_deadline(self, when: float) -> None:
        self.deadline = when

    def attach(self, upstream: object) -> None:
        assert isinstance(upstream, ServerConn) and upstream.open
        self.conn = upstream
        self.stream.write_server = upstream.write

    def discard(self, upstream: object) -> None:
        assert isinstance(upstream, ServerConn)
        upstream.open = False

    def close_server(self) -> None:
        if self.conn is not None:
            self.conn.open = False
            self.conn = None

    def release_server(self, keep: bool) -> None:
        if self.conn is not None and not (keep and self.conn.open):
            self.close_server()

    def tunnel(self, data: bytes) -> None:
        assert self.tunneled is None and self.conn is not None
        self.conn.write(data)
        self.tunneled = data

    def close(self, abort: bool, tunnel: bool, reusable: bool) -> None:
        assert self.closed is None, "closed twice"
        self.closed = "abort" if abort else "close"
        self.deadline = INFINITE
        self.close_server()

    def log(self, txn: Txn, backend: Backend | None, now: float) -> None:
        assert all(txn is not seen for seen in self.logged), "a transaction logged twice"
        self.logged.append(txn)

    def has_pages(self, frontend: Frontend) -> bool:
        return False

    def serve(
        self, frontend: Frontend, req: Request, verdict: Verdict, close: bool, body: bytes | None
    ) -> Verdict | None:
        return verdict

    # What the test does on the server's behalf.

    def lose_server(self) -> None:
        """The server closes the attached connection (the shell's upstream_lost)."""
        assert self.conn is not None
        self.conn.open = False
        self.conn = None
        self.stream.server_lost()


class Dispatch:
    """The Dispatcher without sockets (see the module docstring)."""

    def __init__(self, stream: HttpStream, port: Port) -> None:
        self.stream = stream
        self.port = port
        self.state: SrvState = INI
        self.tls_name: str | None = None
        self.connecting: ServerState | None = None

    def assign(self, avoid: ServerState | None) -> None:
        backend = self.stream.backend
        assert backend is not None
        self.state = REQ
        take = backend.take(self, b"", avoid)
        if take.outcome is Outcome.ASSIGNED:
            assert take.server is not None
            self.connect(take.server)
        elif take.outcome is Outcome.QUEUED:
            self.state = QUE
        else:
            self.state = CLO
            self.stream.fail(Failure.NO_SERVER)

    def assign_to(self, server: ServerState) -> None:
        backend = self.stream.backend
        assert backend is not None
        backend.occupy(server)
        self.connect(server)

    def connect(self, server: ServerState) -> None:
        stream, port = self.stream, self.port
        stream.server = server
        self.state = ASS
        conn = port.conn
        if not stream.no_reuse and conn is not None and conn.open and conn.server is server:
            self.state = EST  # the connection kept attached (the shell's reuse)
            stream.write_server = conn.write
            stream.send_request(True)
            return
        self.state = CON
        self.connecting = server

    def dequeued(self, server: ServerState) -> None:
        """The backend gave the waiting stream a slot."""
        self.connect(server)

    def leave_queue(self) -> None:
        backend = self.stream.backend
        assert backend is not None
        backend.cancel(self, None)
        self.state = INI

    def end(self) -> None:
        if self.state is QUE:
            self.leave_queue()
        self.state = INI

    def close(self) -> None:
        self.state = CLO

    def up(self, connect_ms: int = 2) -> ServerConn:
        """The connection attempt succeeds."""
        assert self.state is CON and self.connecting is not None
        conn = ServerConn(self.connecting)
        self.port.conns.append(conn)
        if self.stream.client_gone:
            self.state = CLO
            self.stream.finish()
            return conn
        self.state = EST
        self.stream.server_connected(None, conn, connect_ms)
        return conn

    def redispatch(self) -> None:
        """The attempt failed and `option redispatch` sends it elsewhere (as
        net/dispatch.py's connect_failed)."""
        stream = self.stream
        server, backend = stream.server, stream.backend
        assert self.state is CON and server is not None and backend is not None
        stream.txn.retries += 1
        stream.txn.redispatched = True
        stream.on_redispatch()
        stream.server = None
        backend.release(server)
        self.assign(server)


class World:
    def __init__(self, extra: str = "", servers: str = "    server s1 127.0.0.1:8001\n") -> None:
        config, diagnostics = parse([("t.cfg", BASE + "backend b\n" + servers + extra)], {})
        assert config is not None, [str(d) for d in diagnostics]
        front, back = config.proxies
        states = [ServerState(server, "b") for server in back.servers]
        self.backend = Backend(back, states, lambda s: make_balancer(back.balance, s, False), None)
        self.frontend = Frontend(front, self.backend, Sink(), 1000)
        self.clock = Clock()
        self.port = port = Port()
        self.stream = stream = HttpStream(
            port, Runtime({"b": self.backend}), self.frontend, self.clock,
            RequestFramer(), ResponseFramer(),
        )  # fmt: skip
        port.stream = stream
        stream.write_client = port.client.extend
        self.dispatch = Dispatch(stream, port)
        stream.dispatch = self.dispatch
        stream.begin(self.clock.now)

    def client(self, data: bytes, after: float = 0.01) -> None:
        self.clock.now += after
        self.stream.client_data(data, self.clock.now)

    def server(self, data: bytes, after: float = 0.01) -> None:
        self.clock.now += after
        self.stream.server_data(data, self.clock.now)

    def until(self, when: float) -> None:
        """Time passes up to `when`, the timer firing at each deadline on the way (an
        early one moves itself to the phase's real deadline)."""
        while self.port.deadline <= when:
            self.clock.now = self.port.deadline
            self.port.deadline = INFINITE  # the timer fires once
            self.stream.timer(self.clock.now)
        self.clock.now = when

    def terms(self) -> list[str]:
        return [txn.term for txn in self.port.logged]


def get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: h\r\n" + extra + b"\r\n"


def test_a_request_and_its_response() -> None:
    w = World()
    w.client(get("/a"))
    assert w.dispatch.state is CON and w.port.conns == []
    conn = w.dispatch.up()
    assert conn.data.startswith(b"GET /a HTTP/1.1\r\n")
    w.server(OK)
    assert bytes(w.port.client) == OK
    assert w.terms() == ["--"] and w.port.logged[0].status == 200
    assert w.port.closed is None and w.port.conn is conn  # both kept for the next one


def test_pipelined_requests_are_answered_one_at_a_time_in_order() -> None:
    w = World()
    w.client(get("/1") + get("/2") + get("/3"))
    conn = w.dispatch.up()
    assert b"/2" not in conn.data  # the next request waits for this response
    for n in (1, 2, 3):
        assert conn.data.count(b"GET /") == n
        w.server(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % n)
    assert w.port.client.count(b"HTTP/1.1 200") == 3
    assert bytes(w.port.client).endswith(b"1\r\n\r\n3")
    bodies = [txn.req.uri for txn in w.port.logged if txn.req is not None]
    assert bodies == ["/1", "/2", "/3"] and w.terms() == ["--"] * 3
    assert len(w.port.conns) == 1  # one server connection for the three


def test_pipelined_bytes_over_a_heads_worth_pause_reading_until_their_turn() -> None:
    w = World()
    w.client(get("/1"))
    w.dispatch.up()
    pad = b"X-Pad: " + b"a" * 9000 + b"\r\n"
    w.client(get("/2", pad) + get("/3", pad))
    assert w.port.paused  # over a head's worth waits: reading stops
    w.server(OK)
    assert not w.port.paused  # /2 is on its way, /3 alone fits
    w.server(OK)
    w.server(OK)
    assert [txn.req.uri for txn in w.port.logged if txn.req] == ["/1", "/2", "/3"]


def test_408_when_the_head_does_not_come_within_timeout_http_request() -> None:
    w = World()
    w.client(b"GET / HT")
    w.until(101.99)
    assert w.port.client == b"" and w.port.closed is None
    w.until(102.0)  # `timeout http-request` counts from the request's first byte
    assert w.port.client.startswith(b"HTTP/1.1 408 ")
    assert w.terms() == ["cR"] and w.port.closed == "close"


def test_an_idle_kept_connection_closes_without_a_408() -> None:
    w = World()
    w.client(get())
    w.dispatch.up()
    w.server(OK)
    w.until(w.clock.now + 2.0)  # no `timeout http-keep-alive`: http-request's
    assert bytes(w.port.client) == OK and w.terms() == ["--"]
    assert w.port.closed == "close"


def test_504_when_the_server_does_not_answer_within_timeout_server() -> None:
    w = World()
    w.client(get())
    w.dispatch.up()
    sent = w.clock.now
    w.until(sent + 2.99)
    assert w.port.client == b""
    w.until(sent + 3.0)
    assert w.port.client.startswith(b"HTTP/1.1 504 ")
    assert w.terms() == ["sH"] and w.port.logged[0].status == 504
    assert w.port.conn is None and w.port.closed is None  # the client may ask again


def test_a_server_silent_mid_body_is_an_abort_with_sd() -> None:
    w = World()
    w.client(get())
    w.dispatch.up()
    w.server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    w.until(w.clock.now + 3.0)
    assert w.terms() == ["sD"] and w.port.closed == "abort"


WEBSOCKET = get(
    "/ws",
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def test_an_upgrade_hands_both_connections_to_the_relay() -> None:
    """After the 101 the tunnel is the byte relay's (net/relay.py, tested through real
    sockets in tests/io/test_tunnel.py): the stream hands it the connections with what
    the client sent after its head, and logs the transaction when the relay ends it."""
    w = World()
    w.client(WEBSOCKET + b"\x81\x00")
    conn = w.dispatch.up()
    assert w.port.tunneled is None
    w.server(SWITCHING + b"hello")
    assert w.stream.rq.phase is TUNNEL and w.port.tunneled == b"\x81\x00"
    assert bytes(w.port.client).endswith(b"\r\n\r\nhello")
    assert conn.data.endswith(b"\r\n\r\n\x81\x00")
    assert w.port.logged == []  # a tunnel is logged when it ends
    w.until(w.clock.now + 60)  # the stream's timeouts are over: the relay's apply
    assert w.port.closed is None and w.port.logged == []
    w.stream.close_session()  # the relay saw both connections close
    assert w.terms() == ["--"] and w.port.logged[0].status == 101
    assert w.port.logged[0].bytes_in == len(WEBSOCKET) + 2
    assert w.port.closed == "close"


def test_a_dead_pooled_connection_is_retried_on_a_fresh_one() -> None:
    w = World()
    w.client(get("/1"))
    first = w.dispatch.up()
    w.server(OK)
    w.client(get("/2"))
    assert first.data.endswith(get("/2")) and w.dispatch.state is EST  # reused
    w.port.lose_server()  # closed by the server before any answer
    assert w.dispatch.state is CON  # a new connection, not the pool
    second = w.dispatch.up()
    assert second.data.startswith(b"GET /2 ")
    w.server(OK)
    assert bytes(w.port.client) == OK + OK and w.terms() == ["--", "--"]


def test_a_post_on_a_dead_reused_connection_closes_the_client_without_a_line() -> None:
    w = World()
    w.client(get("/1"))
    w.dispatch.up()
    w.server(OK)
    w.client(b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
    w.port.lose_server()
    assert w.terms() == ["--"] and w.port.closed == "close"  # as HAProxy 2.6


def test_redispatch_leaves_the_cookies_server_and_sets_a_new_cookie() -> None:
    w = World(
        "    cookie SRV insert\n    option redispatch\n    retries 2\n",
        "    server s1 127.0.0.1:8001 cookie s1\n    server s2 127.0.0.1:8002 cookie s2\n",
    )
    w.client(get("/", b"Cookie: SRV=s1\r\n"))
    assert w.stream.server is not None and w.stream.server.name == "s1"
    w.dispatch.redispatch()
    assert w.stream.server is not None and w.stream.server.name == "s2"
    w.dispatch.up()
    w.server(OK)
    assert b"set-cookie: SRV=s2; path=/" in w.port.client
    txn = w.port.logged[0]
    assert txn.redispatched and txn.retries == 1 and txn.server is not None
    assert txn.server.name == "s2"


def test_expect_100_continue_the_interim_response_then_the_body() -> None:
    w = World()
    w.client(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    conn = w.dispatch.up()
    w.server(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert bytes(w.port.client) == b"HTTP/1.1 100 Continue\r\n\r\n"
    w.client(b"hello")
    assert conn.data.endswith(b"\r\n\r\nhello")
    w.server(OK)
    assert bytes(w.port.client).endswith(OK) and w.terms() == ["--"]


def test_a_half_closed_client_gets_its_response_then_the_close() -> None:
    w = World()
    w.client(get())
    assert w.stream.client_eof() is True  # kept half-open: the response is due
    w.dispatch.up()
    w.server(OK)
    assert w.port.client.startswith(b"HTTP/1.1 200 OK\r\n") and w.terms() == ["--"]
    assert b"Connection: close" in w.port.client and w.port.closed == "close"


def test_a_request_body_waits_for_the_connection_then_goes_first() -> None:
    w = World()
    w.client(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab")
    w.client(b"cdef")
    conn = w.dispatch.up()
    assert conn.data.endswith(b"\r\n\r\nabcdef")


def test_a_body_over_the_limit_while_connecting_pauses_reading() -> None:
    w = World()
    size = 200_000
    w.client(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)
    w.client(b"x" * 70_000)
    assert w.port.paused  # over core/connect.py's PENDING_LIMIT
    conn = w.dispatch.up()
    assert not w.port.paused and conn.data.endswith(b"x" * 70_000)


# -- the client leaves in each phase -------------------------------------------------------


def test_a_client_leaving_mid_head_is_cr_400_badreq() -> None:
    # haproxy 2.6.12: `f f/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>"`,
    # for a connection closed empty too (not logged with `option dontlognull`).
    for data in (b"GET / HT", b""):
        w = World()
        if data:
            w.client(data)
        w.stream.client_lost()
        assert w.terms() == ["CR"] and w.port.closed == "close"
        txn = w.port.logged[0]
        assert txn.status == 400 and txn.bad_request and txn.bytes_in == 0


def test_a_client_closing_an_idle_kept_connection_is_not_logged() -> None:
    w = World()
    w.client(get())
    w.server(OK)
    assert w.terms() == ["--"]
    w.stream.client_lost()  # between two requests: HAProxy logs nothing either
    assert w.terms() == ["--"]


def test_a_client_leaving_in_the_queue_is_cq() -> None:
    w = World(servers="    server s1 127.0.0.1:8001 maxconn 1\n")
    w.backend.occupy(w.backend.servers[0])  # another client holds the only slot
    w.client(get())
    assert w.dispatch.state is QUE
    w.stream.client_lost()
    assert w.terms() == ["CQ"] and w.port.closed == "close"
    assert not w.backend.queue


def test_a_client_leaving_while_connecting_is_cc_once_the_attempt_ends() -> None:
    w = World()
    w.client(get())
    w.stream.client_lost()
    assert w.port.logged == []  # the connect callback ends the stream
    conn = w.dispatch.up()
    assert w.terms() == ["CC"] and w.port.closed == "close" and conn.data == b""


def test_a_client_leaving_before_the_response_is_ch() -> None:
    w = World()
    w.client(get())
    w.dispatch.up()
    w.stream.client_lost()
    assert w.terms() == ["CH"] and w.port.closed == "close"


def test_a_client_leaving_during_the_response_body_is_cd() -> None:
    w = World()
    w.client(get())
    w.dispatch.up()
    w.server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    w.stream.client_lost()
    assert w.terms() == ["CD"] and w.port.closed == "close"


def test_no_server_is_a_503_and_the_client_stays() -> None:
    w = World(servers="    server s1 127.0.0.1:8001 disabled\n")
    w.client(get())
    assert w.port.client.startswith(b"HTTP/1.1 503 ")
    assert w.terms() == ["SC"] and w.port.closed is None


def test_a_malformed_request_is_refused_and_nothing_forwarded() -> None:
    w = World()
    w.client(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert w.port.client.startswith(b"HTTP/1.1 400 ") and w.port.conns == []
    assert w.terms() == ["PR"] and w.port.closed == "close"
