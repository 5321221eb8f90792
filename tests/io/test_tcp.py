"""TCP mode through real sockets: relay, balancing, limits, queues, timeouts, half-close,
retries and redispatch. Every test runs under uvloop and the standard asyncio loop."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from tests.io.harness import Stage
from tests.support import ask_from, ask_name, eventually, free_port, run

BASE = """
global
    maxconn 100
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
"""


def fields(line: str) -> dict[str, str]:
    """The tcplog fields a test looks at, by their HAProxy names."""
    words = line.split()
    return {"b/s": words[3], "times": words[4], "B": words[5], "ts": words[6], "rc": words[7]}


def test_relays_bytes_exactly_both_ways(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            echo = await stage.backend("echo", greet=False)
            poise = await stage.poise(BASE + f"backend be\n    server s1 127.0.0.1:{echo.port}\n")
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            payload = os.urandom(3 * 1024 * 1024)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            received = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert received == payload
            line = fields((await stage.logs.wait_for(r" fe be/s1 "))[0])
            assert line["B"] == str(len(payload))  # %B: bytes sent to the client
            assert line["ts"] == "--"  # a normal end

    run(loop_kind, main)


def test_roundrobin_alternates_and_honours_weights(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            b = await stage.backend("b")
            poise = await stage.poise(
                BASE + "backend be\n    balance roundrobin\n"
                f"    server a 127.0.0.1:{a.port} weight 3\n"
                f"    server b 127.0.0.1:{b.port} weight 1\n"
            )
            names = [await ask_name(poise.port("fe")) for _ in range(8)]
        assert names.count("a") == 6 and names.count("b") == 2
        # Smooth weighted round robin: never more than 3 in a row on `a`.
        assert "a,a,a,a" not in ",".join(names + names)

    run(loop_kind, main)


def test_source_balancing_keeps_each_client_on_one_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            servers = ""
            for i in range(3):
                backend = await stage.backend(f"s{i}")
                servers += f"    server s{i} 127.0.0.1:{backend.port}\n"
            poise = await stage.poise(
                BASE + "backend be\n    balance source\n    hash-type consistent\n" + servers
            )
            port = poise.port("fe")
            sources = [f"127.0.{i}.{j}" for i in range(1, 5) for j in (7, 9, 11)]
            first = {src: await ask_from(src, port) for src in sources}
            again = {src: await ask_from(src, port) for src in sources}
        assert first == again
        assert len(set(first.values())) >= 2  # 12 clients do not all land on one server

    run(loop_kind, main)


def test_half_close_is_passed_through(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            echo = await stage.backend("echo", greet=False)
            poise = await stage.poise(BASE + f"backend be\n    server s1 127.0.0.1:{echo.port}\n")
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"last words")
            writer.write_eof()  # the client is done sending, still reading
            # The echo server answers only after it saw the EOF, then closes its side.
            assert await asyncio.wait_for(reader.read(), 5) == b"last words"
            writer.close()

    run(loop_kind, main)


class Firehose:
    """A backend that writes as fast as the connection takes it, counting bytes."""

    def __init__(self) -> None:
        self.sent = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> Firehose:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = b"x" * 65536
        try:
            while self.sent < 512 * 1024 * 1024:
                writer.write(chunk)
                self.sent += len(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def test_a_slow_reader_never_makes_poise_buffer_without_bound(loop_kind: str) -> None:
    async def main() -> None:
        hose = await Firehose().start()
        async with Stage() as stage:
            poise = await stage.poise(BASE + f"backend be\n    server s1 127.0.0.1:{hose.port}\n")
            sock = socket.create_connection(("127.0.0.1", poise.port("fe")))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # The client reads nothing: the server writes until every buffer on the way is
            # full and its writes block. Wait until it stops making progress.
            last = -1
            while hose.sent != last:
                last = hose.sent
                await asyncio.sleep(0.2)
            session = next(iter(poise.ctx.sessions))
            assert session.client.get_write_buffer_size() <= 1024 * 1024
            assert hose.sent < 64 * 1024 * 1024, hose.sent
            sock.close()
        assert hose.server is not None
        hose.server.close()

    run(loop_kind, main)


def test_server_maxconn_queues_then_serves_in_order(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(
                BASE + "backend be\n    timeout queue 5s\n"
                f"    server a 127.0.0.1:{a.port} maxconn 1\n"
            )
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            await eventually(lambda: poise.ctx.backends["be"].queued == 1)
            assert a.accepted == 1  # the second waits in the queue, not at the server
            w1.close()
            assert await asyncio.wait_for(r2.readline(), 5) == b"a\n"
            w2.close()
            line = fields((await stage.logs.wait_for(r" fe be/a ", count=2))[1])
            assert int(line["times"].split("/")[0]) >= 0  # Tw: it did wait in the queue

    run(loop_kind, main)


def test_queue_timeout_closes_the_waiting_client(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(
                BASE + "backend be\n    timeout queue 200ms\n"
                f"    server a 127.0.0.1:{a.port} maxconn 1\n"
            )
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            started = time.monotonic()
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(r2.read(), 5) == b""  # closed, never served
            assert time.monotonic() - started >= 0.19
            line = fields((await stage.logs.wait_for(r" sQ "))[0])
            assert line["b/s"] == "be/<NOSRV>"
            w1.close()
            w2.close()

    run(loop_kind, main)


def test_frontend_maxconn_holds_new_connections_until_a_slot_frees(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(
                BASE.replace("    default_backend be", "    maxconn 1\n    default_backend be")
                + f"backend be\n    server a 127.0.0.1:{a.port}\n"
            )
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            fe = poise.ctx.frontends["fe"]
            # Its listener stopped at the limit: the second waits in the kernel's backlog.
            await eventually(lambda: bool(poise.ctx.limited))
            assert a.accepted == 1 and fe.cur_conn == 1
            w1.close()
            assert await asyncio.wait_for(r2.readline(), 5) == b"a\n"
            w2.close()

    run(loop_kind, main)


def test_client_timeout_closes_an_idle_session(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(
                BASE.replace("    timeout client 5s", "    timeout client 200ms")
                + f"backend be\n    server a 127.0.0.1:{a.port}\n"
            )
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await reader.readline() == b"a\n"
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started >= 0.19
            assert fields((await stage.logs.wait_for(r" fe be/a "))[0])["ts"] == "cD"
            writer.close()

    run(loop_kind, main)


def test_tunnel_timeout_supersedes_client_and_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            short = BASE.replace("timeout client 5s", "timeout client 100ms").replace(
                "timeout server 5s", "timeout server 100ms"
            )
            poise = await stage.poise(
                short + f"backend be\n    timeout tunnel 600ms\n    server a 127.0.0.1:{a.port}\n"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await reader.readline() == b"a\n"
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started >= 0.5
            writer.close()

    run(loop_kind, main)


def test_retries_then_redispatch_to_a_live_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            live = await stage.backend("live")
            dead = free_port()  # nothing listens there: connection refused
            poise = await stage.poise(
                BASE + "backend be\n    timeout connect 50ms\n    retries 2\n"
                "    option redispatch\n    balance roundrobin\n"
                f"    server dead 127.0.0.1:{dead}\n    server live 127.0.0.1:{live.port}\n"
            )
            names = [await ask_name(poise.port("fe")) for _ in range(4)]
            assert names == ["live"] * 4
            lines = await stage.logs.wait_for(r" fe be/live ", count=4)
            # A connection sent to `dead` is retried once there, then redispatched on the
            # last retry (`+` marks a redispatch); one sent to `live` has no retry.
            counts = [fields(line)["rc"].rsplit("/", 1)[1] for line in lines]
            assert set(counts) <= {"0", "+2"} and "+2" in counts, lines

    run(loop_kind, main)


def test_connection_fails_after_retries_without_redispatch(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            dead = free_port()
            poise = await stage.poise(
                BASE + "backend be\n    timeout connect 50ms\n    retries 2\n"
                f"    server dead 127.0.0.1:{dead}\n"
            )
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            # Two retries, each after the turn-around delay of min(connect, 1s) = 50ms.
            assert time.monotonic() - started >= 0.09
            line = fields((await stage.logs.wait_for(r" SC "))[0])
            assert line["rc"].endswith("/2")
            writer.close()

    run(loop_kind, main)


def test_a_listen_section_is_its_own_backend(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a = await stage.backend("a")
            text = BASE.split("frontend fe", maxsplit=1)[0]
            poise = await stage.poise(
                text + f"listen both\n    bind 127.0.0.1:0\n    server a 127.0.0.1:{a.port}\n"
            )
            assert await ask_name(poise.port("both")) == "a"
            await stage.logs.wait_for(r" both both/a ")

    run(loop_kind, main)


class Silent:
    """A backend that accepts and never says or closes anything."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> Silent:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the end of the client's data, then nothing, ever
        await asyncio.Event().wait()


def test_client_fin_timeout_applies_once_the_client_has_shut_its_side(loop_kind: str) -> None:
    async def main() -> None:
        silent = await Silent().start()
        async with Stage() as stage:
            poise = await stage.poise(
                BASE.replace("timeout client 5s", "timeout client 5s\n    timeout client-fin 200ms")
                + f"backend be\n    server s 127.0.0.1:{silent.port}\n"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"bye")
            writer.write_eof()
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert 0.19 <= time.monotonic() - started < 4  # not the 5s client timeout
            assert fields((await stage.logs.wait_for(r" fe be/s "))[0])["ts"] == "cD"
            writer.close()
        assert silent.server is not None
        silent.server.close()

    run(loop_kind, main)
