"""`source ADDR[:PORT] [usesrc ...]` on loopback (all of 127/8 is this host's): the address
and port the server sees, over clear TCP and re-encrypted TLS, and the error without
CAP_NET_ADMIN. The transparent case between hosts: tests/netns/test_usesrc_netns.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from tests.io.harness import Stage
from tests.support import ask_from, free_port, run
from tests.tlskit import Pki

BASE = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


async def peer_echo(ssl_context: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    """A server answering each connection with the address and port it came from."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        writer.write(f"{host} {port}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1]


def test_the_server_sees_the_source_address_and_port(loop_kind: str) -> None:
    fixed = free_port("127.0.0.6")

    async def main() -> None:
        server, port = await peer_echo()
        async with server, Stage() as stage:
            poise = await stage.poise(
                BASE
                + "listen plain\n    bind 127.0.0.1:0\n    source 127.0.0.5\n"
                + f"    server s 127.0.0.1:{port}\n"
                + "listen own\n    bind 127.0.0.1:0\n    source 127.0.0.5\n"
                + f"    server s 127.0.0.1:{port} source 127.0.0.6:{fixed}\n"
                + "listen client\n    bind 127.0.0.1:0\n    source 0.0.0.0 usesrc client\n"
                + f"    server s 127.0.0.1:{port}\n"
                + "listen clientip\n    bind 127.0.0.1:0\n    source 0.0.0.0 usesrc clientip\n"
                + f"    server s 127.0.0.1:{port}\n"
            )
            host, _ = (await ask_from("127.0.0.9", poise.port("plain"))).split()
            assert host == "127.0.0.5"
            assert await ask_from("127.0.0.9", poise.port("own")) == f"127.0.0.6 {fixed}"
            # usesrc client: the client's address and port; clientip: its address only.
            sock_port = free_port("127.0.0.7")
            answer = await ask_from_port("127.0.0.7", sock_port, poise.port("client"))
            assert answer == f"127.0.0.7 {sock_port}"
            host, other = (
                await ask_from_port("127.0.0.8", sock_port, poise.port("clientip"))
            ).split()
            assert host == "127.0.0.8" and other != str(sock_port)

    run(loop_kind, main)


async def ask_from_port(source: str, source_port: int, port: int) -> str:
    """Connect from SOURCE:SOURCE_PORT with SO_REUSEADDR: on one host, poise's `usesrc
    client` socket binds the client's very address and port (to another destination)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((source, source_port))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


def test_a_tls_server_connection_from_a_source(loop_kind: str, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert = pki.issue("s.pem", ["s.test"])

    async def main() -> None:
        server, port = await peer_echo(pki.server(cert))
        async with server, Stage() as stage:
            poise = await stage.poise(
                BASE
                + "listen l\n    bind 127.0.0.1:0\n"
                + f"    server s 127.0.0.1:{port} source 127.0.0.12 ssl verify required "
                + f"ca-file {pki.ca_pem} sni str(s.test)\n"
            )
            host, _ = (await ask_from("127.0.0.9", poise.port("l"))).split()
            assert host == "127.0.0.12"

    run(loop_kind, main)


def test_a_source_that_cannot_be_bound_fails_the_connection_and_says_why(
    loop_kind: str,
) -> None:
    async def main() -> None:
        server, port = await peer_echo()
        async with server, Stage() as stage:
            # 198.51.100.1 is no address of this host: a plain source cannot bind it.
            poise = await stage.poise(
                BASE
                + "listen l\n    bind 127.0.0.1:0\n    retries 0\n    source 198.51.100.1\n"
                + f"    server s 127.0.0.1:{port}\n"
            )
            assert await ask_from("127.0.0.9", poise.port("l")) == ""
            line = (await stage.logs.wait_for(r" l l/s "))[0]
            assert " l l/s 0/-1/" in line and " SC " in line, line  # as HAProxy 2.6 logs it

    run(loop_kind, main)


# setpriv (util-linux, in every Debian): what follows runs without either capability.
WITHOUT_CAPS = ["setpriv", "--inh-caps=-net_admin,-net_raw", "--bounding-set=-net_admin,-net_raw"]
NOBODY = """
from poise.config.model import Source
from poise.net.source import SourceError, bound_socket, transparent_refused
print(transparent_refused())
try:
    bound_socket(Source("0.0.0.0", usesrc="clientip"), "127.0.0.1", "198.51.100.7", 0)
except SourceError as exc:
    print(exc.strerror)
"""


def test_without_cap_net_admin_usesrc_says_what_is_missing() -> None:
    result = subprocess.run(
        # even root runs this Python without CAP_NET_ADMIN and CAP_NET_RAW.
        [*WITHOUT_CAPS, sys.executable, "-c", NOBODY],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        check=False,
    )
    assert (
        result.stdout.splitlines()
        == [
            "'usesrc' (IP_TRANSPARENT) needs CAP_NET_ADMIN or CAP_NET_RAW (run poise as root, or"
            " grant it one of them)"
        ]
        * 2
    ), result.stderr
