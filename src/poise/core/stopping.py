"""What a soft stop says, and in which order, as HAProxy 2.6 says it.

HAProxy 2.6 logs nothing when it starts (no "Proxy X started."; a log target's first line is
the first health-check result), and nothing on SIGTERM/SIGINT (it dies at once). On a soft
stop (SIGUSR1, or the old worker of a reload) it writes "Proxy X stopped (cumulated conns:
FE: n, BE: m)." at level warning, to the terminal and to the proxy's own `log` targets, in
this order (measured against 2.6.12; proxy.c `proxy_cond_disable()` and `soft_stop()`):

1. the proxies that listen, each when its last listener closes; listeners close protocol by
   protocol (IPv6, then IPv4, then `sockpair@`, then unix sockets), in the order they were
   declared within a protocol; the stats sockets belong to the proxy "GLOBAL" (terminal
   only, never syslog; not said by a master's worker) and come first within their
   protocol, as `global` is read first;
2. then every other proxy that is not `disabled`, in declaration order;
3. then HAProxy's internal "<HTTPCLIENT>" proxy, whose log targets are `global`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

GLOBAL = "GLOBAL"  # the stats sockets' proxy
HTTPCLIENT = "<HTTPCLIENT>"  # HAProxy's internal proxy, stopped last, logged to `global`'s targets

# The order in which HAProxy's protocols stop their listeners (measured with 2.6.12; an
# `fd@N` listener belongs to the protocol of its socket's family).
PROTOCOL_ORDER = ("tcp6", "tcp4", "sockpair", "unix")


def stop_order(listeners: Sequence[tuple[str, str]], proxies: Sequence[str]) -> list[str]:
    """The proxies' names in the order a soft stop reports them. `listeners` are (proxy,
    protocol) in declaration order (stats sockets first, as GLOBAL); `proxies` are the
    enabled proxies in declaration order (GLOBAL and HTTPCLIENT are not among them)."""
    rank = {name: i for i, name in enumerate(PROTOCOL_ORDER)}
    remaining = Counter(owner for owner, _ in listeners)
    ordered = sorted(
        enumerate(listeners), key=lambda item: (rank.get(item[1][1], len(rank)), item[0])
    )
    order: list[str] = []
    for _, (owner, _protocol) in ordered:
        remaining[owner] -= 1
        if remaining[owner] == 0:
            order.append(owner)
    order += [name for name in proxies if name not in remaining]
    order.append(HTTPCLIENT)
    return order


def stopped_message(name: str, fe_conns: int, be_conns: int) -> str:
    return f"Proxy {name} stopped (cumulated conns: FE: {fe_conns}, BE: {be_conns})."
