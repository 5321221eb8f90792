"""A tiny TCP server for the netns lab, stopping by itself after `duration` seconds.

- On the backend: answers each connection with the address it came from (a balancer
  node's), so a client learns which node served it through `poise run`.
- On a balancer node, in place of `poise run` (`--answer ADDRESS`): binds the virtual
  address with IP_FREEBIND before the node holds it, and answers with the node's address.
  HOST may be an IPv6 address.

Usage: python responder.py HOST PORT DURATION [--answer TEXT]
"""

from __future__ import annotations

import asyncio
import socket
import sys

IP_FREEBIND = 15  # linux/in.h


async def main(host: str, port: int, duration: float, answer: str | None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            writer.write(f"{answer or peer[0]}\n".encode())
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((host, port))
    server = await asyncio.start_server(handle, sock=sock, backlog=512)
    async with server:
        await asyncio.sleep(duration)


if __name__ == "__main__":
    args = sys.argv[1:]
    text = None
    if "--answer" in args:
        at = args.index("--answer")
        text = args[at + 1]
        del args[at : at + 2]
    asyncio.run(main(args[0], int(args[1]), float(args[2]), text))
