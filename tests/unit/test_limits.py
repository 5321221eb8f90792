"""maxconn and maxsock from the descriptor limit (core/limits.py), against the figures
HAProxy 2.6 gives on this machine (two threads, so 3 more descriptors than poise's one
loop would cost at HAProxy's rate; poise counts its loop as 7)."""

from __future__ import annotations

from poise.config.haproxy import parse
from poise.config.model import Config
from poise.core.limits import cannot_raise, settle, sockets_before_connections

BASE = """
global
{global_}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:8080
{frontend}
    default_backend be
backend be
    server s1 127.0.0.1:9000 {check}
    log 127.0.0.1:514 local0
"""


def config(global_: str = "", frontend: str = "", check: str = "") -> Config:
    text = BASE.format(global_=global_, frontend=frontend, check=check)
    parsed, diagnostics = parse([("t.cfg", text)], {})
    assert parsed is not None, [str(d) for d in diagnostics]
    return parsed


def test_the_reserve_counts_what_haproxy_counts_and_poise_holds() -> None:
    # 10 reserved, 1 listener, 1 log target, 7 for the loop.
    assert sockets_before_connections(config()) == 19
    # A port range is one listener per port; a checked server one more.
    assert sockets_before_connections(config(frontend="    bind 127.0.0.1:8081-8083")) == 22
    assert sockets_before_connections(config(check="check")) == 20
    # A stats socket: its listener and its 10 connections.
    assert sockets_before_connections(config("    stats socket /tmp/s.sock")) == 30


def test_nameservers_count_only_where_a_server_resolves_through_them() -> None:
    # A resolvers section opens its sockets only for the servers that use it: one that no
    # server names (as the implicit `default` section from /etc/resolv.conf) costs nothing.
    section = "resolvers dns\n    nameserver a 127.0.0.1:53\n    nameserver b 127.0.0.2:53\n"
    unused = BASE.format(global_="", frontend="", check="") + section
    used = unused.replace("127.0.0.1:9000 ", "127.0.0.1:9000 resolvers dns ")
    for text, reserve in ((unused, 19), (used, 21)):
        parsed, diagnostics = parse([("t.cfg", text)], {})
        assert parsed is not None, [str(d) for d in diagnostics]
        assert sockets_before_connections(parsed) == reserve


def test_maxconn_is_derived_from_the_larger_limit_halved() -> None:
    # HAProxy 2.6 here, same configuration without the log line: 119 from 256.
    limits = settle(config(), 256, 256)
    assert (limits.maxconn, limits.maxsock, limits.derived) == (118, 255, True)
    # The hard limit counts: HAProxy raises the soft one.
    assert settle(config(), 256, 1024).maxconn == 502
    # Never below 100, even where the limit cannot hold it.
    assert settle(config(), 64, 64).maxconn == 100


def test_an_explicit_maxconn_is_kept_and_its_descriptors_counted() -> None:
    limits = settle(config("    maxconn 4000"), 256, 256)
    assert (limits.maxconn, limits.maxsock, limits.derived) == (4000, 8019, False)
    assert cannot_raise(limits.maxsock, 256) == (
        "[poise.main()] Cannot raise FD limit to 8019, limit is 256."
    )
