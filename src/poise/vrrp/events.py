"""The vocabulary of the VRRP state machine (fsm.py): its states and timers, the events it
takes in (facts, in the past tense) and the actions it gives out (commands, verbs), as
frozen dataclasses. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from poise.vrrp.packet import Advert


class State(Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


class Timer(Enum):
    MASTER_DOWN = "master-down"
    ADVERT = "advert"
    GARP_DELAY = "garp-delay"  # the second round of gratuitous ARP after becoming master
    GARP_REFRESH = "garp-refresh"
    GARP_LOWER_PRIO = "garp-lower-prio"  # the second round after hearing a lower priority


# -- events (facts, in the past tense) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The daemon starts this instance; `fault` and `priority` come from tracking."""

    priority: int
    fault: bool = False


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    advert: Advert
    source: IPv4Address | IPv6Address
    destination: IPv4Address | IPv6Address
    ttl: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: Timer


@dataclass(frozen=True, slots=True)
class TrackingChanged:
    """The effective priority or the fault condition changed (tracking.py decides)."""

    priority: int
    fault: bool


@dataclass(frozen=True, slots=True)
class ForcedState:
    """A sync group moves this member along with another one (sync.py decides)."""

    state: State


@dataclass(frozen=True, slots=True)
class Stopped:
    """The daemon stops (SIGTERM)."""


Event = Started | AdvertReceived | TimerFired | TrackingChanged | ForcedState | Stopped


# -- actions (commands, verbs) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True, slots=True)
class AddAddresses:
    pass


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    stale: bool = False  # at start: remove copies a previous run may have left


@dataclass(frozen=True, slots=True)
class SendGarp:
    repeat: int


@dataclass(frozen=True, slots=True)
class Notify:
    state: State
    priority: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer: Timer
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True, slots=True)
class Log:
    message: str
    detail: bool = False  # shown with --log-detail only


Action = (
    SendAdvert | AddAddresses | RemoveAddresses | SendGarp | Notify | SetTimer | CancelTimer | Log
)
