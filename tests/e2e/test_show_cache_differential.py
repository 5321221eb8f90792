"""`show cache` on the stats socket against HAProxy 2.6: two `cache` sections, responses
stored under two Host names and one with `process-vary on` and a Vary on
Accept-Encoding, in one configuration run by `poise run` and by `haproxy`. The answers
must have the same lines in the same order: each section with its available blocks, each
entry with its hash (the SHA-1 key HAProxy computes), its secondary key, its blocks,
refcount and seconds left; only the memory addresses and the entry's size (HAProxy counts
its internal HTX form) differ."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import run

pytestmark = pytest.mark.e2e

CONFIG = """\
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
cache small
    total-max-size 4
    max-age 240
cache vary
    total-max-size 1
    process-vary on
frontend fe
    bind 127.0.0.1:{port}
    use_backend varied if { path_beg /v }
    default_backend plain
backend plain
    http-request cache-use small
    http-response cache-store small
    server s 127.0.0.1:{app}
backend varied
    http-request cache-use vary
    http-response cache-store vary
    server s 127.0.0.1:{app}
"""


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A cacheable answer to every request (with a Vary under /v)."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            vary = b"Vary: Accept-Encoding\r\n" if b" /v" in head.split(b"\r\n")[0] else b""
            writer.write(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=100\r\nContent-Type: text/plain\r\n"
                + vary
                + b"Content-Length: 6\r\n\r\nhello\n"
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def ask(path: Path, command: str) -> str:
    """`command`'s answer on the stats socket (once it accepts: it may open a moment
    after the listener)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return ask_once(path, command)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def ask_once(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as cli:
        cli.settimeout(5)
        cli.connect(str(path))
        cli.sendall(command.encode() + b"\n")
        got = b""
        while chunk := cli.recv(65536):
            got += chunk
    return got.decode()


def shape(text: str) -> list[tuple[str, int]]:
    """Each line without its addresses and entry size, and its seconds left."""
    out = []
    for raw in text.splitlines():
        line = re.sub(r"^0x[0-9a-f]+|(?<=shctx:)0x[0-9a-f]+", "ADDR", raw)
        line = re.sub(r"size:\d+ ", "size:N ", line)
        expire = re.search(r"expire:(-?\d+)", line)
        out.append((re.sub(r"expire:-?\d+", "expire:S", line), int(expire[1]) if expire else 0))
    return out


async def exchange(command: list[str], tmp: Path) -> list[tuple[str, int]]:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    app = server.sockets[0].getsockname()[1]
    sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
    config = CONFIG.replace("{sock}", str(sock)).replace("{app}", str(app))
    try:
        async with running(command, tmp, config) as proxy:
            empty = await asyncio.to_thread(ask, sock, "show cache")
            for host, path, extra in [
                ("www.example.com", "/a", b""),
                ("example.org", "/a?x=1", b""),
                ("www.example.com", "/v", b"Accept-Encoding: gzip\r\n"),
                ("www.example.com", "/v", b"Accept-Encoding: br\r\n"),
            ]:
                head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
                got = await send(proxy.port, [head + extra + b"\r\n"])
                assert got.startswith(b"HTTP/1.1 200"), got
            full = await asyncio.to_thread(ask, sock, "show cache")
        return [*shape(empty), ("--", 0), *shape(full)]
    finally:
        server.close()


def test_show_cache_lists_the_sections_and_entries_as_haproxy_does(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(exchange)
        assert [line for line, _ in ours] == [line for line, _ in theirs]
        for (_, left), (_, right) in zip(ours, theirs, strict=True):
            assert abs(left - right) <= 1  # the seconds left, read a moment apart
        entries = [line for line, _ in theirs if "hash:" in line]
        # The two /v answers have no Content-Encoding: one secondary key, one entry.
        assert len(entries) == 3, theirs

    run(loop_kind, main)
