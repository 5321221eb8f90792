"""What `nbthread N > 1` cannot be combined with yet: the features whose state is not shared
between the workers of one balancer (issue 17). With several workers each worker would
run its own health checks, keep its own counters and tables and answer for itself alone,
so a configuration that uses one of them with `nbthread` above 1 is refused at the line
that uses it ("... is not shared between workers yet (nbthread > 1)").

FEATURES is the one list: when a feature becomes one state across the workers, its line
goes. Each entry is the feature's name, as the error says it, and how to find where a
configuration uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from poise.config.diagnostics import Diagnostic, error
from poise.config.model import Algorithm, Config, Where


def _stats_sockets(config: Config) -> Iterator[Where]:
    yield from (socket.where for socket in config.global_.stats_sockets)


def _stats_admin(config: Config) -> Iterator[Where]:
    for proxy in config.proxies:
        if proxy.stats is not None and proxy.stats.admin:
            yield proxy.stats.where


def _stick_tables(config: Config) -> Iterator[Where]:
    yield from (table.where for table in config.tables)


def _leastconn(config: Config) -> Iterator[Where]:
    for proxy in config.backends:
        if proxy.balance.algorithm is Algorithm.LEASTCONN:
            yield proxy.where


def _server_maxconn(config: Config) -> Iterator[Where]:
    for proxy in config.backends:
        yield from (server.where for server in proxy.servers if server.maxconn)


def _peers(config: Config) -> Iterator[Where]:
    yield from (peers.where for peers in config.peers)


def _resolvers(config: Config) -> Iterator[Where]:
    for proxy in config.backends:
        yield from (server.where for server in proxy.servers if server.resolvers)


# feature -> where a configuration uses it.
FEATURES: tuple[tuple[str, Callable[[Config], Iterator[Where]]], ...] = (
    ("a stats socket", _stats_sockets),
    ("the stats page's admin actions ('stats admin')", _stats_admin),
    ("a stick table (and 'track-sc')", _stick_tables),
    ("'balance leastconn'", _leastconn),
    ("a server's 'maxconn' (and its queue)", _server_maxconn),
    ("a 'peers' section", _peers),
    ("DNS resolution at run time ('resolvers')", _resolvers),
)


def gate(config: Config) -> list[Diagnostic]:
    """An error at each use of a feature not shared between workers, when there are
    several; none with `nbthread 1`."""
    count = config.global_.nbthread
    if count <= 1:
        return []
    problems: list[Diagnostic] = []
    for feature, uses in FEATURES:
        for where in dict.fromkeys(uses(config)):
            problems.append(
                error(
                    where,
                    f"{feature} is not shared between workers yet (nbthread > 1): "
                    f"'nbthread {count}' is at {config.global_.nbthread_where}",
                )
            )
    return problems
