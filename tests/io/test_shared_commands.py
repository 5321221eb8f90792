"""Runtime commands with several workers (`nbthread`, issue 17; net/admin_shared.py): a
command that changes state, sent to worker 0's stats socket, is run by every worker (two
workers in one event loop over real socket pairs, tests/pairbus.py); one that only reads,
or that names one worker's session, is not sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from poise.core.server import AdminState
from poise.net.admin_socket import open_admin_sockets
from tests.io.harness import Poise, Stage
from tests.pairbus import close, mesh
from tests.support import ask_name, eventually, run

CONFIG = """
{stats}
defaults
    mode tcp
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


async def cli(path: Path, line: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(line.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


def test_state_changes_reach_every_worker_reads_do_not(loop_kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        workers = mesh(2)
        sock = tmp_path / "admin.sock"
        try:
            async with Stage() as stage:
                a = await stage.backend("a")
                b = await stage.backend("b")
                stats = f"global\n    stats socket {sock} level admin"
                text = CONFIG.format(stats=stats, a=a.port, b=b.port)
                first = Poise(text, workers[0])
                first.runtime.admin_socks = open_admin_sockets(first.config.global_.stats_sockets)
                await first.__aenter__()
                stage.balancers.append(first)
                other = await stage.poise(CONFIG.format(stats="", a=a.port, b=b.port), workers[1])

                def state(poise: Poise, name: str) -> AdminState:
                    server = poise.ctx.backends["be"].server(name)
                    assert server is not None
                    admin: AdminState = server.admin
                    return admin

                assert await cli(sock, "set server be/b state maint") == "\n"
                await eventually(lambda: state(other, "b") is AdminState.MAINT, what="b in maint")
                for poise in (first, other):
                    assert [await ask_name(poise.port("fe")) for _ in range(4)] == ["a"] * 4

                assert await cli(sock, "set server be/b state ready") == "\n"
                assert await cli(sock, "set weight be/a 0") == "\n"
                await eventually(
                    lambda: state(other, "b") is AdminState.READY, what="b ready again"
                )
                await eventually(lambda: other.ctx.backends["be"].server("a").weight == 0)
                assert [await ask_name(other.port("fe")) for _ in range(4)] == ["b"] * 4

                assert await cli(sock, "set maxconn frontend fe 7") == "\n"
                await eventually(lambda: other.ctx.frontends["fe"].maxconn == 7)
                # A command that fails fails everywhere: nothing changes on the other.
                assert "No such server" in await cli(sock, "set weight be/zz 3")
                assert "Unknown command" not in await cli(sock, "show stat")
                # The reads were not sent (the stats rows each worker sends every second
                # are not commands).
                heard = [kind for kind in workers[1].received if kind != "stat-rows"]
                assert heard == ["cli"] * 5, heard
        finally:
            close(workers)

    run(loop_kind, main)
