"""The process tuning of keepalived.conf's `global_defs` for `poise vrrp`, applied at
start-up and again at each reload (SIGHUP), as Keepalived 2.2.7 applies it to its VRRP child
(vrrp_daemon.c: its reload runs start_vrrp, which sets them from the new file):
`vrrp_priority` (the nice value), `vrrp_cpu_affinity` (the CPUs it may run on),
`vrrp_no_swap` (its memory locked in RAM) and its name (`vrrp_process_name`, else
`process_name`: prctl(PR_SET_NAME), what ps -e, top and pgrep show). A setting a reload
removes goes back to what the process had at start-up. poise vrrp is one process, so these
also hold for its checkers and virtual servers (the `checker_*` settings are warnings for
that reason); Linux keeps the nice value and the CPUs per thread, so they are set on every
thread of the process. A setting the system refuses is logged and the daemon runs without
it, as Keepalived does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource

from poise.config.keepalived_model import GlobalDefs
from poise.vrrp.log import Logger

MCL_CURRENT = 1  # <sys/mman.h>
MCL_FUTURE = 2
PR_SET_NAME = 15  # <linux/prctl.h>


def _threads() -> list[int]:
    try:
        return [int(task) for task in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


class Tuning:
    """The tuning in force, and what the process had before it."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.nice = os.getpriority(os.PRIO_PROCESS, 0)
        self.cpus = os.sched_getaffinity(0)
        self.locked = False
        self.current: GlobalDefs | None = None
        try:
            with open("/proc/self/comm", "rb") as comm:
                self.name = comm.read().rstrip(b"\n")
        except OSError:
            self.name = b""

    def apply(self, defaults: GlobalDefs) -> None:
        """Set the priority, CPUs and memory locking of `defaults` (threads started later
        inherit the first two)."""
        old, self.current = self.current, defaults
        # Keepalived names its VRRP child at start, and again when a reload changes the name
        name = defaults.own_name
        if name != (old.own_name if old is not None else None):
            self._rename(name.encode() if name is not None else self.name)
        if defaults.vrrp_priority is not None:
            self._nice(defaults.vrrp_priority)
        elif old is not None and old.vrrp_priority is not None:
            self._nice(self.nice)
        if defaults.vrrp_cpu_affinity:
            _affinity(defaults.vrrp_cpu_affinity, self.log)
        elif old is not None and old.vrrp_cpu_affinity:
            _set_cpus(self.cpus, self.log)
        if defaults.vrrp_no_swap and not self.locked:
            self.locked = _lock_memory(self.log)
        elif not defaults.vrrp_no_swap and self.locked:
            if ctypes.CDLL(None, use_errno=True).munlockall() != 0:
                self.log.error(f"Unable to unlock memory: {os.strerror(ctypes.get_errno())}")
            self.locked = False

    def _rename(self, name: bytes) -> None:
        """prctl(PR_SET_NAME): the name of the process's first thread, which is the process's
        (Linux copies at most 15 bytes)."""
        if not name:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
            self.log.info(f"Failed to set process name '{name.decode(errors='replace')}'")

    def _nice(self, value: int) -> None:
        try:
            for thread in _threads():
                with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
                    os.setpriority(os.PRIO_PROCESS, thread, value)
        except OSError as exc:
            self.log.error(f"Unable to set process priority to {value}: {exc.strerror or exc}")


def _affinity(ids: tuple[int, ...], log: Logger) -> None:
    cpus = os.cpu_count() or 1
    valid = {cpu for cpu in ids if cpu < cpus}
    for cpu in sorted(set(ids) - valid):
        log.error(f"Invalid cpu_id:{cpu} specified for vrrp process")
    if valid:
        _set_cpus(valid, log)


def _set_cpus(cpus: set[int], log: Logger) -> None:
    try:
        for thread in _threads():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(thread, cpus)
    except OSError as exc:
        log.error(f"Unable to set cpu affinity: {exc.strerror or exc}")


def _lock_memory(log: Logger) -> bool:
    """mlockall(MCL_CURRENT | MCL_FUTURE), only where the locked memory is not limited (root,
    or RLIMIT_MEMLOCK unlimited): under a limit, a later allocation past it would fail in
    the middle of the daemon's work instead of at start."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY:
        log.error(
            f"vrrp_no_swap: locked memory is limited to {soft} bytes (RLIMIT_MEMLOCK) for "
            "this user: not locking it"
        )
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        errno = ctypes.get_errno()
        log.error(f"Unable to lock the process in memory: {os.strerror(errno)}")
        return False
    return True
