"""core/traffic.py against HAProxy 2.6's own arithmetic: the sliding sums of the four
times (freq_ctr.h's swrate_add_dynamic and swrate_avg, worked by hand below), the rates read
once a second, lastsess, and the UP/DOWN bookkeeping of chkdown and downtime."""

from __future__ import annotations

from poise.core import traffic
from poise.core.traffic import TIME_STATS_SAMPLES, Rate, Traffic


def test_a_plain_sum_until_1024_samples_then_the_sliding_window() -> None:
    t = Traffic()
    for counted in range(1, 11):  # ten transactions of 5, 10, 20, 40 ms
        traffic.sample(t, counted, 5, 10, 20, 40)
    assert (t.q, t.c, t.d, t.t) == (50, 100, 200, 400)
    assert traffic.averages(t, 10) == (5, 10, 20, 40)
    # Past 1024 each sample replaces 1/1024th of the sum, rounded up as HAProxy's:
    # new = old - ceil(old / 1024) + v.
    t.q = 1024 * 7
    traffic.sample(t, TIME_STATS_SAMPLES + 1, 1031, 0, 0, 0)
    assert t.q == 7 * 1024 - 7 + 1031
    assert traffic.averages(t, TIME_STATS_SAMPLES + 1)[0] == (t.q + 1023) // 1024 == 8


def test_averages_round_up_and_an_empty_window_is_1024() -> None:
    t = Traffic()
    traffic.sample(t, 1, 0, 1, 0, 3)
    traffic.sample(t, 2, 0, 0, 0, 0)
    assert traffic.averages(t, 2) == (0, 1, 0, 2)  # ceil(1/2), ceil(3/2)
    # With no transaction counted (a TCP server reached only by persistence: lbtot 0),
    # HAProxy divides by the whole window.
    assert traffic.averages(t, 0) == (0, 1, 0, 1)


def test_maxima_are_kept() -> None:
    t = Traffic()
    traffic.sample(t, 1, 3, 9, 1, 50)
    traffic.sample(t, 2, 1, 2, 8, 20)
    assert (t.q_max, t.c_max, t.d_max, t.t_max) == (3, 9, 8, 50)
    t.clear_maxima()
    assert (t.q_max, t.c_max, t.d_max, t.t_max) == (0, 0, 0, 0)


def test_a_rate_is_the_last_seconds_events_and_its_maximum() -> None:
    rate = Rate()
    for second, (total, expected) in enumerate([(0, 0), (30, 30), (45, 15), (45, 0), (100, 55)]):
        rate.tick(total, float(second))
        assert rate.rate == expected
    assert rate.max == 55


def test_a_rate_read_between_ticks_is_haproxys_sliding_estimate() -> None:
    """read_freq_ctr: the events of the current second, plus the last second's in
    proportion to what is left of the current one."""
    rate = Rate()
    rate.tick(0, 10.0)
    rate.tick(40, 11.0)  # 40 in the last second
    assert rate.read(40, 11.0) == 40
    assert rate.read(50, 11.25) == 10 + 30  # 10 new, 3/4 of the 40
    assert rate.read(50, 12.5) == 10  # more than a second since the tick
    assert rate.highest(100, 11.1) == 60 + 36  # above the ticks' maximum


def test_lastsess_is_seconds_since_a_tick_saw_a_new_session() -> None:
    t = Traffic()
    assert traffic.last_session(t, 0, 100.0) == -1  # never
    t.tick(0, 100.0)
    assert traffic.last_session(t, 0, 101.0) == -1
    assert traffic.last_session(t, 1, 101.0) == 0  # one since the last tick
    t.tick(3, 102.0)
    t.tick(3, 103.0)
    assert traffic.last_session(t, 3, 107.5) == 5


def test_a_server_counts_each_fall_and_the_seconds_it_was_down() -> None:
    t = Traffic()
    traffic.server_state(t, False, 0.0, 10.0)  # DOWN at 10
    assert t.down_trans == 1
    assert traffic.downtime(t, False, 10.0, 25.0) == 15  # still down
    traffic.server_state(t, True, 10.0, 30.0)  # UP at 30
    assert traffic.downtime(t, True, 30.0, 99.0) == 20
    traffic.server_state(t, False, 30.0, 40.0)
    assert (t.down_trans, traffic.downtime(t, False, 40.0, 41.0)) == (2, 21)


def test_a_backend_goes_down_with_its_last_server_and_up_with_its_first() -> None:
    t = Traffic()
    t.last_change = 5.0
    t.backend_state(True, 6.0)  # no change
    assert (t.down_trans, t.last_change) == (0, 5.0)
    t.backend_state(False, 8.0)
    t.backend_state(False, 9.0)
    assert (t.down_trans, t.last_change, t.up) == (1, 8.0, False)
    t.backend_state(True, 12.0)
    assert (t.down_time, t.last_change, t.up) == (4.0, 12.0, True)


def test_a_checked_server_on_its_way_says_how_far_it_is() -> None:
    """HAProxy's "UP 1/3", "DOWN 1/2", "NOLB 2/3", "DRAIN 1/3" (stats.c
    stats_fill_sv_stats_computestate): health - rise + 1 of fall while running, health
    of rise while stopped."""
    from poise.admin.stats_server import server_status
    from poise.config import model
    from poise.config.address import parse_server
    from poise.core.health import Health
    from poise.core.server import AdminState, ServerState

    where = model.Where("t.cfg", 1)
    config = model.Server("s1", parse_server("127.0.0.1:80"), where, 1, check=True, rise=2, fall=3)
    server = ServerState(config, "be")
    server.health = checker = Health(2, 3)
    for health, up, expected in [
        (4, True, "UP"),  # rise + fall - 1: fully up
        (3, True, "UP 2/3"),
        (2, True, "UP 1/3"),  # just started, or two checks failed
        (1, False, "DOWN 1/2"),
        (0, False, "DOWN"),
    ]:
        checker.health, server.up = health, up
        assert server_status(server) == expected, health
    checker.health, server.up = 3, True
    server.admin = AdminState.DRAIN
    assert server_status(server) == "DRAIN 2/3"
    server.admin, server.stopping = AdminState.READY, True
    assert server_status(server) == "NOLB 2/3"
