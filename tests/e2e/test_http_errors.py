"""`http-errors` sections through `poise run` and `haproxy`, on the same files: a proxy's
`errorfiles` (a server that is down: its 503), `errorfile` after it winning, a reply
taking a section's file, and a status the section lacks (the default page). Each answer
must be the same from both, headers without case (HAProxy sends them in lower case)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
http-errors site
    errorfile 503 {dir}/503.http
    errorfile 404 {dir}/404.http
    errorfile 403 {dir}/403.http
frontend fe
    bind 127.0.0.1:{port}
    errorfiles site
    errorfile 403 {dir}/403-own.http
    http-request return status 404 errorfiles site if {{ path /missing }}
    http-request deny deny_status 403 if {{ path /private }}
    http-request return status 500 errorfiles site if {{ path /broken }}
    default_backend down
backend down
    server s 127.0.0.1:{closed}
"""
FILES = {
    "503.http": b"HTTP/1.1 503 Down For Now\r\nContent-Length: 5\r\nX-From: site\r\n\r\nlater",
    "404.http": b"HTTP/1.1 404 Not Here\r\nContent-Length: 4\r\nX-From: site\r\n\r\nnone",
    "403.http": b"HTTP/1.1 403 Site\r\nContent-Length: 4\r\n\r\nsite",
    "403-own.http": b"HTTP/1.1 403 Own\r\nContent-Length: 3\r\n\r\nown",
}
PATHS = ("/", "/missing", "/private", "/broken")


async def answers(command: list[str], tmp: Path, closed: int) -> list[str]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, dir=tmp, closed=closed))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(port)
        for path in PATHS:
            raw = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
            got = await request(port, raw, until_close=True)
            head, _, body = got.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = sorted(
                line.lower() for line in lines[1:] if not line.lower().startswith("date")
            )
            seen.append(f"{path} {lines[0]} {headers} {body!r}")
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_http_errors_sections_answer_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        closed = free_port()  # nothing listens there: the server is down
        with tempfile.TemporaryDirectory(prefix="pe", dir="/tmp") as name:
            tmp = Path(name)
            for file, content in FILES.items():
                (tmp / file).write_bytes(content)
            ours = await answers([sys.executable, "-m", "poise.cli", "run", "-f"], tmp, closed)
            theirs = await answers(["haproxy", "-db", "-f"], tmp, closed)
        assert ours[0].startswith("/ HTTP/1.1 503 Down For Now") and "later" in ours[0]
        assert "404 Not Here" in ours[1] and "403 Own" in ours[2] and "500 Internal" in ours[3]
        assert ours == theirs

    run(loop_kind, main, timeout=60)
