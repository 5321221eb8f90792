"""net/inherited.py with real sockets, under both event loops: a descriptor checked as
HAProxy checks it, a socketpair's received descriptors served as connections, and a
connection to a `sockpair@` server sent as a descriptor."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from poise.config import model
from poise.net.inherited import (
    SockpairListener,
    SockpairReceiver,
    adopt_listener,
    connect_sockpair,
    problem,
)
from poise.net.listener import BindError
from tests.io.harness import Stage
from tests.support import eventually, run

WHERE = model.Where("t.cfg", 4)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())  # type: ignore[attr-defined]


def test_problems_in_haproxys_words(tmp_path: Path) -> None:
    closed = os.open(os.devnull, os.O_RDONLY)
    os.close(closed)
    assert problem(closed) == f"cannot use file descriptor '{closed}' : Bad file descriptor."
    assert problem(2**40) == f"cannot use file descriptor '{2**40}' : Bad file descriptor."
    with (tmp_path / "f").open("w") as file:
        assert problem(file.fileno()) == (
            f"cannot use file descriptor '{file.fileno()}' : Socket operation on non-socket."
        )
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        assert problem(udp.fileno()) == (
            f"socket on file descriptor '{udp.fileno()}' is of the wrong type."
        )
    with socket.socket() as tcp:
        assert problem(tcp.fileno()) is None  # unbound: HAProxy takes it too
        assert "not a unix socket" in str(problem(tcp.fileno(), unix_only=True))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        problem(0)
    assert len(os.listdir("/proc/self/fd")) == before  # the probe leaves nothing open


def test_a_bad_descriptor_on_bind_names_file_line_and_keyword() -> None:
    closed = os.open(os.devnull, os.O_RDONLY)
    os.close(closed)
    bind = model.Bind(model.Address("fd", str(closed), None), WHERE)
    with pytest.raises(BindError, match=r"^t.cfg:4: 'bind': cannot use file descriptor"):
        adopt_listener(bind, "fe", 100)


def test_a_socketpair_serves_the_descriptors_it_receives(loop_kind: str) -> None:
    ours, theirs = socket.socketpair()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bind = model.Bind(model.Address("sockpair", str(theirs.fileno()), None), WHERE)
        listener = adopt_listener(bind, "fe", 100)
        theirs.detach()  # the listener owns the descriptor now
        assert isinstance(listener, SockpairListener)
        receiver = SockpairReceiver(loop, listener.sock, Echo)
        receiver.start()
        clients = []
        for batch in (1, 3):  # one descriptor per message, then three in one
            pairs = [socket.socketpair() for _ in range(batch)]
            socket.send_fds(ours, [b"\0" * batch], [given.fileno() for _, given in pairs])
            for mine, given in pairs:
                given.close()
                mine.setblocking(False)
                clients.append(mine)
        for number, client in enumerate(clients):
            await loop.sock_sendall(client, b"hello %d" % number)
            assert await asyncio.wait_for(loop.sock_recv(client, 64), 5) == b"HELLO %d" % number
            client.close()
        receiver.close()
        listener.sock.close()

    try:
        run(loop_kind, main)
    finally:
        ours.close()


def test_a_sockpair_server_gets_each_connection_as_a_descriptor(loop_kind: str) -> None:
    ours, theirs = socket.socketpair()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                received.put_nowait(data)

        transport, _ = await connect_sockpair(loop, theirs.fileno(), Client)
        ours.setblocking(False)
        await asyncio.sleep(0)
        _, fds, _, _ = socket.recv_fds(ours, 16, 4)
        assert len(fds) == 1
        with socket.socket(fileno=fds[0]) as server:
            transport.write(b"request")
            server.settimeout(5)
            assert server.recv(64) == b"request"
            server.sendall(b"answer")
            assert await asyncio.wait_for(received.get(), 5) == b"answer"
        transport.close()

    try:
        run(loop_kind, main)
    finally:
        ours.close()
        theirs.close()


def test_a_sockpair_listener_stops_receiving_at_maxconn(loop_kind: str) -> None:
    """Descriptors received on a `bind sockpair@N` are accepted connections: counted
    against the frontend's maxconn, at which poise stops receiving them (HAProxy's
    listener at its limit); the next waits in the socketpair until a session ends."""
    ours, theirs = socket.socketpair()

    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(
                "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
                f"    timeout server 5s\nfrontend fe\n    bind sockpair@{theirs.fileno()}\n"
                "    maxconn 1\n    default_backend be\n"
                f"backend be\n    server a 127.0.0.1:{a.port}\n"
            )
            theirs.detach()  # poise's listener owns the descriptor now
            loop = asyncio.get_running_loop()
            clients = []
            for _ in range(2):
                mine, given = socket.socketpair()
                socket.send_fds(ours, [b"\0"], [given.fileno()])
                given.close()
                mine.setblocking(False)
                clients.append(mine)
            assert await asyncio.wait_for(loop.sock_recv(clients[0], 64), 5) == b"a\n"
            await eventually(lambda: bool(poise.ctx.limited), 5, "the listener to stop")
            assert a.accepted == 1 and poise.ctx.frontends["fe"].cur_conn == 1
            clients[0].close()
            assert await asyncio.wait_for(loop.sock_recv(clients[1], 64), 5) == b"a\n"
            clients[1].close()

    try:
        run(loop_kind, main)
    finally:
        ours.close()
