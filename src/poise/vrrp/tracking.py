"""Tracking: what `vrrp_script` results and interface states do to an instance's priority,
and when they put it in FAULT (keepalived.conf(5), "VRRP script(s)" and track_interface;
Keepalived's vrrp_track.c). Pure.

A script's results go through one counter, as in Keepalived: it is good from `rise` up,
`rise` successes in a row take it up from bad and `fall` failures in a row take it down
from good. Before its first result a script is neither good nor bad (`init_fail` makes it
bad from the start).

For an instance (its priority below 255; the address owner's priority never moves):
- a tracked script or interface with weight 0 that is down puts the instance in FAULT;
- a positive weight is added while it is up, a negative weight is added while it is down;
  `reverse` swaps up and down;
- its own interface down puts it in FAULT (unless `dont_track_primary`);
- the result is kept within 1..254.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from poise.config.keepalived_model import (
    PRIORITY_OWNER,
    KeepalivedConfig,
    VrrpInstance,
    VrrpScript,
)


@dataclass(slots=True)
class ScriptState:
    """The rise/fall counter of one vrrp_script."""

    rise: int
    fall: int
    result: int = 0
    known: bool = False  # a first result arrived (or init_fail said bad)

    @classmethod
    def for_script(cls, script: VrrpScript) -> ScriptState:
        if script.init_fail:
            return cls(script.rise, script.fall, 0, True)
        return cls(script.rise, script.fall, script.rise - 1, False)

    @property
    def good(self) -> bool | None:
        """True when good, False when bad, None before the first result."""
        if not self.known:
            return None
        return self.result >= self.rise

    def record(self, success: bool) -> bool:
        """Count one run; True when the script went from good to bad or back (or got
        its first result)."""
        before = self.good
        self.known = True
        top = self.rise + self.fall - 1
        if success:
            if self.result < self.rise - 1:
                self.result += 1
            else:
                self.result = top
        elif self.result > self.rise:
            self.result -= 1
        else:
            self.result = 0
        return self.good != before


@dataclass(frozen=True, slots=True)
class Verdict:
    """What tracking says about an instance: its effective priority, whether it is in
    FAULT, and why (for the log)."""

    priority: int
    fault: bool
    reasons: tuple[str, ...] = ()


def evaluate(
    instance: VrrpInstance,
    config: KeepalivedConfig,
    scripts: Mapping[str, ScriptState],
    links_up: Mapping[str, bool],
) -> Verdict:
    base = instance.priority
    total = base
    reasons: list[str] = []
    fault = False
    assert instance.interface is not None
    if not instance.dont_track_primary and not links_up.get(instance.interface, False):
        fault = True
        reasons.append(f"interface {instance.interface} is down")
    for tracked_if in instance.track_interface:
        up = links_up.get(tracked_if.name, False) != tracked_if.reverse
        if tracked_if.weight == 0:
            if not up:
                fault = True
                reasons.append(f"tracked interface {tracked_if.name} is down")
        elif (tracked_if.weight > 0) == up:  # added while up, or (negative) while down
            total += tracked_if.weight
    for tracked in instance.track_script:
        script = config.scripts[tracked.name]
        weight = script.weight if tracked.weight is None else tracked.weight
        reverse = script.reverse if tracked.reverse is None else tracked.reverse
        state = scripts.get(tracked.name)
        good = state.good if state is not None else None
        if good is None:
            continue
        up = good != reverse
        if weight == 0:
            if not up:
                fault = True
                reasons.append(f"script {tracked.name} failed")
        elif (weight > 0) == up:
            total += weight
    priority = PRIORITY_OWNER if base == PRIORITY_OWNER else max(1, min(254, total))
    return Verdict(priority, fault, tuple(reasons))
