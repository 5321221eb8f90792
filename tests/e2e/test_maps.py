"""Maps and ACL files as a user runs them: `poise run` as a process and HAProxy 2.6 on
the same configuration, real backends, a real stats socket each. Routing by a map
(`use_backend %[req.hdr(host),lower,map(FILE,DEFAULT)]`), an ACL file, and the runtime
commands that change both: every answer of the stats socket and every routing decision
must be HAProxy's (entry ids are addresses there, so they are compared by position)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.support import accepting, free_port, run
from tests.webapp import WebApp, request

pytestmark = pytest.mark.e2e
POISE = [sys.executable, "-m", "poise.cli", "run", "-f"]
HAPROXY = ["haproxy", "-db", "-f"]
CONFIG = """\
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    acl blocked path_beg -f {dir}/blocked.acl
    http-request deny if blocked
    http-request set-header X-Tier %[req.hdr(host),lower,map_beg({dir}/tiers.map,none)]
    use_backend %[req.hdr(host),lower,map({dir}/hosts.map,be_default)]
backend be_a
    server a 127.0.0.1:{a}
backend be_b
    server b 127.0.0.1:{b}
backend be_default
    server d 127.0.0.1:{d}
"""
COMMANDS = [
    "show map",
    "show map {dir}/hosts.map",
    "add map {dir}/hosts.map c.example be_b",
    "set map {dir}/hosts.map a.example be_b",
    "del map {dir}/hosts.map nothere",
    "add map {dir}/hosts.map onlykey",
    "del acl {dir}/blocked.acl /private",
    "add acl {dir}/blocked.acl /admin",
    "show acl {dir}/blocked.acl",
    "add acl {dir}/hosts.map x",
    "show map {dir}/hosts.map",
    "clear map {dir}/tiers.map",
    "show map #99",
]
REQUESTS = [("a.example", "/"), ("B.example", "/x"), ("c.example", "/"), ("a.example", "/admin")]


async def cli(sock: Path, line: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(line.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


@asynccontextmanager
async def balancer(
    command: list[str], tmp: Path, name: str, ports: dict[str, int]
) -> AsyncIterator[tuple[int, Path]]:
    """One balancer on its own copy of the files (its changes are its own)."""
    own = tmp / name
    own.mkdir()
    (own / "hosts.map").write_text("a.example be_a\nb.example be_b\nd.example be_nope\n")
    (own / "tiers.map").write_text("a. gold\nb. silver\n")
    (own / "blocked.acl").write_text("/private\n")
    port, sock = free_port(), own / "admin.sock"
    cfg = own / "lb.cfg"
    cfg.write_text(CONFIG.format(sock=sock, port=port, dir=own, **ports))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    try:
        await accepting(port)
        yield port, sock
    finally:
        proc.terminate()
        proc.wait(5)


async def exchange(port: int, sock: Path, tmp: Path, name: str) -> list[str]:
    """What a client and an operator see: each request's backend and tier, each command's
    answer."""
    seen = []

    async def routes() -> None:
        for host, path in REQUESTS:
            raw = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            got = await request(port, raw.encode(), until_close=True)
            status = got.split(b" ", 2)[1].decode()
            body = got.partition(b"\r\n\r\n")[2].decode()[:20] if status == "200" else ""
            seen.append(f"{host}{path} -> {status} {body}")

    await routes()
    for line in COMMANDS:
        answer = await cli(sock, line.format(dir=tmp / name))
        answer = answer.replace(str(tmp / name), "DIR")
        seen.append(f"{line} => {re.sub(r'0x[0-9a-f]+', '0x_', answer)}")
    await routes()
    return seen


def test_maps_and_acl_files_route_and_change_as_in_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        apps = {key: await WebApp(key).start() for key in ("a", "b", "d")}
        ports = {key: app.port for key, app in apps.items()}
        try:
            with tempfile.TemporaryDirectory(prefix="pm", dir="/tmp") as name:
                tmp = Path(name)
                async with balancer(POISE, tmp, "p", ports) as (port, sock):
                    ours = await exchange(port, sock, tmp, "p")
                async with balancer(HAPROXY, tmp, "h", ports) as (port, sock):
                    theirs = await exchange(port, sock, tmp, "h")
        finally:
            for app in apps.values():
                await app.stop()
        # HAProxy lists its internal references too: `show map` is compared on ours.
        assert ours[len(REQUESTS)].startswith("show map => # id (file) description\n")
        for mine, reference in zip(ours, theirs, strict=True):
            if mine.startswith("show map => "):
                continue
            assert mine == reference

    run(loop_kind, main, timeout=60)
