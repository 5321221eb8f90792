"""Stick tables through `poise run` and `haproxy` on the same configuration: the same
bursts of requests and connections from several client addresses (127.0.0.2 ...) get the
same 200s and 429s, the same accepted and refused connections, and the runtime API then
answers every `show table`, `set table` and `clear table` command with the same bytes
(but for the entry's address and its expiry in ms, which are masked)."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import Backend, accepting, eventually, free_port, run

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {dir}/admin.sock level admin
    stats socket {dir}/user.sock level user
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    mode http
    bind 127.0.0.1:{http}
    stick-table type ip size 100 expire 30s store {fe_store}
    tcp-request connection track-sc2 src table conns
    tcp-request content track-sc1 src table kept
    http-request track-sc0 src
    http-request track-sc2 src table v6
    http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 5 }}
    http-request sc-inc-gpc0(0) if {{ path /mark }}
    http-request sc-set-gpt0(0) sc_http_req_rate(0),mul(10) if {{ path /mark }}
    http-request sc-set-gpt0(0) 3 if {{ path /r404 }}
    http-request return status 404 if {{ path /r404 }}
    http-request deny deny_status 500 if {{ path /d500 }}
    http-request deny deny_status 403 if {{ sc0_get_gpc0 ge 2 }}
    http-request return status 200 content-type text/plain lf-string "{values}"
frontend ft
    mode tcp
    bind 127.0.0.1:{tcp}
    stick-table type ip size 100 expire 30s store {ft_store}
    tcp-request connection track-sc0 src
    tcp-request connection reject if {{ sc0_conn_rate gt 3 }}
    default_backend bt
backend bt
    mode tcp
    server s 127.0.0.1:{backend}
backend kept
    stick-table type ip size 10 store conn_cnt,conn_cur,sess_cnt,http_req_cnt
backend v6
    stick-table type ipv6 size 10 store gpc0,http_req_cnt
backend conns
    stick-table type ip size 10 store conn_cnt,conn_cur,sess_cnt,http_req_cnt,http_err_cnt
backend names
    stick-table type string len 8 size 10 store gpc0,http_req_cnt
"""
STORES = {
    "fe_store": "gpt0,gpc0,conn_cnt,conn_cur,http_req_cnt,http_req_rate(10s),"
    "http_err_cnt,http_fail_cnt",
    "ft_store": "conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),bytes_in_cnt,"
    "bytes_out_cnt",
}
# What the answer says: the same fetches and converters on both.
VALUES = (
    "%[sc_http_req_rate(0)] %[sc0_get_gpc0] %[src,table_gpc0(fe)] %[src_http_req_cnt] "
    "%[sc_tracked(1)] %[src,table_http_req_rate(fe)] %[sc0_trackers] %[table_cnt(fe)] "
    "%[sc_conn_cur(0)] %[src_get_gpc0(fe)] %[sc0_get_gpt0]"
)
# (client address, path), in order: .2 goes over the limit, .3 marks itself twice.
REQUESTS = (
    [("127.0.0.2", p) for p in ("/", "/", "/", "/mark", "/", "/", "/", "/")]
    + [("127.0.0.3", p) for p in ("/mark", "/", "/mark", "/")]
    + [("127.0.0.6", p) for p in ("/r404", "/d500", "/")]
)  # a deny is an error, a return not
COMMANDS = [
    "show table", "show table fe", "show table ft", "show table nope",
    "show table fe key 127.0.0.2", "show table fe key 10.0.0.1", "show table fe key abc",
    "show table fe data.gpc0 eq 1", "show table fe data.gpc0 gt 1",
    "show table fe data.http_req_cnt ge 2 data.http_err_cnt lt 3", "show table fe data.nope eq 1",
    "show table fe data.gpc0 xx 1", "show table fe data.gpc0", "show table fe data.gpc0 eq abc",
    "show table ft data.gpc0 eq 1", "show table fe data.gpc0 eq 1 foo",
    "user:show table fe", "user:show table", "user:clear table fe", "user:set table fe key 1.2.3.4",
    "set table fe key 10.0.0.2 data.gpc0 5", "show table fe key 10.0.0.2",
    "set table fe key 10.0.0.2 data.http_req_rate 7 data.conn_cnt 3",
    "set table fe key 10.0.0.2 data.nope 7", "set table fe key 10.0.0.2",
    "set table fe data.gpc0 4",
    "set table fe key 10.0.0.2 data.gpc0", "set table fe key 10.0.0.2 data.gpc0 -3",
    "set table fe key 10.0.0.2 data.conn_cur", "set table fe key 10.0.0.3 foo 1",
    "set table ft key abc data.conn_cnt 1", "show table fe", "show table ft",
    "set table names key alpha data.gpc0 1", "set table names key 'b c=d' data.gpc0 2",
    "set table names key abcdefghijk data.http_req_cnt 3", "show table names",
    "show table names key abcdefgh", "show table kept", "show table conns",
    "show table v6", "show table v6 key ::ffff:127.0.0.2", "set table v6 key ::1 data.gpc0 1",
    "set table v6 key ::7f00:9 data.gpc0 2", "set table v6 key 2001:db8::1 data.gpc0 3",
    "set table v6 key 127.0.0.9 data.gpc0 4", "show table v6",
    "clear table names key alpha", "show table names",
    "clear table fe key 10.0.0.2", "clear table fe key 10.9.9.9", "clear table", "set table",
    "clear table nope", "clear table fe key", "clear table fe data.gpc0 eq 1", "show table fe",
    "clear table fe", "show table fe", "show table fe key", "show table fe foo",
]  # fmt: skip
MASK = re.compile(r"^0x[0-9a-f]+:|exp=\d+", re.M)


def cli(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


async def get(source: str, port: int, path: str) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    status = answer.split(b" ", 2)[1].decode()
    return status + (" " + answer.partition(b"\r\n\r\n")[2].decode() if status == "200" else "")


async def keep_alive(source: str, port: int) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    head = "GET / HTTP/1.1\r\nHost: t\r\n"
    writer.write((head + "\r\n" + head + "\r\n" + head + "Connection: close\r\n\r\n").encode())
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    bodies = re.findall(rb"\r\n\r\n(.*?)(?=HTTP/1\.1 |$)", answer, re.S)
    return " | ".join(body.decode() for body in bodies)


async def garbage(source: str, port: int) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    return answer.split(b"\r\n", 1)[0].decode()


async def connect(source: str, port: int) -> str:
    """A TCP connection through `ft`: the backend's greeting and echo, or "" if refused."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
    except ConnectionError:
        sock.close()
        return ""
    try:
        writer.write(b"ping\n")
        await writer.drain()
        greeting = await asyncio.wait_for(reader.readline(), 5)
        echo = await asyncio.wait_for(reader.readline(), 5)
    except ConnectionError:
        return ""
    finally:
        writer.close()
    return (greeting + echo).decode()


async def session(command: list[str], tmp: Path, backend: int) -> list[str]:
    http, tcp = free_port(), free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(
        CONFIG.format(dir=tmp, http=http, tcp=tcp, backend=backend, values=VALUES, **STORES)
    )
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(http)  # both listen by then (a probe of `ft` would be tracked there)
        admin, user = tmp / "admin.sock", tmp / "user.sock"
        await eventually(lambda: admin.exists() and user.exists(), what="the stats sockets")
        for source, path in REQUESTS:
            seen.append(f"{source} {path} {await get(source, http, path)}")
            # HAProxy lets the request's entry go when the closed connection's stream
            # ends, a moment after the answer: wait for it, so that the next request
            # sees the same trackers on both.
            await eventually(
                lambda: "conn_cur=1" not in cli(admin, "show table fe"), what="the request's end"
            )
        # Three requests on one connection: a content rule tracks each (HAProxy's stream).
        seen.append(await keep_alive("127.0.0.7", http))
        seen.append(await garbage("127.0.0.8", http))  # a 400: a request and an error
        for _ in range(6):
            seen.append(f"tcp {await connect('127.0.0.4', tcp)!r}")
        # The last connections are closed: wait until both have seen them go.
        await eventually(
            lambda: "conn_cur=1" not in cli(admin, "show table fe") + cli(admin, "show table ft"),
            what="the connections to end",
        )
        for line in COMMANDS:
            level, _, text = line.rpartition(":") if line.startswith("user:") else ("", "", line)
            seen.append(f"== {line}\n" + MASK.sub("X", cli(user if level else admin, text)))
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_rate_limits_and_the_runtime_api_answer_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        backend = await Backend("b1").start()
        try:
            with tempfile.TemporaryDirectory(prefix="pst", dir="/tmp") as name:
                tmp = Path(name)
                ours = await session(
                    [sys.executable, "-m", "poise.cli", "run", "-f"], tmp, backend.port
                )
                theirs = await session(["haproxy", "-db", "-f"], tmp, backend.port)
        finally:
            await backend.stop()
        statuses = [line.split(" ")[2] for line in ours[: len(REQUESTS)]]
        assert statuses == ["200"] * 5 + ["429"] * 3 + ["200", "200", "403", "403"] + [
            "404", "500", "200"
        ]  # fmt: skip
        assert ours[len(REQUESTS)].count(" | ") == 2  # three answers on one connection
        assert ours[len(REQUESTS) + 1] == "HTTP/1.1 400 Bad request"
        assert [line != "tcp ''" for line in ours[len(REQUESTS) + 2 : len(REQUESTS) + 8]] == [
            True, True, True, False, False, False,
        ]  # fmt: skip
        for mine, haproxys in zip(ours, theirs, strict=True):
            assert mine == haproxys

    run(loop_kind, main, timeout=90)
