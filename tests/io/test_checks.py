"""Health checks against real servers: a server that stops answering is taken out after
`fall` failed checks, put back after `rise` good ones, and every step is logged as HAProxy
logs it."""

from __future__ import annotations

import asyncio
import re

from tests.io.harness import Stage
from tests.support import ask_name, eventually, free_port, run

CONFIG = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    option tcplog
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance roundrobin
"""


def test_fall_takes_a_dead_server_out_and_rise_puts_it_back(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            b = await stage.backend("b")
            poise = await stage.poise(
                CONFIG + f"    server a 127.0.0.1:{a.port} check inter 40ms rise 2 fall 3\n"
                f"    server b 127.0.0.1:{b.port} check inter 40ms rise 2 fall 3\n"
            )
            port = poise.port("fe")
            server_b = poise.ctx.backends["be"].server("b")
            assert server_b is not None
            # Fully up first (health at its top), so that `fall` counts in full.
            checks = poise.runtime.checks
            assert checks is not None
            await eventually(
                lambda: all(c.health.health == c.health.top for c in checks.checks),
                what="both servers fully up",
            )
            await b.stop()
            down = await stage.logs.wait_for(r"Server be/b is DOWN")
            assert re.fullmatch(
                r'Server be/b is DOWN, reason: Layer4 connection problem, info: "Connection '
                r'refused", check duration: \d+ms\. 1 active and 0 backup servers left\. '
                r"0 sessions active, 0 requeued, 0 remaining in queue\.",
                down[0],
            ), down[0]
            assert server_b.failed_checks == 3  # exactly `fall` failures took it down
            assert [await ask_name(port) for _ in range(4)] == ["a"] * 4

            await stage.backend("b", port=b.port)
            up = await stage.logs.wait_for(r"Server be/b is UP")
            assert up[0].startswith("Server be/b is UP, reason: Layer4 check passed")
            assert "2 active and 0 backup servers online" in up[0]
            assert sorted([await ask_name(port) for _ in range(4)]) == ["a", "a", "b", "b"]

    run(loop_kind, main)


def test_no_server_left_closes_new_connections_at_once(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            dead = free_port()
            poise = await stage.poise(
                CONFIG + f"    server a 127.0.0.1:{dead} check inter 40ms rise 2 fall 2\n"
            )
            # A server starts UP; its first failed check takes it down.
            await stage.logs.wait_for(r"Server be/a is DOWN")
            await stage.logs.wait_for(r"backend be has no server available!")
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            line = (await stage.logs.wait_for(r" fe be/<NOSRV> "))[0].split()
            assert line[6] == "SC"
            assert line[4].startswith("-1/-1/")  # never queued, never connected

    run(loop_kind, main)


def test_check_port_and_addr_are_probed_instead_of_the_traffic_address(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            traffic = await stage.backend("traffic")
            health = await stage.backend("health", host="127.0.0.2")
            poise = await stage.poise(
                CONFIG + f"    server a 127.0.0.1:{traffic.port} check addr 127.0.0.2 "
                f"port {health.port} inter 30ms rise 1 fall 1\n"
            )
            await eventually(lambda: health.accepted >= 3, what="three probes")
            assert traffic.accepted == 0  # the checks went to addr:port, not the server
            await health.stop()
            await stage.logs.wait_for(r"Server be/a is DOWN")
            assert poise.ctx.backends["be"].has_server is False

    run(loop_kind, main)
