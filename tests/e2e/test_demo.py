"""`poise demo` as a new user runs it (`make run`): a process that prints its
configuration and URLs, then balances two backends, keeps a browser on its server with the
SERVERID cookie, checks the servers' health, shows the stats page and passes WebSockets;
Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import urllib.request
from collections.abc import Callable

import pytest
import websockets

from tests.support import eventually, free_port, run
from tests.webapp import Client

pytestmark = pytest.mark.e2e


async def get(port: int, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    client = await Client.connect(port)
    try:
        return await client.get("/", headers=headers)
    finally:
        client.close()


def checked(port: int) -> Callable[[], bool]:
    """Do the stats (CSV) say both servers are UP with a passed Layer7 check?"""

    def both() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats;csv", timeout=5) as page:
            csv = page.read().decode()
        rows = {r.split(",")[1]: r.split(",") for r in csv.splitlines()[1:] if r}
        return all(rows[n][17] == "UP" and rows[n][36] == "L7OK" for n in ("web1", "web2"))

    return both


def test_demo_balances_sticks_checks_shows_stats_and_echoes_websockets() -> None:
    async def main() -> None:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poise.cli", "demo", "--port", str(port), "--duration", "60",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        printed = ""
        try:
            while "stop:" not in printed:
                line = await asyncio.wait_for(proc.stdout.readline(), 15)
                assert line, "the demo ended before it printed its URLs"
                printed += line.decode()
            # The configuration it runs, then where to look.
            assert "cookie SERVERID insert indirect nocache" in printed
            assert "stats uri /stats" in printed and "option httpchk GET /health" in printed
            assert re.search(rf"page: +http://127\.0\.0\.1:{port}/ ", printed)
            assert re.search(rf"stats: +http://127\.0\.0\.1:{port}/stats ", printed)
            assert re.search(rf"websocket: +ws://127\.0\.0\.1:{port}/ws ", printed)

            # Balancing: without a cookie, round robin; each answer sets the cookie.
            first, second = await get(port), await get(port)
            assert {first[2], second[2]} == {b"Hello from web1\n", b"Hello from web2\n"}
            cookie = first[1]["set-cookie"].split(";")[0]
            server = first[1]["x-backend"]
            assert cookie == f"SERVERID={server}"

            # Stickiness: with the cookie, always the same server.
            for _ in range(4):
                answer = await get(port, f"Cookie: {cookie}\r\n")
                assert answer[1]["x-backend"] == server and "set-cookie" not in answer[1]

            # A browser gets the HTML page, with the WebSocket box and the stats link.
            status, headers, page = await get(port, "Accept: text/html\r\n")
            assert status == 200 and headers["content-type"].startswith("text/html")
            assert b"Answered by web" in page and b'href="/stats"' in page
            assert b"new WebSocket(" in page

            # The stats page, and the health checks it reports (both servers UP, L7OK
            # once their first check has passed).
            client = await Client.connect(port)
            status, headers, stats = await client.get("/stats")
            assert status == 200 and b"web1" in stats and b"web2" in stats
            client.close()
            await eventually(checked(port), 10, "both servers' checks passed")

            # The WebSocket echo, through poise, from the server the cookie names.
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws", additional_headers={"Cookie": cookie}
            ) as ws:
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), 5) == f"{server}: hello"

            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            rest = (await proc.stdout.read()).decode()
            # HAProxy's log line for each request, naming the server.
            assert re.search(rf"demo web/{server} .* 200 .*\"GET / HTTP/1.1\"", rest), rest
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run("uvloop", main, timeout=60)


def test_demo_says_when_its_port_is_taken() -> None:
    async def main() -> None:
        holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = holder.sockets[0].getsockname()[1]
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "poise.cli", "demo", "--port", str(port),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 1
            assert "Address already in use" in err.decode() and "--port" in err.decode()
        finally:
            holder.close()

    run("uvloop", main, timeout=30)
