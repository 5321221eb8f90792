"""Dynamic persistence cookies (`cookie NAME ... dynamic`, `dynamic-cookie-key`): poise
inserts HAProxy's value for each server and keeps a client that returns with it on that
server; and side by side with HAProxy 2.6 on one configuration, the values the stats CSV
shows for each server, and the runtime commands that change them (`set dynamic-cookie-key
backend`, `disable|enable dynamic-cookie backend`) with their answers."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poise.core.dyncookie import dynamic_cookie
from tests.io.harness import Stage
from tests.support import free_port, run
from tests.webapp import Client

HTTP = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    cookie S insert indirect nocache dynamic
    dynamic-cookie-key {key}
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


def test_a_dynamic_cookie_keeps_the_client_on_its_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.webapp("a")
            b = await stage.webapp("b")
            poise = await stage.poise(HTTP.format(key="s3cret", a=a.port, b=b.port))
            values = {
                "a": dynamic_cookie("s3cret", "127.0.0.1", a.port),
                "b": dynamic_cookie("s3cret", "127.0.0.1", b.port),
            }
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/")
            server = body.split()[0].decode()
            assert status == 200
            assert headers["set-cookie"] == f"S={values[server]}; path=/"
            other = "b" if server == "a" else "a"
            for _ in range(4):  # a cookie naming the other server takes the client there
                _, headers, body = await client.get("/", headers=f"Cookie: S={values[other]}\r\n")
                assert body.split()[0].decode() == other and "set-cookie" not in headers
            client.close()

    run(loop_kind, main)


DIFF = """\
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    cookie S insert dynamic
    dynamic-cookie-key mysecret
    server v4 10.0.0.1:80
    server v6 [2001:db8::1]:8080
    server noport 10.0.0.2
    server own 10.0.0.3:80 cookie own
backend plain
    cookie S insert
    server p 10.0.0.4:80
"""
STEPS = [
    "show stat",
    "set dynamic-cookie-key backend be other",
    "show stat",
    "disable dynamic-cookie backend be",
    "show stat",
    "enable dynamic-cookie backend be",
    "show stat",
    "enable dynamic-cookie backend nosuch",
    "set dynamic-cookie-key backend be",
    "enable dynamic-cookie backend",
    "enable dynamic-cookie backend plain",
    "show stat",
]


def cli(sock: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(command.encode() + b"\n")
        out = b""
        while data := conn.recv(65536):
            out += data
    return out.decode()


def cookies(stat: str) -> list[tuple[str, str, str]]:
    rows = list(csv.reader(stat.lstrip("# ").splitlines()))
    at = rows[0].index("cookie")
    return [(row[0], row[1], row[at]) for row in rows[1:] if row and row[1] != "FRONTEND"]


def answers(command: list[str], tmp: Path, name: str) -> list[object]:
    sock = tmp / f"{name}.sock"
    cfg = tmp / f"{name}.cfg"
    cfg.write_text(DIFF.format(sock=sock, port=free_port()))
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.02)
        return [
            cookies(cli(sock, step)) if step == "show stat" else cli(sock, step) for step in STEPS
        ]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing")
def test_the_values_and_commands_are_haproxys(tmp_path: Path) -> None:
    want = answers(["haproxy"], tmp_path, "haproxy")
    got = answers([sys.executable, "-m", "poise.cli", "run"], tmp_path, "poise")
    assert got == want
    # Not every answer empty: the first export lists HAProxy's values for the key.
    first = want[0]
    assert isinstance(first, list) and ("be", "v4", "343bcd7eb109a788") in first
