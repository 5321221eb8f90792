"""Test support: real backends (TCP servers started by the test), running an event loop of
either kind, waiting for conditions with a deadline, and free ports on 127.0.0.1.

No mocks: a backend is a real asyncio server on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from poise.net.loop import new_event_loop

T = TypeVar("T")


def run(kind: str, main: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
    """Run `main()` on a new loop of `kind`; fail if the loop's exception handler is ever
    called (an error nobody handled), as uvloop's own suite does."""
    loop = new_event_loop(kind)
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        result = loop.run_until_complete(asyncio.wait_for(main(), timeout))
        # Let transports finish closing before the loop goes.
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert not unhandled, unhandled
    return result


async def eventually(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Wait until `condition()` holds, checking often; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """`eventually` for a condition that must be awaited (a question to a stats socket):
    asked again every 10 ms; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def accepting(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Wait until something accepts connections on host:port (a balancer that serves:
    HAProxy and poise log nothing when they start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing accepts connections on {host}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Backend:
    """A real TCP backend: greets each connection with its name, then echoes.

    `greet=False` makes it a plain echo server (for byte-exact relay tests)."""

    def __init__(self, name: str, greet: bool = True) -> None:
        self.name = name
        self.greet = greet
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.accepted = 0
        self.open = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Backend:
        self.server = await asyncio.start_server(self.handle, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            if self.greet:
                writer.write(f"{self.name}\n".encode())
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


async def ask_name(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> str:
    """Connect through the balancer and read which backend answered."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        return line.decode().strip()
    finally:
        writer.close()


async def ask_from(source: str, port: int, host: str = "127.0.0.1", send: bytes = b"") -> str:
    """Connect from a given loopback source address (all of 127/8 is local), optionally
    send a line, and read which backend answered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(send)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


def haproxy_master_reloads(master_socket: str) -> int | None:
    """How many reloads HAProxy's master says it has done, once its loop answers on its
    master CLI (`-S PATH`); None while it does not answer yet.

    A master acts on SIGUSR2 only from the moment its loop runs (a signal that comes just
    after "Loading success." is lost): its CLI answering is that moment, made visible."""
    try:
        with socket.socket(socket.AF_UNIX) as cli:
            cli.settimeout(2)
            cli.connect(master_socket)
            cli.sendall(b"show proc\nquit\n")
            answer = b""
            while chunk := cli.recv(4096):
                answer += chunk
    except OSError:
        return None
    for line in answer.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == "master":
            return int(fields[2])
    return None


def wait_haproxy_master(master_socket: str, reloads: int, timeout: float = 15) -> None:
    """Until HAProxy's master runs its loop after `reloads` reloads."""
    deadline = time.monotonic() + timeout
    while haproxy_master_reloads(master_socket) != reloads:
        assert time.monotonic() < deadline, f"haproxy's master is not in its loop ({reloads})"
        time.sleep(0.05)
