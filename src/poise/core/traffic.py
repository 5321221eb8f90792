"""What the stats say of traffic beyond the per-request counts (core/counters.py), as in
HAProxy 2.6's stats (management.txt 9.1; stream.c `stream_update_time_stats`, backend.c,
server.c). Pure.

- `lbtot`: the times the balancer chose a server (not persistence, not a queue's turn);
  `connect` and `reuse`: connections opened to a server, and requests sent on an idle one.
- `qtime`, `ctime`, `rtime`, `ttime` and their maxima: the time in the queue, to connect,
  to the response head (0 in TCP mode) and in all, in milliseconds, of the transactions that
  reached a server (and, in HTTP, got its response head), averaged over the last 1024 as
  HAProxy's sliding sums do (`swrate_add_dynamic`: until 1024 are counted, a plain sum).
- `rate`, `rate_max`, `req_rate`, `conn_rate` and their maxima: events per second. HAProxy
  counts each event into a per-second counter; poise reads its cumulative counts once a
  second (`tick`, from the shell's clock) instead, which costs a request nothing: a rate is
  the events of the last whole second, its maximum the most seen in one.
- `lastsess`: seconds since a server or backend last got a session (-1: never), to the
  second, as HAProxy's; the tick notices the new ones.
- `chkdown`, `downtime`, and a backend's `lastchg`: UP-to-DOWN transitions and the seconds
  spent DOWN. A server's are counted where its checks change its state; a backend is DOWN
  while it has no usable server (its `changed()` tells `Traffic.backend_state`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "TIME_STATS_SAMPLES",
    "Rate",
    "Traffic",
    "averages",
    "downtime",
    "last_session",
    "sample",
    "server_state",
    "tick",
]

TIME_STATS_SAMPLES = 1024  # HAProxy's TIME_STATS_SAMPLES


class Rate:
    """Events per second from a cumulative count, ticked once a second: `read` gives
    HAProxy's sliding estimate (freq_ctr.h `read_freq_ctr`): the events since the last
    tick, plus the last second's in proportion to what is left of the current second."""

    __slots__ = ("at", "max", "rate", "seen")

    def __init__(self) -> None:
        self.seen = 0  # the cumulative count at the last tick
        self.at = 0.0  # when that tick was
        self.rate = 0  # the events between the last two ticks
        self.max = 0

    def tick(self, total: int, now: float) -> None:
        self.rate = max(0, total - self.seen)
        self.seen = total
        self.at = now
        self.max = max(self.max, self.rate)

    def read(self, total: int, now: float) -> int:
        """The rate now, `total` being the cumulative count now."""
        elapsed = min(1.0, max(0.0, now - self.at))
        return max(0, total - self.seen) + int(self.rate * (1.0 - elapsed))

    def highest(self, total: int, now: float) -> int:
        """The most seen: the ticks' maximum, or the current estimate above it."""
        return max(self.max, self.read(total, now))


class Traffic:
    """A backend's or a server's figures of this module."""

    __slots__ = (
        "c",
        "c_max",
        "connects",
        "d",
        "d_max",
        "down_time",
        "down_trans",
        "last_change",
        "last_sess",
        "lbconn",
        "nosrv",
        "q",
        "q_max",
        "rate",
        "reuses",
        "t",
        "t_max",
        "up",
    )

    def __init__(self) -> None:
        self.lbconn = 0  # lbtot
        self.connects = 0
        self.reuses = 0
        self.nosrv = 0  # a backend's requests that found no server (part of its econ)
        # The sliding sums of the four times (ms) and their maxima.
        self.q = self.c = self.d = self.t = 0
        self.q_max = self.c_max = self.d_max = self.t_max = 0
        self.rate = Rate()  # sessions per second
        self.last_sess = 0.0  # clock reading of the tick that saw the last new session
        self.down_trans = 0  # chkdown
        self.down_time = 0.0  # seconds DOWN before the current state (downtime)
        # A backend's own state (a server's is ServerState.up and .last_change).
        self.up = True
        self.last_change = 0.0

    def clear_maxima(self) -> None:
        """`clear counters`: the maxima."""
        self.q_max = self.c_max = self.d_max = self.t_max = 0
        self.rate.max = 0

    def clear(self) -> None:
        """`clear counters all`: every counter, as HAProxy's (the time spent DOWN is the
        server's, not a counter: it stays)."""
        self.clear_maxima()
        self.lbconn = self.connects = self.reuses = self.nosrv = self.down_trans = 0
        self.q = self.c = self.d = self.t = 0
        self.last_sess = 0.0

    def backend_state(self, up: bool, now: float) -> None:
        """A backend's servers changed: it goes DOWN when none is usable, UP again when
        one is (HAProxy's set_backend_down and the server-up branch of
        srv_update_status)."""
        if up == self.up:
            return
        server_state(self, up, self.last_change, now)
        self.up = up
        self.last_change = now

    def tick(self, sessions: int, now: float) -> None:
        if sessions != self.rate.seen:  # a new session since the last tick (lastsess)
            self.last_sess = now
        self.rate.tick(sessions, now)


def server_state(traffic: Traffic, up: bool, last_change: float, now: float) -> None:
    """A server's checks took it DOWN (one more `chkdown`) or back UP (the time it was
    DOWN added to `downtime`); `last_change`: when it last changed before this."""
    if not up:
        traffic.down_trans += 1
    elif now > last_change:
        traffic.down_time += now - last_change


def sample(  # noqa: PLR0917 (the four times, plain values: no tuple to build per request)
    traffic: Traffic, counted: int, q: int, c: int, d: int, t: int
) -> None:
    """One transaction's times added to the sliding sums (`counted`: the transactions
    counted so far, whose number decides between a plain sum and the 1024-sample window)."""
    if counted > TIME_STATS_SAMPLES:
        n = TIME_STATS_SAMPLES
        traffic.q += q - (traffic.q + n - 1) // n
        traffic.c += c - (traffic.c + n - 1) // n
        traffic.d += d - (traffic.d + n - 1) // n
        traffic.t += t - (traffic.t + n - 1) // n
    else:
        traffic.q += q
        traffic.c += c
        traffic.d += d
        traffic.t += t
    if q > traffic.q_max:  # noqa: PLR1730 (no call per request)
        traffic.q_max = q
    if c > traffic.c_max:  # noqa: PLR1730 (no call per request)
        traffic.c_max = c
    if d > traffic.d_max:  # noqa: PLR1730 (no call per request)
        traffic.d_max = d
    if t > traffic.t_max:  # noqa: PLR1730 (no call per request)
        traffic.t_max = t


def averages(traffic: Traffic, counted: int) -> tuple[int, int, int, int]:
    """qtime, ctime, rtime, ttime as HAProxy shows them (`swrate_avg` over the window:
    the transactions counted when fewer than 1024)."""
    n = counted if 0 < counted < TIME_STATS_SAMPLES else TIME_STATS_SAMPLES
    return (
        (traffic.q + n - 1) // n,
        (traffic.c + n - 1) // n,
        (traffic.d + n - 1) // n,
        (traffic.t + n - 1) // n,
    )


def downtime(traffic: Traffic, up: bool, last_change: float, now: float) -> int:
    """Seconds spent DOWN: those before the current state, and the current one's if it
    is DOWN (HAProxy's srv_downtime and be_downtime)."""
    if up or last_change >= now:
        return int(traffic.down_time)
    return int(now - last_change + traffic.down_time)


def last_session(traffic: Traffic, sessions: int, now: float) -> int:
    """lastsess: seconds since the last session (`sessions`: the count now; one since the
    last tick is 0 seconds ago), -1 if there never was one."""
    if sessions != traffic.rate.seen:
        return 0
    return int(now - traffic.last_sess) if traffic.last_sess else -1


class FrontendRates(Protocol):
    """What `tick` reads and sets on a frontend (core/frontend.py)."""

    cum_conn: int
    denied_conn: int
    sess_rate: Rate
    conn_rate: Rate
    req_rate: Rate

    @property
    def req_tot(self) -> int: ...


class Counted(Protocol):
    """A server (core/server.py), for `tick`."""

    traffic: Traffic
    total_sess: int


class BackendCounted(Protocol):
    """A backend (core/backend.py), for `tick`."""

    traffic: Traffic
    cum_sess: int

    @property
    def servers(self) -> Sequence[Counted]: ...


def tick(
    frontends: Iterable[FrontendRates], backends: Iterable[BackendCounted], now: float
) -> None:
    """Once a second: the rates and `lastsess`, read from the cumulative counts. A
    frontend's sessions are its connections; its requests, HTTP requests; its connections,
    the refused ones too (HAProxy counts conn_rate when it accepts, before `tcp-request
    connection` rules)."""
    for frontend in frontends:
        frontend.sess_rate.tick(frontend.cum_conn, now)
        frontend.conn_rate.tick(frontend.cum_conn + frontend.denied_conn, now)
        frontend.req_rate.tick(frontend.req_tot, now)
    for backend in backends:
        backend.traffic.tick(backend.cum_sess, now)
        for server in backend.servers:
            server.traffic.tick(server.total_sess, now)
