"""`http-request tarpit` (configuration.txt 4.2): the request is held for `timeout
tarpit` (else `timeout connect`) of the proxy whose rule matched, then answered as a
deny is (500 unless `deny_status` or `status` says otherwise, or the reply the rule
names), and logged `PT--` with no request time and the time held as the queue time
(`-1/501/-1/-1/501`), as HAProxy 2.6 logs it. Meanwhile nothing more is read for it:
what the client sends waits in the buffer (a kept connection goes on after the
answer). Functions of the stream (core/http/stream.py). Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.config.model import Proxy
from poise.core.backend import seconds
from poise.core.http.rules import Verdict

if TYPE_CHECKING:
    from poise.core.http.stream import HttpStream


def hold(s: HttpStream, verdict: Verdict, proxy: Proxy) -> None:
    timeouts = proxy.timeouts
    delay = seconds(timeouts.tarpit) or seconds(timeouts.connect)
    if delay is None:
        release(s, verdict)
        return
    s.rq.hold_body()
    s.arm(delay, lambda: release(s, verdict))


def release(s: HttpStream, verdict: Verdict) -> None:
    txn = s.txn
    txn.t_head = -1
    txn.t_queue = int((s.clock() - txn.start) * 1000)
    s.answered(verdict)
