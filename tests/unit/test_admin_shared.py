"""Which runtime commands every worker runs (admin/commands.py SHARED): those that change
state; not those that read, nor those about one worker's session or client."""

from __future__ import annotations

from poise.admin.commands import SHARED, TABLE, shared


def test_every_shared_command_is_a_command() -> None:
    assert SHARED - {keyword.words for keyword in TABLE} == set()


def test_changes_are_shared_reads_and_own_sessions_are_not() -> None:
    for line in (
        "set server be/b state maint", "disable frontend fe", "set map m.map k v",
        "clear counters all", "add server be/c 127.0.0.1:1", "shutdown sessions server be/b",
    ):  # fmt: skip
        assert shared(line), line
    for line in (
        "show stat", "show info", "show sess", "get weight be/b", "set timeout cli 5",
        "shutdown session 0x1", "help", "prompt", "no such command", "",
    ):  # fmt: skip
        assert not shared(line), line
