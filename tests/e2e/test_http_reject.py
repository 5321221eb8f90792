"""`http-request reject` through `poise run` and `haproxy` on the same configuration: the
request that matches gets no answer, its connection closed at once, and is logged with
status -1 and termination state PR--; the others are answered. The client's view and the
log lines must be the same from both."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running
from tests.support import run

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    log 127.0.0.1:{log} local0
    log-format "%ST %tsc %HP"
    option dontlognull
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request reject if { path_beg /bad }
    http-request return status 200 content-type text/plain string ok
"""


async def exchange(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            got += chunk
    except ConnectionResetError:
        got += b"<reset>"
    finally:
        writer.close()
    return got.split(b"\r\n", 1)[0]


async def seen(command: list[str], tmp: Path) -> tuple[list[bytes], list[str]]:
    async with running(command, tmp, CONFIG) as balancer:
        answers = [await exchange(balancer.port, path) for path in ("/bad", "/good", "/bad2")]
        deadline = time.monotonic() + 5
        while len(balancer.logs.lines) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        lines = sorted(line.rsplit(": ", 1)[-1].strip() for line in balancer.logs.lines)
    return answers, lines


def test_http_request_reject_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(seen)
        assert ours[0][1] == b"HTTP/1.1 200 OK"
        assert ours[0][0] in {b"", b"<reset>"} and ours[0][2] in {b"", b"<reset>"}
        assert ours[1] == ["-1 PR-- /bad", "-1 PR-- /bad2", "200 LR-- /good"], ours[1]
        assert ours[1] == theirs[1]
        closed = {b"", b"<reset>"}
        assert [a in closed for a in ours[0]] == [a in closed for a in theirs[0]]

    run(loop_kind, main, timeout=60)
