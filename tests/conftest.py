"""Fixtures shared by every test layer."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """I/O tests run under both event loops."""
    kind: str = request.param
    return kind
