"""Server and backend options, the pure parts: `minconn`/`fullconn` (HAProxy's
srv_dynamic_maxconn, its config rules), `http-check disable-on-404` (the conditional pass,
NOLB in the server's state, status and log lines), `on-marked-down|up` and `option
prefer-last-server` as parsed and linked (texts checked with `haproxy -c` 2.6.12)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from poise.admin import server_state
from poise.config.haproxy import parse
from poise.config.model import Address, Config, Option, Server
from poise.config.where import Where
from poise.core import health
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.server import AdminState, ServerState

BASE = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
BASE += "    timeout server 1s\n"
WHERE = Where("t.cfg", 1)


def load(text: str) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("s.cfg", BASE + text)], {})
    return config, [str(d) for d in diagnostics]


def server(maxconn: int = 0, minconn: int = 0) -> ServerState:
    config = Server(
        "s", Address("ipv4", "127.0.0.1", 80), WHERE, 1, maxconn=maxconn, minconn=minconn
    )
    return ServerState(config, "b")


@dataclass
class Load:
    cur_sess: int
    fullconn: int


def test_dynamic_maxconn_is_haproxys_formula() -> None:
    s = server(maxconn=1000, minconn=100)
    assert s.minconn == 100 and s.maxconn == 1000
    # configuration.txt's example: 100 at rest, 1000 from 10000 backend connections on.
    assert s.dynamic_maxconn(Load(0, 10000)) == 100
    assert s.dynamic_maxconn(Load(2500, 10000)) == 250
    assert s.dynamic_maxconn(Load(9999, 10000)) == 999
    assert s.dynamic_maxconn(Load(10000, 10000)) == 1000
    assert s.dynamic_maxconn(Load(50000, 10000)) == 1000


def test_minconn_and_maxconn_as_haproxy_settles_them() -> None:
    assert (server(maxconn=10).minconn, server(maxconn=10).maxconn) == (10, 10)
    assert (server(minconn=10).minconn, server(minconn=10).maxconn) == (10, 10)
    both = server(maxconn=5, minconn=10)  # minconn above maxconn raises maxconn
    assert (both.minconn, both.maxconn) == (10, 10)
    assert server().minconn == 0


def test_a_server_with_minconn_is_full_at_its_dynamic_limit() -> None:
    config, problems = load(
        "backend b\n    fullconn 10\n    server a 127.0.0.1:1 minconn 1 maxconn 10\n"
        "    server c 127.0.0.1:2 maxconn 3\n"
    )
    assert config is not None, problems
    proxy = config.proxy("b")
    assert proxy is not None and proxy.fullconn == 10
    states = [ServerState(s, "b") for s in proxy.servers]
    backend = Backend(proxy, states, lambda st: make_balancer(proxy.balance, st, False))
    a, c = states
    assert a.load is backend and c.load is None  # c has a fixed limit
    backend.cur_sess, a.cur_sess = 1, 1
    assert a.full  # 1 connection in the backend: a limit of max(1, 1 * 10 // 10) = 1
    backend.cur_sess = 5
    assert not a.full  # max(1, 5 * 10 // 10) = 5
    a.cur_sess = 5
    assert a.full
    backend.cur_sess = 10
    assert not a.full  # fullconn reached: maxconn


def test_disable_on_404_passes_conditionally_only_a_running_server() -> None:
    wrong = health.CheckResult(False, "Layer7 wrong status", "Not Found", 3, 404)
    nolb = health.disable_on_404(wrong, running=True)
    assert nolb == health.CheckResult(
        True, "Layer7 check conditionally passed", None, 3, 404, conditional=True
    )
    assert nolb.status == "L7OKC"
    assert health.disable_on_404(wrong, running=False) is wrong  # DOWN stays DOWN
    other = health.CheckResult(False, "Layer7 wrong status", "Server Error", 3, 500)
    assert health.disable_on_404(other, running=True) is other
    # The counter counts it as a pass.
    counter = health.Health(rise=2, fall=3)
    counter.record(nolb)
    assert counter.is_up and counter.health == counter.top


def test_a_nolb_server_keeps_persistent_clients_only() -> None:
    s = server()
    s.stopping = True
    assert not s.usable and s.serves_persistent
    assert s.status == "NOLB"
    s.admin = AdminState.DRAIN
    assert s.status == "DRAIN"


def test_the_nolb_log_lines_are_haproxys() -> None:
    result = health.CheckResult(
        True, "Layer7 check conditionally passed", None, 12, 404, conditional=True
    )
    message = health.server_stopping_message("b", "s", active=0, backups=1, result=result)
    assert message.level is health.Severity.NOTICE
    assert message.text == (
        "Server b/s is stopping, reason: Layer7 check conditionally passed, code: 404, "
        "check duration: 12ms. 0 active and 1 backup servers online. Running on backup. "
        "0 sessions requeued, 0 total in queue."
    )
    counter = health.Health(rise=2, fall=3)
    counter.record(result)
    check = health.health_check_message("b", "s", result, counter)
    assert check.text.startswith("Health check for server b/s conditionally succeeded, ")


def test_server_and_backend_options_parse_as_haproxy() -> None:
    config, problems = load(
        "backend b\n    option httpchk\n    http-check disable-on-404\n"
        "    option prefer-last-server\n    fullconn 100\n"
        "    default-server minconn 3 on-marked-down shutdown-sessions\n"
        "    server a 127.0.0.1:1 maxconn 30 on-marked-up shutdown-backup-sessions\n"
        "    server c 127.0.0.1:1 minconn 5\n"
    )
    assert config is not None, problems
    proxy = config.proxy("b")
    assert proxy is not None and proxy.http_check is not None
    assert proxy.http_check.disable_on_404
    assert Option.PREFER_LAST_SERVER in proxy.options and proxy.fullconn == 100
    a, c = proxy.servers
    assert (a.minconn, a.maxconn, a.shutdown_on_down, a.shutdown_backups_on_up) == (
        3, 30, True, True,
    )  # fmt: skip
    assert (c.minconn, c.shutdown_on_down, c.shutdown_backups_on_up) == (5, True, False)


def test_the_errors_and_warnings_are_haproxys() -> None:
    _, problems = load(
        "frontend f\n    bind :80\n    fullconn 10\n    option prefer-last-server\n"
        "    http-check disable-on-404\n    default_backend b\n"
        "backend b\n    server a 127.0.0.1:1 on-marked-down foo\n"
        "    server c 127.0.0.1:1 on-marked-up shutdown-sessions\n"
        "    server d 127.0.0.1:1 minconn x\n    http-check disable-on-404 now\n"
        "    fullconn\n"
    )
    expected = [
        "s.cfg:8: warning: 'fullconn': ignored because frontend 'f' has no backend capability",
        "s.cfg:9: warning: 'option prefer-last-server': ignored because frontend 'f' has no "
        "backend capability",
        "s.cfg:10: warning: 'http-check disable-on-404': ignored because frontend 'f' has no "
        "backend capability",
        "s.cfg:13: error: 'server': option 'on-marked-down': 'on-marked-down' expects "
        "'shutdown-sessions' but got 'foo'.",
        "s.cfg:14: error: 'server': option 'on-marked-up': 'on-marked-up' expects "
        "'shutdown-backup-sessions' but got 'shutdown-sessions'.",
        "s.cfg:16: error: 'http-check disable-on-404': unexpected argument 'now'",
        "s.cfg:17: error: 'fullconn': expects a number",
    ]
    for line in expected:
        assert line in problems, (line, problems)
    assert [p for p in problems if p.startswith("s.cfg:15: error: 'server': option 'minconn'")]


STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight ...
3 be 1 a 127.0.0.1 0 0 1 1 40 8 2 0 6 0 0 0 - 80 - 0 0 - - 0
3 be 2 b 127.0.0.1 2 1 1 1 40 1 0 0 0 0 0 0 - 80 - 0 0 - - 0
3 be 3 c 127.0.0.1 2 8 7 10 40 1 0 1 0 0 0 0 - 80 - 0 0 - - 0
3 be 4 d 127.0.0.1 3 0 1 1 40 16 4 2 6 0 0 0 - 80 - 0 0 - - 0
3 be 5 e 127.0.0.1 9 0 1 1 40 1 0 1 0 0 0 0 - 80 - 0 0 - - 0
3 be 6 f 127.0.0.1 2
"""


def test_a_saved_state_is_read_and_applied_as_haproxy_applies_it() -> None:
    saved, problems = server_state.parse(STATE)
    assert problems == [
        "server-state application failed for server 'be/e', invalid srv_op_state or "
        "srv_admin_state value",
        "corrupted server state file at line 8",
    ]
    assert set(saved) == {("be", "a"), ("be", "b"), ("be", "c"), ("be", "d")}
    a, b = server(), server()
    server_state.apply(a, saved[("be", "a")], now=100.0)
    assert not a.up and a.last_change == 60.0  # DOWN, changed 40 s before
    server_state.apply(b, saved[("be", "b")], now=100.0)
    assert b.up and b.admin is AdminState.MAINT
    c = ServerState(replace(server().config, weight=10), "be")
    server_state.apply(c, saved[("be", "c")], now=100.0)
    assert c.admin is AdminState.DRAIN and c.weight == 7  # the configured weight is 10
    c2 = ServerState(replace(server().config, weight=20), "be")
    server_state.apply(c2, saved[("be", "c")], now=100.0)
    assert c2.weight == 20  # the configuration changed: its weight wins
    d = server()
    server_state.apply(d, saved[("be", "d")], now=100.0)
    assert d.up and d.stopping and d.status == "NOLB"
    assert server_state.parse("2\n") == ({}, ["Can't get version of the server state file"])


def test_the_state_file_keywords_are_haproxys() -> None:
    config, problems = load(
        "backend g\n    load-server-state-from-file global\n    server a 127.0.0.1:1\n"
        "backend l\n    load-server-state-from-file local\n    server a 127.0.0.1:1\n"
        "backend n\n    load-server-state-from-file local\n    server-state-file-name /s/n\n"
        "backend o\n    server a 127.0.0.1:1\n"
    )
    assert config is not None, problems
    files = {p.name: p.server_state_file for p in config.proxies}
    assert files == {"g": None, "l": "l", "n": "/s/n", "o": None}  # no global file: none
    text = "global\n    server-state-file st\n    server-state-base /var/lib/poise/\n" + BASE
    config, _ = parse([("s.cfg", text + "backend g\n    load-server-state-from-file global\n")], {})
    assert config is not None and config.proxies[0].server_state_file == "/var/lib/poise/st"
    _, problems = load("backend b\n    load-server-state-from-file all\n")
    assert (
        "s.cfg:7: error: 'load-server-state-from-file': expects 'global', 'local' or "
        "'none'. Got 'all'" in problems
    )
