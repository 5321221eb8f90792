"""The health-check results worker 0 sends the other workers (checks/shared.py): a result
comes back as it was sent, and anything else in its place is no result."""

from __future__ import annotations

from poise.checks.shared import decode, encode
from poise.core.health import CheckResult, l4_failed


def test_a_result_comes_back_as_sent() -> None:
    for result in (
        l4_failed("Connection refused", 3),
        CheckResult(True, "Layer7 check passed", "OK", 12, 200),
        CheckResult(True, "Layer7 check conditionally passed", None, -1, 404, conditional=True),
    ):
        assert decode(encode(result)) == result


def test_anything_else_is_no_result() -> None:
    good = encode(l4_failed(None, 0))
    wrong_types: tuple[object, ...] = (["yes", *good[1:]], [*good[:3], "1", *good[4:]])
    bad: object
    for bad in (None, {}, [], good[:5], [*good, 1], *wrong_types):
        assert decode(bad) is None
