"""The Prometheus exporter's text: HAProxy 2.6's metric names, types, help texts, labels
and value formats (compared with HAProxy 2.6.12's `prometheus-exporter` service on the
same configuration), and its query-string filters."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.admin import prometheus, stats_report
from poise.core.server import AdminState
from tests.unit.stats_page_world import START_TIME, STARTED, World

# HAProxy 2.6.12's own lines for some metrics (its HELP, TYPE and the line format).
HAPROXY_GROUPS = {
    "haproxy_frontend_current_sessions": (
        "# HELP haproxy_frontend_current_sessions Number of current sessions on the frontend, "
        "backend or server\n# TYPE haproxy_frontend_current_sessions gauge\n"
    ),
    "haproxy_server_status": (
        "# HELP haproxy_server_status Current status of the service, per state label value.\n"
        "# TYPE haproxy_server_status gauge\n"
    ),
    "haproxy_server_check_status": (
        "# HELP haproxy_server_check_status Status of last health check, per state label "
        "value.\n# TYPE haproxy_server_check_status gauge\n"
    ),
    "haproxy_backend_sessions_total": (
        "# HELP haproxy_backend_sessions_total Total number of sessions since process started\n"
        "# TYPE haproxy_backend_sessions_total counter\n"
    ),
    "haproxy_process_build_info": (
        "# HELP haproxy_process_build_info Build info\n# TYPE haproxy_process_build_info gauge\n"
    ),
}


def text(world: World, query: str | None = None, rates: stats_report.Rates | None = None) -> str:
    view = world.view()
    rates = rates or stats_report.Rates()
    sections = stats_report.report(view, rates)
    return prometheus.exporter(view, sections, rates, prometheus.parse_query(query))


def lines_of(body: str, metric: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith(metric + "{")] or [
        line for line in body.splitlines() if line.startswith(metric + " ")
    ]


@pytest.fixture
def world() -> World:
    world = World()
    world.checked()
    return world


def test_groups_have_haproxy_s_help_and_type(world: World) -> None:
    body = text(world)
    for metric, group in HAPROXY_GROUPS.items():
        assert group in body, metric
    # Every group is HELP, TYPE, then its lines, and no metric appears twice.
    names = re.findall(r"^# TYPE (\S+) (gauge|counter)$", body, re.M)
    assert len(names) == len({name for name, _ in names})
    for name, _ in names:
        assert name.startswith(
            ("haproxy_process_", "haproxy_frontend_", "haproxy_backend_")
        ) or name.startswith("haproxy_server_")


def test_the_order_of_the_metrics_is_haproxy_s(world: World) -> None:
    body = text(world)
    names = re.findall(r"^# TYPE haproxy_(\w+?)_(\S+) ", body, re.M)
    frontend = [prometheus.FIELDS[c][0] for c in prometheus.FRONTEND_METRICS]
    shown = [suffix for scope, suffix in names if scope == "frontend"]
    assert shown == [name for name in frontend if name in shown]
    assert [scope for scope, _ in names] == sorted(
        (scope for scope, _ in names), key=["process", "frontend", "backend", "server"].index
    )


def test_labels_and_values(world: World) -> None:
    body = text(world)
    assert lines_of(body, "haproxy_frontend_current_sessions") == [
        'haproxy_frontend_current_sessions{proxy="fe"} 0',
        'haproxy_frontend_current_sessions{proxy="stats"} 0',
        'haproxy_frontend_current_sessions{proxy="tcpapp"} 0',
    ]
    assert lines_of(body, "haproxy_server_status")[:5] == [
        'haproxy_server_status{proxy="app",server="web1",state="DOWN"} 0',
        'haproxy_server_status{proxy="app",server="web1",state="UP"} 1',
        'haproxy_server_status{proxy="app",server="web1",state="MAINT"} 0',
        'haproxy_server_status{proxy="app",server="web1",state="DRAIN"} 0',
        'haproxy_server_status{proxy="app",server="web1",state="NOLB"} 0',
    ]
    # web3 is not checked: "no check" is UP, and it has no check metrics.
    assert 'haproxy_server_status{proxy="app",server="web3",state="UP"} 1' in body
    checks = lines_of(body, "haproxy_server_check_status")
    assert 'haproxy_server_check_status{proxy="app",server="web1",state="L4OK"} 1' in checks
    assert 'haproxy_server_check_status{proxy="app",server="web2",state="L4CON"} 1' in checks
    assert not [line for line in checks if 'server="web3"' in line]
    assert len(checks) == 2 * 16
    assert lines_of(body, "haproxy_server_check_code") == [
        'haproxy_server_check_code{proxy="app",server="web1"} 0',
        'haproxy_server_check_code{proxy="app",server="web2"} 0',
    ]
    assert 'haproxy_server_check_duration_seconds{proxy="app",server="web1"} 0.001000' in body


def test_haproxy_s_nan_for_missing_limits(world: World) -> None:
    body = text(world)
    assert 'haproxy_server_limit_sessions{proxy="app",server="web1"} NaN' in body
    assert 'haproxy_server_limit_sessions{proxy="app",server="web2"} 10' in body
    assert 'haproxy_server_queue_limit{proxy="app",server="web1"} NaN' in body
    assert 'haproxy_server_queue_limit{proxy="app",server="web2"} 5' in body
    assert 'haproxy_server_check_failures_total{proxy="app",server="web3"} NaN' in body


def test_what_poise_does_not_measure_is_left_out(world: World) -> None:
    body = text(world)
    for absent in ("http_comp_bytes_in_total", "pool_used_bytes"):
        assert absent not in body
    # The cache counts its lookups and hits (the `cache` section), so they are shown.
    assert 'haproxy_frontend_http_cache_hits_total{proxy="fe"} 0' in body


def test_aggregates_of_a_backend(world: World) -> None:
    world.server("app", "web3").admin = AdminState.MAINT
    body = text(world)
    assert lines_of(body, "haproxy_backend_agg_server_status")[:5] == [
        'haproxy_backend_agg_server_status{proxy="app",state="DOWN"} 1',
        'haproxy_backend_agg_server_status{proxy="app",state="UP"} 1',
        'haproxy_backend_agg_server_status{proxy="app",state="MAINT"} 1',
        'haproxy_backend_agg_server_status{proxy="app",state="DRAIN"} 0',
        'haproxy_backend_agg_server_status{proxy="app",state="NOLB"} 0',
    ]
    assert 'haproxy_backend_agg_check_status{proxy="app",state="L4CON"} 1' in body


def test_process_metrics(world: World) -> None:
    key = stats_report.PROCESS
    body = text(world, rates=stats_report.Rates({key: 3}, {key: 9}))
    assert "haproxy_process_uptime_seconds 65\n" in body
    assert "haproxy_process_max_connections 4096\n" in body
    assert "haproxy_process_current_connection_rate 3\n" in body
    assert "haproxy_process_max_session_rate 9\n" in body
    # poise's own counter (HAProxy only logs failed accepts): `show info` FailedAccepts.
    assert "# TYPE haproxy_process_failed_accepts_total counter\n" in body
    assert "haproxy_process_failed_accepts_total 0\n" in body
    assert 'haproxy_process_build_info{version="0.1.0"} 1\n' in body
    assert f"haproxy_process_start_time_seconds {int(START_TIME)}\n" in body
    assert STARTED > 0
    # What HAProxy reports of the process that poise knows too: requests and bytes out
    # summed over the frontends, pipes and memory limits poise never has.
    requests = sum(fe.req_tot for fe in world.view().frontends.values())
    out = sum(fe.bytes_out for fe in world.view().frontends.values())
    assert f"haproxy_process_requests_total {requests}\n" in body
    assert f"haproxy_process_bytes_out_total {out}\n" in body
    for zero in ("max_pipes", "pipes_used_total", "spliced_bytes_out_total", "max_memory_bytes"):
        assert f"haproxy_process_{zero} 0\n" in body
    assert "# TYPE haproxy_process_requests_total counter\n" in body
    assert "haproxy_process_active_peers 0\n" in body


def test_the_process_metrics_come_in_haproxy_s_order(world: World) -> None:
    """HAProxy 2.6's exporter writes its process metrics in this order (read off its
    output); poise leaves out those it cannot know and keeps the rest in place."""
    haproxy = (
        "nbthread", "nbproc", "relative_process_id", "uptime_seconds", "pool_failures_total",
        "max_fds", "max_sockets", "max_connections", "hard_max_connections",
        "current_connections", "connections_total", "requests_total", "max_ssl_connections",
        "current_ssl_connections", "ssl_connections_total", "max_pipes", "pipes_used_total",
        "pipes_free_total", "current_connection_rate", "limit_connection_rate",
        "max_connection_rate", "current_session_rate", "limit_session_rate", "max_session_rate",
        "stopping", "jobs", "unstoppable_jobs", "listeners", "active_peers", "connected_peers",
        "dropped_logs_total", "busy_polling_enabled", "failed_resolutions", "bytes_out_total",
        "spliced_bytes_out_total", "bytes_out_rate", "recv_logs_total", "build_info",
        "max_memory_bytes", "pool_allocated_bytes", "pool_used_bytes", "start_time_seconds",
    )  # fmt: skip
    body = text(world)
    shown = re.findall(r"^# TYPE haproxy_process_(\S+) ", body, re.M)
    own = {"failed_accepts_total"}  # poise's own, after `stopping`
    assert [n for n in shown if n not in own] == [n for n in haproxy if n in shown]


def test_scopes_filter_in_order(world: World) -> None:
    assert "haproxy_process_" not in text(world, "scope=server")
    assert "haproxy_frontend_" not in text(world, "scope=server")
    only = text(world, "scope=frontend&scope=backend")
    assert "haproxy_frontend_" in only and "haproxy_backend_" in only
    assert "haproxy_server_" not in only and "haproxy_process_" not in only
    assert text(world, "scope=*&scope=") == ""
    assert text(world, "scope=&scope=global").startswith("# HELP haproxy_process_nbthread")
    assert text(world, "scope=listener") == ""  # no `option socket-stats` here


def test_an_unknown_scope_is_a_bad_request() -> None:
    with pytest.raises(prometheus.BadQuery):
        prometheus.parse_query("scope=bogus")


def test_no_maint_leaves_servers_in_maintenance_out(world: World) -> None:
    world.server("app", "web3").admin = AdminState.MAINT
    body = text(world, "no-maint")
    assert 'server="web3"' not in body and 'server="web1"' in body
    assert 'server="web3"' in text(world)


def test_label_values_are_escaped() -> None:
    assert prometheus.label(proxy='a"b\\c') == '{proxy="a\\"b\\\\c"}'


ALL = set(prometheus.SCOPES)
# What HAProxy 2.6.12's exporter does with each query (None: 400 Bad Request), measured.
HAPROXY_QUERIES: list[tuple[str, set[str] | None]] = [
    ("scope=%00", set()), ("scope=", set()), ("scope=global%00junk", {"global"}),
    ("scope%00x=global", {"global"}), ("a=%00&scope=frontend", {"frontend"}),
    ("scope=x%00", None), ("scope=global%00%zz", None), ("scope=%", None), ("scope=%zz", None),
    ("scope=%2", None), ("scope=%0", None), ("x=%", None), ("no-maint=%zz", None),
    ("scope=foo", None), ("scope=Global", None), ("scope=%47lobal", None),
    ("scope=global+", None), ("scope=global%20", None), ("scope=%FF", None),
    ("scope=global;x", None), ("scope=global?x", None), ("scope=%23", None),
    ("scope=frontend%26scope=backend", None), ("scope", None), ("scope=global=x", None),
    ("scope==global", None), ("foo=a=b", None), ("scope=%2a", ALL), ("scope=*x", ALL),
    ("scope=server&scope=*", ALL), ("SCOPE=foo", ALL), ("no-maint", ALL),
    ("scope=glob%61l", {"global"}), ("%73cope=global", {"global"}),
    ("scope=global&", {"global"}), ("&&scope=global", {"global"}), ("=&scope=global", {"global"}),
    ("scope=global&scope=%00", set()), ("scope=*&scope=", set()),
    ("scope=&scope=global", {"global"}), ("scope=*&scope=%00&scope=server", {"server"}),
    ("scope=sticktable", set()), ("scope=listener", {"listener"}),
    ("scope=global&no-maint", {"global"}), ("scope=global#x", {"global"}),
]  # fmt: skip


@pytest.mark.parametrize(("query", "scopes"), HAPROXY_QUERIES)
def test_odd_queries_are_read_as_haproxy_reads_them(query: str, scopes: set[str] | None) -> None:
    if scopes is None:
        with pytest.raises(prometheus.BadQuery):
            prometheus.parse_query(query)
    else:
        assert prometheus.parse_query(query).scopes == scopes


@given(st.text(alphabet="scope=&%0aA*#+gl\x00", max_size=40))
def test_any_query_is_read_or_refused_never_raising_otherwise(query: str) -> None:
    with contextlib.suppress(prometheus.BadQuery):
        assert prometheus.parse_query(query).scopes <= ALL
