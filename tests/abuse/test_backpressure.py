"""Back-pressure through a real `poise run` process (issue 12.5), in every shape a stalled
peer can take: a server that reads nothing stops an uploading client; a client that reads
nothing stops a downloading server; both at once inside a WebSocket tunnel (after the 101)
and in a TCP-mode relay; and 100 pipelined requests to a server that reads nothing.

Each test offers 256 MiB (a tunnel 256 MiB each way) while the other side reads nothing,
waits until the offering side has made no progress for QUIET seconds (it is stopped; the
test fails if everything was taken), checks that no more was taken than the kernel's
buffers on the way hold, then lets the stalled side read and checks that every byte
arrives, in order (CRC-32 of the whole stream). poise's memory is its peak RSS over the
test (VmHWM, reset through /proc/PID/clear_refs at the start) against its RSS at the
start: a few MiB, where a relay without back-pressure would hold the hundreds offered.

The peers are blocking sockets in the test's threads. poise is one process per event
loop kind (uvloop and the standard loop pause reading differently), shared by the tests
of this module, in front of one listening socket that each test accepts from.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MIB = 1024 * 1024
OFFERED = 256 * MIB  # what the offering side tries to send while the other reads nothing
CHUNK = 256 * 1024  # one send() of the offering side
# Peak RSS over the RSS at the start. poise's own buffers are a few hundred KiB (a read
# and the transports' high-water marks; measured: under 1 MiB), the rest is allocator slack.
RSS_GROWTH = 4 * MIB
# What the offering side may hand over before it stops: its send buffer, poise's receive
# and send buffers and the stalled side's receive buffer (measured: 8 to 10 MiB on
# loopback, whose autotuning may grow a receive buffer to tcp_rmem's maximum).
TAKEN = 32 * MIB
QUIET = 0.5  # seconds without progress that say the offering side is stopped
LIMIT = 20.0  # seconds, the deadline of any one wait (a test takes 1 s, 5 s on a busy machine)

CONFIG = """\
global
    stats socket {sock} level user
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
frontend http
    mode http
    bind 127.0.0.1:{http}
    default_backend stalled_http
frontend tcp
    mode tcp
    bind 127.0.0.1:{tcp}
    default_backend stalled_tcp
backend stalled_http
    mode http
    server s 127.0.0.1:{server}
backend stalled_tcp
    mode tcp
    server s 127.0.0.1:{server}
"""


class Offer(threading.Thread):
    """Send chunks (`total` bytes) on a blocking socket, counting what the kernel took."""

    def __init__(self, sock: socket.socket, chunks: Iterable[bytes | memoryview], total: int):
        super().__init__(daemon=True)
        self.sock, self.chunks, self.total = sock, chunks, total
        self.sent = 0
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                self.sock.sendall(chunk)
                self.sent += len(chunk)
        except OSError as error:
            self.error = error

    def finish(self) -> None:
        self.join(LIMIT)
        assert not self.is_alive(), f"the offer stalled at {self.sent} of {self.total} bytes"
        assert self.error is None, self.error
        assert self.sent == self.total


class Pattern:
    """A deterministic stream of `total` bytes, no two chunks alike, and its CRC-32."""

    def __init__(self, total: int, seed: int) -> None:
        self.total = total
        self.block = random.Random(seed).randbytes(2 * CHUNK)

    def chunks(self) -> Iterator[memoryview]:
        view = memoryview(self.block)
        for number, offset in enumerate(range(0, self.total, CHUNK)):
            start = number * 7919 % CHUNK
            yield view[start : start + min(CHUNK, self.total - offset)]

    def crc(self) -> int:
        crc = 0
        for chunk in self.chunks():
            crc = zlib.crc32(chunk, crc)
        return crc

    def offer(self, sock: socket.socket, head: bytes = b"") -> Offer:
        """Send `head` then the pattern on `sock`, from a thread."""
        return Offer(sock, [head, *self.chunks()], len(head) + self.total)


class Peer:
    """One end of a connection, read through a buffer: heads, bodies, their CRCs."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(LIMIT)
        self.sock = sock
        self.buffer = bytearray()
        self.crc: int | None = None
        self.error: BaseException | None = None

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            assert data, f"closed before a whole head: {bytes(self.buffer[:200])!r}"
            self.buffer += data
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    def body(self, length: int) -> bytes:
        while len(self.buffer) < length:
            data = self.sock.recv(65536)
            assert data, f"closed {length - len(self.buffer)} bytes before the body's end"
            self.buffer += data
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body

    def body_crc(self, length: int) -> int:
        """Read exactly `length` bytes; their CRC-32."""
        take = min(length, len(self.buffer))
        crc = zlib.crc32(self.buffer[:take])
        del self.buffer[:take]
        length -= take
        space = bytearray(MIB)
        while length:
            got = self.sock.recv_into(space, min(length, len(space)))
            assert got, f"closed {length} bytes before the body's end"
            crc = zlib.crc32(memoryview(space)[:got], crc)
            length -= got
        return crc

    def drain(self, length: int) -> threading.Thread:
        """Read `length` bytes from a thread; `drained` says their CRC-32."""

        def read() -> None:
            try:
                self.crc = self.body_crc(length)
            except BaseException as error:  # raised again in the test's thread
                self.error = error

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def drained(self, thread: threading.Thread) -> int:
        thread.join(LIMIT)
        assert not thread.is_alive(), "the stalled side could not read everything in time"
        if self.error is not None:
            raise self.error
        assert self.crc is not None
        return self.crc

    def close(self) -> None:
        self.sock.close()


def content_length(head: bytes) -> int:
    found = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
    assert found is not None, head
    return int(found.group(1))


class Running:
    """A `poise run` process, the one listening socket its servers point at, its memory."""

    def __init__(self, proc: subprocess.Popen[bytes], server: socket.socket, ports: dict[str, int]):
        self.proc, self.server, self.ports = proc, server, ports

    def connect(self, frontend: str) -> Peer:
        """A client of `frontend`."""
        return Peer(socket.create_connection(("127.0.0.1", self.ports[frontend]), LIMIT))

    def accept(self) -> Peer:
        """The server's side of the next connection poise opens (in HTTP mode, once it has
        a request head: send that first)."""
        sock, _ = self.server.accept()
        return Peer(sock)

    def status(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} for poise")

    @contextmanager
    def bounded_memory(self) -> Iterator[None]:
        """Fail if poise's RSS ever rose more than RSS_GROWTH above its RSS at the start: its
        peak RSS is reset to its RSS now (Linux 4.0's clear_refs 5) and read at the end."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        start = self.status("VmRSS")
        yield
        assert self.proc.poll() is None, "poise exited"
        growth = self.status("VmHWM") - start
        assert growth <= RSS_GROWTH, f"poise's RSS rose {growth / MIB:.1f} MiB"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def poise(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("backpressure")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(LIMIT)
    ports = {"http": free_port(), "tcp": free_port()}
    sock = tmp / "stats.sock"
    cfg = tmp / "poise.cfg"
    cfg.write_text(CONFIG.format(sock=sock, server=server.getsockname()[1], **ports))
    proc = subprocess.Popen(
        [sys.executable, "-m", "poise.cli", "run", "-db", "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "POISE_LOOP": request.param},
    )
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():  # bound with the listeners, before serving starts
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "poise did not start"
            time.sleep(0.02)
        running = Running(proc, server, ports)
        # Every path once, small and unstalled, so that what Python allocates once (and
        # keeps) is not counted as growth.
        small = Pattern(4 * MIB, 0)
        upload(running, small, stall=False)
        download(running, small, stall=False)
        tunnel(running, "http", small, small, stall=False)
        tunnel(running, "tcp", small, small, stall=False)
        pipelined(running, 2, MIB, stall=False)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        server.close()


def stopped(*offers: Offer) -> None:
    """Wait until no offer has made progress for QUIET seconds. An offer that could send
    everything while the other side read nothing fails the test, as does one that got
    more through than the buffers on the way hold."""
    deadline = time.monotonic() + LIMIT
    last = [offer.sent for offer in offers]
    since = time.monotonic()
    while time.monotonic() - since < QUIET:
        for offer in offers:
            assert offer.is_alive(), (
                f"{offer.sent} of {offer.total} bytes taken while the other side read "
                f"nothing ({offer.error})"
            )
        now = [offer.sent for offer in offers]
        if now != last:
            last, since = now, time.monotonic()
        assert time.monotonic() < deadline, f"the offers never stopped: {now}"
        time.sleep(0.01)
    assert max(last) <= TAKEN, f"{last} bytes taken while the other side read nothing"


def upload(poise: Running, pattern: Pattern, stall: bool = True) -> None:
    """A POST of `pattern` to a server that reads nothing until the client is stopped."""
    client = poise.connect("http")
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % pattern.total
    offer = pattern.offer(client.sock, head)
    server = poise.accept()
    if stall:
        stopped(offer)
    request = server.head()
    assert request.startswith(b"POST /up HTTP/1.1\r\n"), request
    assert content_length(request) == pattern.total
    reading = server.drain(pattern.total)
    offer.finish()
    assert server.drained(reading) == pattern.crc()
    server.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    answer = client.head()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert client.body(2) == b"ok"
    client.close()
    server.close()


def download(poise: Running, pattern: Pattern, stall: bool = True) -> None:
    """A response of `pattern` to a client that reads nothing until the server is stopped."""
    client = poise.connect("http")
    client.sock.sendall(b"GET /down HTTP/1.1\r\nHost: a\r\n\r\n")
    server = poise.accept()
    assert server.head().startswith(b"GET /down HTTP/1.1\r\n")
    offer = pattern.offer(
        server.sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % pattern.total
    )
    if stall:
        stopped(offer)
    answer = client.head()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert content_length(answer) == pattern.total
    reading = client.drain(pattern.total)
    offer.finish()
    assert client.drained(reading) == pattern.crc()
    client.close()
    server.close()


def tunnel(poise: Running, frontend: str, up: Pattern, down: Pattern, stall: bool = True) -> None:
    """Bytes both ways at once, neither side reading until both are stopped: through a
    WebSocket tunnel (`frontend` "http": the upgrade, the 101, then raw bytes) or a TCP
    relay."""
    client = poise.connect(frontend)
    if frontend == "http":
        client.sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    server = poise.accept()
    if frontend == "http":
        assert server.head().startswith(b"GET /ws HTTP/1.1\r\n")
        server.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        )
        answer = client.head()
        assert answer.startswith(b"HTTP/1.1 101 "), answer
    offers = up.offer(client.sock), down.offer(server.sock)
    if stall:
        stopped(*offers)
    readings = server.drain(up.total), client.drain(down.total)
    for offer in offers:
        offer.finish()
    assert server.drained(readings[0]) == up.crc()
    assert client.drained(readings[1]) == down.crc()
    client.close()
    server.close()


def pipelined(poise: Running, count: int, size: int, stall: bool = True) -> None:
    """`count` POSTs of `size` bytes each, pipelined in one stream, to a server that reads
    nothing until the client is stopped, then reads the first and answers nothing until
    the client is stopped again; then it answers each with its body's CRC-32, and the
    client gets every answer, in order."""
    bodies = [Pattern(size, seed) for seed in range(count)]
    heads = [
        b"POST /r%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (n, size)
        for n in range(count)
    ]

    def stream() -> Iterator[bytes | memoryview]:
        for head, body in zip(heads, bodies, strict=True):
            yield head
            yield from body.chunks()

    client = poise.connect("http")
    offer = Offer(client.sock, stream(), sum(map(len, heads)) + count * size)
    server = poise.accept()
    if stall:
        stopped(offer)
    for n, body in enumerate(bodies):
        request = server.head()
        assert request.startswith(b"POST /r%d HTTP/1.1\r\n" % n), (n, request)
        assert content_length(request) == size
        crc = b"%08x" % server.body_crc(size)
        assert crc == b"%08x" % body.crc(), n
        if stall and n == 0:
            # The server has the first request and does not answer yet: the next ones
            # wait for their turn in poise, which stops reading them too.
            stopped(offer)
        server.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + crc)
    offer.finish()
    for n, body in enumerate(bodies):
        answer = client.head()
        assert answer.startswith(b"HTTP/1.1 200 "), (n, answer)
        assert client.body(content_length(answer)) == b"%08x" % body.crc(), n
    client.close()
    server.close()


def test_a_server_reading_nothing_stops_an_uploading_client(poise: Running) -> None:
    with poise.bounded_memory():
        upload(poise, Pattern(OFFERED, 1))


def test_a_client_reading_nothing_stops_a_downloading_server(poise: Running) -> None:
    with poise.bounded_memory():
        download(poise, Pattern(OFFERED, 2))


@pytest.mark.parametrize("frontend", ["http", "tcp"], ids=["websocket", "tcp"])
def test_a_tunnel_stops_each_side_while_the_other_reads_nothing(
    poise: Running, frontend: str
) -> None:
    with poise.bounded_memory():
        tunnel(poise, frontend, Pattern(OFFERED, 3), Pattern(OFFERED, 4))


def test_pipelined_requests_to_a_server_reading_nothing_stop_the_client(
    poise: Running,
) -> None:
    """100 requests of 2.56 MiB each: the client is stopped inside the first body."""
    with poise.bounded_memory():
        pipelined(poise, 100, OFFERED // 100)
