"""The full differential sweep of hash-based balancing against a real HAProxy 2.6 (issue 22):
100,000 keys per configuration and per round of server states by default, the same
configurations as tests/io/test_hash_haproxy.py (whose CI run uses fewer). Prints one line
per configuration and round, then the totals; exits 1 on any difference.

    .venv/bin/python bench/hash_sweep.py [--keys N] [--sources N] [--rdp N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.io.hash_cases import matrix
from tests.io.hash_differential import Outcome, run_cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys per HTTP configuration")
    parser.add_argument("--sources", type=int, default=100_000, help="client addresses")
    parser.add_argument("--rdp", type=int, default=100_000, help="RDP connections")
    args = parser.parse_args()
    started = time.monotonic()

    def report(outcome: Outcome) -> None:
        print(
            f"{time.monotonic() - started:7.1f}s  {outcome.case:<22} round {outcome.round}  "
            f"{outcome.compared:>7} keys  {outcome.different:>6} different"
            + (f"  e.g. {outcome.examples[:2]}" if outcome.different else ""),
            flush=True,
        )

    cases = matrix(args.keys, args.keys, args.sources, args.rdp)
    with tempfile.TemporaryDirectory() as sockdir:
        outcomes = run_cases(cases, Path(sockdir), report=report)
    compared = sum(o.compared for o in outcomes)
    different = sum(o.different for o in outcomes)
    print(
        f"{len(cases)} configurations, {len(outcomes)} rounds, {compared} keys compared, "
        f"{different} different, {time.monotonic() - started:.0f}s"
    )
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
