"""The runtime API's commands, parsed and applied to real model objects (ServerState,
Backend with a real balancer), with the answers HAProxy 2.6 gives, byte for byte, where
the command exists in both (checked against a running HAProxy 2.6.12).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace

import pytest

from poise.admin import commands, stats
from poise.admin.commands import Command, Level, LineReader
from poise.config import model
from poise.core.backend import Outcome
from poise.core.server import AdminState, ServerState
from tests.unit.admin_support import HEADER_2_6, WHERE, World, make_backend, rows, server


@pytest.fixture
def world() -> World:
    return World()


# -- reading commands ---------------------------------------------------------------------


def test_commands_end_at_a_newline_or_a_semicolon() -> None:
    reader = LineReader()
    reader.feed(b"show info;get weight be/s1\r\nshow st")
    assert reader.next() == Command("show info")
    assert reader.next() == Command("get weight be/s1")
    assert reader.next() is None
    assert reader.pending  # the incomplete line waits for its end
    reader.feed(b"at\n")
    assert reader.next() == Command("show stat")
    assert not reader.pending


def test_an_escaped_semicolon_does_not_end_a_command() -> None:
    reader = LineReader()
    reader.feed(b"get weight a\\;b/c\n")
    command = reader.next()
    assert command == Command("get weight a\\;b/c")
    assert commands.split_words(command.line) == ["get", "weight", "a;b/c"]


def test_a_payload_is_read_up_to_an_empty_line_and_never_run_as_commands() -> None:
    reader = LineReader()
    reader.feed(b"add map m <<\ndisable server be/s1\nk v\n\nshow info\n")
    assert reader.next() == Command("add map m ", "disable server be/s1\nk v")
    assert reader.next() == Command("show info")


def test_words_split_on_spaces_and_tabs_with_backslash_escapes() -> None:
    assert commands.split_words("  get\tweight  be/s1  ") == ["get", "weight", "be/s1"]
    assert commands.split_words("get\\ weight x\\\\y") == ["get weight", "x\\y"]
    assert commands.split_words("") == []


# -- levels, help, unknown commands -------------------------------------------------------


def test_a_command_above_the_level_is_refused_and_changes_nothing(world: World) -> None:
    for level in (Level.USER, Level.OPERATOR):
        assert world.text("set server be/s1 weight 0", level) == "Permission denied\n\n"
        assert world.text("disable server be/s1", level) == "Permission denied\n\n"
        assert world.text("disable server be/nope", level) == "Permission denied\n\n"
    assert world.srv("be", "s1").weight == 10
    assert world.srv("be", "s1").admin is AdminState.READY
    assert world.text("operator", Level.USER) == "Permission denied\n\n"


def test_a_session_lowers_its_own_level(world: World) -> None:
    assert world.text("show cli level", Level.ADMIN) == "admin\n\n"
    assert world.text("operator") == "\n"
    assert world.text("show cli level") == "operator\n\n"
    assert world.text("user") == "\n"
    assert world.text("show cli level") == "user\n\n"
    assert world.text("operator") == "Permission denied\n\n"


def test_help_lists_the_commands_of_the_level(world: World) -> None:
    user = world.text("help", Level.USER)
    admin = world.text("help", Level.ADMIN)
    assert user.startswith("The following commands are valid at this level:\n")
    assert "  get weight <bk>/<srv>                   : report a server's current weight\n" in user
    assert "set server" not in user and "operator" not in user
    assert "  set server <bk>/<srv> [opts]            : " in admin
    assert user.endswith(commands.ALWAYS_LISTED + "\n")
    listed = [line for line in admin.splitlines()[1:] if line][:-3]
    assert listed == sorted(listed)


def test_an_empty_line_lists_every_command(world: World) -> None:
    text = world.text("", Level.USER)
    assert text.startswith("Unknown command. Please enter one of the following commands only:\n")
    assert "  show info " in text


def test_a_partly_known_command_lists_the_commands_it_starts(world: World) -> None:
    text = world.text("show servers", Level.ADMIN)
    assert text == (
        "Unknown command, but maybe one of the following ones is a better match:\n"
        "  show servers state [<backend>]          : dump volatile server information "
        "(all or for a single backend)\n" + commands.ALWAYS_LISTED + "\n"
    )


def test_a_mistyped_command_gets_the_closest_ones(world: World) -> None:
    text = world.text("get wieght be/s1", Level.ADMIN)
    assert text.startswith("Unknown command, but maybe one of the following ones")
    assert "  get weight <bk>/<srv> " in text
    assert "show" not in text


def test_fingerprint_distance_counts_transitions() -> None:
    fp = commands.fingerprint
    assert commands.distance(fp(["weight"]), fp(["weight"])) == 0
    # "ab" vs "ba": presence is equal; start->a, a->b, b->end against start->b, b->a, a->end.
    assert commands.distance(fp(["ab"]), fp(["ba"])) == 6


# -- weights ------------------------------------------------------------------------------


def test_get_weight(world: World) -> None:
    assert world.text("get weight be/s2", Level.USER) == "20 (initial 20)\n\n"
    assert world.text("get weight #3/#2") == "20 (initial 20)\n\n"


STATE_EXPECTED = "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
ABSOLUTE_RANGE = "Absolute weight can only be between 0 and 256 inclusive.\n\n"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("get weight", "Require 'backend/server'.\n\n"),
        ("get weight be", "Require 'backend/server'.\n\n"),
        ("get weight be/", "Require 'backend/server'.\n\n"),
        ("get weight /s1", "No such backend.\n\n"),
        ("get weight nope/s1", "No such backend.\n\n"),
        ("get weight fe/s1", "No such backend.\n\n"),
        ("get weight be/nope", "No such server.\n\n"),
        ("set server be/s1", "usage: set server <backend>/<server> addr | state | weight\n\n"),
        ("set server be/s1 state", STATE_EXPECTED),
        ("set server be/s1 weight", "Require <weight> or <weight%>.\n\n"),
        ("set server be/s1 weight abc", "Empty weight string empty or preceded by garbage\n"),
        ("set server be/s1 weight %", "Empty weight string empty or preceded by garbage\n"),
        ("set server be/s1 weight 10abc", "Trailing garbage in weight string\n"),
        ("set server be/s1 weight 5%x", "Trailing garbage in weight string\n"),
        ("set server be/s1 weight 300", ABSOLUTE_RANGE),
        ("set server be/s1 weight -1", ABSOLUTE_RANGE),
        ("set server be/s1 weight -5%", "Relative weight must be positive.\n\n"),
        ("set weight be/s1", "Require <weight> or <weight%>.\n\n"),
        ("set server st/x weight 5",
         "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"),
        ("set server st/x weight 50%",
         "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"),
        ("disable server be/nope", "No such server.\n\n"),
        ("enable server nope/s1", "No such backend.\n\n"),
    ],
)  # fmt: skip
def test_errors_are_haproxys_and_change_nothing(world: World, line: str, answer: str) -> None:
    before = [
        (s.weight, s.admin, s.last_change) for b in world.backends.values() for s in b.servers
    ]
    result = world.run(line, Level.ADMIN)
    assert result.text == answer
    assert result.goes == ()
    after = [(s.weight, s.admin, s.last_change) for b in world.backends.values() for s in b.servers]
    assert after == before


@pytest.mark.parametrize(
    ("value", "weight"),
    [("5", 5), ("+7", 7), ("007", 7), ("0", 0), ("256", 256), ("50%", 5), ("0%", 0),
     ("100%", 10), ("3000%", 256), ("10 extra", 10)],
)  # fmt: skip
def test_set_weight_absolute_or_relative_to_the_initial_weight(
    world: World, value: str, weight: int
) -> None:
    assert world.text(f"set server be/s1 weight {value}", Level.ADMIN) == "\n"
    assert world.text("get weight be/s1") == f"{weight} (initial 10)\n\n"
    assert world.text(f"set weight be/s1 {value}") == "\n"
    assert world.srv("be", "s1").weight == weight


def test_a_static_algorithm_takes_zero_and_the_initial_weight(world: World) -> None:
    assert world.text("set server st/x weight 0%", Level.ADMIN) == "\n"
    assert world.text("set server st/x weight 10") == "\n"
    assert world.srv("st", "x").weight == 10


def test_a_weight_change_takes_effect_in_the_balancer(world: World) -> None:
    li = model.Proxy(
        "rr", model.Capability.BACKEND, WHERE, id=9,
        servers=(server("a", 1, 1, weight=1), server("b", 2, 2, weight=1)),
    )  # fmt: skip
    world.backends["rr"] = backend = make_backend(li)
    assert world.text("set server rr/a weight 3", Level.ADMIN) == "\n"
    picks = Counter(backend.balancer.pick().name for _ in range(40))  # type: ignore[union-attr]
    assert picks == {"a": 30, "b": 10}
    assert world.text("set weight rr/a 0") == "\n"
    assert {backend.balancer.pick().name for _ in range(10)} == {"b"}  # type: ignore[union-attr]


# -- server state -------------------------------------------------------------------------


@dataclass
class Waiter:
    got: list[ServerState]

    def dequeued(self, server: ServerState) -> None:
        self.got.append(server)


def test_state_changes_go_through_the_backend_and_release_waiting_connections(
    world: World,
) -> None:
    backend = world.backends["be"]
    s1 = world.srv("be", "s1")
    s1.maxconn = 1
    waiter = Waiter([])
    assert backend.take(Waiter([])).outcome is Outcome.ASSIGNED
    assert backend.take(waiter).outcome is Outcome.QUEUED
    answer = world.run("set server be/s1 weight 5", Level.ADMIN)
    assert answer.text == "\n" and answer.goes == ()  # s1 is still full
    answer = world.run("enable server be/s3")
    assert [(go.waiter, go.server.name) for go in answer.goes] == [(waiter, "s3")]
    assert world.srv("be", "s3").last_change == world.now
    # s1 and s3 in maintenance: the backup s2 takes the next waiting connection.
    other = Waiter([])
    assert backend.take(Waiter([])).outcome is Outcome.ASSIGNED  # s3 has room
    world.srv("be", "s3").maxconn = 1
    assert backend.take(other).outcome is Outcome.QUEUED
    world.run("disable server be/s3")
    answer = world.run("disable server be/s1")
    assert [(go.waiter, go.server.name) for go in answer.goes] == [(other, "s2")]


def test_disable_enable_and_states(world: World) -> None:
    s1 = world.srv("be", "s1")
    steps = [
        ("disable server be/s1", AdminState.MAINT),
        ("enable server be/s1", AdminState.READY),
        ("set server be/s1 state drain", AdminState.DRAIN),
        ("set server be/s1 state maint", AdminState.MAINT),
        ("set server be/s1 state drain", AdminState.DRAIN),  # drain leaves maintenance
        ("enable server be/s1", AdminState.READY),  # and enable leaves drain, as in 2.6
        ("set server be/s1 state ready", AdminState.READY),
    ]
    for line, state in steps:
        assert world.text(line, Level.ADMIN) == "\n"
        assert s1.admin is state, line


# -- prompt and quit ----------------------------------------------------------------------


def test_prompt_toggles_interactive_mode_and_quit_closes(world: World) -> None:
    assert world.text("prompt", Level.USER) == "\n> "
    assert world.text("get weight be/s1") == "10 (initial 10)\n\n> "
    assert world.text("prompt") == "\n"
    quit_ = world.run("quit")
    assert quit_.close and quit_.text == ""


# -- show commands ------------------------------------------------------------------------


def test_show_backend(world: World) -> None:
    assert world.text("show backend", Level.USER) == "# name\nbe\nli\nst\nhs\n\n"


def test_show_servers_state_is_haproxys_format_1(world: World) -> None:
    world.srv("be", "s2").last_change = 1005.0
    text = world.text("show servers state be", Level.USER)
    assert text == (
        "1\n" + stats.SERVERS_STATE_HEADER + "\n"
        "3 be 1 s1 127.0.0.1 2 0 10 10 7 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0\n"
        "3 be 2 s2 127.0.0.1 2 0 20 20 2 1 0 2 0 0 0 0 - 18082 - 0 0 - - 0\n"
        "3 be 3 s3 127.0.0.1 0 5 1 1 7 1 0 0 8 0 0 0 - 18083 - 0 0 - - 0\n\n"
    )
    assert world.text("show servers state nope") == "Can't find backend.\n\n"
    assert world.text("show servers state").count("\n") == 2 + 3 + 1 + 1 + 1 + 1


def test_servers_state_admin_flags_follow_haproxy(world: World) -> None:
    def line(name: str) -> list[str]:
        found = world.text("show servers state be", Level.ADMIN).splitlines()
        return next(x for x in found[2:] if x.split()[3] == name).split()

    world.run("disable server be/s1")
    assert line("s1")[5:7] == ["0", "1"]  # stopped, forced maintenance
    world.run("set server be/s1 state drain")
    assert line("s1")[5:7] == ["2", "8"]  # running, forced drain
    world.run("enable server be/s3")
    assert line("s3")[5:7] == ["2", "4"]  # running; `disabled` in the configuration


def test_show_stat_header_is_haproxy_2_6s(world: World) -> None:
    assert stats.HEADER == HEADER_2_6
    lines = world.text("show stat", Level.USER).split("\n")
    assert lines[0] == HEADER_2_6
    assert lines[-2:] == ["", ""]
    for line in lines[1:-2]:
        assert len(line.split(",")) == len(HEADER_2_6[2:].split(","))


def test_show_stat_rows(world: World) -> None:
    fe = world.frontends["fe"]
    fe.cur_conn, fe.cum_conn, fe.max_conn_seen, fe.bytes_in, fe.bytes_out = 2, 9, 4, 100, 2000
    world.srv("be", "s1").cur_sess = 2
    table = rows(world.text("show stat", Level.USER))
    assert list(table) == [
        ("fe", "FRONTEND"), ("be", "s1"), ("be", "s2"), ("be", "s3"), ("be", "BACKEND"),
        ("li", "FRONTEND"), ("li", "a"), ("li", "BACKEND"), ("st", "x"), ("st", "BACKEND"),
        ("hs", "h"), ("hs", "BACKEND"),
    ]  # fmt: skip
    front = table["fe", "FRONTEND"]
    assert {k: v for k, v in front.items() if v} == {
        "pxname": "fe", "svname": "FRONTEND", "scur": "2", "smax": "4", "slim": "4096",
        "stot": "9", "bin": "100", "bout": "2000", "status": "OPEN", "pid": "1", "iid": "2",
        "sid": "0", "type": "0", "mode": "tcp", "conn_tot": "9", "-": "-",
        "dreq": "0", "dresp": "0", "ereq": "0", "dcon": "0", "dses": "0", "wrew": "0", "eint": "0",
        # No tick of the rates yet (core/traffic.py): the nine connections are this second's.
        "rate": "9", "rate_lim": "0", "rate_max": "9", "req_rate": "0", "req_rate_max": "0",
        "req_tot": "0", "conn_rate": "9", "conn_rate_max": "9",
    }  # fmt: skip
    s1, s2, s3 = table["be", "s1"], table["be", "s2"], table["be", "s3"]
    assert (s1["status"], s1["weight"], s1["act"], s1["bck"], s1["scur"]) == (
        "no check", "10", "1", "0", "2",
    )  # fmt: skip
    assert (s2["status"], s2["act"], s2["bck"]) == ("no check", "0", "1")
    assert (s1["lastchg"], s1["addr"], s1["sid"], s1["iid"]) == ("7", "127.0.0.1:18081", "1", "3")
    assert s3["status"] == "MAINT"
    back = table["be", "BACKEND"]
    # HAProxy: fullconn is a tenth of the frontends' maxconn (4096 -> 410); the weight is
    # that of the active servers in use.
    assert (back["status"], back["weight"], back["act"], back["bck"], back["slim"]) == (
        "UP", "10", "1", "1", "410",
    )  # fmt: skip
    assert back["algo"] == "roundrobin" and back["type"] == "1"
    x = table["st", "x"]
    assert (x["status"], x["slim"], x["qlimit"], x["check_rise"], x["check_fall"]) == (
        "UP", "7", "9", "2", "3",
    )  # fmt: skip
    assert table["st", "BACKEND"]["slim"] == "1"  # no frontend routes there


def test_show_stat_status_words(world: World) -> None:
    x = world.srv("st", "x")
    for admin, up, word in [
        (AdminState.READY, True, "UP"),
        (AdminState.READY, False, "DOWN"),
        (AdminState.DRAIN, True, "DRAIN"),
        (AdminState.MAINT, True, "MAINT"),
    ]:
        x.admin, x.up = admin, up
        assert rows(world.text("show stat"))["st", "x"]["status"] == word
    x.admin, x.up, x.weight = AdminState.READY, True, 0
    assert rows(world.text("show stat"))["st", "x"]["status"] == "UP"  # weight plays no part
    assert rows(world.text("show stat"))["st", "BACKEND"]["status"] == "DOWN"


def test_show_stat_filters(world: World) -> None:
    assert list(rows(world.text("show stat be 4 -1", Level.USER))) == [
        ("be", "s1"), ("be", "s2"), ("be", "s3"),
    ]  # fmt: skip
    assert list(rows(world.text("show stat 3 6 2"))) == [("be", "s2"), ("be", "BACKEND")]
    assert list(rows(world.text("show stat -1 1 -1"))) == [("fe", "FRONTEND"), ("li", "FRONTEND")]
    assert world.text("show stat nope 1 -1") == "No such proxy.\n\n"
    assert ("be", "s3") not in rows(world.text("show stat no-maint"))
    world.srv("be", "s2").up = False
    up = rows(world.text("show stat up"))
    assert ("be", "s2") not in up and ("be", "s3") not in up and ("be", "s1") in up


def test_show_stat_skips_disabled_proxies(world: World) -> None:
    be = world.backends["be"]
    be.proxy = replace(be.proxy, disabled=True)
    assert not [key for key in rows(world.text("show stat")) if key[0] == "be"]


def test_show_info(world: World) -> None:
    world.now = 1000.0 + 86400 + 2 * 3600 + 3 * 60 + 4.9
    world.frontends["fe"].bytes_out = 1234
    text = world.text("show info", Level.USER)
    assert text == (
        "Name: poise\nVersion: 0.1.0\nRelease_date: 2026/11/21\nNbthread: 1\nNbproc: 1\n"
        "Process_num: 1\nPid: 4242\nUptime: 1d 2h03m04s\nUptime_sec: 93784\nMemmax_MB: 0\n"
        "Maxconn: 4096\nHard_maxconn: 4096\nCurrConns: 3\nCumConns: 17\nMaxpipes: 0\n"
        "PipesUsed: 0\nPipesFree: 0\nCompressBpsIn: 0\nCompressBpsOut: 0\n"
        "CompressBpsRateLim: 0\nTasks: 5\nRun_queue: 0\nnode: node1\nStopping: 0\n"
        "ActivePeers: 0\nConnectedPeers: 0\nFailedAccepts: 0\nTotalBytesOut: 1234\n"
        "TotalSplicdedBytesOut: 0\nMemmax_bytes: 0\nStart_time_sec: 1700000000\n\n"
    )
    world.info = replace(world.info, description="edge pair")
    assert "node: node1\ndescription: edge pair\nStopping: 0\n" in world.text("show info")
    world.info = replace(world.info, nbthread=3)  # `nbthread 3`: three workers
    assert "\nNbthread: 3\nNbproc: 1\n" in world.text("show info")


def test_show_info_has_every_field_hatop_reads(world: World) -> None:
    """hatop (Debian's, 0.8.2) refuses to start without these, in `Name: value` form."""
    text = world.text("show info", Level.USER)
    names = {line.split(":")[0] for line in text.splitlines() if line}
    hatop = {
        "Name", "Version", "Release_date", "Nbproc", "Process_num", "Pid", "Uptime", "Maxconn",
        "CurrConns", "Maxpipes", "PipesUsed", "Tasks", "Run_queue", "node",
    }  # fmt: skip
    assert hatop <= names


def test_show_info_typed_and_json(world: World) -> None:
    """Each field with its place in HAProxy 2.6's list and its tags; `float` writes the
    uptime and start time with microseconds, the rates as floats."""
    world.now = 1000.0 + 93784.25
    typed = world.text("show info typed", Level.USER).splitlines()
    assert typed[:2] == ["0.Name.1:POS:str:poise", "1.Version.1:POS:str:0.1.0"]
    assert "8.Uptime_sec.1:MDP:u32:93784" in typed
    assert "72.FailedAccepts.1:MCP:u32:0" in typed  # poise's own, after HAProxy's last
    assert typed[-2:] == ["70.Start_time_sec.1:MDP:u32:1700000000", ""]
    floats = world.text("show info float typed").splitlines()
    assert "8.Uptime_sec.1:MDP:flt:93784.25" in floats
    assert "42.CompressBpsIn.1:MRP:flt:0" in floats
    fields = json.loads(world.text("show info json"))
    assert fields[0] == {
        "field": {"pos": 0, "name": "Name"}, "processNum": 1,
        "tags": {"origin": "Product", "nature": "Output", "scope": "Service"},
        "value": {"type": "str", "value": "poise"},
    }  # fmt: skip
    plain = world.text("show info").splitlines()
    assert [f"{f['field']['name']}: {f['value']['value']}" for f in fields] == plain[:-1]
    assert world.text("show info json desc") == world.text("show info json")
    assert "Uptime_sec: 93784.25\n" in world.text("show info float")


def test_show_stat_typed_and_json_are_the_pages(world: World) -> None:
    """The same rows as the CSV, in the stats page's `;typed` and `;json` forms; the last
    of `typed` and `json` wins, as in HAProxy."""
    typed = world.text("show stat typed", Level.USER)
    assert typed.startswith("F.")
    assert ".0.pxname.1:KNS:str:fe\n" in typed
    rows = json.loads(world.text("show stat json"))
    assert rows[0][0]["objType"] == "Frontend"
    csv_lines = world.text("show stat").splitlines()[1:-1]
    assert len(rows) == len(csv_lines)
    assert world.text("show stat json typed") == typed
    assert world.text("show stat domain proxy typed") == typed
    assert world.text("show stat domain dns") == "Invalid statistics domain.\n\n"
    assert world.text("show stat typed desc") == "Option 'desc' is not supported yet.\n\n"
    assert world.text("show info desc") == "Option 'desc' is not supported yet.\n\n"
    assert world.text("show stat json desc") == world.text("show stat json")


def test_the_command_and_stats_modules_are_pure() -> None:
    from tests.unit.test_purity import IO_MODULES, SRC, imported

    names = ["admin/stats.py", "admin/stats_info.py", "admin/prometheus_query.py"]
    names += [str(p.relative_to(SRC)) for p in SRC.glob("admin/commands*.py")]
    assert len(names) >= 6
    for name in names:
        assert imported(SRC / name).isdisjoint(IO_MODULES), name


def test_show_stat_up_counts_the_running_servers(world: World) -> None:
    """With `up` or `no-maint`, HAProxy 2.6 writes the backend's status with the servers
    running out of all (be's third server is in maintenance)."""
    lines = [line.split(",") for line in world.text("show stat no-maint").splitlines()[1:]]
    assert ["be", "BACKEND", "UP (2/3)"] in [f[:2] + f[17:18] for f in lines if f[1:]]
    plain = [line.split(",") for line in world.text("show stat").splitlines()[1:]]
    assert ["be", "BACKEND", "UP"] in [f[:2] + f[17:18] for f in plain if f[1:]]
