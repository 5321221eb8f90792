"""Tracking: the rise/fall counter of a vrrp_script, and what scripts and interfaces do to
an instance's priority and FAULT state, as keepalived.conf(5) describes them."""

from __future__ import annotations

from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig, VrrpScript
from poise.vrrp.tracking import ScriptState, evaluate
from tests.unit.keepalived_support import FakeSource


def script_state(rise: int = 1, fall: int = 1, init_fail: bool = False) -> ScriptState:
    command = parse_config("").scripts["ok"].command
    return ScriptState.for_script(
        VrrpScript("s", command, rise=rise, fall=fall, init_fail=init_fail)
    )


def parse_config(extra: str, priority: int = 100) -> KeepalivedConfig:
    text = f"""
vrrp_script ok {{
    script /bin/true
}}
vrrp_script plus {{
    script /bin/true
    weight 2
}}
vrrp_script minus {{
    script /bin/true
    weight -30
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority {priority}
    {extra}
}}
"""
    config, diagnostics = parse("/k.conf", FakeSource({"/k.conf": text}))
    assert config is not None, diagnostics
    return config


def test_one_success_makes_a_new_script_good_and_fall_failures_make_it_bad() -> None:
    state = script_state(rise=2, fall=3)
    assert state.good is None  # no result yet
    assert state.record(True) and state.good is True  # one success is enough at start
    assert not state.record(False) and not state.record(False)
    assert state.record(False) and state.good is False  # the third failure in a row
    assert not state.record(True) and state.good is False
    assert state.record(True) and state.good is True  # rise successes in a row


def test_init_fail_starts_bad() -> None:
    state = script_state(rise=2, init_fail=True)
    assert state.good is False
    assert not state.record(True)
    assert state.record(True) and state.good is True


def verdict(
    config: KeepalivedConfig, results: dict[str, bool], links: dict[str, bool] | None = None
) -> tuple[int, bool]:
    states = {}
    for name, good in results.items():
        state = ScriptState.for_script(config.scripts[name])
        state.record(good)
        states[name] = state
    result = evaluate(config.instances[0], config, states, links or {"eth0": True})
    return result.priority, result.fault


def test_weights_follow_the_script_results() -> None:
    config = parse_config("track_script {\n plus\n minus\n}")
    assert verdict(config, {}) == (100, False)  # no result yet: no change
    assert verdict(config, {"plus": True, "minus": True}) == (102, False)
    assert verdict(config, {"plus": False, "minus": False}) == (70, False)


def test_a_weight_0_script_or_interface_down_means_fault() -> None:
    config = parse_config("track_script {\n ok\n}\ntrack_interface {\n eth1\n}")
    assert verdict(config, {"ok": True}, {"eth0": True, "eth1": True}) == (100, False)
    assert verdict(config, {"ok": False}, {"eth0": True, "eth1": True}) == (100, True)
    assert verdict(config, {"ok": True}, {"eth0": True, "eth1": False}) == (100, True)
    assert verdict(config, {"ok": True}, {"eth0": False, "eth1": True}) == (100, True)


def test_the_instance_s_own_interface_is_tracked_unless_told_not_to() -> None:
    config = parse_config("dont_track_primary")
    assert verdict(config, {}, {"eth0": False}) == (100, False)


def test_overrides_reverse_and_limits() -> None:
    config = parse_config("track_script {\n plus weight 200\n minus reverse\n}")
    assert verdict(config, {"plus": True, "minus": False}) == (254, False)  # capped, reverse: up
    config = parse_config("track_script {\n minus weight -120\n}", priority=100)
    assert verdict(config, {"minus": False}) == (1, False)
    config = parse_config("track_interface {\n eth1 weight -10\n}")
    assert verdict(config, {}, {"eth0": True, "eth1": False}) == (90, False)


def test_the_owner_s_priority_never_moves_but_it_can_fault() -> None:
    config = parse_config("track_script {\n minus\n ok\n}", priority=255)
    assert verdict(config, {"minus": False, "ok": True}) == (255, False)
    assert verdict(config, {"minus": True, "ok": False}) == (255, True)
