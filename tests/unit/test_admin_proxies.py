"""Runtime commands on frontends, the process and the CLI session: `set maxconn
frontend|global`, `disable|enable frontend`, `clear counters [all]`, `set timeout cli`,
and the `help` lines of the new commands. Answers are HAProxy 2.6.12's, byte for byte,
unless a test says otherwise.
"""

from __future__ import annotations

import pytest

from poise.admin import commands
from poise.admin.commands import Level
from poise.core.server import ServerState
from tests.unit.admin_support import World, rows


@pytest.fixture
def world() -> World:
    return World()


# -- maxconn ------------------------------------------------------------------------------


def test_set_maxconn_frontend(world: World) -> None:
    answer = world.run("set maxconn frontend fe 10", Level.ADMIN)
    assert answer.text == "\n"
    assert answer.effects == (commands.SetMaxconn("fe", 10),)
    assert rows(world.text("show stat"))["fe", "FRONTEND"]["slim"] == "10"
    assert world.text("set maxconn frontend #4 0") == "\n"  # a listen, by id; 0 takes none
    assert world.frontends["li"].maxconn == 0


def test_set_maxconn_global_within_the_configured_limit(world: World) -> None:
    assert world.text("set maxconn global 100", Level.ADMIN) == "\n"
    assert "\nMaxconn: 100\nHard_maxconn: 4096\n" in world.text("show info")
    assert world.text("set maxconn global 4097") == "Value out of range.\n\n"
    assert world.maxconn == 100
    assert world.text("set maxconn global 0") == "\n"  # 0 restores the configured value
    assert world.maxconn == 4096
    world.run("set maxconn global 100")
    assert world.text("set maxconn global -1") == "\n"
    assert world.maxconn == 4096


# -- disable / enable frontend ------------------------------------------------------------


def test_disable_and_enable_a_frontend(world: World) -> None:
    answer = world.run("disable frontend fe", Level.ADMIN)
    assert answer.text == "\n"
    assert answer.effects[0] == commands.Pause("fe", True)
    notice = answer.effects[1]
    assert isinstance(notice, commands.Notice) and notice.text == "CLI : Paused frontend fe."
    assert rows(world.text("show stat"))["fe", "FRONTEND"]["status"] == "PAUSED"
    assert world.text("disable frontend fe") == "All sockets are already disabled.\n\n"
    assert world.text("enable frontend #2") == "\n"
    assert rows(world.text("show stat"))["fe", "FRONTEND"]["status"] == "OPEN"
    assert world.text("enable frontend fe") == "All sockets are already enabled.\n\n"
    assert world.text("disable frontend li") == "\n"  # a listen section is a frontend too


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("set maxconn frontend", "A frontend name is expected.\n\n"),
        ("set maxconn frontend nope", "No such frontend.\n\n"),
        ("set maxconn frontend be 10", "No such frontend.\n\n"),
        ("set maxconn frontend #99 100", "No such frontend.\n\n"),
        ("set maxconn frontend fe", "Integer value expected.\n\n"),
        ("set maxconn frontend fe -1", "Value out of range.\n\n"),
        # HAProxy reads these as 0, which stops the frontend: poise refuses them.
        ("set maxconn frontend fe abc", "Integer value expected.\n\n"),
        ("set maxconn frontend fe 10abc", "Integer value expected.\n\n"),
        ("set maxconn global", "Expects an integer value.\n\n"),
        ("set maxconn global 100000", "Value out of range.\n\n"),
        ("set maxconn global abc", "Expects an integer value.\n\n"),
        ("set maxconn", "Unknown command, but maybe one of the following ones is a better match:\n"
         "  set maxconn frontend <frontend> <value> : change a frontend's maxconn setting\n"
         "  set maxconn global <value>              : change the per-process maxconn setting\n"
         "  set maxconn server <bk>/<srv>           : change a server's maxconn setting\n"
         + commands.ALWAYS_LISTED + "\n"),
        ("disable frontend", "A frontend name is expected.\n\n"),
        ("disable frontend nope", "No such frontend.\n\n"),
        ("disable frontend be", "No such frontend.\n\n"),
        ("enable frontend", "A frontend name is expected.\n\n"),
        ("enable frontend nope", "No such frontend.\n\n"),
        ("enable frontend fe", "All sockets are already enabled.\n\n"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(world: World, line: str, answer: str) -> None:
    before = world.state()
    result = world.run(line, Level.ADMIN)
    assert result.text == answer
    assert (result.goes, result.effects) == ((), ())
    assert world.state() == before


@pytest.mark.parametrize(
    "line",
    ["set maxconn frontend fe 10", "set maxconn global 10", "disable frontend fe",
     "enable frontend fe", "clear counters all"],
)  # fmt: skip
def test_admin_commands_are_refused_below_admin(world: World, line: str) -> None:
    before = world.state()
    for level in (Level.USER, Level.OPERATOR):
        answer = world.run(line, level)
        assert (answer.text, answer.effects) == ("Permission denied\n\n", ())
    assert world.state() == before


# -- clear counters -----------------------------------------------------------------------


def busy(world: World) -> ServerState:
    fe = world.frontends["fe"]
    fe.cur_conn, fe.max_conn_seen, fe.cum_conn, fe.bytes_in, fe.bytes_out = 1, 4, 9, 100, 200
    backend = world.backends["be"]
    s1 = world.srv("be", "s1")
    for _ in range(3):
        backend.enter()
        backend.occupy(s1)
    for _ in range(2):
        backend.leave()
        backend.release(s1)
    s1.failed_conns = 2
    return s1


def test_clear_counters_resets_the_maxima(world: World) -> None:
    s1 = busy(world)
    before = rows(world.text("show stat"))
    assert (before["be", "s1"]["smax"], before["be", "BACKEND"]["smax"]) == ("3", "3")
    assert world.text("clear counters", Level.OPERATOR) == "\n"
    after = rows(world.text("show stat"))
    assert (after["fe", "FRONTEND"]["smax"], after["fe", "FRONTEND"]["stot"]) == ("0", "9")
    assert (after["be", "s1"]["smax"], after["be", "s1"]["stot"]) == ("0", "3")
    assert (after["be", "BACKEND"]["smax"], after["be", "BACKEND"]["stot"]) == ("0", "3")
    assert (after["be", "s1"]["scur"], s1.failed_conns) == ("1", 2)  # the present stays
    assert world.text("clear counters foo") == "\n"  # further words are ignored, as in HAProxy


def test_clear_counters_all_resets_everything_but_the_present(world: World) -> None:
    busy(world)
    assert world.text("clear counters all", Level.OPERATOR) == "Permission denied\n\n"
    assert world.text("clear counters all", Level.ADMIN) == "\n"
    after = rows(world.text("show stat"))
    front = after["fe", "FRONTEND"]
    assert (front["stot"], front["bin"], front["bout"], front["scur"]) == ("0", "0", "0", "1")
    assert (after["be", "s1"]["stot"], after["be", "s1"]["econ"]) == ("0", "0")
    assert (after["be", "BACKEND"]["stot"], after["be", "BACKEND"]["scur"]) == ("0", "1")
    assert "\nCumConns: 17\n" in world.text("show info")  # the process's count stays


# -- set timeout cli ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "answer", "timeout"),
    [
        ("set timeout cli 5", "\n", 5.0),
        ("set timeout cli 2s", "\n", 2.0),
        ("set timeout cli 1m", "\n", 60.0),
        ("set timeout cli 500ms", "\n", 0.5),
        ("set timeout", "'set timeout' only supports 'cli'.\n\n", None),
        ("set timeout foo 5", "'set timeout' only supports 'cli'.\n\n", None),
        ("set timeout cli", "Expects an integer value.\n\n", None),
        ("set timeout cli abc", "Invalid timeout value.\n\n", None),
        ("set timeout cli 0", "Invalid timeout value.\n\n", None),
        ("set timeout cli -1", "Invalid timeout value.\n\n", None),
        ("set timeout cli 5x", "Invalid timeout value.\n\n", None),
    ],
)
def test_set_timeout_cli_is_the_sessions_own(
    world: World, line: str, answer: str, timeout: float | None
) -> None:
    assert world.text(line, Level.USER) == answer
    assert world.session.timeout == timeout


# -- help ---------------------------------------------------------------------------------


def test_help_lists_the_new_commands_at_their_level(world: World) -> None:
    user = world.text("help", Level.USER)
    operator = world.text("help", Level.OPERATOR)
    admin = world.text("help", Level.ADMIN)
    assert "  set timeout [cli] <delay>               : change a timeout setting\n" in user
    assert "show sess" not in user and "clear counters" not in user
    assert (
        "  show sess [id]                          : report the list of current sessions or "
        "dump this exact session\n"
    ) in operator
    assert (
        "  clear counters [all]                    : clear max statistics counters "
        "(or all counters)\n"
    ) in operator
    assert "add server" not in operator
    for line in (
        "  add server <bk>/<srv>                   : create a new server\n",
        "  del server <bk>/<srv>                   : remove a dynamically added server\n",
        "  disable frontend <frontend>             : temporarily disable specific frontend\n",
        "  enable frontend <frontend>              : re-enable specific frontend\n",
        "  set maxconn frontend <frontend> <value> : change a frontend's maxconn setting\n",
        "  set maxconn global <value>              : change the per-process maxconn setting\n",
        "  shutdown session [id]                   : kill a specific session\n",
        "  shutdown sessions server <bk>/<srv>     : kill sessions on a server\n",
    ):
        assert line in admin, line
    listed = [line for line in admin.splitlines()[1:] if line][:-3]
    assert listed == sorted(listed)
