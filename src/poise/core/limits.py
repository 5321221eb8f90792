"""The process's connection limit and its file descriptors, worked out as HAProxy 2.6 does
(src/haproxy.c: compute_ideal_maxconn, compute_ideal_maxsock, and the RLIMIT_NOFILE step).

Every connection costs two descriptors (the client's and the server's). Before any
connection, HAProxy reserves 10 descriptors, one per listening socket, one per server
health check, the connections of each stats socket (its listener and its `maxconn`, 10),
and per thread one poller and a wake-up pipe (poise runs one thread). Without `maxconn`
in `global`, maxconn is what remains of the hard limit divided by two (at least 100);
maxsock is then what the process needs, and the soft limit is raised to it (poise
never lowers it: Python holds a few more descriptors than HAProxy's reserve). With an
explicit `maxconn` whose maxsock is over a hard limit the process may not raise, HAProxy
(strict limits, its default) refuses to start: `Cannot raise FD limit to MAXSOCK, limit is LIMIT.`

Pure: the shell (net/limits.py) reads and sets the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.config import model

RESERVED_FDS = 10  # HAProxy: "reserve 10 fds ; will be incremented by socket eaters"
STATS_SOCKET_MAXCONN = 10  # a stats socket's connections (HAProxy's default `maxconn 10`)
DEFAULT_MAXCONN = 100  # the least HAProxy derives, "even on tight environments"
THREADS = 1  # poise serves from one thread
FDS_PER_THREAD = 3  # an epoll descriptor and a wake-up pipe (two)
FDS_PER_CONN = 2  # the client's connection and the server's


@dataclass(frozen=True, slots=True)
class Limits:
    maxconn: int
    maxsock: int  # the descriptors the process may need (`show info` Maxsock)
    derived: bool  # maxconn was worked out from the limit, not written


def sockets_before_connections(config: model.Config) -> int:
    """What HAProxy counts in maxsock before the connections: the reserve, the listening
    sockets, the health checks and the stats sockets with their connections."""
    listeners = sum(len(p.binds) for p in config.frontends if not p.disabled)
    checks = sum(1 for p in config.backends for s in p.servers if s.check)
    stats = len(config.global_.stats_sockets) * (1 + STATS_SOCKET_MAXCONN)
    return RESERVED_FDS + listeners + checks + stats


def ideal_maxconn(limit: int, reserved: int) -> int:
    """compute_ideal_maxconn(): the descriptors left after the reserved ones and the
    threads', two per connection, and never less than 100."""
    remain = limit - reserved - FDS_PER_THREAD * THREADS
    return max(remain // FDS_PER_CONN, DEFAULT_MAXCONN)


def ideal_maxsock(maxconn: int, reserved: int) -> int:
    """compute_ideal_maxsock(): the descriptors `maxconn` connections need."""
    return reserved + FDS_PER_CONN * maxconn + FDS_PER_THREAD * THREADS


def settle(config: model.Config, soft: int, hard: int) -> Limits:
    """The limits to run with, given the process's RLIMIT_NOFILE (soft, hard) at start:
    HAProxy derives maxconn from the larger of the two (it raises the soft limit)."""
    reserved = sockets_before_connections(config)
    written = config.global_.maxconn
    maxconn = written or ideal_maxconn(max(soft, hard), reserved)
    return Limits(maxconn, ideal_maxsock(maxconn, reserved), derived=not written)


def cannot_raise(maxsock: int, soft: int) -> str:
    """HAProxy's alert when the limit cannot be raised to maxsock (it then exits)."""
    return f"[poise.main()] Cannot raise FD limit to {maxsock}, limit is {soft}."
