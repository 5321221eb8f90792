"""TCP mode through real sockets: relay, balancing, limits, queues, timeouts, half-close,
retries and redispatch. Every test runs under uvloop and the standard asyncio loop."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from tests.io.harness import LogReceiver, Poise
from tests.support import Backend, ask_name, eventually, free_port, run

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
"""


def config(log: int, body: str) -> str:
    return BASE.format(log=log) + body


def test_relays_bytes_exactly_both_ways(loop_kind: str) -> None:
    async def main() -> None:
        echo = await Backend("echo", greet=False).start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:{echo.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            payload = os.urandom(3 * 1024 * 1024)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            received = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert received == payload
            lines = await logs.wait_for(r" fe be/s1 ")
            fields = lines[0].split()
            assert fields[5] == str(len(payload))  # %B: bytes sent to the client
            assert fields[6] == "--"  # a normal end
        await echo.stop()
        logs.close()

    run(loop_kind, main)


def test_roundrobin_alternates_and_honours_weights(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        b = await Backend("b").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a.port} weight 3
    server b 127.0.0.1:{b.port} weight 1
"""
        async with Poise(config(logs.port, body)) as poise:
            names = [await ask_name(poise.port("fe")) for _ in range(8)]
        assert names.count("a") == 6 and names.count("b") == 2
        # Smooth weighted round robin: never more than 3 in a row on `a`.
        assert "a,a,a,a" not in ",".join(names + names)
        await a.stop()
        await b.stop()
        logs.close()

    run(loop_kind, main)


async def ask_from(source: str, port: int) -> str:
    """Connect from a given loopback source address (the whole 127/8 is local)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return line.decode().strip()


def test_source_balancing_keeps_each_client_on_one_server(loop_kind: str) -> None:
    async def main() -> None:
        backends = [await Backend(f"s{i}").start() for i in range(3)]
        logs = await LogReceiver().start()
        servers = "\n".join(f"    server s{i} 127.0.0.1:{b.port}" for i, b in enumerate(backends))
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance source
    hash-type consistent
{servers}
"""
        async with Poise(config(logs.port, body)) as poise:
            port = poise.port("fe")
            sources = [f"127.0.{i}.{j}" for i in range(1, 5) for j in (7, 9, 11)]
            first = {src: await ask_from(src, port) for src in sources}
            again = {src: await ask_from(src, port) for src in sources}
        assert first == again
        assert len(set(first.values())) >= 2  # 12 clients do not all land on one server
        for b in backends:
            await b.stop()
        logs.close()

    run(loop_kind, main)


def test_half_close_is_passed_through(loop_kind: str) -> None:
    async def main() -> None:
        echo = await Backend("echo", greet=False).start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:{echo.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            writer.write(b"last words")
            writer.write_eof()  # the client is done sending, still reading
            # The echo server answers only after it saw the EOF, then closes its side.
            assert await asyncio.wait_for(reader.read(), 5) == b"last words"
            writer.close()
        await echo.stop()
        logs.close()

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
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:{hose.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            sock = socket.create_connection(("127.0.0.1", poise.port("fe")))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # The client reads nothing: the server keeps writing until every buffer on the
            # way is full and its writes block. Wait until it stops making progress.
            last = -1
            while hose.sent != last:
                last = hose.sent
                await asyncio.sleep(0.2)
            session = next(iter(poise.ctx.sessions))
            buffered = session.client.get_write_buffer_size()
            assert buffered <= 1024 * 1024, buffered
            assert hose.sent < 64 * 1024 * 1024, hose.sent
            sock.close()
        assert hose.server is not None
        hose.server.close()
        logs.close()

    run(loop_kind, main)


def test_server_maxconn_queues_then_serves_in_order(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    timeout queue 5s
    server a 127.0.0.1:{a.port} maxconn 1
"""
        async with Poise(config(logs.port, body)) as poise:
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            await eventually(lambda: poise.ctx.backends["be"].backend.queued == 1)
            assert a.accepted == 1  # the second waits in the queue, not at the server
            w1.close()
            assert await asyncio.wait_for(r2.readline(), 5) == b"a\n"
            w2.close()
            line = (await logs.wait_for(r" fe be/a ", count=2))[1]
            tw = int(line.split()[4].split("/")[0])
            assert tw >= 0
        await a.stop()
        logs.close()

    run(loop_kind, main)


def test_queue_timeout_closes_the_waiting_client(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    timeout queue 200ms
    server a 127.0.0.1:{a.port} maxconn 1
"""
        async with Poise(config(logs.port, body)) as poise:
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            started = time.monotonic()
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(r2.read(), 5) == b""  # closed, never served
            assert time.monotonic() - started >= 0.19
            line = (await logs.wait_for(r" sQ "))[0]
            assert " fe be/<NOSRV> " in line
            w1.close()
            w2.close()
        await a.stop()
        logs.close()

    run(loop_kind, main)


def test_frontend_maxconn_holds_new_connections_until_a_slot_frees(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    maxconn 1
    default_backend be
backend be
    server a 127.0.0.1:{a.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            port = poise.port("fe")
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            assert await r1.readline() == b"a\n"
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            fe = poise.ctx.frontends["fe"]
            await eventually(lambda: len(fe.parked) == 1)
            assert a.accepted == 1 and fe.cur_conn == 1
            w1.close()
            assert await asyncio.wait_for(r2.readline(), 5) == b"a\n"
            w2.close()
        await a.stop()
        logs.close()

    run(loop_kind, main)


def test_client_timeout_closes_an_idle_session(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    timeout client 200ms
    default_backend be
backend be
    timeout server 5s
    server a 127.0.0.1:{a.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await reader.readline() == b"a\n"
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started >= 0.19
            assert (await logs.wait_for(r" fe be/a "))[0].split()[6] == "cD"
            writer.close()
        await a.stop()
        logs.close()

    run(loop_kind, main)


def test_tunnel_timeout_supersedes_client_and_server(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    timeout client 100ms
    default_backend be
backend be
    timeout server 100ms
    timeout tunnel 600ms
    server a 127.0.0.1:{a.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await reader.readline() == b"a\n"
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started >= 0.5
            writer.close()
        await a.stop()
        logs.close()

    run(loop_kind, main)


def test_retries_then_redispatch_to_a_live_server(loop_kind: str) -> None:
    async def main() -> None:
        live = await Backend("live").start()
        dead = free_port()  # nothing listens there: connection refused
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    timeout connect 50ms
    retries 2
    option redispatch
    balance roundrobin
    server dead 127.0.0.1:{dead}
    server live 127.0.0.1:{live.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            names = [await ask_name(poise.port("fe")) for _ in range(4)]
            assert names == ["live"] * 4
            lines = await logs.wait_for(r" fe be/live ", count=4)
            # A connection sent to `dead` is retried once there, then redispatched on the
            # last retry (`+` marks a redispatch); one sent to `live` has no retry.
            counts = [line.split()[7].rsplit("/", 1)[1] for line in lines]
            assert set(counts) <= {"0", "+2"} and "+2" in counts, lines
        await live.stop()
        logs.close()

    run(loop_kind, main)


def test_connection_fails_after_retries_without_redispatch(loop_kind: str) -> None:
    async def main() -> None:
        dead = free_port()
        logs = await LogReceiver().start()
        body = f"""
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    timeout connect 50ms
    retries 2
    server dead 127.0.0.1:{dead}
"""
        async with Poise(config(logs.port, body)) as poise:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            # Two retries, each after the turn-around delay of min(connect, 1s) = 50ms.
            assert time.monotonic() - started >= 0.09
            line = (await logs.wait_for(r" SC "))[0]
            assert line.split()[7].endswith("/2")
            writer.close()
        logs.close()

    run(loop_kind, main)


def test_a_listen_section_is_its_own_backend(loop_kind: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        logs = await LogReceiver().start()
        body = f"""
listen both
    bind 127.0.0.1:0
    server a 127.0.0.1:{a.port}
"""
        async with Poise(config(logs.port, body)) as poise:
            assert await ask_name(poise.port("both")) == "a"
            await logs.wait_for(r" both both/a ")
        await a.stop()
        logs.close()

    run(loop_kind, main)
