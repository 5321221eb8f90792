"""The backend's queues (pure): who gets a server slot, in which order, and what happens to
waiting connections when servers go down, come up or fill up."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from poise.config import model
from poise.core.backend import Backend, Go, Outcome
from poise.core.balancer.factory import make_balancer
from poise.core.server import AdminState, ServerState

WHERE = model.Where("t.cfg", 1)


class Waiter:
    def __init__(self, name: str) -> None:
        self.name = name

    def dequeued(self, server: ServerState) -> None:
        raise AssertionError("the pure model never calls the shell")

    def __repr__(self) -> str:
        return self.name


def backend(
    *servers: tuple[str, int],
    algorithm: model.Algorithm = model.Algorithm.ROUNDROBIN,
    maxqueue: int = 0,
) -> Backend:
    configs = [
        model.Server(
            name=name,
            address=model.Address("ipv4", "127.0.0.1", 8000 + i),
            where=WHERE,
            id=i + 1,
            maxconn=maxconn,
            maxqueue=maxqueue,
        )
        for i, (name, maxconn) in enumerate(servers)
    ]
    proxy = model.Proxy(
        name="be",
        capabilities=model.Capability.BACKEND,
        where=WHERE,
        servers=tuple(configs),
        balance=model.Balance(algorithm=algorithm),
    )
    states = [ServerState(c, "be") for c in configs]

    def balancer(s: Sequence[ServerState]) -> object:
        return make_balancer(proxy.balance, s, False, random.Random(1))

    return Backend(proxy, states, balancer)  # type: ignore[arg-type]


def names(goes: list[Go]) -> list[tuple[str, str]]:
    return [(repr(go.waiter), go.server.name) for go in goes]


def test_a_full_backend_queues_and_serves_in_arrival_order() -> None:
    be = backend(("a", 1), ("b", 1))
    first, second, third, fourth = (Waiter(n) for n in ("w1", "w2", "w3", "w4"))
    assert be.take(first).outcome is Outcome.ASSIGNED
    assert be.take(second).outcome is Outcome.ASSIGNED
    assert be.take(third).outcome is Outcome.QUEUED
    assert be.take(fourth).outcome is Outcome.QUEUED
    assert be.queued == 2
    a = be.server("a")
    assert a is not None
    assert names(be.release(a)) == [("w3", "a")]
    assert names(be.release(a)) == [("w4", "a")]
    assert names(be.release(a)) == []
    assert a.cur_sess == 0 and be.queued == 0


def test_no_usable_server_fails_at_once() -> None:
    be = backend(("a", 0))
    a = be.server("a")
    assert a is not None
    a.up = False
    be.changed()
    assert be.take(Waiter("w")).outcome is Outcome.NO_SERVER


def test_a_cancelled_waiter_is_skipped() -> None:
    be = backend(("a", 1))
    be.take(Waiter("w1"))
    gone, stays = Waiter("gone"), Waiter("stays")
    be.take(gone)
    be.take(stays)
    be.cancel(gone)
    a = be.server("a")
    assert a is not None
    assert names(be.release(a)) == [("stays", "a")]


def test_a_server_coming_up_takes_the_waiting_connections() -> None:
    be = backend(("a", 1), ("b", 1))
    b = be.server("b")
    assert b is not None
    b.up = False
    be.changed()
    be.take(Waiter("w1"))
    be.take(Waiter("w2"))
    be.take(Waiter("w3"))
    assert be.queued == 2
    b.up = True
    assert names(be.changed()) == [("w2", "b")]


def test_hashed_connections_wait_for_their_server_and_are_requeued_when_it_dies() -> None:
    be = backend(("a", 1), ("b", 1), algorithm=model.Algorithm.SOURCE)
    key = b"198.51.100.7"
    chosen = be.take(Waiter("w1"), key)
    assert chosen.outcome is Outcome.ASSIGNED and chosen.server is not None
    waiting = be.take(Waiter("w2"), key)
    # A deterministic balancer keeps its choice: w2 waits in that server's own queue.
    assert waiting.outcome is Outcome.QUEUED and waiting.server is chosen.server
    assert chosen.server.queued == 1
    chosen.server.admin = AdminState.MAINT
    goes = be.changed()
    # Its queue goes back to the backend, and the other server takes it.
    assert be.requeued == 1
    other = "b" if chosen.server.name == "a" else "a"
    assert names(goes) == [("w2", other)]


def test_past_maxqueue_a_hashed_connection_waits_for_any_server() -> None:
    be = backend(("a", 1), ("b", 1), algorithm=model.Algorithm.SOURCE, maxqueue=1)
    key = b"198.51.100.7"
    taken = be.take(Waiter("w1"), key)
    assert taken.server is not None
    assert be.take(Waiter("w2"), key).server is taken.server  # its own queue: 1 of 1
    spill = be.take(Waiter("w3"), key)
    assert spill.outcome is Outcome.QUEUED and spill.server is None  # the backend's queue


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["take", "release", "cancel"]), max_size=60))
def test_slots_are_never_oversubscribed(steps: list[str]) -> None:
    be = backend(("a", 2), ("b", 1))
    holding: list[tuple[Waiter, ServerState]] = []
    waiting: list[Waiter] = []
    for i, step in enumerate(steps):
        if step == "take":
            waiter = Waiter(f"w{i}")
            taken = be.take(waiter)
            if taken.outcome is Outcome.ASSIGNED:
                assert taken.server is not None
                holding.append((waiter, taken.server))
            else:
                waiting.append(waiter)
        elif step == "release" and holding:
            _, server = holding.pop(0)
            for go in be.release(server):
                assert isinstance(go.waiter, Waiter)
                waiting.remove(go.waiter)
                holding.append((go.waiter, go.server))
        elif step == "cancel" and waiting:
            be.cancel(waiting.pop(0))
        for server in be.servers:
            assert server.cur_sess <= server.maxconn
            assert server.cur_sess == sum(1 for _, s in holding if s is server)
        assert be.queued == len(waiting)
        # Nobody waits while a slot is free.
        if waiting:
            assert all(s.full for s in be.servers)
