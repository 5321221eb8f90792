"""HTTP health checks against real HTTP servers: the request poise sends, the verdict on
the answer, `timeout check`, and the UP/DOWN lines, which are HAProxy 2.6's own lines
(captured from it with the same configuration against the same kind of servers) but for
the check duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from types import TracebackType

from tests.io.harness import Poise, Stage
from tests.support import eventually, run

CONFIG = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
"""

LEFT = (
    r"\. 0 active and 0 backup servers left\. 0 sessions active, 0 requeued, "
    r"0 remaining in queue\."
)
ONLINE = r"\. 1 active and 0 backup servers online\. 0 sessions requeued, 0 total in queue\."


def answer(status: int, reason: str, body: bytes = b"", head: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n".encode()
        + head
        + b"\r\n"
        + body
    )


OK = answer(200, "OK", b"all good")


class HttpBackend:
    """A real HTTP server: reads each request (kept in `requests`), then answers it with
    `reply` after `delay` seconds and closes; with `reply = None` it never answers, with
    `reset = True` it resets each connection at once."""

    def __init__(self) -> None:
        self.reply: bytes | None = OK
        self.delay = 0.0
        self.reset = False
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.closing = asyncio.Event()
        self.handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> HttpBackend:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            if self.reset:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: (\d+)\r\n", head)
            body = await reader.readexactly(int(length[1])) if length else b""
            self.requests.append(head + body)
            if self.reply is None:
                await self.closing.wait()
                return
            await asyncio.sleep(self.delay)
            writer.write(self.reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closing.set()
        if self.server is not None:
            self.server.close()
        await asyncio.gather(*self.handlers, return_exceptions=True)


async def start(
    stage: Stage, lines: str, port: int, *, inter: str = "30ms", rise: int = 1, fall: int = 1
) -> Poise:
    """poise with CONFIG, the backend's `lines`, and server `a` on `port`."""
    server = f"    server a 127.0.0.1:{port} check inter {inter} rise {rise} fall {fall}\n"
    return await stage.poise(CONFIG + lines + server)


HTTPCHK = "    option httpchk\n"


def test_200_passes_and_503_is_down_with_its_code(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            poise = await start(stage, HTTPCHK, web.port)
            await eventually(lambda: len(web.requests) >= 3, what="three checks")
            assert web.requests[0] == b"OPTIONS / HTTP/1.0\r\n\r\n"
            assert not stage.logs.matching("is DOWN")
            assert poise.ctx.backends["be"].has_server

            web.reply = answer(503, "Service Unavailable")
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 wrong status, code: 503, info: "
                r'"Service Unavailable", check duration: \d+ms' + LEFT,
                down,
            ), down

            web.reply = OK
            up = (await stage.logs.wait_for("is UP"))[0]
            assert re.fullmatch(
                r"Server be/a is UP, reason: Layer7 check passed, code: 200, "
                r"check duration: \d+ms" + ONLINE,
                up,
            ), up

    run(loop_kind, main)


def test_expect_status_200_fails_a_301(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = answer(301, "Moved Permanently", head=b"Location: /x\r\n")
            await start(stage, HTTPCHK + "    http-check expect status 200\n", web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 wrong status, code: 301, info: "
                r'"Moved Permanently", check duration: \d+ms' + LEFT,
                down,
            ), down
            web.reply = answer(200, "OK")
            await stage.logs.wait_for("is UP")

    run(loop_kind, main)


def test_expect_string_reads_the_body(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            await start(stage, HTTPCHK + "    http-check expect string ready\n", web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 invalid response, info: "
                r'"HTTP content check did not match", check duration: \d+ms' + LEFT,
                down,
            ), down
            # A chunked body is judged de-chunked ("status: re" + "ady").
            web.reply = (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"a\r\nstatus: re\r\n3\r\nady\r\n0\r\n\r\n"
            )
            up = (await stage.logs.wait_for("is UP"))[0]
            assert re.fullmatch(
                r"Server be/a is UP, reason: Layer7 check passed, code: 200, "
                r"check duration: \d+ms" + ONLINE,
                up,
            ), up

    run(loop_kind, main)


def test_expect_rstring_and_a_body_beyond_the_check_buffer(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = answer(200, "OK", b"status: ready")
            await start(
                stage, HTTPCHK + "    http-check expect rstring ^status:\\ r.*y$\n", web.port
            )
            await eventually(lambda: len(web.requests) >= 3, what="three checks")
            assert not stage.logs.matching("is DOWN")
            # Past HAProxy's 16 KiB check buffer, the text is not seen.
            web.reply = answer(200, "OK", b"x" * 20000 + b"status: ready")
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert 'info: "HTTP content check did not match"' in down

    run(loop_kind, main)


def test_negated_expectations(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = answer(200, "OK", b"an error occured")
            await start(stage, HTTPCHK + "    http-check expect ! string error\n", web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 invalid response, info: "
                r'"HTTP check matched unwanted content", check duration: \d+ms' + LEFT,
                down,
            ), down
            web.reply = OK
            await stage.logs.wait_for("is UP")

        async with Stage() as stage, HttpBackend() as web:
            web.reply = answer(503, "Service Unavailable")
            await start(stage, HTTPCHK + "    http-check expect ! rstatus ^5\n", web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 wrong status, code: 503, info: "
                r'"Service Unavailable", check duration: \d+ms' + LEFT,
                down,
            ), down

    run(loop_kind, main)


def test_a_server_that_never_answers_is_a_layer7_timeout(loop_kind: str) -> None:
    # The connection may take min(connect, inter), the answer `timeout check` from there.
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = None
            timeouts = "    timeout connect 100ms\n    timeout check 250ms\n"
            await start(stage, HTTPCHK + timeouts, web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            found = re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 timeout, check duration: (\d+)ms" + LEFT,
                down,
            )
            assert found, down
            assert 240 <= int(found[1]) < 1000  # timers may fire a little early

    run(loop_kind, main)


def test_timeout_check_never_cuts_the_read_before_the_connect_allowance(loop_kind: str) -> None:
    # An answer after 150ms with `timeout check 50ms` but min(connect, inter) = 400ms:
    # HAProxy 2.6 judges the answer (its check task first wakes at 400ms), so does poise.
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.delay = 0.15
            timeouts = "    timeout connect 400ms\n    timeout check 50ms\n"
            await start(stage, HTTPCHK + timeouts, web.port, inter="400ms")
            # A third check is only sent once the second one was judged.
            await eventually(lambda: len(web.requests) >= 3, what="three checks")
            assert not stage.logs.matching("is DOWN")

    run(loop_kind, main)


def test_without_timeout_check_the_whole_check_gets_inter(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = None
            await start(stage, HTTPCHK, web.port, inter="200ms")
            down = (await stage.logs.wait_for("is DOWN"))[0]
            found = re.search(r"reason: Layer7 timeout, check duration: (\d+)ms\.", down)
            assert found, down
            assert 190 <= int(found[1]) < 1000  # timers may fire a little early

    run(loop_kind, main)


def test_http_check_send_puts_haproxys_request_on_the_wire(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            send = (
                "    http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.com "
                "hdr X-A b body ping\n"
            )
            await start(stage, HTTPCHK + send, web.port)
            await eventually(lambda: bool(web.requests), what="a check")
            assert web.requests[0] == (
                b"GET /health HTTP/1.1\r\nhost: example.com\r\nx-a: b\r\ncontent-length: 4\r\n"
                b"connection: close\r\n\r\nping"
            )

    run(loop_kind, main)


def test_answers_that_are_not_http(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = b"hello there\r\n\r\n"
            await start(stage, HTTPCHK, web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            assert re.fullmatch(
                r"Server be/a is DOWN, reason: Layer7 invalid response, "
                r"check duration: \d+ms" + LEFT,
                down,
            ), down
            web.reply = OK
            await stage.logs.wait_for("is UP")
            # A reset before any answer is the system's error, as HAProxy reports it.
            web.reset = True
            down = (await stage.logs.wait_for("is DOWN", count=2))[1]
            assert re.fullmatch(
                r'Server be/a is DOWN, reason: Socket error, info: "Connection reset by peer", '
                r"check duration: \d+ms" + LEFT,
                down,
            ), down
            web.reset = False
            await stage.logs.wait_for("is UP", count=2)
            web.reply = b""  # closes after reading the request, without a word
            down = (await stage.logs.wait_for("is DOWN", count=3))[2]
            assert "reason: Layer7 invalid response, check duration: " in down

    run(loop_kind, main)


def test_log_health_checks_logs_each_change_and_leaves_it_out_of_up_and_down(
    loop_kind: str,
) -> None:
    async def main() -> None:
        async with Stage() as stage, HttpBackend() as web:
            web.reply = answer(503, "Service Unavailable")
            await start(stage, HTTPCHK + "    option log-health-checks\n", web.port, rise=2, fall=3)
            await stage.logs.wait_for("is DOWN")
            web.reply = OK
            await stage.logs.wait_for("is UP")
            lines = [
                line
                for line in stage.logs.lines
                if "Health check" in line or "is UP" in line or "is DOWN" in line
            ]
            duration = re.compile(r"check duration: \d+ms")
            assert [duration.sub("check duration: Nms", line) for line in lines] == [
                "Health check for server be/a failed, reason: Layer7 wrong status, code: 503, "
                'info: "Service Unavailable", check duration: Nms, status: 0/2 DOWN.',
                "Server be/a is DOWN. 0 active and 0 backup servers left. 0 sessions active, "
                "0 requeued, 0 remaining in queue.",
                "Health check for server be/a succeeded, reason: Layer7 check passed, code: 200, "
                "check duration: Nms, status: 1/2 DOWN.",
                "Health check for server be/a succeeded, reason: Layer7 check passed, code: 200, "
                "check duration: Nms, status: 3/3 UP.",
                "Server be/a is UP. 1 active and 0 backup servers online. 0 sessions requeued, "
                "0 total in queue.",
            ]
            sent = len(web.requests)
            await eventually(lambda: len(web.requests) >= sent + 3, what="three more checks")
            assert len(stage.logs.matching("Health check")) == 3  # nothing changed: not logged

    run(loop_kind, main)


class ResettingServer:
    """A server in the checker's own loop that accepts each connection as soon as the
    kernel has it and resets it before reading a byte (`reset`), or answers OK: the reset
    reaches the checker before it writes its request, which uvloop then refuses to write."""

    def __init__(self) -> None:
        self.reset = True
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.task: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.sock)
            with conn:
                if self.reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue
                with contextlib.suppress(OSError):
                    await asyncio.wait_for(loop.sock_recv(conn, 65536), 1)
                    await loop.sock_sendall(conn, OK)

    async def __aenter__(self) -> ResettingServer:
        self.task = asyncio.get_running_loop().create_task(self.serve())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sock.close()


def test_a_reset_before_the_request_is_written_keeps_the_checks_going(loop_kind: str) -> None:
    async def main() -> None:
        async with ResettingServer() as web, Stage() as stage:
            await start(stage, HTTPCHK, web.port)
            down = (await stage.logs.wait_for("is DOWN"))[0]
            # the reset lands before or after the connect completes, as the race goes
            assert re.search(r"reason: (Socket error|Layer4 connection problem)", down), down
            web.reset = False  # the checks go on, and see it answer
            await stage.logs.wait_for("is UP")

    run(loop_kind, main)
