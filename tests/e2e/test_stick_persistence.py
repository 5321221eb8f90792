"""`stick on src` through `poise run` and `haproxy` on the same configuration, in TCP and
HTTP mode: clients from four addresses (127.0.0.2 ...) each come back to the server they
first got, the same one with both; with that server in maintenance they go to another
(HAProxy ignores a stuck server that is down) and stay there once it is back; a request
that `use-server` sends is stored too; and `show table` then lists the same entries
(`server_id`, `server_key`) as HAProxy's."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.e2e.test_stick_tables import cli
from tests.support import Backend, accepting, eventually, free_port, run
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {dir}/admin.sock level admin
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s
listen tcpstick
    mode tcp
    bind 127.0.0.1:{tcp}
    stick-table type ip size 100 expire 30s store conn_cnt
    stick on src
    server s1 127.0.0.1:{s1}
    server s2 127.0.0.1:{s2}
    server s3 127.0.0.1:{s3}
frontend web
    mode http
    bind 127.0.0.1:{http}
    default_backend webstick
backend webstick
    mode http
    stick-table type string len 16 size 100 expire 30s
    stick match src,ipmask(32) table webstick
    stick store-request src,ipmask(32)
    use-server w2 if {{ src 127.0.0.9 }}
    server w1 127.0.0.1:{w1}
    server w2 127.0.0.1:{w2}
"""
CLIENTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
MASK = re.compile(r"^0x[0-9a-f]+:|exp=\d+", re.M)


async def tcp_name(source: str, port: int) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


async def http_name(source: str, port: int) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    return answer.partition(b"\r\n\r\n")[2].split(b" ", 1)[0].decode()


async def rounds(tcp: int, http: int) -> list[str]:
    seen = []
    for _ in range(3):
        seen.append(" ".join([await tcp_name(c, tcp) for c in CLIENTS]))
        seen.append(" ".join([await http_name(c, http) for c in CLIENTS]))
    return seen


async def session(command: list[str], tmp: Path, ports: dict[str, int]) -> list[str]:
    tcp, http = free_port(), free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(dir=tmp, tcp=tcp, http=http, **ports))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    admin = tmp / "admin.sock"
    try:
        await accepting(http)  # both listen by then (no probe of `tcpstick`: it takes a turn)
        await eventually(admin.exists, what="the stats socket")
        seen = await rounds(tcp, http)
        for server in ("tcpstick/s1", "webstick/w1"):
            seen.append(cli(admin, f"set server {server} state maint"))
        seen += await rounds(tcp, http)
        for server in ("tcpstick/s1", "webstick/w1"):
            seen.append(cli(admin, f"set server {server} state ready"))
        seen += await rounds(tcp, http)
        # use-server chooses: the store rule stores it all the same.
        seen.append(await http_name("127.0.0.9", http))
        for table in ("tcpstick", "webstick"):
            seen.append(MASK.sub("X", cli(admin, f"show table {table}")))
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_stick_on_src_keeps_clients_on_their_server_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        backends = [await Backend(name).start() for name in ("s1", "s2", "s3")]
        apps = [await WebApp(name).start() for name in ("w1", "w2")]
        ports = {b.name: b.port for b in backends} | {a.name: a.port for a in apps}
        try:
            ours, theirs = await both(session, ports)
        finally:
            for backend in backends:
                await backend.stop()
            for app in apps:
                await app.stop()
        # Round robin spreads the four clients; each then keeps its server.
        assert ours[0] == "s1 s2 s3 s1" and ours[1] == "w1 w2 w1 w2"
        assert ours[2] == ours[4] == ours[0] and ours[3] == ours[5] == ours[1]
        # With s1 and w1 in maintenance their clients move, and stay moved afterwards.
        assert "s1" not in ours[8] and "w1" not in ours[9]
        assert ours[16:22] == [ours[8], ours[9]] * 3
        for mine, haproxys in zip(ours, theirs, strict=True):
            assert mine == haproxys

    run(loop_kind, main, timeout=90)
