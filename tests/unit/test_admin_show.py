"""`show sess` and `shutdown session`: HAProxy's one line per session (its keys in its
order), the ids they print, and HAProxy's messages for ids that match nothing.
"""

from __future__ import annotations

import pytest

from poise.admin import commands, stats
from poise.admin.commands import Level
from poise.admin.commands_show import human_time, session_id
from tests.unit.admin_support import World

TCP = stats.SessionInfo(
    id=0x7F3EEE8F3610, proto="tcpv4", source="127.0.0.1:44446", frontend="fe", backend="be",
    server="s1", age=6.4, expires=43.2, client_fd=19, server_fd=21,
)  # fmt: skip
CLI = stats.SessionInfo(
    id=0x7F3EEE697400, proto="unix_stream", source="unix:1", frontend="GLOBAL", expires=10.0,
    client_fd=23,
)  # fmt: skip


@pytest.fixture
def world() -> World:
    world = World()
    world.sessions = [TCP, CLI]
    return world


def test_show_sess_one_line_per_session(world: World) -> None:
    assert world.text("show sess", Level.OPERATOR) == (
        "0x7f3eee8f3610: proto=tcpv4 src=127.0.0.1:44446 fe=fe be=be srv=s1 ts=00 epoch=0 "
        "age=6s calls=0 rate=0 cpu=0 lat=0 rq[f=0h,i=0,an=00h,rx=43s,wx=,ax=] "
        "rp[f=0h,i=0,an=00h,rx=43s,wx=,ax=] scf=[8,0h,fd=19] scb=[8,1h,fd=21] exp=43s rc=0 "
        "c_exp=\n"
        "0x7f3eee697400: proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none> ts=00 "
        "epoch=0 age=0s calls=0 rate=0 cpu=0 lat=0 rq[f=0h,i=0,an=00h,rx=10s,wx=,ax=] "
        "rp[f=0h,i=0,an=00h,rx=,wx=,ax=] scf=[8,0h,fd=23] scb=[8,1h,fd=-1] exp=10s rc=0 "
        "c_exp=\n\n"
    )
    # HAProxy reads the id with strtoul: no number lists them all.
    assert world.text("show sess foo") == world.text("show sess")


def test_show_sess_by_id_and_all(world: World) -> None:
    detail = world.text("show sess 0x7f3eee8f3610", Level.OPERATOR)
    assert detail == (
        "0x7f3eee8f3610: proto=tcpv4 source=127.0.0.1:44446\n"
        "  frontend=fe (id=2 mode=tcp)\n"
        "  backend=be (id=3 mode=tcp)\n"
        "  server=s1 (id=1) addr=127.0.0.1:18081\n"
        "  age=6s exp=43s client fd=19 server fd=21\n\n"
    )
    assert world.text("show sess 0x7f3eee8f3610x") == detail  # strtoul stops at the x
    assert world.text(f"show sess {0x7F3EEE8F3610}") == detail
    assert world.text("show sess 0x1234") == "Session not found.\n\n"
    everything = world.text("show sess all")
    assert everything.startswith(detail[:-1]) and "frontend=GLOBAL (id=0 mode=tcp)" in everything
    assert "  backend=<NONE> (id=-1 mode=-)\n  server=<NONE> (id=-1)\n" in everything


def test_shutdown_session(world: World) -> None:
    answer = world.run("shutdown session 0x7f3eee8f3610", Level.ADMIN)
    assert (answer.text, answer.effects) == ("\n", (commands.EndSession(TCP.id),))
    for line, said in (
        ("shutdown session", "Session pointer expected (use 'show sess').\n\n"),
        ("shutdown session foo", "Session pointer expected (use 'show sess').\n\n"),
        ("shutdown session 0x1234", "No such session (use 'show sess').\n\n"),
    ):
        answer = world.run(line)
        assert (answer.text, answer.effects) == (said, ())


def test_sessions_need_their_levels(world: World) -> None:
    assert world.text("show sess", Level.USER) == "Permission denied\n\n"
    for level in (Level.USER, Level.OPERATOR):
        answer = world.run("shutdown session 0x7f3eee8f3610", level)
        assert (answer.text, answer.effects) == ("Permission denied\n\n", ())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.9, "0s"), (42, "42s"), (60, "1m"), (185, "3m5s"), (3600, "1h"),
     (7805, "2h10m"), (86400 + 5, "1d5s"), (86400 * 3 + 4 * 3600 + 7, "3d4h"), (-3, "0s")],
)  # fmt: skip
def test_human_time_shows_two_units_at_most(seconds: float, text: str) -> None:
    assert human_time(seconds) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("0x1f", 31), ("0X1F", 31), ("31", 31), ("017", 15), ("0", 0), ("foo", 0), ("", 0),
     ("  12ab", 12), ("0x", 0)],
)  # fmt: skip
def test_session_ids_read_as_strtoul_reads_them(text: str, value: int) -> None:
    assert session_id(text) == value
