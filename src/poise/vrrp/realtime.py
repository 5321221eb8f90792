"""Real-time scheduling for `poise vrrp`, taken as Keepalived takes it for its VRRP child
(keepalived.conf(5), global_defs): `vrrp_rt_priority N` runs the loop's thread under
SCHED_RR at N from the start; `max_auto_priority [N]` switches to SCHED_RR when the loop
wakes more than `min_auto_priority_delay` microseconds after a timer was due (a machine too
busy to send adverts in time), at the lowest real-time priority, then one more each time it
happens again, up to N. Either way RLIMIT_RTTIME is set from `vrrp_rlimit_rttime` (soft limit
half of it), as Keepalived sets it; at the soft limit (SIGXCPU) poise goes back to normal
scheduling and says so, where the hard limit would have the kernel kill it: one Python
process that also relays virtual servers' connections can run that long without blocking.
Only the loop's thread is real-time (the checkers' threads are not), and scripts started
later do not inherit it (SCHED_RESET_ON_FORK).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal

from poise.config.keepalived_model import GlobalDefs
from poise.vrrp.log import Logger

WATCH_PERIOD = 0.1  # seconds between two looks at the loop's lateness


class Realtime:
    def __init__(self, defaults: GlobalDefs, log: Logger) -> None:
        self.log = log
        self.start_priority = defaults.vrrp_rt_priority
        self.max = max(defaults.max_auto_priority, 0)  # 0 (the default) and -1: never
        self.delay = defaults.min_auto_priority_delay / 1_000_000
        self.rttime = defaults.vrrp_rlimit_rttime
        self.current = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.due = 0.0
        self.watching = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.start_priority is not None:
            self.set(self.start_priority)
        if self.max and not self.watching:
            self.watching = True
            self.due = loop.time() + min(WATCH_PERIOD, self.delay)
            loop.call_at(self.due, self.tick)

    def reload(self, defaults: GlobalDefs) -> None:
        """A reload's new settings, as Keepalived 2.2.7's reload takes them: normal
        scheduling first (reset_process_priorities), then the new file's from the start."""
        self.stop()
        self.start_priority = defaults.vrrp_rt_priority
        self.max = max(defaults.max_auto_priority, 0)
        self.delay = defaults.min_auto_priority_delay / 1_000_000
        self.rttime = defaults.vrrp_rlimit_rttime
        if self.loop is not None:
            self.start(self.loop)

    def tick(self) -> None:
        assert self.loop is not None
        if not self.max:  # a reload took max_auto_priority away
            self.watching = False
            return
        now = self.loop.time()
        late = now - self.due
        if late > self.delay:
            self.log.info(f"A thread timer expired {late:.6f} seconds ago")
            self.increment()
        self.due = now + min(WATCH_PERIOD, self.delay)
        self.loop.call_at(self.due, self.tick)

    def increment(self) -> None:
        """Keepalived's increment_process_priority: real-time at the lowest priority, then
        one more each time, up to max_auto_priority."""
        if self.current >= self.max:
            return
        low = os.sched_get_priority_min(os.SCHED_RR)
        if self.set(self.current + 1 if self.current else low):
            self.log.info(f"Set realtime priority {self.current}")

    def set(self, priority: int) -> bool:
        try:
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
        except OSError as exc:
            self.log.error(f"Unable to set realtime priority {priority}: {exc.strerror or exc}")
            return False
        if not self.current:
            self.limit()
        self.current = priority
        return True

    def limit(self) -> None:
        try:
            resource.setrlimit(resource.RLIMIT_RTTIME, (self.rttime // 2, self.rttime))
        except (OSError, ValueError) as exc:
            self.log.error(f"Unable to set the realtime CPU limit: {exc}")
        # A plain handler rather than the loop's: Python runs it between two bytecodes of
        # the callback that is using the CPU, not after it.
        signal.signal(signal.SIGXCPU, self.over_limit)

    def stop(self) -> None:
        """Normal scheduling before the loop closes: its clean-up does not block."""
        if self.current:
            self.normal()
            self.current = 0

    def normal(self) -> bool:
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError as exc:
            self.log.error(f"Unable to leave realtime scheduling: {exc.strerror or exc}")
            return False
        return True

    def over_limit(self, signum: int, frame: object) -> None:
        """SIGXCPU: half of vrrp_rlimit_rttime used without blocking; the kernel kills the
        process at the whole of it, so normal scheduling again (max_auto_priority may take
        it back later)."""
        if not self.normal():
            return
        self.current = 0
        self.log.info(
            f"Realtime CPU limit reached (vrrp_rlimit_rttime {self.rttime} usecs without "
            "blocking): back to normal scheduling"
        )
