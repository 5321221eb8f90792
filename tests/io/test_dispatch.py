"""A session's server side (net/dispatch.py) against real listeners on 127.0.0.1: connect,
retry after the turn-around delay, redispatch, queue, the queue timeout, each move of its
state one of core/connect.py's TRANSITIONS and the states HAProxy's would pass through.

The session here is the smallest `Owner`: the interface the TCP and HTTP sessions give
their Dispatch; the sockets, the backend, its queues and the timers are real."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence
from typing import cast

from poise.config import model
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.connect import ASS, CLO, CON, EST, INI, QUE, REQ, TAR, TRANSITIONS, SrvState
from poise.core.http.message import Request
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.core.txn import Conn, Txn
from poise.net.context import Context
from poise.net.dispatch import Dispatch
from tests.support import run

WHERE = model.Where("t.cfg", 1)


class RecordingDispatch(Dispatch):
    """Every move of the state is recorded (the test's only addition)."""

    def __init__(self, owner: Session, ctx: Context) -> None:
        self.moves: list[tuple[SrvState, SrvState]] = []
        super().__init__(owner, ctx)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "state" and hasattr(self, "state"):
            self.moves.append((self.state, value))  # type: ignore[arg-type]
        super().__setattr__(name, value)

    def path(self) -> list[SrvState]:
        outside = [(a, b) for a, b in self.moves if b not in TRANSITIONS[a]]
        assert outside == [], f"moves not in core/connect.py's TRANSITIONS: {outside}"
        return [INI, *[b for _, b in self.moves]]


class Session:
    """The smallest Owner: tells the test what happened."""

    def __init__(self, backend: Backend) -> None:
        self.backend: Backend | None = backend
        self.server: ServerState | None = None
        self.txn = Txn(0.0)
        self.conn = Conn()
        # No client connection: every server here has an address and a port, so the
        # Dispatch never asks where the client connected to.
        self.client = cast(asyncio.Transport, None)
        self.client_gone = False
        self.outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.redispatched = 0

    def balance_key(self) -> bytes | None:
        return b""

    def reuse(self, server: ServerState) -> bool:
        return False

    def server_protocol(self) -> asyncio.Protocol:
        return asyncio.Protocol()

    def server_connected(
        self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol, connect_ms: int
    ) -> None:
        transport.close()
        self.outcome.set_result("connected")

    def sni_request(self) -> Request | None:
        return None

    def on_redispatch(self) -> None:
        self.redispatched += 1

    def fail(self, failure: Failure) -> None:
        self.outcome.set_result(failure)

    def finish(self) -> None:
        self.outcome.set_result("finished")


def closed_port() -> int:
    """A port nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_backend(
    ports: list[int], retries: int = 3, redispatch: int | None = None, maxconn: int = 0
) -> Backend:
    configs = [
        model.Server(
            name=f"s{i + 1}",
            address=model.Address("ipv4", "127.0.0.1", port),
            where=WHERE,
            id=i + 1,
            maxconn=maxconn,
        )
        for i, port in enumerate(ports)
    ]
    proxy = model.Proxy(
        name="be",
        capabilities=model.Capability.BACKEND,
        where=WHERE,
        servers=tuple(configs),
        retries=retries,
        redispatch=redispatch,
        timeouts=model.Timeouts(connect=1000, queue=50),
    )
    states = [ServerState(c, "be") for c in configs]

    def balancer(s: Sequence[ServerState]) -> object:
        return make_balancer(proxy.balance, s, False, random.Random(1))

    return Backend(proxy, states, balancer)  # type: ignore[arg-type]


async def dispatch_to(backend: Backend) -> tuple[Session, RecordingDispatch]:
    ctx = Context(asyncio.get_running_loop(), maxconn=100)
    ctx.add_backend(backend)
    session = Session(backend)
    return session, RecordingDispatch(session, ctx)


async def listener() -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def test_a_server_that_answers_is_established_then_the_transaction_ends(loop_kind: str) -> None:
    async def main() -> None:
        server, port = await listener()
        async with server:
            session, dispatch = await dispatch_to(make_backend([port]))
            dispatch.assign(None)
            assert dispatch.state is CON
            assert await asyncio.wait_for(session.outcome, 5) == "connected"
            dispatch.end()
            dispatch.close()
            assert dispatch.path() == [INI, REQ, ASS, CON, EST, INI, CLO]

    run(loop_kind, main)


def test_a_refused_server_is_retried_after_the_turnaround_then_given_up(loop_kind: str) -> None:
    async def main() -> None:
        backend = make_backend([closed_port()], retries=2)
        session, dispatch = await dispatch_to(backend)
        loop = asyncio.get_running_loop()
        started = loop.time()
        dispatch.assign(None)
        assert await asyncio.wait_for(session.outcome, 10) is Failure.NO_SERVER
        # Two turn-arounds of min(timeout connect, 1s) = 1s each.
        assert loop.time() - started >= 2 * 0.99
        assert session.txn.retries == 2
        try_once = [ASS, CON, TAR]
        assert dispatch.path() == [INI, REQ, *try_once, *try_once, ASS, CON, CLO]

    run(loop_kind, main, timeout=30)


def test_option_redispatch_chooses_another_server(loop_kind: str) -> None:
    async def main() -> None:
        server, port = await listener()
        async with server:
            # Round robin starts with s1 (refused); `option redispatch 1`: every retry
            # goes back to choosing, and s2 answers.
            backend = make_backend([closed_port(), port], retries=3, redispatch=1)
            session, dispatch = await dispatch_to(backend)
            dispatch.assign(None)
            assert await asyncio.wait_for(session.outcome, 5) == "connected"
            assert session.server is not None
            assert session.server.name == "s2"
            assert (session.txn.retries, session.txn.redispatched) == (1, True)
            assert session.redispatched == 1
            assert dispatch.path() == [INI, REQ, ASS, CON, REQ, ASS, CON, EST]

    run(loop_kind, main)


def test_a_full_server_queues_then_the_queue_times_out(loop_kind: str) -> None:
    async def main() -> None:
        server, port = await listener()
        async with server:
            backend = make_backend([port], maxconn=1)
            first, first_dispatch = await dispatch_to(backend)
            first_dispatch.assign(None)
            waiting, dispatch = await dispatch_to(backend)
            dispatch.assign(None)
            assert dispatch.state is QUE
            assert await asyncio.wait_for(waiting.outcome, 5) is Failure.QUEUE_TIMEOUT
            assert waiting.txn.t_queue >= 49  # `timeout queue 50ms`
            assert dispatch.path() == [INI, REQ, QUE, INI, CLO]
            await asyncio.wait_for(first.outcome, 5)

    run(loop_kind, main)


def test_a_queued_session_gets_the_slot_a_finished_one_leaves(loop_kind: str) -> None:
    async def main() -> None:
        server, port = await listener()
        async with server:
            backend = make_backend([port], maxconn=1)
            first, first_dispatch = await dispatch_to(backend)
            first_dispatch.assign(None)
            assert await asyncio.wait_for(first.outcome, 5) == "connected"
            waiting, dispatch = await dispatch_to(backend)
            dispatch.assign(None)
            assert dispatch.state is QUE
            assert first.server is not None
            for go in backend.release(first.server):  # the first one's transaction ends
                go.waiter.dequeued(go.server)
            assert await asyncio.wait_for(waiting.outcome, 5) == "connected"
            assert dispatch.path() == [INI, REQ, QUE, ASS, CON, EST]

    run(loop_kind, main)


def test_a_client_gone_while_connecting_finishes_the_session(loop_kind: str) -> None:
    async def main() -> None:
        server, port = await listener()
        async with server:
            session, dispatch = await dispatch_to(make_backend([port]))
            dispatch.assign(None)
            session.client_gone = True  # left before the connection was up
            assert await asyncio.wait_for(session.outcome, 5) == "finished"
            assert dispatch.path() == [INI, REQ, ASS, CON, CLO]

    run(loop_kind, main)
