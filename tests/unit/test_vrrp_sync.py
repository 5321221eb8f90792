"""Sync groups: members follow each other into MASTER, BACKUP and FAULT."""

from __future__ import annotations

from poise.vrrp.fsm import State
from poise.vrrp.sync import followers, group_state

MEMBERS = ("a", "b", "c")


def test_members_follow_a_new_master_and_a_new_backup() -> None:
    states = {"a": State.MASTER, "b": State.BACKUP, "c": State.BACKUP}
    assert followers(MEMBERS, "a", State.MASTER, states, {}) == [
        ("b", State.MASTER),
        ("c", State.MASTER),
    ]
    states = {"a": State.BACKUP, "b": State.MASTER, "c": State.MASTER}
    assert followers(MEMBERS, "a", State.BACKUP, states, {}) == [
        ("b", State.BACKUP),
        ("c", State.BACKUP),
    ]


def test_one_member_in_fault_holds_the_group_in_fault() -> None:
    states = {"a": State.FAULT, "b": State.MASTER, "c": State.BACKUP}
    assert followers(MEMBERS, "a", State.FAULT, states, {"a": True}) == [
        ("b", State.FAULT),
        ("c", State.FAULT),
    ]
    states = {"a": State.BACKUP, "b": State.FAULT, "c": State.FAULT}
    assert followers(MEMBERS, "a", State.BACKUP, states, {}) == [
        ("b", State.BACKUP),
        ("c", State.BACKUP),
    ]
    # A member whose own fault is over goes back to FAULT while another one still has one.
    assert followers(MEMBERS, "a", State.BACKUP, states, {"b": True}) == [("a", State.FAULT)]


def test_the_group_state() -> None:
    assert (
        group_state(MEMBERS, {"a": State.MASTER, "b": State.MASTER, "c": State.BACKUP})
        is State.MASTER
    )
    assert (
        group_state(MEMBERS, {"a": State.MASTER, "b": State.FAULT, "c": State.BACKUP})
        is State.FAULT
    )
    assert (
        group_state(MEMBERS, {"a": State.BACKUP, "b": State.BACKUP, "c": State.BACKUP})
        is State.BACKUP
    )
