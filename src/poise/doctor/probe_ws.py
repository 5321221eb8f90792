"""The WebSocket probe of `poise doctor`: a raw upgrade on a socket (RFC 6455 4.1), so that
a refused upgrade shows its status and headers as they came; then one text message and its
answer; then, with `--idle`, the connection left idle that long, watched for the moment it
is closed, and asked once more. Just enough of the framing (5.2) for that: masked text
frames out, text, close and ping frames in.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import struct
import time
from dataclasses import replace

from poise.doctor.facts import Idle, Target, Upgrade, parse_head
from poise.doctor.probes import Wire, open_stream, request_bytes

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class Closed(Exception):
    """The peer closed the WebSocket (a close frame or the end of the stream)."""


def frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN, the opcode, masked (5.3: every client frame is masked)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(wire: Wire) -> tuple[int, bytes]:
    first, second = wire.exactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", wire.exactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", wire.exactly(8))[0]
    mask = wire.exactly(4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(wire.exactly(size)))
    return first & 0x0F, payload


class WebSocket:
    """An open WebSocket on a blocking socket."""

    def __init__(self, sock: socket.socket, wire: Wire) -> None:
        self.sock = sock
        self.wire = wire

    def send(self, text: str) -> None:
        self.sock.settimeout(5)
        self.sock.sendall(frame(TEXT, text.encode()))

    def receive(self, deadline: float) -> str:
        """The next text message; pings are answered. Raises Closed, TimeoutError."""
        self.wire.deadline = deadline
        while True:
            try:
                opcode, payload = read_frame(self.wire)
            except ConnectionError as exc:
                raise Closed from exc
            if opcode == CLOSE:
                raise Closed
            if opcode == PING:
                self.sock.sendall(frame(PONG, payload))
            elif opcode == TEXT:
                return payload.decode("utf-8", "replace")

    def ask(self, text: str, timeout: float) -> str:
        self.send(text)
        return self.receive(time.monotonic() + timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.settimeout(1)
            self.sock.sendall(frame(CLOSE, struct.pack("!H", 1000)))
        self.sock.close()


def upgrade(
    target: Target, address: str, path: str, timeout: float, cookie: str = ""
) -> tuple[WebSocket | None, Upgrade]:
    """GET `path` with `Upgrade: websocket` (and the cookie jar, as a browser sends it), then
    one message; the WebSocket stays open for the idle probe when it worked."""
    started = time.monotonic()
    sock, error = open_stream(target, address, timeout)
    if sock is None:
        return None, Upgrade(path, error=error)
    key = base64.b64encode(os.urandom(16)).decode()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if cookie:
        headers.append(("Cookie", cookie))
    wire = Wire(sock, started + timeout)
    try:
        sock.sendall(request_bytes(target, path, headers))
        status, reason, fields = parse_head(wire.head())
    except TimeoutError:
        sock.close()
        return None, Upgrade(path, error=f"no response within {timeout:g} s")
    except (OSError, ValueError) as exc:
        sock.close()
        return None, Upgrade(path, error=str(exc) or type(exc).__name__)
    seen = Upgrade(path, status, reason, fields, time.monotonic() - started)
    if status != 101:
        sock.close()
        return None, seen
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if seen.header("sec-websocket-accept") != accept:
        sock.close()
        return None, Upgrade(path, error="101, but a wrong Sec-WebSocket-Accept (RFC 6455 4.1)")
    return _first_message(WebSocket(sock, wire), seen, timeout)


def _first_message(
    ws: WebSocket, seen: Upgrade, timeout: float
) -> tuple[WebSocket | None, Upgrade]:
    sent = "poise doctor: hello"
    try:
        answer = ws.ask(sent, timeout)
    except Closed:
        ws.close()
        return None, replace(seen, sent=sent, closed=True)
    except (TimeoutError, OSError):
        return ws, replace(seen, sent=sent)
    return ws, replace(seen, sent=sent, answer=answer)


def stay_idle(ws: WebSocket, seconds: float, timeout: float) -> Idle:
    """Send nothing for `seconds` (answering pings, as a client library does), watching
    for the close; then one message, which should still come back."""
    started = time.monotonic()
    while True:  # a message the server pushes meanwhile is not the client's activity
        try:
            ws.receive(started + seconds)
        except TimeoutError:
            break
        except (Closed, OSError):
            ws.close()
            return Idle(seconds, closed_after=time.monotonic() - started)
    sent = "poise doctor: still there?"
    try:
        answer = ws.ask(sent, timeout)
    except (Closed, ConnectionError):
        return Idle(seconds, closed_after=time.monotonic() - started, sent=sent)
    except (TimeoutError, OSError):
        return Idle(seconds, sent=sent)
    finally:
        ws.close()
    return Idle(seconds, answer=answer, sent=sent)
