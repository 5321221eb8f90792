"""The VRRP state machine, one event at a time, with a fake clock: the RFC's transitions and
Keepalived's choices (start in backup, preemption, priority 0, FAULT, the checks that make
an advert count)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.vrrp import fsm
from poise.vrrp.fsm import (
    AddAddresses,
    AdvertReceived,
    CancelTimer,
    Instance,
    Notify,
    Params,
    RemoveAddresses,
    SendAdvert,
    SendGarp,
    SetTimer,
    Started,
    State,
    Stopped,
    Timer,
    TimerFired,
    TrackingChanged,
)
from poise.vrrp.packet import AUTH_NONE, AUTH_PASS, Advert

ME = IPv4Address("198.51.100.11")
PEER = IPv4Address("198.51.100.12")
GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("198.51.100.170")


class FakeClock:
    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        return self.time


def params(**changes: object) -> Params:
    base = Params(
        name="VI_1", vrid=51, version=2, priority=100, interval=100, addresses=(VIP,), address=ME
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def machine(**changes: object) -> tuple[Instance, FakeClock]:
    clock = FakeClock()
    return Instance(params(**changes), clock), clock


def advert(priority: int, *, version: int = 2, interval: int = 100, **changes: object) -> Advert:
    base = Advert(version, 51, priority, interval, (VIP,))
    return replace(base, **changes)  # type: ignore[arg-type]


def heard(
    priority: int, source: IPv4Address = PEER, ttl: int = 255, **changes: Any
) -> AdvertReceived:
    return AdvertReceived(advert(priority, **changes), source, GROUP, ttl)


def state(vr: Instance) -> State:
    """The machine's state (a call, so that the type checker does not pin it down)."""
    return vr.state


def kinds(actions: list[fsm.Action]) -> list[type]:
    return [type(a) for a in actions if not isinstance(a, fsm.Log)]


def fire(vr: Instance, clock: FakeClock, timer: Timer) -> list[fsm.Action]:
    """Let the clock reach the timer, then fire it."""
    clock.time = max(clock.time, vr.timers[timer])
    return vr.handle(TimerFired(timer))


def timer_at(actions: list[fsm.Action], timer: Timer) -> float:
    (at,) = [a.at for a in actions if isinstance(a, SetTimer) and a.timer is timer]
    return at


def test_it_starts_in_backup_and_waits_the_master_down_interval() -> None:
    vr, clock = machine(priority=100, initial_master=True)
    actions = vr.handle(Started(100))
    assert state(vr) is State.BACKUP
    assert kinds(actions) == [RemoveAddresses, Notify, SetTimer]
    assert actions[0] == RemoveAddresses(stale=True)
    # 3 x 1 s + (256 - 100) / 256 s
    assert timer_at(actions, Timer.MASTER_DOWN) == pytest.approx(clock.time + 3 + 156 / 256)


def test_down_interval_and_skew_per_version() -> None:
    assert fsm.down_interval(2, 101, 100) == pytest.approx(3 + 155 / 256)
    assert fsm.down_interval(2, 101, 300) == pytest.approx(9 + 155 / 256)  # v2: skew in seconds
    assert fsm.down_interval(3, 200, 10) == pytest.approx(0.3 + 56 * 0.1 / 256)
    assert fsm.skew(3, 255, 100) == pytest.approx(1 / 256)


def test_the_address_owner_configured_master_starts_as_master() -> None:
    vr, _ = machine(priority=255, initial_master=True)
    actions = vr.handle(Started(255))
    assert state(vr) is State.MASTER
    assert kinds(actions) == [
        RemoveAddresses,
        AddAddresses,
        SendGarp,
        Notify,
        SendAdvert,
        SetTimer,
        SetTimer,
    ]
    assert SendAdvert(255) in actions


def test_the_master_down_timer_makes_a_master_which_advertises() -> None:
    vr, clock = machine()
    vr.handle(Started(100))
    actions = fire(vr, clock, Timer.MASTER_DOWN)
    assert state(vr) is State.MASTER
    assert actions[1:6] == [
        AddAddresses(),
        SendGarp(5),
        Notify(State.MASTER, 100),
        SendAdvert(100),
        SetTimer(Timer.ADVERT, clock.time + 1),
    ]
    assert timer_at(actions, Timer.GARP_DELAY) == clock.time + 5
    assert kinds(fire(vr, clock, Timer.ADVERT)) == [SendAdvert, SetTimer]
    assert fire(vr, clock, Timer.GARP_DELAY) == [SendGarp(5)]


def master(**changes: object) -> tuple[Instance, FakeClock]:
    vr, clock = machine(**changes)
    vr.handle(Started(vr.params.priority))
    fire(vr, clock, Timer.MASTER_DOWN)
    assert state(vr) is State.MASTER
    return vr, clock


def test_a_master_yields_to_a_higher_priority() -> None:
    vr, _ = master()
    actions = vr.handle(heard(150))
    assert state(vr) is State.BACKUP
    assert kinds(actions) == [CancelTimer, CancelTimer, RemoveAddresses, Notify, SetTimer]


def test_equal_priorities_are_decided_by_the_higher_address() -> None:
    vr, _ = master()
    vr.handle(heard(100, source=IPv4Address("198.51.100.5")))
    assert state(vr) is State.MASTER
    vr.handle(heard(100, source=IPv4Address("198.51.100.50")))
    assert state(vr) is State.BACKUP


def test_a_master_answers_a_lower_priority_at_once() -> None:
    vr, clock = master()
    actions = vr.handle(heard(50))
    assert state(vr) is State.MASTER
    assert kinds(actions) == [SendAdvert, SendGarp, SetTimer]
    assert fire(vr, clock, Timer.GARP_LOWER_PRIO) == [SendGarp(5)]  # and again 5 s later
    vr, _ = master(lower_prio_no_advert=True, garp_lower_prio_repeat=0)
    assert kinds(vr.handle(heard(50))) == []


def test_a_master_answers_priority_zero_with_an_advert() -> None:
    vr, _ = master()
    actions = vr.handle(heard(0))
    assert kinds(actions) == [SendAdvert, SetTimer]
    assert state(vr) is State.MASTER


def test_a_backup_hearing_priority_zero_takes_over_after_the_skew_only() -> None:
    vr, clock = machine()
    vr.handle(Started(100))
    actions = vr.handle(heard(0))
    assert timer_at(actions, Timer.MASTER_DOWN) == pytest.approx(clock.time + 156 / 256)


def test_a_backup_preempts_a_lower_master_by_letting_its_timer_run_out() -> None:
    vr, clock = machine(priority=150)
    vr.handle(Started(150))
    due = vr.timers[Timer.MASTER_DOWN]
    clock.time += 1
    actions = vr.handle(heard(100))
    assert kinds(actions) == [] and vr.timers[Timer.MASTER_DOWN] == due
    fire(vr, clock, Timer.MASTER_DOWN)
    assert state(vr) is State.MASTER


def test_nopreempt_keeps_a_lower_master() -> None:
    vr, clock = machine(priority=150, nopreempt=True)
    vr.handle(Started(150))
    for _ in range(10):
        clock.time += 1
        assert kinds(vr.handle(heard(100))) == [SetTimer]
    assert state(vr) is State.BACKUP


def test_preempt_delay_lets_a_lower_master_stay_that_long() -> None:
    vr, clock = machine(priority=150, preempt_delay=5.0)
    start = vr.handle(Started(150))
    assert timer_at(start, Timer.MASTER_DOWN) == pytest.approx(clock.time + 5 + 3 + 106 / 256)
    for _ in range(5):
        clock.time += 1
        assert kinds(vr.handle(heard(100))) == [SetTimer]  # still waiting: reset the timer
    clock.time += 1
    assert kinds(vr.handle(heard(100))) == []  # the delay is over: discard, let it run out
    assert state(vr) is State.BACKUP


def test_a_v3_backup_adopts_the_master_s_interval() -> None:
    vr, clock = machine(version=3, interval=100)
    vr.handle(Started(100))
    actions = vr.handle(heard(200, version=3, interval=10))
    assert vr.master_interval == 10
    assert timer_at(actions, Timer.MASTER_DOWN) == pytest.approx(clock.time + 0.3 + 0.1 * 156 / 256)


def test_tracking_moves_the_priority_and_fault_removes_the_address() -> None:
    vr, _ = master()
    vr.handle(TrackingChanged(102, False))
    assert vr.priority == 102
    actions = vr.handle(TrackingChanged(102, True))
    assert state(vr) is State.FAULT
    assert SendAdvert(0) in actions and RemoveAddresses() in actions
    assert Notify(State.FAULT, 102) in actions
    assert vr.handle(heard(50)) == []  # FAULT takes no part
    actions = vr.handle(TrackingChanged(102, False))
    assert state(vr) is State.BACKUP and Notify(State.BACKUP, 102) in actions


def test_priorities_stay_within_1_and_254_and_the_owner_s_never_moves() -> None:
    vr, _ = machine()
    vr.handle(Started(400))
    assert vr.priority == 254
    vr.handle(TrackingChanged(-20, False))
    assert vr.priority == 1
    owner, _ = machine(priority=255)
    owner.handle(Started(100))
    assert owner.priority == 255


def test_the_owner_leaves_fault_straight_to_master() -> None:
    vr, _ = machine(priority=255, initial_master=True)
    vr.handle(Started(255, fault=True))
    assert state(vr) is State.FAULT
    vr.handle(TrackingChanged(255, False))
    assert state(vr) is State.MASTER


def test_stopping_a_master_sends_priority_zero_and_removes_the_address() -> None:
    vr, _ = master()
    actions = vr.handle(Stopped())
    assert state(vr) is State.STOP
    sent = actions.index(SendAdvert(0))
    assert actions[sent + 1] == fsm.Log("(VI_1) sent 0 priority")
    assert RemoveAddresses() in actions and Notify(State.STOP, 100) in actions
    assert vr.timers == {}
    assert vr.handle(heard(200)) == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (heard(200, ttl=254), "TTL 254, expected 255"),
        (heard(200, version=3), "VRRP version 3, expected 2"),
        (heard(200, interval=200), "advertisement interval 2s, expected 1s"),
        (heard(200, addresses=(VIP, PEER)), "2 addresses, expected 1"),
        (heard(200, addresses=(PEER,)), "address list differs from ours"),
        (heard(200, auth_type=AUTH_PASS, auth_data=b"x" * 8), "authentication type 1, expected 0"),
        (AdvertReceived(advert(200), PEER, ME, 255), "sent to 198.51.100.11, not to 224.0.0.18"),
    ],
)
def test_adverts_that_do_not_fit_are_dropped_and_never_move_the_address(
    event: AdvertReceived, reason: str
) -> None:
    vr, _ = master()
    actions = vr.handle(event)
    assert state(vr) is State.MASTER
    assert actions == [fsm.Log(f"(VI_1) advert from {event.source} dropped: {reason}")]
    again = vr.handle(event)
    assert again == [fsm.Log(f"(VI_1) advert from {event.source} dropped: {reason}", detail=True)]


def test_a_wrong_password_is_dropped() -> None:
    vr, _ = master(auth_pass=b"1111\0\0\0\0")
    actions = vr.handle(heard(200, auth_type=AUTH_PASS, auth_data=b"2222\0\0\0\0"))
    assert state(vr) is State.MASTER and "invalid password" in actions[0].message  # type: ignore[union-attr]
    vr.handle(heard(200, auth_type=AUTH_PASS, auth_data=b"1111\0\0\0\0"))
    assert state(vr) is State.BACKUP
    assert AUTH_NONE == 0


def test_unicast_instances_check_the_source_when_asked() -> None:
    vr, _ = master(unicast_peers=(PEER,), check_unicast_src=True)
    other = IPv4Address("198.51.100.99")
    actions = vr.handle(AdvertReceived(advert(200), other, ME, 255))
    assert "is not a unicast peer" in actions[0].message  # type: ignore[union-attr]
    vr.handle(AdvertReceived(advert(200), PEER, ME, 255))
    assert state(vr) is State.BACKUP


def test_two_owners_reduce_the_local_priority_as_keepalived_does() -> None:
    vr, _ = machine(priority=255, initial_master=True)
    vr.handle(Started(255))
    actions = vr.handle(heard(255, source=IPv4Address("198.51.100.5")))
    assert "CONFIGURATION ERROR" in actions[0].message  # type: ignore[union-attr]
    assert vr.priority == 254 and state(vr) is State.BACKUP


def test_a_stale_or_early_timer_is_ignored() -> None:
    vr, clock = master()
    assert vr.handle(TimerFired(Timer.MASTER_DOWN)) == []  # cancelled when it became master
    assert vr.handle(TimerFired(Timer.ADVERT)) == []  # re-armed for later
    clock.time = vr.timers[Timer.ADVERT] - 0.0005  # within the loop's granularity
    assert SendAdvert(100) in vr.handle(TimerFired(Timer.ADVERT))


def test_gratuitous_arp_is_refreshed_while_master() -> None:
    vr, clock = master(garp_master_refresh=60.0, garp_master_refresh_repeat=2)
    assert fire(vr, clock, Timer.GARP_REFRESH)[0] == SendGarp(2)
    assert vr.timers[Timer.GARP_REFRESH] == pytest.approx(clock.time + 60)
    vr.handle(heard(200))
    assert Timer.GARP_REFRESH not in vr.timers  # a backup announces nothing


def test_no_second_round_of_arp_when_the_delay_is_zero() -> None:
    vr, _ = master(garp_master_delay=0.0)
    assert Timer.GARP_DELAY not in vr.timers


FORGED = [
    heard(254, ttl=64),
    heard(254, version=3),
    heard(254, interval=300),
    heard(254, addresses=(VIP, PEER)),
    heard(254, addresses=(PEER,)),
    heard(254, auth_type=AUTH_PASS, auth_data=b"x" * 8),
    AdvertReceived(advert(254), PEER, ME, 255),
    heard(0, ttl=1),  # a forged priority 0 must not hand over either
]


@settings(max_examples=30, deadline=None)
@given(
    order=st.lists(st.integers(0, len(FORGED) - 1), min_size=200, max_size=2000),
    as_master=st.booleans(),
)
def test_a_flood_of_forged_adverts_is_dropped_and_counted_never_a_state_change(
    order: list[int], as_master: bool
) -> None:
    # "A flood of forged adverts ... is dropped and counted, never a state change" (issue
    # 15): a master keeps its address and its advert timer, a backup its master-down timer
    # (a forged advert must not hold off the take-over), and each reason is counted.
    if as_master:
        vr, clock = master()
    else:
        vr, clock = machine()
        vr.handle(Started(100))
    before, timers = state(vr), dict(vr.timers)
    shown = 0
    for index in order:
        actions = vr.handle(FORGED[index])
        assert all(isinstance(a, fsm.Log) for a in actions)
        shown += sum(not a.detail for a in actions if isinstance(a, fsm.Log))
    assert state(vr) is before and vr.timers == timers
    assert sum(vr.dropped.values()) == len(order)
    assert shown == len(vr.dropped)  # one line per reason; the repeats only with detail
    if as_master:  # the control: an authentic higher priority still moves it
        vr.handle(heard(200))
        assert state(vr) is State.BACKUP
    else:
        fire(vr, clock, Timer.MASTER_DOWN)
        assert state(vr) is State.MASTER
