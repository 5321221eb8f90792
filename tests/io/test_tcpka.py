"""TCP keep-alives: `option tcpka|clitcpka|srvtcpka` with `clitcpka-*` and `srvtcpka-*`,
read back with getsockopt from the sockets of a live session (the client's, accepted from
a listener that carries them, and the server's), and a proxy without them left alone."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from tests.io.harness import Stage
from tests.support import eventually, run

HEAD = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def keepalive(sock: Any) -> tuple[int, int, int, int]:
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    )


def test_keepalive_options_on_both_sides(loop_kind: str) -> None:
    system = socket.socket()
    defaults = keepalive(system)[1:]  # the system's count, idle and interval
    system.close()

    async def main() -> None:
        async with Stage() as stage:
            backend = await stage.backend("b")
            poise = await stage.poise(
                HEAD
                + f"""
listen both
    bind 127.0.0.1:0
    option tcpka
    clitcpka-cnt 4
    clitcpka-idle 2m
    clitcpka-intvl 7
    srvtcpka-idle 33
    server b 127.0.0.1:{backend.port}
listen client
    bind 127.0.0.1:0
    option clitcpka
    server b 127.0.0.1:{backend.port}
listen none
    bind 127.0.0.1:0
    server b 127.0.0.1:{backend.port}
"""
            )
            for name, client, server in (
                ("both", (1, 4, 120, 7), (1, defaults[0], 33, defaults[2])),
                ("client", (1, *defaults), (0, *defaults)),
                ("none", (0, *defaults), (0, *defaults)),
            ):
                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port(name))
                assert await reader.readline() == b"b\n"  # the session is up

                def sessions(name: str = name) -> list[Any]:
                    return [s for s in poise.ctx.sessions if s.frontend.name == name]

                await eventually(lambda: len(sessions()) == 1, 5, "the session")
                session = sessions()[0]
                assert keepalive(session.client.get_extra_info("socket")) == client, name
                assert keepalive(session.server_transport.get_extra_info("socket")) == server
                writer.close()

    run(loop_kind, main)


def test_tfo_on_a_bind(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            backend = await stage.backend("b")
            poise = await stage.poise(
                HEAD
                + f"""
listen fast
    bind 127.0.0.1:0 tfo backlog 77
    server b 127.0.0.1:{backend.port}
listen slow
    bind 127.0.0.1:0
    server b 127.0.0.1:{backend.port}
"""
            )
            queues = {
                listener.frontend: listener.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN)
                for listener in poise.runtime.listeners
            }
            assert queues == {"fast": 77, "slow": 0}
            # A client that uses Fast Open is served (its SYN may carry the data).
            port = poise.port("fast")

            def fast_open() -> bytes:
                with socket.socket() as client:
                    client.setsockopt(
                        socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0)
                    )
                    client.sendto(b"ping", socket.MSG_FASTOPEN, ("127.0.0.1", port))
                    answer = b""
                    while len(answer) < len(b"b\nping") and (chunk := client.recv(100)):
                        answer += chunk
                    return answer

            answer = await asyncio.get_running_loop().run_in_executor(None, fast_open)
            assert answer == b"b\nping"

    run(loop_kind, main)
