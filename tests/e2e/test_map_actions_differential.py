"""`http-request set-map|del-map|add-acl|del-acl` against HAProxy 2.6: the same
configuration run by `poise run` and by `haproxy`, the same requests, and the same map
values seen by the backend (a change is seen by the request's own later rules), the same
statuses (an ACL file grown by `add-acl` denies the next request), and the same entries
listed by `show map` / `show acl` on the stats socket (their ids aside)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import run
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {dir}/{name}.sock level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-map({dir}/hosts.map) %[req.hdr(host)] %[url_param(v)] if { path /set }
    http-request del-map({dir}/hosts.map) %[req.hdr(host)] if { path /del }
    http-request add-acl({dir}/blocked.lst) %[req.hdr(x-who)] if { path /block }
    http-request del-acl({dir}/blocked.lst) %[req.hdr(x-who)] if { path /unblock }
    http-request set-map({dir}/fresh.map) k %[path]
    http-request set-header X-M %[req.hdr(host),map({dir}/hosts.map,none)]
    http-request deny if { req.hdr(x-who) -f {dir}/blocked.lst }
    default_backend app
backend app
    server s 127.0.0.1:{app}
"""
STEPS = [
    ("/x", "a.example", "u1"),
    ("/set?v=2", "a.example", "u1"),
    ("/set?v=3", "a.example", "u1"),
    ("/set?v=9", "b.example", "u1"),
    ("/del", "a.example", "u1"),
    ("/x", "a.example", "u1"),
    ("/block", "a.example", "u2"),
    ("/block", "b.example", "u2"),
    ("/x", "b.example", "u2"),
    ("/x", "b.example", "u1"),
    ("/unblock", "b.example", "u2"),
    ("/x", "b.example", "u2"),
]


async def ask(socket_path: Path, command: str) -> list[str]:
    """A runtime command's answer, each line without the entry's id."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(command.encode() + b"\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return [line.split(" ", 1)[1] for line in answer.decode().splitlines() if " " in line]


async def exchange(command: list[str], tmp: Path, app: WebApp) -> list[str]:
    (tmp / "hosts.map").write_text("a.example 1\n")
    (tmp / "blocked.lst").write_text("")
    name = command[0].rsplit("/", 1)[-1]
    config = CONFIG.replace("{dir}", str(tmp)).replace("{name}", name)
    seen: list[str] = []
    async with running(command, tmp, config.replace("{app}", str(app.port))) as proxy:
        for path, host, who in STEPS:
            app.seen.clear()
            raw = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Who: {who}\r\nConnection: close\r\n"
            answer = await send(proxy.port, [raw.encode() + b"\r\n"])
            values = [record.header("x-m") for record in app.seen]
            seen.append(f"{path} {host} {who}: {answer[9:12].decode()} {values}")
        for what in ("map", "acl"):
            for file in ("hosts.map", "blocked.lst", "fresh.map"):
                lines = await ask(tmp / f"{name}.sock", f"show {what} {tmp}/{file}")
                seen.append(f"show {what} {file}: {lines}")
    return seen


def test_the_same_map_and_acl_changes(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("app").start()
        try:
            ours, theirs = await both(exchange, app)
        finally:
            await app.stop()
        assert ours == theirs
        assert "/set?v=2 a.example u1: 200 ['2']" in ours  # seen by the later rule
        assert "/x b.example u2: 403 []" in ours and "show map hosts.map: ['b.example 9']" in ours

    run(loop_kind, main, timeout=60)
