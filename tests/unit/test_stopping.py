"""The order of HAProxy 2.6's "Proxy X stopped" lines on a soft stop (core/stopping.py),
from what 2.6.12 printed for the same sections (tests/e2e/test_lifecycle_logs.py runs both)."""

from __future__ import annotations

from poise.core.stopping import GLOBAL, HTTPCLIENT, stop_order, stopped_message


def test_listening_proxies_stop_by_protocol_then_the_others_in_order() -> None:
    # global: stats socket (unix); b0; fa: unix + IPv4; fb: IPv4 + IPv6; fc: unix;
    # fd, ff: IPv4; b1. HAProxy 2.6.12 said: fb fd ff GLOBAL fa fc b0 b1 <HTTPCLIENT>.
    listeners = [
        (GLOBAL, "unix"),
        ("fa", "unix"),
        ("fa", "tcp4"),
        ("fb", "tcp4"),
        ("fb", "tcp6"),
        ("fc", "unix"),
        ("fd", "tcp4"),
        ("ff", "tcp4"),
    ]
    proxies = ["b0", "fa", "fb", "fc", "fd", "ff", "b1"]
    assert stop_order(listeners, proxies) == [
        "fb", "fd", "ff", GLOBAL, "fa", "fc", "b0", "b1", HTTPCLIENT,
    ]  # fmt: skip


def test_a_tcp_stats_socket_comes_first_among_ipv4() -> None:
    listeners = [(GLOBAL, "tcp4"), ("li", "tcp4")]
    assert stop_order(listeners, ["li"]) == [GLOBAL, "li", HTTPCLIENT]


def test_sockpair_listeners_stop_between_ipv4_and_unix() -> None:
    # HAProxy 2.6.12: f6 f4 fsp fu be <HTTPCLIENT>.
    listeners = [("f4", "tcp4"), ("fsp", "sockpair"), ("f6", "tcp6"), ("fu", "unix")]
    order = stop_order(listeners, ["f4", "fsp", "f6", "fu", "be"])
    assert order == ["f6", "f4", "fsp", "fu", "be", HTTPCLIENT]


def test_nothing_but_backends() -> None:
    assert stop_order([], ["a", "b"]) == ["a", "b", HTTPCLIENT]


def test_message() -> None:
    assert stopped_message("fe", 3, 2) == "Proxy fe stopped (cumulated conns: FE: 3, BE: 2)."
