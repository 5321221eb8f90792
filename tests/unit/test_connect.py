"""What follows a failed connection attempt (core/connect.py), as HAProxy 2.6 decides it:
`retries`, `option redispatch [interval]` and the turn-around delay; and the table of the
server side's states."""

from __future__ import annotations

import pytest

from poise.core.connect import (
    CLO,
    INI,
    TRANSITIONS,
    TURNAROUND,
    After,
    SrvState,
    after_failure,
    turnaround,
)

RETRY, REDISPATCH, GIVE_UP = After.RETRY, After.REDISPATCH, After.GIVE_UP


@pytest.mark.parametrize(
    ("redispatch", "expected"),
    [
        (None, [RETRY, RETRY, RETRY, GIVE_UP]),  # no `option redispatch`
        (0, [RETRY, RETRY, RETRY, GIVE_UP]),  # `option redispatch 0`: off
        (-1, [RETRY, RETRY, REDISPATCH, GIVE_UP]),  # the default: on the last retry
        (-2, [RETRY, REDISPATCH, RETRY, GIVE_UP]),  # the one before the last
        (1, [REDISPATCH, REDISPATCH, REDISPATCH, GIVE_UP]),  # every retry
        (2, [RETRY, REDISPATCH, RETRY, GIVE_UP]),  # every second retry
    ],
)
def test_retries_and_redispatch(redispatch: int | None, expected: list[After]) -> None:
    """`retries 3`: three more attempts after the first, then the stream gives up."""
    assert [after_failure(done, 3, redispatch) for done in range(4)] == expected


def test_no_retries_gives_up_at_once() -> None:
    assert after_failure(0, 0, -1) is GIVE_UP


def test_the_turnaround_is_the_connect_timeout_up_to_a_second() -> None:
    assert turnaround(None) == TURNAROUND == 1.0
    assert turnaround(0.05) == 0.05
    assert turnaround(5.0) == 1.0


def test_every_state_may_end_its_transaction_or_the_stream() -> None:
    assert set(TRANSITIONS) == set(SrvState)
    for targets in TRANSITIONS.values():
        assert {INI, CLO} <= targets
