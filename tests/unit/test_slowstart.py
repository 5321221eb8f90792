"""`slowstart` (core/slowstart.py): HAProxy 2.6's ramp of a server's weight and connection
limit, with the time given explicitly. The expected numbers are what haproxy 2.6.12 showed
(`show stat` weight and throttle) for the same servers and elapsed seconds."""

from __future__ import annotations

from collections import Counter

import pytest

from poise.config.haproxy import parse
from poise.config.model import Address, Balance, Server
from poise.config.where import Where
from poise.core import slowstart
from poise.core.balancer.factory import make_balancer
from poise.core.server import ServerState

WHERE = Where("t.cfg", 1)


def server(
    name: str = "a", weight: int = 1, slowstart_ms: int = 0, maxconn: int = 0
) -> ServerState:
    config = Server(
        name, Address("ipv4", "127.0.0.1", 80), WHERE, 1, weight=weight, slowstart=slowstart_ms,
        maxconn=maxconn,
    )  # fmt: skip
    return ServerState(config, "b")


def ramping(s: ServerState) -> bool:
    return s.warm_since is not None


@pytest.mark.parametrize(
    ("weight", "seconds", "elapsed", "shown", "throttle"),
    [
        # weight 100, slowstart 10s: haproxy showed 13, 32, 63 one, three, six seconds in.
        (100, 10, 1, 13, 12),
        (100, 10, 3, 32, 31),
        (100, 10, 6, 63, 62),
        (100, 10, 0, 7, 6),
        # weight 16, slowstart 1000s, just out of maintenance: 1 and throttle 6.
        (16, 1000, 0, 1, 6),
        (16, 1000, 62, 1, 6),
        (16, 1000, 63, 2, 12),
    ],
)
def test_the_weight_ramps_as_haproxys(
    weight: int, seconds: int, elapsed: int, shown: int, throttle: int
) -> None:
    s = server(weight=weight, slowstart_ms=seconds * 1000)
    slowstart.begin(s, 1000.0)
    slowstart.step(s, 1000.0 + elapsed + 0.5)
    assert slowstart.shown_weight(s, dynamic=True) == shown
    assert slowstart.shown_weight(s, dynamic=False) == weight  # static-rr, map-based
    assert slowstart.throttle(s) == throttle


def test_the_ramp_ends_after_slowstart_and_never_starts_without_it() -> None:
    s = server(weight=10, slowstart_ms=1500)  # rounded up to 2 s, as HAProxy does
    slowstart.begin(s, 0.0)
    assert s.warm_since == 0.0 and s.ramp == 1
    assert slowstart.step(s, 1.2) and s.ramp == 9  # (16 x 1 + 2) // 2
    assert slowstart.step(s, 2.0)
    assert (ramping(s), s.ramp, slowstart.throttle(s)) == (False, slowstart.WEIGHT_SCALE, None)
    assert not slowstart.step(s, 3.0)
    plain = server(weight=10)
    slowstart.begin(plain, 0.0)
    assert plain.warm_since is None and plain.ramp == slowstart.WEIGHT_SCALE


def test_the_connection_limit_ramps_from_one() -> None:
    s = server(weight=1, slowstart_ms=10_000, maxconn=50)
    slowstart.begin(s, 0.0)
    s.cur_sess = 1
    assert s.full  # max(1, 50 x 0 // 100)
    slowstart.step(s, 4.0)  # 40 %: 20 connections
    s.cur_sess = 19
    assert not s.full
    s.cur_sess = 20
    assert s.full
    slowstart.end(s)
    assert not s.full


def test_round_robin_sends_a_ramping_server_its_share() -> None:
    a = server("a", weight=16, slowstart_ms=1_000_000)
    b = server("b", weight=16)
    balancer = make_balancer(Balance(), [a, b], False)
    slowstart.begin(a, 0.0)  # a sixteenth of its weight: 16 against b's 256
    balancer.update()
    picks = Counter(balancer.pick().name for _ in range(272))  # type: ignore[union-attr]
    assert picks == {"a": 16, "b": 256}
    slowstart.end(a)
    balancer.update()
    picks = Counter(balancer.pick().name for _ in range(32))  # type: ignore[union-attr]
    assert picks == {"a": 16, "b": 16}


def test_slowstart_is_read_on_server_and_default_server_lines() -> None:
    text = (
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\nbackend b\n    default-server slowstart 10s\n"
        "    server a 127.0.0.1:80\n    server c 127.0.0.1:81 slowstart 1m\n"
        "    server d 127.0.0.1:82 slowstart 0\n    server e 127.0.0.1:83 slowstart x\n"
    )
    _, diagnostics = parse([("s.cfg", text)], {})
    assert [str(d) for d in diagnostics] == [
        "s.cfg:11: error: 'server': option 'slowstart': unexpected character 'x' in duration 'x'"
    ]
    config, diagnostics = parse([("s.cfg", text.rsplit("    server e", 1)[0])], {})
    assert diagnostics == [] and config is not None
    [backend] = [p for p in config.proxies if p.name == "b"]
    assert [s.slowstart for s in backend.servers] == [10_000, 60_000, 0]
