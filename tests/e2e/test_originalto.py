"""`option originalto` through `poise run` and `haproxy` on the same configuration: the
request reaches the server with X-Original-To naming the address the client connected
to (two listening addresses tell them apart), after X-Forwarded-For, under the
backend's header name when it gives one, and without it when the address is in the
frontend's or the backend's `except` network. The server echoes the head it got; each
head must be the same from both."""

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
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    bind 127.0.0.2:{port}
    option forwardfor
    option originalto except 127.0.0.3
    use_backend named if {{ path_beg /named }}
    use_backend excepted if {{ path_beg /except }}
    default_backend plain
backend plain
    server s 127.0.0.1:{echo}
backend named
    option originalto header X-Dest
    server s 127.0.0.1:{echo}
backend excepted
    option originalto except 127.0.0.2/32 header X-Never
    server s 127.0.0.1:{echo}
"""
TARGETS = ("/", "/named", "/except")


async def echo_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))
    await writer.drain()
    writer.close()


async def heads(command: list[str], tmp: Path, echo: int) -> list[str]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, echo=echo))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(port)
        await accepting(port, "127.0.0.2")
        for host in ("127.0.0.1", "127.0.0.2"):
            for target in TARGETS:
                raw = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                got = await request(port, raw.encode(), host=host, until_close=True)
                body = got.partition(b"\r\n\r\n")[2].decode()
                lines = [line.lower() for line in body.split("\r\n")[1:] if line]
                seen.append(f"{host}{target}: {[x for x in lines if x.startswith('x-')]}")
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_originalto_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo_head, "127.0.0.1", 0)
        echo = server.sockets[0].getsockname()[1]
        try:
            ours, theirs = await both(heads, echo)
        finally:
            server.close()
        assert ours[0] == "127.0.0.1/: ['x-forwarded-for: 127.0.0.1', 'x-original-to: 127.0.0.1']"
        assert ours[4] == "127.0.0.2/named: ['x-forwarded-for: 127.0.0.1', 'x-dest: 127.0.0.2']"
        assert ours[5] == "127.0.0.2/except: ['x-forwarded-for: 127.0.0.1']"
        assert ours == theirs

    run(loop_kind, main, timeout=60)
