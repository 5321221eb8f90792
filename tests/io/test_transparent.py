"""Transparent servers (`server s 0.0.0.0:PORT`, `*`, `:PORT`) and mapped ports (`+N`,
`-N`, no port): the connection goes to the address and port the client connected to, on
loopback where all of 127/8 is this host's; the log's %si:%sp name where it went. Behind
netfilter's NAT (the original destination): tests/netns/test_transparent_netns.py."""

from __future__ import annotations

import asyncio
import socket

from tests.io.harness import Stage
from tests.support import ask_from, run

BASE = """
defaults
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def ports_free_on_both(count: int) -> int:
    """A port P such that P .. P+count-1 are free on both addresses."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((ADDRESSES[0], 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        try:
            for host in ADDRESSES:
                for port in range(first, first + count):
                    with socket.socket() as sock:
                        sock.bind((host, port))
        except OSError:
            continue
        return first
    raise AssertionError("no free ports on both addresses")


async def http_get(host: str, port: int, path: str = "/") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def test_a_transparent_server_is_the_address_the_client_connected_to(loop_kind: str) -> None:
    port = ports_free_on_both(2)  # the frontend's, then the servers'

    async def main() -> None:
        async with Stage() as stage:
            for name, host in zip(("two", "three"), ADDRESSES, strict=True):
                await stage.backend(name, host=host, port=port + 1)
            await stage.poise(
                BASE
                + "listen t\n    mode tcp\n"
                + "".join(f"    bind {host}:{port}\n" for host in ADDRESSES)
                + '    log-format "%ci %fi:%fp %s %si:%sp"\n'
                + f"    server s 0.0.0.0:{port + 1}\n"
            )
            assert await ask_from("127.0.0.9", port, "127.0.0.2") == "two"
            assert await ask_from("127.0.0.9", port, "127.0.0.3") == "three"
            lines = await stage.logs.wait_for(r"127\.0\.0\.9 ", count=2)
            assert f"127.0.0.9 127.0.0.2:{port} s 127.0.0.2:{port + 1}" in lines[0], lines
            assert f"127.0.0.9 127.0.0.3:{port} s 127.0.0.3:{port + 1}" in lines[1], lines

    run(loop_kind, main)


def test_mapped_ports_add_to_the_port_the_client_connected_to(loop_kind: str) -> None:
    low = ports_free_on_both(3)  # the server below, the frontend, the server above
    host, port = ADDRESSES[1], low + 1

    async def main() -> None:
        async with Stage() as stage:
            await stage.webapp("minus", host=host, port=low)
            await stage.webapp("plus", host=host, port=low + 2)
            await stage.poise(
                BASE.replace("defaults\n", "defaults\n    mode http\n")
                + f"frontend h\n    bind {host}:{port}\n"
                + '    log-format "%ci %HP %s %si:%sp %ST"\n'
                + "    use_backend below if { path /health }\n    default_backend above\n"
                + f"backend above\n    server one *:+1\nbackend below\n    server two {host}:-1\n"
            )
            answer = await http_get(host, port)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"plus /"), answer
            answer = await http_get(host, port, "/health")
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"minus ok"), answer
            line = (await stage.logs.wait_for(r" one "))[0]
            assert f" / one {host}:{low + 2} 200" in line, line
            line = (await stage.logs.wait_for(r" two "))[0]
            assert f" /health two {host}:{low} 200" in line, line

    run(loop_kind, main)
