"""The workers' bus (process/bus.py) over real unix SOCK_SEQPACKET pairs, as the master and
its workers hold them, in one event loop of each kind: broadcasts reach the other workers
of the same generation only, a gather collects their answers, and a worker that does not
answer (stopped, or gone) holds a gather no longer than its timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from poise.net.siblings import Handler, Payload
from poise.process.bus import RELAYED, Bus, Relay
from poise.process.handover import Channel
from tests.support import eventually, run


@dataclass
class Peer:
    channel: Channel  # the master's end
    reading: bool
    serving: bool
    slot: int
    generation: int


class World:
    """A master's Relay and the Bus of each worker, over real socket pairs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.peers: dict[int, Peer] = {}
        self.relay = Relay(self.peers)
        self.buses: dict[int, Bus] = {}
        self.ends: dict[int, Channel] = {}
        self.problems: list[str] = []

    def add(self, pid: int, slot: int, count: int, generation: int = 1, listen: bool = True) -> Bus:
        ours, theirs = Channel.pair()
        for channel in (ours, theirs):
            channel.sock.setblocking(False)
        self.peers[pid] = Peer(ours, True, True, slot, generation)
        self.loop.add_reader(ours.fileno(), self.from_worker, pid)
        bus = self.buses[pid] = Bus(slot, count, theirs.send)
        self.ends[pid] = theirs
        if listen:
            self.loop.add_reader(theirs.fileno(), self.to_worker, pid)
        return bus

    def from_worker(self, pid: int) -> None:
        message, _ = self.peers[pid].channel.receive()
        assert message is not None and message["op"] in RELAYED
        self.problems += self.relay.relay(pid, message)

    def to_worker(self, pid: int) -> None:
        message, _ = self.ends[pid].receive()
        assert message is not None
        self.buses[pid].receive(message)

    def close(self) -> None:
        for pid, peer in self.peers.items():
            self.loop.remove_reader(peer.channel.fileno())
            self.loop.remove_reader(self.ends[pid].fileno())
            peer.channel.close()
            self.ends[pid].close()


def noting(into: list[tuple[str, Payload]]) -> Handler:
    def handler(payload: Payload) -> None:
        into.append(("state", payload))

    return handler


def counting(slot: int) -> Handler:
    return lambda payload: {"slot": slot, "n": payload["n"] * 10 + slot}


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_broadcast_and_gather_between_the_workers_of_one_generation(kind: str) -> None:
    async def main() -> None:
        world = World(asyncio.get_running_loop())
        heard: dict[int, list[tuple[str, Payload]]] = {}
        try:
            for pid, slot in ((100, 0), (101, 1), (102, 2)):
                bus = world.add(pid, slot, 3)
                heard[slot] = []
                bus.serve("state", noting(heard[slot]))
                bus.serve("count", counting(slot))
            other = world.add(200, 0, 1, generation=2)  # the next generation: not a sibling
            other.serve("state", lambda p: heard.setdefault(9, []).append(("state", p)))
            world.buses[100].broadcast("state", {"server": "be/s1", "up": False})
            await eventually(lambda: len(heard[1]) == len(heard[2]) == 1, 5, "the broadcast")
            assert heard[1] == [("state", {"server": "be/s1", "up": False})]
            assert heard[0] == [] and 9 not in heard  # not to itself, not to generation 2
            answers = await world.buses[101].gather("count", {"n": 4}, timeout=5)
            assert sorted(answers, key=lambda a: a["slot"]) == [
                {"slot": 0, "n": 40},
                {"slot": 2, "n": 42},
            ]
            assert await world.buses[101].gather("nobody-serves-this", {}, timeout=5) == []
            assert await other.gather("count", {"n": 1}) == []  # alone in its generation
            assert world.problems == []
        finally:
            world.close()

    run(kind, main)


def test_a_worker_that_does_not_answer_holds_a_gather_no_longer_than_its_timeout() -> None:
    async def main() -> None:
        world = World(asyncio.get_running_loop())
        try:
            world.add(100, 0, 3)
            world.add(101, 1, 3).serve("count", lambda p: {"n": 1})
            world.add(102, 2, 3, listen=False)  # stopped: reads nothing
            started = time.monotonic()
            answers = await world.buses[100].gather("count", {}, timeout=0.3)
            elapsed = time.monotonic() - started
            assert answers == [{"n": 1}]
            assert 0.25 <= elapsed < 2  # the loop's clock may fire a hair early
            # Gone: its end closed; the master relays to it no more once it stops reading.
            world.peers[102].reading = False
            started = time.monotonic()
            assert await world.buses[100].gather("count", {}, timeout=5) == [{"n": 1}]
            assert time.monotonic() - started < 2  # answered by all it was sent to: no wait
            # Starting (not ready yet): not asked, so not waited for either.
            world.peers[102].reading, world.peers[102].serving = True, False
            started = time.monotonic()
            assert await world.buses[100].gather("count", {}, timeout=5) == [{"n": 1}]
            assert time.monotonic() - started < 2
        finally:
            world.close()

    run("uvloop", main)
