"""Request smuggling through the running proxy, with raw bytes on a socket: every row of
tests/io/smuggling_cases.py gets its status, nothing of it reaches a server, and the
connection is closed (RFC 9112 and 9110; the table cites the section of each case)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.io.harness import Stage
from tests.io.smuggling_cases import CASES, Case
from tests.support import run

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 2s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server a 127.0.0.1:{port}
"""


def statuses(data: bytes) -> list[int]:
    """The status of every response in `data` (the test backend's bodies never contain a
    status line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_malformed_request_is_refused_and_never_forwarded(case: Case) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            poise = await stage.poise(CONFIG.replace("{port}", str(app.port)))
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(case.raw)
            data = b""
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                data += chunk  # ends when poise closes the connection
            writer.close()
            got = statuses(data)
            assert got == [200] * case.good_before + [case.status], (case.rfc, data[:300])
            assert len(app.seen) == case.good_before, case.rfc

    run("uvloop", main)
