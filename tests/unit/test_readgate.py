"""The read gate (core/http/readgate.py): reading pauses with the first reason and resumes
only when the last one goes, so overlapping reasons never resume it early."""

from __future__ import annotations

from poise.core.http.readgate import CONNECTING, PIPELINED, SERVER_FULL, TRANSACTION, ReadGate


def test_the_first_reason_pauses_and_the_last_resumes() -> None:
    gate = ReadGate()
    assert not gate.paused
    assert gate.pause(PIPELINED) is True  # the transport must pause now
    assert gate.pause(SERVER_FULL) is False  # already paused
    assert gate.paused
    assert gate.resume(PIPELINED) is False  # the server connection is still full
    assert gate.paused and gate.reasons == SERVER_FULL
    assert gate.resume(SERVER_FULL) is True  # the last reason went: resume now
    assert not gate.paused


def test_a_reason_given_twice_is_held_once() -> None:
    gate = ReadGate()
    assert gate.pause(CONNECTING) is True
    assert gate.pause(CONNECTING) is False
    assert gate.resume(CONNECTING) is True
    assert gate.resume(CONNECTING) is False  # resuming twice resumes the transport once


def test_resuming_a_reason_not_held_does_nothing() -> None:
    gate = ReadGate()
    assert gate.resume(PIPELINED) is False  # not paused: nothing to resume
    gate.pause(SERVER_FULL)
    assert gate.resume(PIPELINED) is False
    assert gate.reasons == SERVER_FULL


def test_the_end_of_a_transaction_drops_every_reason_of_it_at_once() -> None:
    gate = ReadGate()
    gate.pause(PIPELINED)
    gate.pause(SERVER_FULL)
    gate.pause(CONNECTING)
    assert gate.resume(TRANSACTION) is True
    assert not gate.paused
    assert gate.resume(TRANSACTION) is False


def test_the_reasons_are_distinct_bits() -> None:
    reasons = [PIPELINED, SERVER_FULL, CONNECTING]
    assert all(reason and reason & (reason - 1) == 0 for reason in reasons)
    assert len(set(reasons)) == len(reasons)
    assert TRANSACTION == PIPELINED | SERVER_FULL | CONNECTING
