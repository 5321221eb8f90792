"""The first seed's set-up (reconstructed/agent-gateway.cfg), run as a user would with
`poise run -f`, its TLS words aside: ports and paths rewritten, `ssl crt` on the bind and
`ssl verify ... sni ...` on the servers left out, so that clear-text clients and gateways
can be used. test_seed_agent_gateway_tls.py runs the same file with its TLS lines.

It must: send plain HTTP to HTTPS (`redirect scheme https unless { ssl_fc }`); and, with
that redirect out of the way, keep each agent on one gateway with the inserted one-day
cookie, pass the agents' WebSockets, check the gateways with `GET /health`, and move an
agent whose gateway died to the other one with a new cookie.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.io.harness import LogReceiver
from tests.support import accepting, free_port, run
from tests.webapp import Client, WebApp, request

SEED = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.e2e

TLS_WORDS = re.compile(r" ssl verify required ca-file \S+ sni \S+")


def rewrite(text: str, tmp: Path, port: int, gateway_port: int, log_port: int) -> str:
    """Ports and paths; the TLS words out (the 443 bind line and the server's ssl words)."""
    text = text.replace("/run/poise/admin.sock", str(tmp / "admin.sock"))
    text = text.replace("log stdout format", f"log 127.0.0.1:{log_port} format")
    text = text.replace("127.0.0.180:80", f"127.0.0.180:{port}")
    text = "\n".join(line for line in text.splitlines() if "ssl crt" not in line) + "\n"
    text = TLS_WORDS.sub("", text)
    text = text.replace("127.0.0.181:443", f"127.0.0.181:{gateway_port}")
    return text.replace("127.0.0.182:443", f"127.0.0.182:{gateway_port}")


async def start(cfg: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poise.cli", "run", "-db", "-f", str(cfg),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return proc


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


def test_plain_http_is_sent_to_https(tmp_path: Path) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        port, gw = free_port("127.0.0.180"), free_port("127.0.0.181")
        cfg = tmp_path / "agent-gateway.cfg"
        seed = (SEED / "agent-gateway.cfg").read_text()
        cfg.write_text(rewrite(seed, tmp_path, port, gw, logs.port))
        ag1 = await WebApp("ag1", host="127.0.0.181").start(gw)
        ag2 = await WebApp("ag2", host="127.0.0.182").start(gw)
        proc = await start(cfg)
        try:
            await accepting(port, "127.0.0.180")
            got = await request(
                port,
                b"GET /agent/enroll?x=1 HTTP/1.1\r\n"
                b"Host: LoadBalancedAG.yourenvironment.com\r\n\r\n",
                host="127.0.0.180",
                timeout=0.5,
            )
            assert got.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
            assert b"location: https://LoadBalancedAG.yourenvironment.com/agent/enroll?x=1" in got
            assert not [s for s in ag1.seen + ag2.seen if s.target != "/health"]
        finally:
            await stop(proc)
            await ag1.stop()
            await ag2.stop()
            logs.close()

    run("uvloop", main, timeout=60)


def test_agents_stick_to_a_gateway_and_their_websockets_pass(tmp_path: Path) -> None:
    async def main() -> None:
        logs = await LogReceiver().start()
        port, gw = free_port("127.0.0.180"), free_port("127.0.0.181")
        text = rewrite((SEED / "agent-gateway.cfg").read_text(), tmp_path, port, gw, logs.port)
        text = "\n".join(line for line in text.splitlines() if "redirect scheme" not in line)
        cfg = tmp_path / "agent-gateway.cfg"
        cfg.write_text(text + "\n")
        ag1 = await WebApp("ag1", host="127.0.0.181").start(gw)
        ag2 = await WebApp("ag2", host="127.0.0.182").start(gw)
        proc = await start(cfg)
        try:
            await accepting(port, "127.0.0.180")
            client = await Client.connect(port, host="127.0.0.180")
            _, headers, body = await client.get("/agent/status")
            gateway = body.split()[0].decode()
            set_cookie = headers["set-cookie"]
            # The seed's cookie: inserted, with its idle and life dates (one day each).
            assert re.fullmatch(rf"POISEID={gateway}\|[^|;]+\|[^|;]+; path=/", set_cookie)
            # `nocache` marks only a response that could be cached otherwise (HAProxy 2.6);
            # the gateway's answer has no freshness information, so it stays as it is.
            assert "cache-control" not in headers
            cookie = set_cookie.split(";", 1)[0]
            for _ in range(20):
                _, _, body = await client.get("/agent/status", headers=f"Cookie: {cookie}\r\n")
                assert body.split()[0].decode() == gateway
            client.close()

            url = f"ws://127.0.0.180:{port}/agent/socket"
            async with ws_connect(url, additional_headers={"Cookie": cookie}) as ws:
                for i in range(3):
                    await ws.send(f"heartbeat {i}")
                    assert await ws.recv() == f"{gateway}: heartbeat {i}"

            # Its gateway dies: the health checks (inter 2s, fall 3) take it out, and the
            # agent's next request goes to the other gateway with a new cookie.
            dead, alive = (ag1, ag2) if gateway == "ag1" else (ag2, ag1)
            await dead.stop()
            await logs.wait_for(rf"Server agent_gateways/{gateway} is DOWN", timeout=20)
            client = await Client.connect(port, host="127.0.0.180")
            _, headers, body = await client.get("/agent/status", headers=f"Cookie: {cookie}\r\n")
            client.close()
            assert body.split()[0].decode() == alive.name
            assert headers["set-cookie"].startswith(f"POISEID={alive.name}|")
        finally:
            await stop(proc)
            await ag1.stop()
            await ag2.stop()
            logs.close()

    run("uvloop", main, timeout=90)
