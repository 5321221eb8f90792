"""Numbers as haproxy.cfg writes them: durations (`10s`, `1m`, `2000`) and plain integers.
Pure; every other part of poise that reads a duration calls these, so the units are parsed
in one place only.

HAProxy's configuration.txt, section 2.5 "Time format": units `us ms s m h d`; a bare number
is in the keyword's default unit (milliseconds almost everywhere); a duration must stay below
2^31 ms (about 24.8 days). Sizes (`stick-table size`) take HAProxy's `k`, `m`, `g`
suffixes, powers of 1024 (parse_size).
"""

from __future__ import annotations

# Microseconds per unit: converting through the smallest unit keeps the arithmetic exact.
_TIME_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}
# HAProxy keeps timers in a signed 32-bit number of milliseconds.
MAX_TIME_MS = 2**31 - 1


def _split_number(text: str, what: str) -> tuple[int, str]:
    digits = len(text) - len(text.lstrip("0123456789"))
    if digits == 0:
        if not text:
            raise ValueError(f"missing {what}")
        raise ValueError(f"unexpected character '{text[0]}' in {what} '{text}'")
    return int(text[:digits]), text[digits:]


def parse_time(text: str, default_unit: str = "ms") -> int:
    """A duration in milliseconds, rounded up so that `1us` is not 0 (0 means "none").

    >>> parse_time("10s"), parse_time("2000"), parse_time("1m")
    (10000, 2000, 60000)
    """
    if default_unit not in _TIME_UNITS_US:
        raise ValueError(f"unknown time unit '{default_unit}'")
    value, unit = _split_number(text, "duration")
    unit = unit or default_unit
    if unit not in _TIME_UNITS_US:
        raise ValueError(
            f"unexpected character '{unit[0]}' in duration '{text}' "
            f"(units are {', '.join(_TIME_UNITS_US)})"
        )
    micros = value * _TIME_UNITS_US[unit]
    millis = -(-micros // 1000)
    if millis > MAX_TIME_MS:
        raise ValueError(
            f"duration '{text}' is too large (the maximum is {MAX_TIME_MS} ms, about 24.8 days)"
        )
    return millis


def parse_int(text: str, low: int | None = None, high: int | None = None) -> int:
    """A plain decimal integer (an optional leading `-`), optionally within [low, high]."""
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or not body.isascii():
        raise ValueError(f"'{text}' is not an integer")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            raise ValueError(f"{value} is out of range (at least {low})")
        if low is None:
            raise ValueError(f"{value} is out of range (at most {high})")
        raise ValueError(f"{value} is out of range ({low} to {high})")
    return value


def parse_size(text: str) -> int:
    """A size with an optional `k`, `m` or `g` suffix (times 1024, 1024^2, 1024^3), as
    HAProxy's parse_size_err reads it; it must fit in 32 bits.

    >>> parse_size("1m"), parse_size("200k"), parse_size("100")
    (1048576, 204800, 100)
    """
    value, unit = _split_number(text, "size")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(unit.lower())
    if scale is None:
        raise ValueError(f"unexpected character '{unit[0]}' in size '{text}'")
    if value * scale >= 1 << 32:
        raise ValueError(f"size '{text}' is too large (at most 4294967295)")
    return value * scale
