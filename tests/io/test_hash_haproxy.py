"""Hash-based balancing against a real HAProxy 2.6: for the same configuration and server
states, every key must go to the same server (issue 22). hash_differential.py says how
HAProxy's choice is observed and what is compared.

CI runs 100,000 keys through each of the two main configurations (`balance uri`, map-based
and consistent) and fewer through the others, in well under a minute. With
POISE_HASH_SWEEP=1 every configuration gets 100,000 keys (bench/hash_sweep.py prints the
figures of such a run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.io.hash_cases import MIXED, Case, make_keys, matrix, request_bytes
from tests.io.hash_differential import PoiseModel, run_cases
from tests.support import run

needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (make debs)"
)
BASE = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
"""

SWEEP = os.environ.get("POISE_HASH_SWEEP") == "1"


@needs_haproxy
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


# The same choices through poise itself (the shell: requests parsed by httptools, the key
# taken from them, the server connected), checked against poise's pure balancer, which the
# test above checks against haproxy.
THROUGH_POISE = [
    Case("uri", "uri", "consistent", MIXED, "uri", 600),
    Case("uri_opts", "uri path-only depth 2", None, MIXED, "uri", 400),
    Case("param", "url_param id", "map-based djb2 avalanche", MIXED, "url_param", 400),
    Case("hdr", "hdr(x-key)", "consistent wt6", MIXED, "hdr", 400),
]


async def ask_poise(port: int, requests: list[bytes]) -> list[str]:
    """One request at a time on a keep-alive connection: the X-Backend of each answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    names = []
    try:
        for request in requests:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            fields = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            fields = {name.lower(): value for name, value in fields.items()}
            await reader.readexactly(int(fields["content-length"]))
            names.append(fields["x-backend"])
    finally:
        writer.close()
    return names


@pytest.mark.parametrize("case", THROUGH_POISE, ids=[c.name for c in THROUGH_POISE])
def test_poise_itself_chooses_as_its_balancer(loop_kind: str, case: Case) -> None:
    async def main() -> None:
        async with Stage() as stage:
            apps = [await stage.webapp(f"s{i + 1}") for i in range(len(case.weights))]
            servers = "".join(
                f"    server s{i + 1} 127.0.0.1:{app.port} weight {w}\n"
                for i, (app, w) in enumerate(zip(apps, case.weights, strict=True))
            )
            hash_type = f"    hash-type {case.hash_type}\n" if case.hash_type else ""
            text = f"{BASE}    balance {case.balance}\n{hash_type}{servers}"
            poise = await stage.poise(text)
            model = PoiseModel(text)
            keys = make_keys(case, 0)
            # haproxy's Host rule for absolute URIs is kept: the requests are the same.
            ours = await ask_poise(poise.port("fe"), [request_bytes(case, k) for k in keys])
            backend = replace(case, name="be")
            assert ours == [model.choose(backend, key) for key in keys]
            assert len(set(ours)) >= 3

    run(loop_kind, main)
