"""The per-request counters (core/counters.py) and the columns they fill in `show stat`,
the JSON stats and the Prometheus exporter, from a model with known counts. What counts
where was compared with HAProxy 2.6.12 (tests/io/test_stats_counters.py sends the
traffic)."""

from __future__ import annotations

import json

import pytest

from poise.admin import prometheus, stats_json, stats_report
from poise.core import counters
from tests.unit.stats_page_world import World


@pytest.mark.parametrize(
    ("status", "index"),
    [(100, 1), (200, 1 + 1), (302, 3), (404, 4), (503, 5), (599, 5), (600, 0), (99, 0), (999, 0)],
)
def test_status_classes(status: int, index: int) -> None:
    assert counters.status_class(status) == index
    assert counters.STATUS_CLASS[status] == index


@pytest.mark.parametrize(
    ("term", "http", "expected"),
    [
        # (cli_abrt, srv_abrt, eresp) on the backend and the server
        ("CD", True, (1, 0, 0)),
        ("cD", True, (1, 0, 0)),
        ("CH", True, (1, 0, 0)),
        ("CH", False, (0, 0, 0)),
        ("SD", True, (0, 1, 1)),
        ("sD", True, (0, 1, 1)),
        ("SD", False, (0, 1, 0)),
        ("SH", True, (0, 0, 1)),
        ("sH", True, (0, 0, 1)),
        ("PH", True, (0, 0, 1)),
        ("SC", True, (0, 0, 0)),
        ("CQ", True, (0, 0, 0)),
        ("PR", True, (0, 0, 0)),
    ],
)
def test_what_an_ending_counts(term: str, http: bool, expected: tuple[int, int, int]) -> None:
    world = World()
    backend = world.backends["app"]
    server = world.server("app", "web1")
    counters.count_failure(term, backend, server, http=http)
    for item in (backend, server):
        assert (item.cli_abrt, item.srv_abrt, item.failed_resp) == expected
    counters.count_failure(term, backend, None, http=http)  # no server: the backend's only
    assert (backend.cli_abrt, backend.srv_abrt, backend.failed_resp) == tuple(
        2 * n for n in expected
    )
    assert (server.cli_abrt, server.srv_abrt, server.failed_resp) == expected


def test_retries_and_redispatches_count_on_the_server_left() -> None:
    world = World()
    backend = world.backends["app"]
    web1, web2 = world.server("app", "web1"), world.server("app", "web2")
    counters.count_retry(backend, web1, redispatched=False)
    counters.count_retry(backend, web1, redispatched=True)
    counters.count_retry(backend, web2, redispatched=False)
    assert (web1.retries, web1.redispatches, web2.retries, web2.redispatches) == (1, 1, 1, 0)
    assert (backend.retries, backend.redispatches) == (2, 1)


def counted(world: World) -> None:
    """Traffic as the shells count it: fe sent 3x200, 2x404, a 403, a 503; app's web1
    answered the 200s and 404s (one 100 Continue first), app answered the 503 itself."""
    fe = world.frontends["fe"]
    app = world.backends["app"]
    web1 = world.server("app", "web1")
    fe.hrsp[:] = [0, 0, 3, 0, 3, 1]
    fe.unanswered = 1  # a client that left before its response
    fe.bytes_in, fe.bytes_out = 700, 5000
    app.hrsp[:] = [0, 0, 3, 0, 2, 1]
    web1.hrsp[:] = [0, 1, 3, 0, 2, 0]
    web1.bytes_in, web1.bytes_out = 500, 4000
    world.server("app", "web2").bytes_in = 30
    app.unserved_bytes_in, app.unserved_bytes_out = 60, 200
    web1.failed_resp = web1.srv_abrt = 1
    app.failed_resp, app.srv_abrt, app.cli_abrt, app.retries, app.redispatches = 2, 1, 3, 4, 5
    world.backends["tcpapp"].unserved_bytes_in = 9


def rows(world: World) -> dict[tuple[str, str], dict[str, str]]:
    lines = stats_report.show_stat(world.view()).splitlines()
    names = lines[0][2:].split(",")
    return {
        (fields[0], fields[1]): dict(zip(names, fields, strict=False))
        for fields in (line.split(",") for line in lines[1:])
    }


HRSP = ["hrsp_other", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "req_tot"]


def test_show_stat_fills_the_per_request_columns() -> None:
    world = World()
    counted(world)
    stat = rows(world)
    fe, app, web1 = stat[("fe", "FRONTEND")], stat[("app", "BACKEND")], stat[("app", "web1")]
    assert [fe[c] for c in HRSP] == ["0", "0", "3", "0", "3", "1", "8"]
    assert (fe["bin"], fe["bout"]) == ("700", "5000")
    assert fe["eresp"] == fe["cli_abrt"] == fe["wretr"] == ""  # not frontend columns
    assert [app[c] for c in HRSP] == ["0", "0", "3", "0", "2", "1", "6"]
    # A backend's bytes: its servers' and those of its sessions without a server.
    assert (app["bin"], app["bout"]) == ("590", "4200")
    assert [app[c] for c in ("eresp", "srv_abrt", "cli_abrt", "wretr", "wredis")] == [
        "2", "1", "3", "4", "5",
    ]  # fmt: skip
    # A server's requests are the response heads it sent, the interim one too.
    assert [web1[c] for c in HRSP] == ["0", "1", "3", "0", "2", "0", "6"]
    assert (web1["bin"], web1["bout"], web1["eresp"], web1["srv_abrt"]) == ("500", "4000", "1", "1")
    # TCP proxies have bytes, and no HTTP columns.
    tcp_be, tcp_server = stat[("tcpapp", "BACKEND")], stat[("tcpapp", "t1")]
    assert (tcp_be["bin"], tcp_server["bin"]) == ("9", "0")
    assert tcp_be["hrsp_2xx"] == tcp_server["req_tot"] == ""
    assert stat[("tcpapp", "FRONTEND")]["req_tot"] == "0"  # a frontend's, as HAProxy 2.6


def test_a_deleted_server_s_bytes_stay_in_its_backend() -> None:
    world = World()
    counted(world)
    app = world.backends["app"]
    web1 = world.server("app", "web1")
    app.remove(web1)
    assert (app.bytes_in, app.bytes_out) == (590, 4200)


def test_clear_counters_all_clears_them() -> None:
    world = World()
    counted(world)
    for backend in world.backends.values():
        counters.clear(backend)
    stat = rows(world)
    for key in (("app", "BACKEND"), ("app", "web1")):
        assert [stat[key][c] for c in [*HRSP, "bin", "bout", "eresp", "wretr"]] == ["0"] * 11


def test_json_and_prometheus_read_the_same_counters() -> None:
    world = World()
    counted(world)
    view = world.view()
    rates = stats_report.Rates()
    sections = stats_report.report(view, rates)
    fields = {
        (entry["proxyId"], entry["id"], entry["field"]["name"]): entry["value"]["value"]
        for record in json.loads(stats_json.json_rows(sections))
        for entry in record
    }
    app_id = world.proxy("app").id
    assert fields[(app_id, 0, "hrsp_4xx")] == 2
    assert fields[(app_id, 0, "bin")] == 590
    body = prometheus.exporter(view, sections, rates, prometheus.parse_query(None))
    for line in (
        'haproxy_frontend_http_responses_total{proxy="fe",code="2xx"} 3',
        'haproxy_frontend_http_requests_total{proxy="fe"} 8',
        'haproxy_frontend_bytes_in_total{proxy="fe"} 700',
        'haproxy_backend_http_responses_total{proxy="app",code="5xx"} 1',
        'haproxy_backend_bytes_out_total{proxy="app"} 4200',
        'haproxy_backend_response_errors_total{proxy="app"} 2',
        'haproxy_backend_retry_warnings_total{proxy="app"} 4',
        'haproxy_server_http_responses_total{proxy="app",server="web1",code="1xx"} 1',
        'haproxy_server_bytes_in_total{proxy="app",server="web1"} 500',
        'haproxy_server_server_aborts_total{proxy="app",server="web1"} 1',
    ):
        assert line in body.splitlines(), line
