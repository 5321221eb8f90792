"""The one setting of the parser fuzz tests: a fixed set of examples by default
(derandomized, so CI is never flaky); `POISE_FUZZ_EXAMPLES=N` explores N at random."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(default_examples: int) -> settings:
    explore = "POISE_FUZZ_EXAMPLES" in os.environ
    return settings(
        max_examples=int(os.environ["POISE_FUZZ_EXAMPLES"]) if explore else default_examples,
        deadline=None,
        derandomize=not explore,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
