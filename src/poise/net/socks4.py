"""A server connection through a SOCKS4 proxy (`server ... socks4 ADDR:PORT`): connect to
the proxy, send the CONNECT request for the server, read the reply (core/socks4.py), then
hand the socket to asyncio as the server's connection (TLS, when the server has `ssl`,
starts on it then). The attempt is bounded by `timeout connect` like any other (the
Dispatch cancels it); a refusal is a failed connection attempt (retries, redispatch).
"""

from __future__ import annotations

import asyncio
import socket

from poise.core import socks4


class Socks4Error(ConnectionError):
    """The SOCKS4 proxy did not grant the connection."""


async def connect(
    loop: asyncio.AbstractEventLoop,
    proxy: tuple[str, int],
    target: tuple[str, int],
    first: bytes = b"",
) -> socket.socket:
    """A connected, non-blocking socket to `target` through the proxy; `first`: bytes to
    send on it before anything else (a PROXY header before a TLS handshake)."""
    ask = socks4.request(*target)
    host, port = proxy
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, ask)
        reply = b""
        while len(reply) < socks4.REPLY_SIZE:
            chunk = await loop.sock_recv(sock, socks4.REPLY_SIZE - len(reply))
            if not chunk:
                break
            reply += chunk
        problem = socks4.refusal(reply)
        if problem is not None:
            raise Socks4Error(problem)
        if first:
            await loop.sock_sendall(sock, first)
    except BaseException:
        sock.close()
        raise
    return sock
