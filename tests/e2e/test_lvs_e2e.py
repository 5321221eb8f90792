"""`poise vrrp` as a process serving a keepalived.conf with only a `virtual_server` on
127.0.0.1 (no VRRP instance, no namespace): round robin over the real servers, a real
server that dies taking the quorum with it and the sorry server taking over, the quorum
gained back, and `omega`'s down scripts at SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

from tests.support import Backend, ask_name, eventually, free_port, run

pytestmark = [pytest.mark.e2e]
POISE = str(Path(sys.executable).parent / "poise")

CONF = """
virtual_server 127.0.0.1 {port} {{
    delay_loop 0.1
    warmup 0
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    omega
    quorum_down "{script} quorum-down"
    quorum_up "{script} quorum-up"
    sorry_server 127.0.0.1 {sorry}
{reals}
}}
"""
REAL = """    real_server 127.0.0.1 {port} {{
        notify_down "{script} down-{name}"
        TCP_CHECK {{
            connect_timeout 0.5
            retry 0
        }}
    }}
"""


def test_a_virtual_server_with_quorum_sorry_server_and_omega(
    tmp_path: Path, loop_kind: str
) -> None:
    out = tmp_path / "scripts.out"
    script = tmp_path / "note.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    log = tmp_path / "vrrp.log"

    def said() -> list[str]:
        return out.read_text().split("\n")[:-1] if out.exists() else []

    async def main() -> None:
        a = await Backend("a").start()
        b = await Backend("b").start()
        sorry = await Backend("sorry").start()
        port = free_port()
        reals = "".join(
            REAL.format(port=backend.port, script=script, name=backend.name) for backend in (a, b)
        )
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CONF.format(port=port, script=script, sorry=sorry.port, reals=reals))
        with log.open("wb") as stream:
            proc = await asyncio.create_subprocess_exec(
                POISE, "vrrp", "-f", str(conf), "-db", stdout=stream, stderr=stream
            )
        try:
            await eventually(lambda: "Activating healthchecker" in log.read_text(), 10)

            async def names(count: int) -> Counter[str]:
                return Counter([await ask_name(port) for _ in range(count)])

            assert await names(4) == Counter({"a": 2, "b": 2})
            b_port = b.port
            await b.stop()
            await eventually(
                lambda: "Adding sorry server" in log.read_text(), 10, "the sorry server"
            )
            text = log.read_text()
            assert f"Removing service [127.0.0.1]:tcp:{b_port} from VS [127.0.0.1]:tcp:{port}" in (
                text
            )
            assert f"Lost quorum 2-0=2 > 1 for VS [127.0.0.1]:tcp:{port}" in text
            assert await names(3) == Counter({"sorry": 3})
            # Two scripts started at once append in whichever order they run.
            await eventually(lambda: sorted(said()) == ["down-b", "quorum-down"], 10, "the scripts")
            b = await Backend("b").start(port=b_port)
            await eventually(lambda: "Gained quorum" in log.read_text(), 10, "the quorum back")
            assert await names(4) == Counter({"a": 2, "b": 2})
            await eventually(lambda: said()[-1:] == ["quorum-up"], 10, "quorum_up")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            # omega: each real server's down script at shutdown, and the quorum's when
            # it falls below (Keepalived's clear_service_rs order).
            assert said()[3:] == ["down-a", "quorum-down", "down-b"], said()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            for backend in (a, b, sorry):
                await backend.stop()

    run(loop_kind, main, timeout=60)


UDP_CONF = """
virtual_server 127.0.0.1 {port} {{
    lb_algo rr
    protocol UDP
    real_server 127.0.0.1 {a} {{
    }}
    real_server 127.0.0.1 {b} {{
    }}
}}
"""


class UdpRealServer(asyncio.DatagramProtocol):
    """Answers each datagram with its name and what it got."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b" " + data, addr)


def test_a_udp_virtual_server_relays_datagrams_per_client(tmp_path: Path, loop_kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [
            await loop.create_datagram_endpoint(
                functools.partial(UdpRealServer, name), local_addr=("127.0.0.1", 0)
            )
            for name in ("a", "b")
        ]
        ports = [t.get_extra_info("sockname")[1] for t, _ in servers]
        port = free_port()
        conf = tmp_path / "keepalived.conf"
        conf.write_text(UDP_CONF.format(port=port, a=ports[0], b=ports[1]))
        log = tmp_path / "vrrp.log"
        with log.open("wb") as stream:
            proc = await asyncio.create_subprocess_exec(
                POISE, "vrrp", "-f", str(conf), "-db", stdout=stream, stderr=stream
            )

        async def exchange(sock: socket.socket, payload: bytes, tries: int = 1) -> bytes:
            for _ in range(tries - 1):  # until poise vrrp runs its loop (UDP: no connect)
                await loop.sock_sendall(sock, payload)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(loop.sock_recv(sock, 2048), 0.5)
            await loop.sock_sendall(sock, payload)
            return await asyncio.wait_for(loop.sock_recv(sock, 2048), 2)

        clients: list[socket.socket] = []
        try:
            await eventually(lambda: "Starting VRRP child process" in log.read_text(), 10)
            for _ in range(4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect(("127.0.0.1", port))  # answers must come from the VIP:port
                clients.append(sock)
            first = [await exchange(clients[0], b"hello", tries=20)]
            first += [await exchange(sock, b"hello") for sock in clients[1:]]
            assert sorted(first) == [b"a hello", b"a hello", b"b hello", b"b hello"], first
            # Each client stays on its real server (one flow per client address and port).
            again = [await exchange(sock, b"again") for sock in clients]
            assert [a.split()[0] for a in again] == [f.split()[0] for f in first]
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            for sock in clients:
                sock.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            for transport, _ in servers:
                transport.close()

    run(loop_kind, main, timeout=60)
