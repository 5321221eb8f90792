"""keepalived.conf's process settings as poise reads them: the VRRP process's tuning
(`vrrp_priority`, `vrrp_cpu_affinity`, `vrrp_no_swap`; real-time scheduling:
`vrrp_rt_priority`, `max_auto_priority`, `min_auto_priority_delay`, `vrrp_rlimit_rttime`)
kept for vrrp/tuning.py and vrrp/realtime.py, what has no meaning for one poise process
(`checker_*`, `bfd_*`, the checker's netlink and the process monitor's buffers) a warning
that says why, the netlink sockets' buffer sizes, Keepalived's leniency on bad values, and
an instance without a virtual address run with Keepalived 2.2.7's warning (VRRPv2) or
refused with its error (VRRPv3, IPv6)."""

from __future__ import annotations

import pytest

from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig
from tests.unit.keepalived_support import FakeSource, errors, warnings

PATH = "/etc/keepalived/keepalived.conf"
INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.51.100.170/24
    }
}
"""


def load(text: str) -> tuple[KeepalivedConfig | None, list[str], list[str]]:
    config, diagnostics = parse(PATH, FakeSource({PATH: text}))
    return config, [str(d) for d in errors(diagnostics)], [str(d) for d in warnings(diagnostics)]


def test_the_vrrp_process_settings_are_kept() -> None:
    config, errs, warns = load(
        "global_defs {\n vrrp_priority -10\n vrrp_cpu_affinity 0 1\n vrrp_no_swap\n}\n" + INSTANCE
    )
    assert config is not None and not errs and not warns
    defaults = config.global_defs
    assert defaults.vrrp_priority == -10
    assert defaults.vrrp_cpu_affinity == (0, 1)
    assert defaults.vrrp_no_swap


def test_without_them_nothing_is_changed() -> None:
    config, _, _ = load(INSTANCE)
    assert config is not None
    defaults = config.global_defs
    assert (defaults.vrrp_priority, defaults.vrrp_cpu_affinity, defaults.vrrp_no_swap) == (
        None,
        (),
        False,
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("checker_priority -5", "no separate checker process"),
        ("checker_rt_priority 10", "no separate checker process"),
        ("checker_no_swap", "no separate checker process"),
        ("checker_cpu_affinity 1", "no separate checker process"),
        ("checker_rlimit_rttime 10000", "no separate checker process"),
        ("bfd_priority -5", "no BFD process"),
        ("bfd_rlimit_rttime 1000", "no BFD process"),
        ("lvs_netlink_cmd_rcv_bufs 524288", "no separate checker process with netlink"),
        ("lvs_netlink_monitor_rcv_bufs_force", "no separate checker process with netlink"),
        ("process_monitor_rcv_bufs 500000", "no process-monitoring socket"),
        ("process_monitor_rcv_bufs_force yes", "no process-monitoring socket"),
    ],
)
def test_what_one_poise_process_cannot_mean_is_a_warning_that_says_why(line: str, why: str) -> None:
    config, errs, warns = load(f"global_defs {{\n {line}\n}}\n" + INSTANCE)
    assert config is not None and not errs
    (warning,) = warns
    keyword = line.split(maxsplit=1)[0]
    assert warning.startswith(f"{PATH}:2: warning: '{keyword}': ")
    assert why in warning and warning.endswith("ignored")


def test_netlink_receive_buffers_are_read_for_the_vrrp_process() -> None:
    config, errs, warns = load(
        "global_defs {\n vrrp_netlink_cmd_rcv_bufs 524288\n vrrp_netlink_cmd_rcv_bufs_force\n"
        " vrrp_netlink_monitor_rcv_bufs 2097152\n vrrp_netlink_monitor_rcv_bufs_force off\n}\n"
        + INSTANCE
    )
    assert config is not None and not errs and not warns
    defaults = config.global_defs
    assert (defaults.vrrp_netlink_cmd_rcv_bufs, defaults.vrrp_netlink_cmd_rcv_bufs_force) == (
        524288,
        True,
    )
    assert defaults.vrrp_netlink_monitor_rcv_bufs == 2097152
    assert not defaults.vrrp_netlink_monitor_rcv_bufs_force
    _, errs, _ = load("global_defs {\n vrrp_netlink_cmd_rcv_bufs lots\n}\n" + INSTANCE)
    assert errs and errs[0].startswith(f"{PATH}:2: ")


def test_real_time_settings_are_read_with_keepalived_defaults() -> None:
    config, errs, warns = load(INSTANCE)
    assert config is not None and not errs and not warns
    defaults = config.global_defs
    assert (defaults.vrrp_rt_priority, defaults.max_auto_priority) == (None, 0)
    assert (defaults.min_auto_priority_delay, defaults.vrrp_rlimit_rttime) == (1_000_000, 10_000)
    lines = "vrrp_rt_priority 50\n min_auto_priority_delay 2000\n vrrp_rlimit_rttime 90000"
    config, errs, warns = load(f"global_defs {{\n {lines}\n}}\n" + INSTANCE)
    assert config is not None and not errs and not warns, (errs, warns)
    defaults = config.global_defs
    assert (defaults.vrrp_rt_priority, defaults.min_auto_priority_delay) == (50, 2000)
    assert defaults.vrrp_rlimit_rttime == 90000
    config, errs, _ = load("global_defs {\n min_auto_priority_delay 10000001\n}\n" + INSTANCE)
    assert config is None and "out of range" in errs[0], errs
    # keepalived -t: "vrrp process real-time priority 0 less than minimum 1 - setting to minimum"
    config, errs, warns = load("global_defs {\n vrrp_rt_priority 0\n}\n" + INSTANCE)
    assert config is not None and config.global_defs.vrrp_rt_priority == 1 and not errs
    assert "real-time priority 0 less than minimum 1 - setting to minimum" in warns[0]


def test_a_priority_out_of_range_is_ignored_with_a_warning_as_keepalived_does() -> None:
    # keepalived -t: "number '30' outside range [-20, 19]", "Invalid vrrp process priority"
    config, errs, warns = load("global_defs {\n vrrp_priority 30\n}\n" + INSTANCE)
    assert config is not None and not errs
    assert config.global_defs.vrrp_priority is None
    (warning,) = warns
    assert "invalid vrrp process priority, ignored" in warning and ":2:" in warning


def test_a_cpu_that_is_not_a_number_is_dropped_with_keepalived_words() -> None:
    config, errs, warns = load("global_defs {\n vrrp_cpu_affinity 1 0-1\n}\n" + INSTANCE)
    assert config is not None and not errs
    assert config.global_defs.vrrp_cpu_affinity == (1,)
    assert warns == [
        f"{PATH}:2: warning: 'vrrp_cpu_affinity': Invalid cpu_id:0-1 specified for vrrp process"
    ]


def test_an_instance_without_a_virtual_address_runs_with_keepalived_warning() -> None:
    config, errs, warns = load(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 150\n}\n"
    )
    assert config is not None and not errs
    (vi,) = config.instances
    assert vi.virtual_ipaddress == () and vi.family == 4
    assert warns == [
        f"{PATH}:1: warning: 'vrrp_instance': (VI_1) No VIP specified; at least one is sensible"
    ]


@pytest.mark.parametrize(
    "extra", ["version 3", "native_ipv6", "version 2\n native_ipv6"], ids=["v3", "ipv6", "v2-ipv6"]
)
def test_vrrpv3_or_ipv6_without_a_virtual_address_is_an_error_as_keepalived(extra: str) -> None:
    # keepalived -t: "(VI_1) No VIP specified; at least one is required", exit status 5
    config, errs, _ = load(
        f"vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n {extra}\n}}\n"
    )
    assert config is None
    assert errs == [
        f"{PATH}:1: error: 'vrrp_instance': (VI_1) No VIP specified; at least one is required"
    ]


def test_the_global_vrrp_version_3_needs_one_too() -> None:
    config, errs, _ = load(
        "global_defs {\n vrrp_version 3\n}\n"
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n}\n"
    )
    assert config is None and "at least one is required" in errs[0]


def test_an_address_of_the_other_family_is_dropped_with_keepalived_warning() -> None:
    config, errs, warns = load(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n version 2\n"
        " virtual_ipaddress {\n  198.51.100.170/24\n  2001:db8::1\n }\n}\n"
    )
    assert config is not None and not errs
    (vi,) = config.instances
    assert [str(v.ip) for v in vi.virtual_ipaddress] == ["198.51.100.170"]
    assert any("address family must match" in w for w in warns)
