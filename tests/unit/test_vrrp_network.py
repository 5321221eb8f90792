"""Several state machines on a simulated LAN (adverts delivered after a small delay, nodes
that crash, stop, restart, lose their link, get partitioned and healed): whatever happens,
once the network is whole and quiet again there is exactly one master, and with preemption
it has the highest priority."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poise.vrrp import fsm
from poise.vrrp.fsm import AdvertReceived, Instance, Params, Started, State, Stopped, Timer
from poise.vrrp.packet import Advert

GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("198.51.100.170")


class Clock:
    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time


@dataclass
class Node:
    params: Params
    machine: Instance | None = None
    side: int = 0  # nodes hear each other only on the same side of a partition
    link_up: bool = True


@dataclass
class Lan:
    version: int
    nodes: list[Node]
    clock: Clock = field(default_factory=Clock)
    queue: list[tuple[float, int, int, object]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    latency: float = 0.002

    def at(self, when: float, node: int, event: object) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), node, event))

    def start(self, index: int) -> None:
        node = self.nodes[index]
        node.machine = Instance(node.params, self.clock)
        self.deliver(index, Started(node.params.priority, fault=not node.link_up))

    def deliver(self, index: int, event: object) -> None:
        machine = self.nodes[index].machine
        if machine is None:
            return
        for action in machine.handle(event):  # type: ignore[arg-type]
            if isinstance(action, fsm.SetTimer):
                self.at(action.at, index, (machine, fsm.TimerFired(action.timer)))
            elif isinstance(action, fsm.SendAdvert):
                self.send(index, action.priority)

    def send(self, sender: int, priority: int) -> None:
        node = self.nodes[sender]
        if not node.link_up:
            return
        p = node.params
        advert = Advert(p.version, p.vrid, priority, p.interval, p.addresses)
        for index, other in enumerate(self.nodes):
            if index != sender and other.side == node.side and other.link_up:
                event = AdvertReceived(advert, p.address, GROUP, 255)
                self.at(self.clock.time + self.latency, index, event)

    def run_until(self, end: float) -> None:
        while self.queue and self.queue[0][0] <= end:
            when, _, index, event = heapq.heappop(self.queue)
            self.clock.time = when
            if isinstance(event, tuple):  # a timer of a machine that may have been replaced
                machine, fired = event
                if machine is self.nodes[index].machine:
                    self.deliver(index, fired)
            else:
                self.deliver(index, event)
        self.clock.time = end

    def masters(self) -> list[int]:
        return [
            i for i, n in enumerate(self.nodes) if n.machine and n.machine.state is State.MASTER
        ]


disruption = st.tuples(
    st.floats(0.0, 20.0),
    st.sampled_from(["crash", "stop", "restart", "link-down", "link-up", "partition", "heal"]),
    st.integers(0, 4),
)


@st.composite
def lans(draw: st.DrawFn) -> tuple[Lan, list[tuple[float, str, int]], bool]:
    version = draw(st.sampled_from([2, 3]))
    count = draw(st.integers(2, 5))
    interval = 100 if version == 2 else draw(st.sampled_from([10, 50, 100]))
    priorities = draw(st.lists(st.integers(1, 254), min_size=count, max_size=count))
    preempt = draw(st.booleans())
    nodes = [
        Node(
            Params(
                name=f"n{i}",
                vrid=51,
                version=version,
                priority=priorities[i],
                interval=interval,
                addresses=(VIP,),
                address=IPv4Address(f"198.51.100.{10 + i}"),
                nopreempt=not preempt and draw(st.booleans()),
                garp_master_delay=0,
            )
        )
        for i in range(count)
    ]
    events = draw(st.lists(disruption, max_size=8))
    return Lan(version, nodes), sorted(events), preempt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lans())
def test_after_any_disruption_one_master_remains(
    case: tuple[Lan, list[tuple[float, str, int]], bool],
) -> None:
    lan, events, preempt = case
    for index in range(len(lan.nodes)):
        lan.start(index)
    for when, kind, which in events:
        lan.run_until(when)
        index = which % len(lan.nodes)
        node = lan.nodes[index]
        if kind == "crash":
            node.machine = None
        elif kind == "stop" and node.machine is not None:
            lan.deliver(index, Stopped())
            node.machine = None
        elif kind == "restart" and node.machine is None:
            lan.start(index)
        elif kind in ("link-down", "link-up"):
            node.link_up = kind == "link-up"
            if node.machine is not None:
                lan.deliver(index, fsm.TrackingChanged(node.params.priority, not node.link_up))
        elif kind == "partition":
            node.side = 1
        elif kind == "heal":
            for other in lan.nodes:
                other.side = 0
    # The network becomes whole again, every node runs, and time passes.
    for index, node in enumerate(lan.nodes):
        node.side = 0
        if not node.link_up:
            node.link_up = True
            if node.machine is not None:
                lan.deliver(index, fsm.TrackingChanged(node.params.priority, False))
        if node.machine is None:
            lan.start(index)
    settle = lan.clock.time + 6 * fsm.down_interval(lan.version, 1, lan.nodes[0].params.interval)
    lan.run_until(settle + 30)
    masters = lan.masters()
    assert len(masters) == 1, [(n.params.name, n.machine and n.machine.state) for n in lan.nodes]
    holding = [n for n in lan.nodes if n.machine and n.machine.vips_set]
    assert len(holding) == 1  # the address is on one node only
    if preempt:
        # A backup does not preempt an equal priority (RFC 5798 6.4.2): on a tie, any of
        # the highest may stay master; the address only decides between two masters.
        assert lan.nodes[masters[0]].params.priority == max(n.params.priority for n in lan.nodes)


def test_a_crashed_master_is_replaced_within_the_master_down_interval() -> None:
    lan = Lan(
        2,
        [
            Node(
                Params(
                    name=f"n{i}",
                    vrid=1,
                    version=2,
                    priority=p,
                    interval=100,
                    addresses=(VIP,),
                    address=IPv4Address(f"198.51.100.{10 + i}"),
                )
            )
            for i, p in enumerate([101, 100])
        ],
    )
    lan.start(0)
    lan.start(1)
    lan.run_until(10)
    assert lan.masters() == [0]
    lan.nodes[0].machine = None
    crash = lan.clock.time
    lan.run_until(crash + fsm.down_interval(2, 100, 100) + 0.01)
    assert lan.masters() == [1]
    assert Timer.ADVERT in lan.nodes[1].machine.timers  # type: ignore[union-attr]
