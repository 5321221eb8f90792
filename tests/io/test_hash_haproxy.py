"""Hash-based balancing against a real HAProxy 2.6: for the same configuration and server
states, every key must go to the same server (issue 22). hash_differential.py says how
HAProxy's choice is observed and what is compared.

CI runs 100,000 keys through each of the two main configurations (`balance uri`, map-based
and consistent) and fewer through the others, in well under a minute. With
POISE_HASH_SWEEP=1 every configuration gets 100,000 keys (bench/hash_sweep.py prints the
figures of such a run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.io.hash_cases import matrix
from tests.io.hash_differential import run_cases

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (make debs)"
)

SWEEP = os.environ.get("POISE_HASH_SWEEP") == "1"


def test_every_hashing_configuration_chooses_as_haproxy(tmp_path: Path) -> None:
    cases = matrix(100_000, 100_000, 100_000, 100_000) if SWEEP else matrix(100_000, 1_000, 400, 60)
    outcomes = run_cases(cases, tmp_path)
    assert {o.case for o in outcomes} == {c.name for c in cases}
    different = [o for o in outcomes if o.different]
    assert not different, "\n".join(
        f"{o.case} round {o.round}: {o.different} of {o.compared} differ, e.g. {o.examples}"
        for o in different
    )
    assert sum(o.compared for o in outcomes) >= 200_000
