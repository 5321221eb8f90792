"""`server ... socks4 ADDR:PORT` through real sockets and side by side with HAProxy 2.6: the
server's connections go through a real SOCKS4 proxy written here (it reads the CONNECT
request, opens the connection it asks for and relays both ways, or refuses it). The
request HAProxy and poise send must be the same bytes; both reach the server through the
proxy; a refusal is a failed connection (503, SC).
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.io.test_server_options import haproxy, needs_haproxy
from tests.support import eventually, free_port, run
from tests.webapp import request

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server app 127.0.0.1:{app} socks4 127.0.0.1:{socks}
"""


class Socks4Proxy:
    """A SOCKS4 proxy: records each CONNECT request; grants it (relaying to the address
    asked for) unless told to refuse (reply code 91)."""

    def __init__(self, grant: bool = True) -> None:
        self.grant = grant
        self.requests: list[bytes] = []
        self.connections = 0  # accepted, with a request or without
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Socks4Proxy:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            head = await reader.readexactly(8)
            user = await reader.readuntil(b"\x00")
            self.requests.append(head + user)
            _, command, port, ip = struct.unpack("!BBH4s", head)
            if not self.grant or command != 1:
                writer.write(b"\x00\x5b" + bytes(6))
                await writer.drain()
                return
            target_reader, target = await asyncio.open_connection(
                str(ipaddress.IPv4Address(ip)), port
            )
            self.writers.add(target)
            writer.write(b"\x00\x5a" + head[2:8])

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()

            await asyncio.gather(pipe(reader, target), pipe(target_reader, writer))
            target.close()
        except (asyncio.IncompleteReadError, ConnectionError, RuntimeError):
            pass  # RuntimeError: uvloop's write_eof on a relay stop() has closed
        finally:
            writer.close()
            self.handlers.discard(task)

    async def stop(self) -> None:
        """Stop listening and end the relays still running (a balancer's last check may
        still be passing through)."""
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self.handlers, return_exceptions=True), 5)


GET = b"GET /via HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@needs_haproxy
@pytest.mark.parametrize("grant", [True, False])
def test_servers_are_reached_through_a_socks4_proxy_as_haproxy(
    loop_kind: str, tmp_path: Path, grant: bool
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            socks = await Socks4Proxy(grant).start()
            try:
                fields = {"log": stage.logs.port, "app": app.port, "socks": socks.port}
                poise = await stage.poise(CONFIG.format(port=0, **fields))
                ours = await request(poise.port("fe"), GET, until_close=True)
                port = free_port()
                async with haproxy(CONFIG.format(port=port, **fields), tmp_path, port):
                    theirs = await request(port, GET, until_close=True)
            finally:
                await socks.stop()
            # The same CONNECT request, byte for byte: version 4, CONNECT, the server's
            # port and address, user id "HAProxy".
            expected = struct.pack("!BBH", 4, 1, app.port) + bytes([127, 0, 0, 1]) + b"HAProxy\0"
            # Refused: each tried once and 3 times again (`retries`' default).
            assert socks.requests == [expected] * (2 if grant else 8)
            status = [r.split(b" ", 2)[1] for r in (ours, theirs)]
            if grant:
                assert status == [b"200", b"200"]
                assert ours.endswith(b"app /via") and theirs.endswith(b"app /via")
                assert len(app.seen) == 2
            else:
                assert status == [b"503", b"503"]
                assert app.seen == []
                await stage.logs.wait_for(r" fe be/app .* 503 .* SC-- ", 2)

    run(loop_kind, main)


@needs_haproxy
def test_check_via_socks4_sends_the_checks_through_the_proxy_as_haproxy(
    loop_kind: str, tmp_path: Path
) -> None:
    """Without `check-via-socks4` the checks go straight to the server, as
    configuration.txt says (haproxy 2.6.12's reached neither the proxy nor the server
    there: nothing of its to compare)."""

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            socks = await Socks4Proxy().start()
            text = CONFIG.replace("socks4 127.0.0.1:{socks}", "socks4 127.0.0.1:{socks} {check}")
            expected = struct.pack("!BBH", 4, 1, app.port) + bytes([127, 0, 0, 1]) + b"HAProxy\0"
            fields = {"log": stage.logs.port, "app": app.port, "socks": socks.port}
            via = "check inter 100 check-via-socks4"
            try:
                port = free_port()
                async with haproxy(text.format(port=port, check=via, **fields), tmp_path, port):
                    await eventually(lambda: len(socks.requests) >= 2, 5, "haproxy's checks")
                assert set(socks.requests) == {expected}
                socks.requests.clear()
                for check in (via, "check inter 100"):
                    before = app.connections
                    poise = await stage.poise(text.format(port=0, check=check, **fields))

                    def checked(b: int = before, c: str = check) -> bool:
                        # Through the proxy: its requests (the server's count may still
                        # take the previous balancer's last proxied checks); straight: the
                        # server's connections.
                        if c == via:
                            return len(socks.requests) >= 2
                        return app.connections >= b + 2

                    await eventually(checked, 5, check)
                    await poise.__aexit__(None, None, None)
                    stage.balancers.remove(poise)
                    if check == via:  # every check through the proxy, as HAProxy's
                        assert socks.requests and set(socks.requests) == {expected}
                        socks.requests.clear()
                    else:  # straight to the server
                        assert socks.requests == []
            finally:
                await socks.stop()

    run(loop_kind, main)
