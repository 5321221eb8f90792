"""Running poise and HAProxy 2.6 on the same configuration, one after the other, for the
differential tests (test_*_differential.py): each is started as a user starts it, with a
syslog receiver of the test for its log lines, and stopped at the end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from tests.support import accepting, free_port

T = TypeVar("T")

POISE = [sys.executable, "-m", "poise.cli", "run", "-f"]
HAPROXY = ["haproxy", "-db", "-f"]


async def both(exchange: Callable[..., Awaitable[T]], *args: object) -> tuple[T, T]:
    """`exchange(command, folder, *args)` with poise, then with HAProxy, in one temporary
    folder (removed after): what poise gave and what HAProxy gave, to compare."""
    with tempfile.TemporaryDirectory(prefix="sb", dir="/tmp") as name:
        ours = await exchange(POISE, Path(name), *args)
        theirs = await exchange(HAPROXY, Path(name), *args)
    return ours, theirs


class Logs(asyncio.DatagramProtocol):
    """The log datagrams received, as text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.port = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.lines.append(data.decode("utf-8", "replace"))


class Running:
    def __init__(self, port: int, logs: Logs) -> None:
        self.port = port
        self.logs = logs


@asynccontextmanager
async def running(command: list[str], tmp: Path, config: str) -> AsyncIterator[Running]:
    """`command` (POISE or HAPROXY) on `config`, whose `{port}` is the port it listens on
    and `{log}` the port of its syslog receiver."""
    port = free_port()
    loop = asyncio.get_running_loop()
    logs = Logs()
    transport, _ = await loop.create_datagram_endpoint(lambda: logs, local_addr=("127.0.0.1", 0))
    logs.port = transport.get_extra_info("sockname")[1]
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(config.replace("{port}", str(port)).replace("{log}", str(logs.port)))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    try:
        await accepting(port)
        yield Running(port, logs)
    finally:
        proc.terminate()
        proc.wait(5)
        transport.close()


async def send(port: int, parts: list[bytes]) -> bytes:
    """Send `parts` on one connection (each after the answer's head to the one before:
    a `100 Continue`), and read until the connection closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = b""
    try:
        for index, part in enumerate(parts):
            writer.write(part)
            if index + 1 < len(parts):
                got += await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            got += chunk
    finally:
        writer.close()
    return got
