"""`option http-ignore-probes` through `poise run` and `haproxy` on the same
configuration: a connection that sends nothing before `timeout http-request` (a
browser's pre-connect) is closed with no 408 and no log line, where a frontend without
the option answers 408 and logs it; a real request on such a frontend is served as usual.
The bytes each client gets and the log lines must be the same from both."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    log stdout format raw local0
defaults
    mode http
    log global
    log-format "%ft %ST %tsc %HU"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-request 200ms
frontend probes
    bind 127.0.0.1:{quiet}
    option http-ignore-probes
    http-request return status 200 content-type text/plain string served
frontend plain
    bind 127.0.0.1:{loud}
    http-request return status 200 content-type text/plain string served
"""


async def silent(port: int) -> bytes:
    """Connect, send nothing, read what comes until the balancer closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def answers(command: list[str], tmp: Path) -> tuple[list[bytes], list[str]]:
    quiet, loud = free_port(), free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(quiet=quiet, loud=loud))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.PIPE, text=True)
    try:
        await accepting(quiet)
        await accepting(loud)
        raw = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        got = [
            await silent(quiet),
            (await request(quiet, raw, until_close=True)).split(b"\r\n")[0],
            (await silent(loud)).split(b"\r\n")[0],
        ]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    # The connections `accepting` made and closed at once are not compared (poise does
    # not log them where haproxy logs a <BADREQ>); nor poise's own failure lines.
    logs = [x for x in out.splitlines() if "<BADREQ>" not in x or " 408 " in x]
    return got, [x for x in logs if x.strip() and ": failed while" not in x]


def test_probes_are_ignored_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert ours[0] == [b"", b"HTTP/1.1 200 OK", b"HTTP/1.1 408 Request Time-out"]
        assert ours == theirs

    run(loop_kind, main, timeout=60)
