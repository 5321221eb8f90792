"""The shell of core/limits.py: read the process's RLIMIT_NOFILE, work out maxconn and
maxsock, and raise the limit to maxsock as HAProxy does (its hard limit too, where the
process may: root with CAP_SYS_RESOURCE). When it cannot, an explicit maxconn is refused
with HAProxy's alert (LimitError), before anything is bound.
"""

from __future__ import annotations

import resource

from poise.config import model
from poise.core.limits import Limits, cannot_raise, settle
from poise.net.listener import BindError


class LimitError(BindError):
    """A BindError, so that every way poise starts stops the same way on it."""


def apply_limits(config: model.Config) -> Limits:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = soft if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY:
        soft = hard
    limits = settle(config, soft, hard)
    if limits.maxsock > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.maxsock, max(hard, limits.maxsock)))
        except (ValueError, OSError):
            raise LimitError(cannot_raise(limits.maxsock, soft)) from None
    return limits
