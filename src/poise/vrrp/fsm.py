"""The VRRP state machine of one virtual router (RFC 3768 section 6.4, RFC 5798 section 6.4),
with Keepalived's choices where the RFCs leave room. Pure: events in, actions out, and time
read from a clock that the caller passes in (a fake one in the tests).

Keepalived's choices followed here (vrrp.c, vrrp_scheduler.c):
- every instance starts in BACKUP and waits the master-down interval, unless it is the
  address owner (priority 255) configured `state MASTER`, which becomes master at once;
- master-down interval = 3 x Master_Adver_Interval + skew, the skew being
  (256 - priority) / 256 seconds for VRRPv2 and (256 - priority) x interval / 256 for v3;
  a v3 backup adopts the master's advertised interval (RFC 5798 6.4.2);
- a backup that hears a lower priority (preemption on) discards the advert and lets its
  timer run out; `nopreempt` keeps any master; `preempt_delay` lets a lower master stay
  that long before preemption, and delays the first take-over at start by as much;
- a master that hears a lower priority answers with an advert at once (and a round of
  gratuitous ARP), which settles a healed partition within one packet; equal priorities
  are decided by the higher primary address (RFC 5798 6.4.3);
- priority 0 is sent when a master stops or enters FAULT; a backup that hears it takes
  over after the skew time only;
- FAULT (a tracked interface down, a weight-0 script failing) removes the addresses and
  sends priority 0; leaving it goes to BACKUP (to MASTER for the address owner).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from poise.config.keepalived_model import PRIORITY_OWNER, VRRP_MCAST_GROUP4
from poise.vrrp.events import (
    Action,
    AddAddresses,
    AdvertReceived,
    CancelTimer,
    Event,
    ForcedState,
    Log,
    Notify,
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
from poise.vrrp.packet import AUTH_NONE, AUTH_PASS, TTL

__all__ = [
    "Action",
    "AddAddresses",
    "AdvertReceived",
    "CancelTimer",
    "Clock",
    "Event",
    "ForcedState",
    "Instance",
    "Log",
    "Notify",
    "Params",
    "RemoveAddresses",
    "SendAdvert",
    "SendGarp",
    "SetTimer",
    "Started",
    "State",
    "Stopped",
    "Timer",
    "TimerFired",
    "TrackingChanged",
    "down_interval",
    "skew",
]

PRIORITY_STOP = 0
TIMER_SLACK = 0.001  # seconds: a timer firing this much early is on time (loop granularity)


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Params:
    """What the machine needs to know about its instance (from keepalived.conf and the
    interface). `interval` is in centiseconds; `address` is the primary address adverts
    are sent from, which decides between equal priorities."""

    name: str
    vrid: int
    version: int
    priority: int
    interval: int
    addresses: tuple[IPv4Address | IPv6Address, ...]
    address: IPv4Address | IPv6Address
    initial_master: bool = False
    auth_pass: bytes | None = None
    nopreempt: bool = False
    preempt_delay: float = 0.0
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_repeat: int = 5
    garp_lower_prio_delay: float = 5.0
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    unicast_peers: tuple[IPv4Address | IPv6Address, ...] = ()
    check_unicast_src: bool = False
    skip_check_adv_addr: bool = False
    multicast_group: IPv4Address | IPv6Address = VRRP_MCAST_GROUP4


def skew(version: int, priority: int, interval_cs: int) -> float:
    """Skew_Time in seconds: RFC 3768 6.1 for v2, RFC 5798 6.1 for v3."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * interval_cs / 256 / 100


def down_interval(version: int, priority: int, interval_cs: int) -> float:
    """Master_Down_Interval in seconds: 3 x Master_Adver_Interval + Skew_Time."""
    return 3 * interval_cs / 100 + skew(version, priority, interval_cs)


@dataclass(slots=True)
class Instance:
    """One virtual router. `handle(event)` returns the actions, in the order to take them."""

    params: Params
    clock: Clock
    state: State = State.INIT
    priority: int = 0
    fault: bool = False
    master_interval: int = 0
    preempt_until: float | None = None
    master_source: IPv4Address | IPv6Address | None = None
    vips_set: bool = False
    timers: dict[Timer, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.priority = self.params.priority
        self.master_interval = self.params.interval

    @property
    def tag(self) -> str:
        return f"({self.params.name})"

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        if isinstance(event, Started):
            self._start(event, out)
        elif self.state in (State.INIT, State.STOP):
            pass
        elif isinstance(event, AdvertReceived):
            self._advert(event, out)
        elif isinstance(event, TimerFired):
            self._timer(event.timer, out)
        elif isinstance(event, TrackingChanged):
            self._tracking(event, out)
        elif isinstance(event, ForcedState):
            self._forced(event.state, out)
        else:
            self._stop(out)
        return out

    # -- transitions -------------------------------------------------------------------------

    def _start(self, event: Started, out: list[Action]) -> None:
        if self.state is not State.INIT:
            return
        self.priority = self._clamp(event.priority)
        self.fault = event.fault
        out.append(RemoveAddresses(stale=True))
        if self.fault:
            self._enter_fault(out)
        elif self.params.priority == PRIORITY_OWNER and self.params.initial_master:
            self._become_master(out)
        else:
            delay = self.params.preempt_delay if not self.params.nopreempt else 0.0
            self._enter_backup(out, extra=delay)

    def _enter_backup(self, out: list[Action], extra: float = 0.0) -> None:
        self.state = State.BACKUP
        self.master_interval = self.params.interval
        self.preempt_until = None
        out.append(Log(f"{self.tag} Entering BACKUP STATE"))
        out.append(Notify(State.BACKUP, self.priority))
        self._arm_down_timer(out, extra)

    def _arm_down_timer(self, out: list[Action], extra: float = 0.0) -> None:
        p = self.params
        at = self.clock.now() + down_interval(p.version, self.priority, self.master_interval)
        self._set(Timer.MASTER_DOWN, at + extra, out)

    def _become_master(self, out: list[Action]) -> None:
        p = self.params
        now = self.clock.now()
        self.state = State.MASTER
        self._cancel(Timer.MASTER_DOWN, out)
        out.append(Log(f"{self.tag} Entering MASTER STATE"))
        out.append(AddAddresses())
        self.vips_set = True
        if p.garp_master_repeat:
            out.append(SendGarp(p.garp_master_repeat))
        out.append(Notify(State.MASTER, self.priority))
        out.append(SendAdvert(self.priority))
        self._set(Timer.ADVERT, now + p.interval / 100, out)
        if p.garp_master_delay and p.garp_master_repeat:
            self._set(Timer.GARP_DELAY, now + p.garp_master_delay, out)
        if p.garp_master_refresh:
            self._set(Timer.GARP_REFRESH, now + p.garp_master_refresh, out)

    def _leave_master(self, out: list[Action], send_stop: bool) -> None:
        for timer in (Timer.ADVERT, Timer.GARP_DELAY, Timer.GARP_REFRESH, Timer.GARP_LOWER_PRIO):
            self._cancel(timer, out)
        if send_stop:
            out.append(SendAdvert(PRIORITY_STOP))
            out.append(Log(f"{self.tag} sent 0 priority"))
        if self.vips_set:
            out.append(RemoveAddresses())
            self.vips_set = False

    def _enter_fault(self, out: list[Action]) -> None:
        was_master = self.state is State.MASTER
        if was_master:
            self._leave_master(out, send_stop=True)
        self._cancel(Timer.MASTER_DOWN, out)
        self.state = State.FAULT
        out.append(Log(f"{self.tag} Entering FAULT STATE"))
        out.append(Notify(State.FAULT, self.priority))

    def _stop(self, out: list[Action]) -> None:
        if self.state is State.MASTER:
            self._leave_master(out, send_stop=True)
        for timer in list(self.timers):
            self._cancel(timer, out)
        self.state = State.STOP
        out.append(Log(f"{self.tag} Stopping"))
        out.append(Notify(State.STOP, self.priority))

    def _timer(self, timer: Timer, out: list[Action]) -> None:
        due = self.timers.get(timer)
        now = self.clock.now()
        if due is None or now < due - TIMER_SLACK:
            return  # cancelled or re-armed meanwhile: a stale firing
        del self.timers[timer]
        p = self.params
        if timer is Timer.MASTER_DOWN and self.state is State.BACKUP:
            self._become_master(out)
        elif timer is Timer.ADVERT and self.state is State.MASTER:
            out.append(SendAdvert(self.priority))
            self._set(Timer.ADVERT, now + p.interval / 100, out)
        elif timer is Timer.GARP_DELAY and self.state is State.MASTER:
            out.append(SendGarp(p.garp_master_repeat))
        elif timer is Timer.GARP_LOWER_PRIO and self.state is State.MASTER:
            out.append(SendGarp(p.garp_lower_prio_repeat))
        elif timer is Timer.GARP_REFRESH and self.state is State.MASTER:
            out.append(SendGarp(p.garp_master_refresh_repeat))
            self._set(Timer.GARP_REFRESH, now + p.garp_master_refresh, out)

    def _tracking(self, event: TrackingChanged, out: list[Action]) -> None:
        priority = self._clamp(event.priority)
        if priority != self.priority:
            out.append(
                Log(f"{self.tag} Changing effective priority from {self.priority} to {priority}")
            )
            self.priority = priority
        if event.fault and not self.fault:
            self.fault = True
            if self.state is not State.FAULT:
                self._enter_fault(out)
        elif not event.fault and self.fault:
            self.fault = False
            if self.state is State.FAULT:
                if self.params.priority == PRIORITY_OWNER:
                    self._become_master(out)
                else:
                    self._enter_backup(out)

    def _forced(self, state: State, out: list[Action]) -> None:
        if state is State.MASTER and self.state is State.BACKUP:
            self._become_master(out)
        elif state is State.BACKUP and self.state is State.MASTER:
            self._leave_master(out, send_stop=False)
            self._enter_backup(out)
        elif state is State.FAULT and self.state is not State.FAULT:
            self._enter_fault(out)
        elif state is State.BACKUP and self.state is State.FAULT and not self.fault:
            self._enter_backup(out)

    def _clamp(self, priority: int) -> int:
        if self.params.priority == PRIORITY_OWNER:
            return PRIORITY_OWNER  # the owner's priority never changes (Keepalived)
        return max(1, min(254, priority))

    # -- adverts -----------------------------------------------------------------------------

    def _advert(self, event: AdvertReceived, out: list[Action]) -> None:
        problem = self.check(event)
        if problem is not None:
            self.dropped[problem] = self.dropped.get(problem, 0) + 1
            out.append(
                Log(
                    f"{self.tag} advert from {event.source} dropped: {problem}",
                    detail=self.dropped[problem] > 1,
                )
            )
            return
        advert = event.advert
        if self.state is State.BACKUP:
            self._backup_advert(event, out)
        elif self.state is State.MASTER:
            self._master_advert(event, out)
        # FAULT: the instance does not take part (RFC 5798 has no FAULT; Keepalived waits).
        self.master_source = event.source if advert.priority else self.master_source

    def _backup_advert(self, event: AdvertReceived, out: list[Action]) -> None:
        p, advert, now = self.params, event.advert, self.clock.now()
        if advert.priority == PRIORITY_STOP:
            out.append(Log(f"{self.tag} Backup received priority 0 advertisement"))
            self._set(
                Timer.MASTER_DOWN, now + skew(p.version, self.priority, self.master_interval), out
            )
            return
        waiting = self.preempt_until is None or now < self.preempt_until
        if p.nopreempt or advert.priority >= self.priority or (p.preempt_delay and waiting):
            if p.version == 3 and advert.interval != self.master_interval:
                out.append(
                    Log(
                        f"{self.tag} advertisement interval updated to "
                        f"{advert.interval * 10} milli-sec"
                    )
                )
                self.master_interval = advert.interval
            self._arm_down_timer(out)
            if p.preempt_delay and not p.nopreempt:
                if advert.priority >= self.priority:
                    self.preempt_until = None
                elif self.preempt_until is None:
                    out.append(Log(f"{self.tag} start preempt delay ({p.preempt_delay:g}s)"))
                    self.preempt_until = now + p.preempt_delay
            return
        out.append(
            Log(
                f"{self.tag} received lower priority ({advert.priority}) advert from "
                f"{event.source} - discarding",
                detail=True,
            )
        )

    def _master_advert(self, event: AdvertReceived, out: list[Action]) -> None:
        p, advert = self.params, event.advert
        ours = self.priority
        if advert.priority == PRIORITY_STOP:
            out.append(Log(f"{self.tag} Master received priority 0 message"))
            out.append(SendAdvert(ours))
            self._set(Timer.ADVERT, self.clock.now() + p.interval / 100, out)
            return
        source = event.source
        if advert.priority == ours and source == p.address:
            out.append(
                Log(
                    f"{self.tag} WARNING - equal priority advert received from remote "
                    "host with our IP address."
                )
            )
            return
        if advert.priority == ours == PRIORITY_OWNER:
            out.append(
                Log(
                    f"{self.tag} CONFIGURATION ERROR: local instance and a remote "
                    "instance are both configured as address owner, please fix - "
                    "reducing local priority"
                )
            )
            ours = self.priority = PRIORITY_OWNER - 1
        higher = advert.priority > ours or (
            advert.priority == ours and int(source) > int(p.address)
        )
        if not higher:
            out.append(
                Log(
                    f"{self.tag} Received advert from {source} with lower priority "
                    f"{advert.priority}, ours {ours}"
                    + ("" if p.lower_prio_no_advert else ", forcing new election")
                )
            )
            if not p.lower_prio_no_advert:
                out.append(SendAdvert(ours))
            if p.garp_lower_prio_repeat:
                out.append(SendGarp(p.garp_lower_prio_repeat))
                if p.garp_lower_prio_delay:
                    at = self.clock.now() + p.garp_lower_prio_delay
                    self._set(Timer.GARP_LOWER_PRIO, at, out)
            return
        out.append(
            Log(
                f"{self.tag} Master received advert from {source} with higher priority "
                f"{advert.priority}, ours {ours}"
            )
        )
        if p.higher_prio_send_advert:
            out.append(SendAdvert(ours))
        self._leave_master(out, send_stop=False)
        self._enter_backup(out)
        if p.version == 3:
            self.master_interval = advert.interval
            self._arm_down_timer(out)

    def check(self, event: AdvertReceived) -> str | None:
        """Why an advert for this VRID must be dropped, or None (RFC 5798 7.1, 7.2 and
        Keepalived's vrrp_in_chk)."""
        p, advert = self.params, event.advert
        # Keepalived 2.2.7 sends unicast IPv6 adverts with the default hop limit (64) and
        # checks none on unicast: poise takes them too (it sends its own with 255).
        unicast6 = bool(p.unicast_peers) and event.source.version == 6
        if event.ttl != TTL and not unicast6:
            return f"TTL {event.ttl}, expected {TTL}"
        if advert.version != p.version:
            return f"VRRP version {advert.version}, expected {p.version}"
        if p.unicast_peers:
            if event.destination.is_multicast:
                return "multicast advert for a unicast instance"
            if p.check_unicast_src and event.source not in p.unicast_peers:
                return f"source {event.source} is not a unicast peer"
        elif event.destination != p.multicast_group:
            return f"sent to {event.destination}, not to {p.multicast_group}"
        if p.version == 2:
            wanted = AUTH_PASS if p.auth_pass is not None else AUTH_NONE
            if advert.auth_type != wanted:
                return f"authentication type {advert.auth_type}, expected {wanted}"
            if p.auth_pass is not None and advert.auth_data != p.auth_pass:
                return "invalid password"
            if advert.interval != p.interval:
                return (
                    f"advertisement interval {advert.interval // 100}s, expected "
                    f"{p.interval // 100}s"
                )
        if len(advert.addresses) != len(p.addresses):
            return f"{len(advert.addresses)} addresses, expected {len(p.addresses)}"
        same_master = p.skip_check_adv_addr and event.source == self.master_source
        if not same_master and set(advert.addresses) != set(p.addresses):
            return "address list differs from ours"
        return None

    # -- timers ------------------------------------------------------------------------------

    def _set(self, timer: Timer, at: float, out: list[Action]) -> None:
        self.timers[timer] = at
        out.append(SetTimer(timer, at))

    def _cancel(self, timer: Timer, out: list[Action]) -> None:
        if self.timers.pop(timer, None) is not None:
            out.append(CancelTimer(timer))
