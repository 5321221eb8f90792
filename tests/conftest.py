"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from typing import Any

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
# Under CI (`POISE_NO_SKIP=1`) the examples are the same on every run, so a verdict is
# reproducible from the commit alone; a developer's run explores new ones each time.
settings.register_profile("poise", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("POISE_NO_SKIP") == "1" else "poise")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under CI (`POISE_NO_SKIP=1`, set by .ci/run) a skipped test is a failure: CI installs
    every peer the tests need, so a skip there means a test that did not run but would be
    counted as passing."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("POISE_NO_SKIP") == "1"
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI, where nothing may be: {reason}"
