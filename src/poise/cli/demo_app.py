"""`poise demo`: two small web servers and poise in front of them, all on 127.0.0.1.

A new user sees in a minute what poise does with an ordinary haproxy.cfg (printed at
start): HTTP balancing (round robin), sticky sessions (the SERVERID cookie poise inserts
keeps a browser on the server that answered first), health checks (`option httpchk`), the
stats page (`stats uri /stats`, with admin actions from 127.0.0.1: put a server in
maintenance there and watch the page move to the other one), WebSockets passed through,
and HAProxy's log line for each request on the terminal.

Each backend answers `/` with a page naming itself (a plain line for curl, an HTML page
for a browser, with a WebSocket echo box), `/health` for the checks, and `/ws` as a
WebSocket echo (RFC 6455: text and binary messages, ping, close).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import signal
import struct
import sys
from typing import cast

import httptools

from poise.config.diagnostics import has_errors
from poise.config.haproxy import parse
from poise.net.listener import BindError
from poise.net.logsink import console
from poise.net.loop import new_event_loop
from poise.process.runtime import Runtime

DEMO_CONFIG = """\
# The configuration `poise demo` runs: an ordinary haproxy.cfg.
global
    maxconn 1000
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h

frontend demo
    bind 127.0.0.1:{port}
    # The stats page: every proxy and server, refreshed every 5 seconds; from this
    # machine, servers can be put in maintenance or drained there.
    stats enable
    stats uri /stats
    stats refresh 5s
    stats admin if LOCALHOST
    default_backend web

backend web
    balance roundrobin
    # Sticky sessions: the first answer sets SERVERID=web1 or web2, and later requests
    # that carry it go to that server for as long as it is up.
    cookie SERVERID insert indirect nocache
    option httpchk GET /health
    option redispatch
    server web1 127.0.0.1:{web1} check inter 2s rise 2 fall 2 cookie web1
    server web2 127.0.0.1:{web2} check inter 2s rise 2 fall 2 cookie web2
"""

COLOURS = {"web1": "#1f6feb", "web2": "#d1242f"}
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3

PAGE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>poise demo: {name}</title>
<style>
body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5 }}
h1 {{ color: #fff; background: {colour}; padding: .4em .8em; border-radius: .3em }}
code {{ background: #eee; padding: 0 .2em }} #log {{ background: #f6f8fa; padding: .5em;
min-height: 4em; white-space: pre-wrap; font-family: monospace }}
</style></head><body>
<h1>Answered by {name}</h1>
<p>poise sent this request to <b>{name}</b> and set the cookie
<code>SERVERID={name}</code>: reload the page and you stay on {name} (sticky sessions).
<button onclick="document.cookie='SERVERID=; Max-Age=0; path=/'; location.reload()">Forget
the cookie</button> and the next request goes to the other server (round robin).</p>
<p>Your cookie now: <code id="cookie"></code></p>
<p>The <a href="/stats">stats page</a> shows both servers, their health checks and
counters. Put {name} in maintenance there (tick it, "Set state to MAINT", Apply), then
reload this page: poise moves you to the other server.</p>
<h2>WebSocket echo</h2>
<p>Through poise to <code>ws://HOST/ws</code>; the server that answers echoes it.</p>
<form id="form"><input id="text" value="hello" autocomplete="off">
<button>Send</button></form>
<div id="log"></div>
<script>
document.getElementById("cookie").textContent = document.cookie || "(none)";
const log = (line) => document.getElementById("log").textContent += line + "\\n";
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/ws");
ws.onopen = () => log("connected");
ws.onmessage = (event) => log("< " + event.data);
ws.onclose = () => log("closed");
document.getElementById("form").onsubmit = (event) => {{
  event.preventDefault();
  const text = document.getElementById("text").value;
  ws.send(text);
  log("> " + text);
}};
</script>
</body></html>
"""


class DemoWeb(asyncio.Protocol):
    """A small HTTP/1.1 server (keep-alive, httptools) with a WebSocket echo at /ws."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[str, str] = {}
        self.echo: WebSocketEcho | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.echo is not None:
            self.echo.feed(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the WebSocket took over (on_message_complete ran before)
        except httptools.HttpParserError:
            self.reply(400, "text/plain", b"bad request\n", keep=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        path = self.url.decode("latin-1").split("?", 1)[0]
        keep = self.parser.should_keep_alive()
        key = self.headers.get("sec-websocket-key")
        if self.headers.get("upgrade", "").lower() == "websocket" and key and path == "/ws":
            self.accept_websocket(key)
        elif path == "/health":
            self.reply(200, "text/plain", b"ok\n", keep)
        elif path == "/":
            if "text/html" in self.headers.get("accept", ""):
                page = PAGE.format(name=html.escape(self.name), colour=COLOURS[self.name])
                self.reply(200, "text/html; charset=utf-8", page.encode(), keep)
            else:
                self.reply(200, "text/plain", f"Hello from {self.name}\n".encode(), keep)
        else:
            self.reply(404, "text/plain", b"not found\n", keep)

    def reply(self, status: int, kind: str, body: bytes, keep: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        connection = "" if keep else "Connection: close\r\n"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nX-Backend: {self.name}\r\n"
            f"Cache-Control: no-store\r\n{connection}\r\n"
        )
        self.transport.write(head.encode() + body)
        if not keep:
            self.transport.close()

    def accept_websocket(self, key: str) -> None:
        assert self.transport is not None
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.echo = WebSocketEcho(self.transport, self.name)


class WebSocketEcho:
    """The server side of RFC 6455 (section 5), enough to echo: client frames are masked,
    ours are not; text and binary messages come back prefixed with the server's name."""

    def __init__(self, transport: asyncio.Transport, name: str) -> None:
        self.transport = transport
        self.name = name
        self.buffer = b""
        self.message = b""
        self.opcode = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while (frame := self.next_frame()) is not None:
            fin, opcode, payload = frame
            if opcode == 0x8:  # close: answer with the same code, then close
                self.send(0x8, payload[:2])
                self.transport.close()
                return
            if opcode == 0x9:  # ping
                self.send(0xA, payload)
            elif opcode in (0x1, 0x2, 0x0):
                if opcode != 0x0:
                    self.opcode, self.message = opcode, b""
                self.message += payload
                if fin:
                    prefix = f"{self.name}: ".encode()
                    self.send(self.opcode, prefix + self.message)

    def next_frame(self) -> tuple[bool, int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        length, offset = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        masked = buffer[1] & 0x80
        end = offset + (4 if masked else 0) + length
        if len(buffer) < end:
            return None
        mask = buffer[offset : offset + 4] if masked else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[end - length : end]))
        self.buffer = buffer[end:]
        return bool(buffer[0] & 0x80), buffer[0] & 0x0F, payload

    def send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        if not self.transport.is_closing():
            self.transport.write(head + payload)


def urls(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    rows = [
        ("page", f"{base}/", "which server answered; reload: the same one (sticky cookie)"),
        ("stats", f"{base}/stats", "every proxy and server, health checks, counters"),
        ("websocket", f"ws://127.0.0.1:{port}/ws", "an echo (the page has a box to try it)"),
        ("curl", f"curl {base}/", "twice: web1, then web2 (no cookie: round robin)"),
        ("stop", "Ctrl-C", ""),
    ]
    width = max(len(url) for _, url, _ in rows)
    lines = [f"  {name + ':':<11}{url:<{width}}   {what}".rstrip() for name, url, what in rows]
    return "poise demo: web1 and web2 behind poise (the configuration above).\n" + "\n".join(lines)


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
    if config is None or has_errors(diagnostics):  # a keyword this build does not know
        for diagnostic in diagnostics:
            print(diagnostic, file=sys.stderr)
        return 1
    runtime = Runtime(config, {})
    try:
        runtime.bind()
    except (BindError, OSError) as exc:
        print(f"poise demo: {exc} (try: poise demo --port 18080)", file=sys.stderr)
        return 1
    print(text)
    print(urls(port) + "\n", flush=True)
    loop.add_signal_handler(signal.SIGINT, runtime.stop_now)
    loop.add_signal_handler(signal.SIGTERM, runtime.stop_now)
    if duration is not None:
        loop.call_later(duration, runtime.stop_now)
    try:
        await runtime.serve()
    finally:
        runtime.close()
        web1.close()
        web2.close()
    console("NOTICE", "poise demo: stopped.")
    return 0


def demo(port: int = 8080, duration: float | None = None) -> int:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(serve_demo(port, duration))
    finally:
        loop.close()
