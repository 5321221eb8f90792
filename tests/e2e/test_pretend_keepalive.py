"""`option http-pretend-keepalive` through `poise run` and `haproxy`: the Connection
header the server gets with `option http-server-close` or `option httpclose`, with and
without pretending, for HTTP/1.1 and HTTP/1.0 clients (HAProxy 2.6's H1 rules: a
connection to close says `close` in 1.1 and nothing in 1.0, a kept or pretended one says
nothing in 1.1 and `keep-alive` in 1.0). Each head the server sees must be the same from
both."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
MODES = {
    "close": "option http-server-close",
    "pretend": "option http-server-close\n    option http-pretend-keepalive",
    "httpclose": "option httpclose\n    option http-pretend-keepalive",
    "keep": "option http-keep-alive",
}
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
{routes}
"""


def config(port: int, app: int) -> str:
    lines = [f"    use_backend {name} if {{ path_beg /{name} }}" for name in MODES]
    text = CONFIG.format(port=port, routes="\n".join(lines))
    for name, option in MODES.items():
        text += f"backend {name}\n    {option}\n    server s 127.0.0.1:{app}\n"
    return text


async def answers(command: list[str], tmp: Path) -> list[str]:
    heads: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        wanted = [x.lower() for x in head.split("\r\n") if x.lower().startswith("connection")]
        heads.append(f"{head.split(' ')[1]} {head.split(chr(13))[0][-3:]} {wanted}")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(config(port, server.sockets[0].getsockname()[1]))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    try:
        await accepting(port)
        for name in ("close", "pretend", "httpclose"):
            for version in ("1.1", "1.0"):
                raw = f"GET /{name} HTTP/{version}\r\nHost: t\r\nConnection: close\r\n\r\n"
                await request(port, raw.encode(), until_close=True)
        for version in ("1.1", "1.0"):
            raw = f"GET /keep HTTP/{version}\r\nHost: t\r\n\r\n"
            await request(port, raw.encode(), timeout=0.5)
    finally:
        proc.terminate()
        proc.wait(5)
        server.close()
    return sorted(heads)


def test_pretend_keepalive_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert "/pretend 1.1 []" in ours and "/close 1.1 ['connection: close']" in ours
        assert ours == theirs

    run(loop_kind, main, timeout=60)
