"""`poise demo`: two small web servers and poise in front of them, all on 127.0.0.1.

Each backend answers every HTTP request with a page naming itself, so `curl` through the
balancer shows the balancing at work. poise runs from an ordinary haproxy.cfg (printed at
start), in TCP mode with round robin and health checks, and logs each connection to the
terminal.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import cast

from poise.config.haproxy import parse
from poise.net.loop import new_event_loop
from poise.runtime import Runtime

DEMO_CONFIG = """\
# The configuration `poise demo` runs (an ordinary haproxy.cfg).
global
    maxconn 1000
    log stdout format raw local0

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend demo
    bind 127.0.0.1:{port}
    default_backend web

backend web
    balance roundrobin
    server web1 127.0.0.1:{web1} check inter 1s rise 2 fall 2
    server web2 127.0.0.1:{web2} check inter 1s rise 2 fall 2
"""


class DemoWeb(asyncio.Protocol):
    """A minimal HTTP/1.1 server: one page, then close."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer or self.transport is None:
            return
        body = f"Hello from {self.name}\n".encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\nX-Backend: {self.name}\r\n\r\n".encode()
            + body
        )
        self.transport.close()


async def serve_demo(port: int, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    web1 = await loop.create_server(lambda: DemoWeb("web1"), "127.0.0.1", 0)
    web2 = await loop.create_server(lambda: DemoWeb("web2"), "127.0.0.1", 0)
    text = DEMO_CONFIG.format(
        port=port,
        web1=web1.sockets[0].getsockname()[1],
        web2=web2.sockets[0].getsockname()[1],
    )
    config, diagnostics = parse([("<demo>", text)], {})
    assert config is not None, diagnostics
    runtime = Runtime(config, {})
    try:
        runtime.bind()
    except OSError as exc:
        print(f"poise demo: {exc} (try: poise demo --port 18080)", file=sys.stderr)
        return 1
    print(text)
    print(
        f"poise demo: the balancer listens on 127.0.0.1:{port}, in front of web1 and web2.\n"
        f"  try:   curl http://127.0.0.1:{port}/      (run it twice: web1, then web2)\n"
        f"  stop:  Ctrl-C\n",
        flush=True,
    )
    loop.add_signal_handler(signal.SIGINT, runtime.stop_now)
    loop.add_signal_handler(signal.SIGTERM, runtime.stop_now)
    if duration is not None:
        loop.call_later(duration, runtime.stop_now)
    await runtime.serve()
    runtime.close()
    web1.close()
    web2.close()
    return 0


def demo(port: int = 8080, duration: float | None = None) -> int:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(serve_demo(port, duration))
    finally:
        loop.close()
