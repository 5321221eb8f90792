"""Durations (HAProxy's configuration.txt 2.5 "Time format") and plain integers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.units import MAX_TIME_MS, parse_int, parse_time


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2000", 2000),
        ("0", 0),
        ("1500us", 2),  # rounded up: a sub-millisecond duration is never 0
        ("1us", 1),
        ("250ms", 250),
        ("10s", 10_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("24d", 24 * 86_400_000),
        (f"{MAX_TIME_MS}", MAX_TIME_MS),
    ],
)
def test_parse_time(text: str, millis: int) -> None:
    assert parse_time(text) == millis


def test_a_bare_number_takes_the_default_unit() -> None:
    assert parse_time("3", default_unit="s") == 3000
    assert parse_time("3ms", default_unit="s") == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing duration"),
        ("s", "unexpected character 's'"),
        ("1.5s", "unexpected character '.'"),
        ("-5", "unexpected character '-'"),
        ("10x", "unexpected character 'x'"),
        ("10 s", "unexpected character ' '"),
        ("25d", "too large"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text)


@given(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m"]))
def test_units_multiply(value: int, unit: str) -> None:
    factor = {"ms": 1, "s": 1000, "m": 60_000}[unit]
    if value * factor <= MAX_TIME_MS:
        assert parse_time(f"{value}{unit}") == value * factor


def test_parse_int_checks_its_range() -> None:
    assert parse_int("-3") == -3
    assert parse_int("256", 0, 256) == 256
    with pytest.raises(ValueError, match="out of range \\(0 to 256\\)"):
        parse_int("257", 0, 256)
    with pytest.raises(ValueError, match="at least 1"):
        parse_int("0", 1)
    with pytest.raises(ValueError, match="not an integer"):
        parse_int("1e3")
