"""A real HTTP/1.1 backend for the tests: keep-alive, Content-Length and chunked bodies,
HEAD, interim responses, and a few misbehaviours on purpose. It records every request it
received (method, target, headers, body) and every connection it accepted.

Paths:
  /                      200, body "NAME /" (NAME is the backend's name)
  /echo                  200, the request body back
  /chunked               200, a chunked body of three chunks
  /status/NNN            that status, empty body (204/304: no body by definition)
  /head                  for HEAD: Content-Length 1000 and no body
  /continue              honours Expect: 100-continue with a 100 before the 200
  /slow/MS               answers after MS milliseconds
  /close                 200 with Connection: close, then closes
  /garbage               not HTTP at all
  /cookie                200 with the server's own Set-Cookie
  /nolength              200 without length, the body ends when the connection closes
  /health                200 "NAME ok" (for health checks, also HTTP/1.0)
  any path, with `Upgrade: websocket`: a WebSocket that echoes text messages ("NAME: msg")
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
from dataclasses import dataclass, field

import httptools


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    connection: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class WebApp:
    name: str
    server: asyncio.AbstractServer | None = None
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    host: str = "127.0.0.1"

    async def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> WebApp:
        """Listen on `port` (0: any), over TLS with `tls`."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Conn(self), self.host, port, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


class _Conn(asyncio.Protocol):
    def __init__(self, app: WebApp) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.current: Seen | None = None
        self.name = b""
        app.connections += 1
        self.number = app.connections
        self.websocket: _WebSocketEcho | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.feed(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.current = Seen("", "", [], connection=self.number)
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        seen = self.current
        assert seen is not None
        seen.method = self.parser.get_method().decode()
        seen.target = self.url.decode("latin-1")
        if seen.target == "/continue" and (seen.header("expect") or "").lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        seen = self.current
        assert seen is not None and self.transport is not None
        self.app.seen.append(seen)
        keep = self.parser.should_keep_alive()
        path = seen.target.split("?", 1)[0]
        if path.startswith("/slow/"):
            delay = int(path.rsplit("/", 1)[1]) / 1000
            asyncio.get_running_loop().call_later(delay, self.respond, seen, keep)
        else:
            self.respond(seen, keep)

    def respond(self, seen: Seen, keep: bool) -> None:
        path = seen.target.split("?", 1)[0]
        name = self.app.name
        key = seen.header("Sec-WebSocket-Key")
        if (seen.header("Upgrade") or "").lower() == "websocket" and key:
            accept = base64.b64encode(
                hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
            ).decode()
            self.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                + f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
            self.websocket = _WebSocketEcho(self, name)
            return
        if path == "/garbage":
            self.write(b"this is not http\r\n\r\n")
            self.close()
            return
        if path == "/nolength":
            self.write(b"HTTP/1.1 200 OK\r\n\r\n" + f"{name} until close".encode())
            self.close()
            return
        extra = ""
        body = f"{name} {seen.target}".encode()
        status = "200 OK"
        if path == "/echo":
            body = seen.body
        elif path.startswith("/status/"):
            status = f"{path.rsplit('/', 1)[1]} Whatever"
            body = b""
        elif path == "/head":
            extra = "Content-Length: 1000\r\n"
        elif path == "/health":
            body = f"{name} ok".encode()
        elif path == "/cookie":
            extra = "Set-Cookie: APP=server-own; path=/\r\n"
        if path == "/chunked":
            head = f"HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nTransfer-Encoding: chunked\r\n\r\n"
            self.write(head.encode() + b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        elif path == "/head" or status[:3] in ("204", "304"):
            head = f"HTTP/1.1 {status}\r\nX-Backend: {name}\r\n{extra}\r\n"
            self.write(head.encode())
        else:
            connection = "Connection: close\r\n" if path == "/close" or not keep else ""
            head = (
                f"HTTP/1.1 {status}\r\nX-Backend: {name}\r\nContent-Length: {len(body)}\r\n"
                f"{extra}{connection}\r\n"
            )
            self.write(head.encode() + body)
        if path == "/close" or not keep:
            self.close()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _WebSocketEcho:
    """Just enough of RFC 6455 to echo text frames (client frames are masked)."""

    def __init__(self, conn: _Conn, name: str) -> None:
        self.conn = conn
        self.name = name
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            masked = second & 0x80
            end = offset + (4 if masked else 0) + length
            if len(self.buffer) < end:
                return
            mask = self.buffer[offset : offset + 4] if masked else b"\0\0\0\0"
            payload = self.buffer[end - length : end]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            self.buffer = self.buffer[end:]
            opcode = first & 0x0F
            if opcode == 0x8:  # close: answer it, then close
                self.send(0x8, payload[:2])
                self.conn.close()
                return
            if opcode == 0x9:  # ping
                self.send(0xA, payload)
            elif opcode == 0x1:
                self.send(0x1, f"{self.name}: ".encode() + payload)

    def send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        self.conn.write(head + payload)


async def request(
    port: int,
    raw: bytes,
    host: str = "127.0.0.1",
    timeout: float = 5.0,
    until_close: bool = False,
) -> bytes:
    """Send raw bytes; read until the connection closes (or `timeout`)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(raw)
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    except TimeoutError:
        if until_close:
            raise
    finally:
        writer.close()
    return data


class Client:
    """A keep-alive HTTP/1.1 client on one connection, reading one response at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(
        self, target: str, headers: str = "", method: str = "GET", body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        self.writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: test\r\n{headers}{length}\r\n".encode() + body
        )
        return await self.response(head_only=method == "HEAD")

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers.setdefault(key.strip().lower(), value.strip())
        if head_only or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
            return status, headers, body
        if "content-length" in headers:
            return status, headers, await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, await self.reader.read()

    def close(self) -> None:
        self.writer.close()
