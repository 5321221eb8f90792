"""The netns lab as a fixture: a fresh LAN per test, torn down however the test ends.

Where the machine gives no CAP_NET_ADMIN (not root, no `ip`, no Keepalived) the tests skip
and say why; POISE_REQUIRE_NETNS=1 (set by .ci/run) turns that skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.lab import Lab, LabUnavailable, tools_missing


def _unavailable(reason: str) -> None:
    if os.environ.get("POISE_REQUIRE_NETNS") == "1":
        pytest.fail(f"POISE_REQUIRE_NETNS=1 but the netns tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        _unavailable("network namespaces need root (CAP_NET_ADMIN)")
    missing = tools_missing()
    if missing:
        _unavailable(f"missing tools: {', '.join(missing)} (make debs installs them)")
    tmp_path.chmod(0o755)
    built = Lab(tmp_path)
    try:
        built.up()
    except LabUnavailable as exc:
        built.down()
        _unavailable(str(exc))
    try:
        yield built
    finally:
        built.down()
