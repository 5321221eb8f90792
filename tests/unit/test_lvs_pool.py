"""The checker's decisions for a virtual server (core/lvs.py) and IPVS persistence over a
balancer (core/balancer/persistence.py), with results and time given by the test."""

from __future__ import annotations

from ipaddress import IPv4Address

from poise.config import model
from poise.config.keepalived import parse
from poise.config.keepalived_lvs_model import VirtualServer
from poise.core.balancer.persistence import Persistent
from poise.core.balancer.roundrobin import RoundRobin
from poise.core.lvs import Log, Pool, Result, Run, misc_result
from poise.core.server import ServerState
from tests.unit.keepalived_support import FakeSource

PATH = "/k.conf"
OK = Result(True)
BAD = Result(False, "Connection refused")


def vs(settings: str = "", rs1: str = "", rs2: str = "", check: str = "retry 2") -> VirtualServer:
    text = f"""
virtual_server 198.51.100.10 80 {{
    protocol TCP
    delay_loop 10
{settings}
    real_server 198.51.100.21 80 {{
        weight 2
{rs1}
        TCP_CHECK {{
            {check}
            delay_before_retry 1
        }}
    }}
    real_server 198.51.100.22 80 {{
        weight 3
{rs2}
        TCP_CHECK {{
            {check}
            delay_before_retry 1
        }}
    }}
}}
"""
    config, diagnostics = parse(PATH, FakeSource({PATH: text}))
    assert config is not None, [str(d) for d in diagnostics]
    return config.virtual_servers[0]


def logs(actions: list[Log | Run]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Log)]


def test_a_failure_is_retried_before_it_counts_then_the_server_leaves_and_comes_back() -> None:
    pool = Pool(vs(rs1='notify_down "/bin/echo down"'))
    assert pool.weights() == [2, 3]
    assert pool.result(0, 0, BAD) == (1.0, [])  # retry 1 of 2, delay_before_retry later
    assert pool.result(0, 0, BAD) == (1.0, [])
    delay, actions = pool.result(0, 0, BAD)
    assert delay == 10.0
    assert logs(actions) == [
        "Check on service [198.51.100.21]:tcp:80 failed after 2 retries.",
        "TCP_CHECK on service [198.51.100.21]:tcp:80 failed (Connection refused).",
        "Removing service [198.51.100.21]:tcp:80 from VS [198.51.100.10]:tcp:80",
        "Executing [/bin/echo down] for service [198.51.100.21]:tcp:80 in VS "
        "[198.51.100.10]:tcp:80",
    ]
    assert [a.command.argv for a in actions if isinstance(a, Run)] == [("/bin/echo", "down")]
    assert pool.weights() == [None, 3]
    assert pool.result(0, 0, BAD) == (10.0, [])  # a dead checker is not retried
    delay, actions = pool.result(0, 0, OK)
    assert logs(actions) == [
        "TCP connection to [198.51.100.21]:tcp:80 success.",
        "Adding service [198.51.100.21]:tcp:80 to VS [198.51.100.10]:tcp:80",
    ]
    assert pool.weights() == [2, 3]


def test_log_all_failures_logs_each_try() -> None:
    pool = Pool(vs(check="retry 1\n log_all_failures"))
    _, actions = pool.result(0, 0, BAD)
    assert logs(actions) == [
        "TCP_CHECK on service [198.51.100.21]:tcp:80 failed (Connection refused)."
    ]
    assert pool.weights() == [2, 3]  # a try, not yet a failure


def test_a_success_resets_the_retries() -> None:
    pool = Pool(vs(check="retry 1"))
    assert pool.result(0, 0, BAD) == (1.0, [])
    assert pool.result(0, 0, OK) == (10.0, [])
    assert pool.result(0, 0, BAD) == (1.0, [])  # one retry again


def test_inhibit_on_failure_keeps_the_server_with_weight_0() -> None:
    pool = Pool(vs(rs1="inhibit_on_failure", check="retry 0"))
    _, actions = pool.result(0, 0, BAD)
    assert "Disabling service [198.51.100.21]:tcp:80 from VS [198.51.100.10]:tcp:80" in logs(
        actions
    )
    assert pool.weights() == [0, 3]
    _, actions = pool.result(0, 0, OK)
    assert "Enabling service [198.51.100.21]:tcp:80 to VS [198.51.100.10]:tcp:80" in logs(actions)


def test_alpha_starts_every_server_failed() -> None:
    pool = Pool(vs("alpha", check="retry 0"))
    assert pool.weights() == [None, None]
    _, actions = pool.result(1, 0, OK)
    assert "Adding service [198.51.100.22]:tcp:80 to VS [198.51.100.10]:tcp:80" in logs(actions)
    assert pool.weights() == [None, 3]


def test_quorum_with_hysteresis_and_a_sorry_server() -> None:
    settings = (
        "quorum 4\nhysteresis 1\nsorry_server 198.51.100.99 8080\n"
        'quorum_up "/bin/echo up"\nquorum_down "/bin/echo down"'
    )
    pool = Pool(vs(settings, check="retry 0"))
    assert (pool.weights(), pool.sorry_weight()) == ([2, 3], None)  # 5 >= 4
    _, actions = pool.result(0, 0, BAD)  # 3: not below 4 - 1
    assert not [t for t in logs(actions) if "quorum" in t]
    assert pool.weights() == [None, 3]
    _, actions = pool.result(1, 0, BAD)  # 0: lost
    assert logs(actions)[2:] == [
        "Lost quorum 4-1=3 > 0 for VS [198.51.100.10]:tcp:80",
        "Executing [/bin/echo down] for VS [198.51.100.10]:tcp:80",
        "Adding sorry server [198.51.100.99]:tcp:8080 to VS [198.51.100.10]:tcp:80",
        "Removing alive servers from the pool for VS [198.51.100.10]:tcp:80",
    ]
    assert [a.command.argv for a in actions if isinstance(a, Run)] == [("/bin/echo", "down")]
    assert (pool.weights(), pool.sorry_weight()) == ([None, None], 1)
    _, actions = pool.result(1, 0, OK)  # 3: not yet 4 + 1
    assert (pool.weights(), pool.sorry_weight()) == ([None, None], 1)  # the sorry server only
    _, actions = pool.result(0, 0, OK)  # 5: gained
    assert logs(actions)[2:] == [
        "Gained quorum 4+1=5 <= 5 for VS [198.51.100.10]:tcp:80",
        "Removing sorry server [198.51.100.99]:tcp:8080 from VS [198.51.100.10]:tcp:80",
        "Adding alive servers to the pool for VS [198.51.100.10]:tcp:80",
        "Executing [/bin/echo up] for VS [198.51.100.10]:tcp:80",
    ]
    assert (pool.weights(), pool.sorry_weight()) == ([2, 3], None)


def test_a_pool_that_starts_without_quorum_starts_with_its_sorry_server() -> None:
    pool = Pool(vs("alpha\nsorry_server 198.51.100.99 8080\nsorry_server_inhibit"))
    assert logs(pool.start()) == [
        "Enabling sorry server [198.51.100.99]:tcp:8080 to VS [198.51.100.10]:tcp:80"
    ]
    assert (pool.weights(), pool.sorry_weight()) == ([None, None], 1)


def test_misc_dynamic_sets_the_weight_from_the_exit_status() -> None:
    assert misc_result(0, True) == Result(True)
    assert misc_result(1, True) == Result(False, "exited with status 1")
    assert misc_result(12, True) == Result(True, weight=10)
    assert misc_result(12, False) == Result(False, "exited with status 12")
    assert misc_result(None, True, "timed out after 5s") == Result(False, "timed out after 5s")
    pool = Pool(vs())
    _, actions = pool.result(0, 0, misc_result(12, True))
    assert logs(actions) == [
        "Changing weight from 2 to 10 for active service [198.51.100.21]:tcp:80 of VS "
        "[198.51.100.10]:tcp:80"
    ]
    assert pool.weights() == [10, 3]


def test_omega_runs_the_down_scripts_at_shutdown() -> None:
    assert Pool(vs()).stop() == []
    pool = Pool(vs("omega\nquorum_down /bin/true", rs1="notify_down /bin/false"))
    actions = pool.stop()
    assert [a.command.argv for a in actions if isinstance(a, Run)] == [
        ("/bin/false",),
        ("/bin/true",),
    ]


def servers(count: int) -> list[ServerState]:
    return [
        ServerState(
            model.Server(f"s{i}", model.Address("ipv4", f"198.51.100.{i}", 80), model.NOWHERE, i),
            "vs",
        )
        for i in range(1, count + 1)
    ]


def test_persistence_keeps_a_client_on_its_server_until_its_time_is_over() -> None:
    now = [0.0]
    pool = servers(3)
    balancer = Persistent(RoundRobin(pool), 50, None, lambda: now[0])
    alice, bob = IPv4Address("203.0.113.1").packed, IPv4Address("203.0.113.2").packed
    first = balancer.pick(alice)
    assert [balancer.pick(alice) for _ in range(5)] == [first] * 5
    assert balancer.pick(bob) is not first
    now[0] = 49.0  # each connection moves the expiry on
    assert balancer.pick(alice) is first
    now[0] = 98.5
    assert balancer.pick(alice) is first
    now[0] = 200.0  # forgotten: round robin again
    picks = {balancer.pick(alice) for _ in range(3)}
    assert len(picks) == 1  # and remembered again
    assert balancer.pick(b"") is not None  # no address: balanced as it comes


def test_persistence_follows_the_server_state_and_the_granularity() -> None:
    now = [0.0]
    pool = servers(2)
    balancer = Persistent(RoundRobin(pool), 50, 24, lambda: now[0])
    one, other = IPv4Address("203.0.113.1").packed, IPv4Address("203.0.113.77").packed
    first = balancer.pick(one)
    assert first is not None
    assert balancer.pick(other) is first  # same /24
    first.weight = 0  # inhibited (quiescent): persistent clients still go there
    balancer.update()
    assert balancer.pick(one) is first
    first.up = False  # removed: they move
    balancer.update()
    moved = balancer.pick(one)
    assert moved is not None and moved is not first
    assert balancer.pick(other) is moved
