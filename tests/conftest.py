"""Fixtures shared by every test layer."""

from __future__ import annotations

import pytest
from hypothesis import settings


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """I/O tests run under both event loops."""
    kind: str = request.param
    return kind


# Hypothesis's per-example deadline measures wall time, which on a shared two-core machine
# says more about the neighbours than about the code: every property here is bounded by its
# example count instead.
settings.register_profile("poise", deadline=None)
settings.load_profile("poise")
