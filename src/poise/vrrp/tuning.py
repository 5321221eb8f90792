"""The process tuning of keepalived.conf's `global_defs` for `poise vrrp`, applied once at
start-up as Keepalived applies it to its VRRP child: `vrrp_priority` (the nice value),
`vrrp_cpu_affinity` (the CPUs it may run on) and `vrrp_no_swap` (its memory locked in RAM).
poise vrrp is one process, so these also hold for its checkers and virtual servers (the
`checker_*` settings are warnings for that reason). A setting the system refuses is logged
and the daemon runs without it, as Keepalived does.
"""

from __future__ import annotations

import ctypes
import os
import resource

from poise.config.keepalived_model import GlobalDefs
from poise.vrrp.log import Logger

MCL_CURRENT = 1  # <sys/mman.h>
MCL_FUTURE = 2


def apply(defaults: GlobalDefs, log: Logger) -> None:
    """Set this process's priority, CPUs and memory locking; threads started later inherit
    the first two (Linux keeps them per thread)."""
    if defaults.vrrp_priority is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, defaults.vrrp_priority)
        except OSError as exc:
            log.error(
                f"Unable to set process priority to {defaults.vrrp_priority}: {exc.strerror or exc}"
            )
    if defaults.vrrp_cpu_affinity:
        _affinity(defaults.vrrp_cpu_affinity, log)
    if defaults.vrrp_no_swap:
        _lock_memory(log)


def _affinity(ids: tuple[int, ...], log: Logger) -> None:
    cpus = os.cpu_count() or 1
    valid = {cpu for cpu in ids if cpu < cpus}
    for cpu in sorted(set(ids) - valid):
        log.error(f"Invalid cpu_id:{cpu} specified for vrrp process")
    if not valid:
        return
    try:
        os.sched_setaffinity(0, valid)
    except OSError as exc:
        log.error(f"Unable to set cpu affinity: {exc.strerror or exc}")


def _lock_memory(log: Logger) -> None:
    """mlockall(MCL_CURRENT | MCL_FUTURE), only where the locked memory is not limited (root,
    or RLIMIT_MEMLOCK unlimited): under a limit, a later allocation past it would fail in
    the middle of the daemon's work instead of at start."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY:
        log.error(
            f"vrrp_no_swap: locked memory is limited to {soft} bytes (RLIMIT_MEMLOCK) for "
            "this user: not locking it"
        )
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        errno = ctypes.get_errno()
        log.error(f"Unable to lock the process in memory: {os.strerror(errno)}")
