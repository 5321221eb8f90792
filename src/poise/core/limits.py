"""The process's connection limit and its file descriptors, worked out as HAProxy 2.6 does
(src/haproxy.c: compute_ideal_maxconn, compute_ideal_maxsock, and the RLIMIT_NOFILE step).

Every connection costs two descriptors (the client's and the server's). Before any
connection, HAProxy reserves 10 descriptors, one per listening socket, one per server
health check, and the connections of each stats socket (its listener and its `maxconn`,
10), then per thread a poller and a wake-up pipe (3). poise counts the same, except that
its one event loop holds 7 (uvloop's poller, wake-up pipes and signal socket pair), and
that it also counts a socket per log target and per nameserver of a resolvers section a
server uses, which it holds open (an unused section, such as the implicit `default` one,
opens nothing).
Without `maxconn` in `global`, maxconn is what remains of the limit (the larger of the
soft and hard ones: the soft one is raised) divided by two, at least 100. maxsock is what
maxconn needs; the soft limit is raised to it (never lowered: Python holds a few more
descriptors than HAProxy's reserve). An explicit `maxconn` whose maxsock the process may
not reach makes HAProxy (strict limits, its default) refuse to start:
`Cannot raise FD limit to MAXSOCK, limit is LIMIT.`

Pure: the shell (net/limits.py) reads and sets the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.config import model

RESERVED_FDS = 10  # HAProxy: "reserve 10 fds ; will be incremented by socket eaters"
STATS_SOCKET_MAXCONN = 10  # a stats socket's connections (HAProxy's default `maxconn 10`)
DEFAULT_MAXCONN = 100  # the least HAProxy derives, "even on tight environments"
LOOP_FDS = 7  # poise's event loop (measured with uvloop); HAProxy counts 3 per thread
FDS_PER_CONN = 2  # the client's connection and the server's


@dataclass(frozen=True, slots=True)
class Limits:
    maxconn: int
    maxsock: int  # the descriptors the process may need (`show info` Maxsock)
    derived: bool  # maxconn was worked out from the limit, not written


def sockets_before_connections(config: model.Config) -> int:
    """What HAProxy counts in maxsock before the connections (the reserve, the listening
    sockets, the health checks, the stats sockets with their connections), the log
    targets and the nameservers, and the event loop's descriptors."""
    listeners = sum(len(p.binds) for p in config.frontends if not p.disabled)
    checks = sum(1 for p in config.backends for s in p.servers if s.check)
    stats = len(config.global_.stats_sockets) * (1 + STATS_SOCKET_MAXCONN)
    logs = len({target for p in config.proxies for target in p.logs} | set(config.global_.logs))
    used = {s.resolvers for p in config.backends for s in p.servers if s.resolvers}
    nameservers = sum(len(r.nameservers) for r in config.resolvers if r.name in used)
    return RESERVED_FDS + listeners + checks + stats + logs + nameservers + LOOP_FDS


def ideal_maxconn(limit: int, reserved: int) -> int:
    """compute_ideal_maxconn(): the descriptors left after the reserved ones, two per
    connection, and never less than 100."""
    return max((limit - reserved) // FDS_PER_CONN, DEFAULT_MAXCONN)


def ideal_maxsock(maxconn: int, reserved: int) -> int:
    """compute_ideal_maxsock(): the descriptors `maxconn` connections need."""
    return reserved + FDS_PER_CONN * maxconn


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
