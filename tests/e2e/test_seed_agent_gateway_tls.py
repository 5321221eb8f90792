"""The first seed's set-up (reconstructed/agent-gateway.cfg) with its TLS lines as written,
run as a user would with `poise run -f`: only ports and paths are rewritten, the paths to
certificates made by poise's CA (`poise cert ca`, `poise cert issue`).

The balancer presents LoadBalancedAG.yourenvironment.com to the agents; the gateways are
TLS servers with CA-issued certificates for ag1/ag2.yourenvironment.com, which poise
verifies by name when it re-encrypts (and on its health checks). Plain HTTP is sent to
HTTPS; an agent that checks the certificate and the name gets in, stays on its gateway for
a day with the inserted cookie, keeps its WebSocket, and moves to the other gateway when
its own dies; an agent that dials another name is refused by its own check.
"""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.io.harness import LogReceiver
from tests.support import accepting, free_port, run
from tests.webapp import Client, WebApp, request

SEED = Path(__file__).resolve().parents[2] / "examples"
POISE = [sys.executable, "-m", "poise.cli"]
BALANCER = "LoadBalancedAG.yourenvironment.com"

pytestmark = pytest.mark.e2e


def make_certificates(tmp: Path) -> Path:
    """`poise cert` as the seed's admin would use it: a CA, then one certificate each."""

    def cert(*args: str) -> None:
        done = subprocess.run([*POISE, "cert", *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    cert("ca", "--dir", str(tmp / "ca"), "--name", "yourenvironment.com CA")
    (tmp / "certs").mkdir()
    for name in (BALANCER, "ag1.yourenvironment.com", "ag2.yourenvironment.com"):
        out = tmp / "certs" / f"{name.split('.')[0].lower()}.pem"
        cert("issue", "--ca", str(tmp / "ca"), "--dns", name, "--out", str(out))
    return tmp / "ca" / "ca.pem"


def rewrite(text: str, tmp: Path, ports: tuple[int, int, int], log_port: int) -> str:
    http, https, gateway = ports
    text = text.replace("/run/poise/admin.sock", str(tmp / "admin.sock"))
    text = text.replace("log stdout format", f"log 127.0.0.1:{log_port} format")
    text = text.replace("127.0.0.180:80\n", f"127.0.0.180:{http}\n")
    text = text.replace("127.0.0.180:443 ", f"127.0.0.180:{https} ")
    text = text.replace("/etc/poise/certs/", f"{tmp}/certs/")
    text = text.replace("/etc/poise/ca.pem", str(tmp / "ca" / "ca.pem"))
    text = text.replace("127.0.0.181:443", f"127.0.0.181:{gateway}")
    return text.replace("127.0.0.182:443", f"127.0.0.182:{gateway}")


def gateway_tls(tmp: Path, name: str, seen: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp / "certs" / f"{name}.pem"))

    def record(sslobj: object, server_name: str | None, ctx: ssl.SSLContext) -> None:
        seen.append(server_name)

    context.sni_callback = record
    return context


def agent_tls(ca_pem: Path) -> ssl.SSLContext:
    """An agent trusts the CA and checks the name it dials (the seed's lesson)."""
    return ssl.create_default_context(cafile=str(ca_pem))


async def start(cfg: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *POISE, "run", "-db", "-f", str(cfg),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


async def agent(port: int, ca_pem: Path, name: str = BALANCER) -> Client:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.180", port, ssl=agent_tls(ca_pem), server_hostname=name),
        5,
    )
    return Client(reader, writer)


def test_the_seed_runs_with_its_tls_lines_as_written(tmp_path: Path) -> None:
    ca_pem = make_certificates(tmp_path)
    seen: dict[str, list[str | None]] = {"ag1": [], "ag2": []}

    async def main() -> None:
        logs = await LogReceiver().start()
        ports = (free_port("127.0.0.180"), free_port("127.0.0.180"), free_port("127.0.0.181"))
        http, https, gw = ports
        seed = (SEED / "agent-gateway.cfg").read_text()
        assert "ssl crt /etc/poise/certs/loadbalancedag.pem" in seed
        cfg = tmp_path / "agent-gateway.cfg"
        cfg.write_text(rewrite(seed, tmp_path, ports, logs.port))
        checked = subprocess.run(
            [*POISE, "check", "-f", str(cfg)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
        assert checked.stderr == ""  # every certificate is fine: no warning either
        ag1 = await WebApp("ag1", host="127.0.0.181").start(
            gw, gateway_tls(tmp_path, "ag1", seen["ag1"])
        )
        ag2 = await WebApp("ag2", host="127.0.0.182").start(
            gw, gateway_tls(tmp_path, "ag2", seen["ag2"])
        )
        proc = await start(cfg)
        try:
            await accepting(http, "127.0.0.180")
            await accepting(https, "127.0.0.180")
            # Plain HTTP is sent to HTTPS.
            got = await request(
                http, f"GET /agent/enroll HTTP/1.1\r\nHost: {BALANCER}\r\n\r\n".encode(),
                host="127.0.0.180", timeout=0.5,
            )  # fmt: skip
            assert got.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
            assert f"location: https://{BALANCER}/agent/enroll".encode() in got

            # An agent that checks the certificate and its name gets in, and stays on its
            # gateway with the one-day inserted cookie.
            client = await agent(https, ca_pem)
            _, headers, body = await client.get("/agent/status")
            gateway = body.split()[0].decode()
            cookie = headers["set-cookie"].split(";", 1)[0]
            assert re.fullmatch(rf"POISEID={gateway}\|[^|]+\|[^|]+", cookie)
            for _ in range(10):
                _, _, body = await client.get("/agent/status", headers=f"Cookie: {cookie}\r\n")
                assert body.split()[0].decode() == gateway
            client.close()
            # poise spoke TLS to the gateway with its name as SNI, and verified it.
            assert f"{gateway}.yourenvironment.com" in seen[gateway]

            # The agent's WebSocket passes, encrypted on both legs.
            url = f"wss://{BALANCER}:{https}/agent/socket"
            async with ws_connect(
                url, ssl=agent_tls(ca_pem), host="127.0.0.180", port=https,
                server_hostname=BALANCER, additional_headers={"Cookie": cookie},
            ) as ws:  # fmt: skip
                for i in range(3):
                    await ws.send(f"heartbeat {i}")
                    assert await ws.recv() == f"{gateway}: heartbeat {i}"

            # An agent pointed at a gateway's name instead of the balancer's refuses poise:
            # the balancer's certificate is for LoadBalancedAG only.
            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                await agent(https, ca_pem, "ag1.yourenvironment.com")

            # Its gateway dies: the checks take it out, the agent moves with a new cookie.
            dead, alive = (ag1, ag2) if gateway == "ag1" else (ag2, ag1)
            await dead.stop()
            await logs.wait_for(rf"Server agent_gateways/{gateway} is DOWN", timeout=20)
            client = await agent(https, ca_pem)
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
