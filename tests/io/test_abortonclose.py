"""`option abortonclose` through real sockets: a client that shuts its side (FIN) while its
request waits in a queue gives it up, nothing sent to the server, logged CQ; without the
option the request is served once its turn comes, as HTTP wants.

TCP mode side by side with HAProxy 2.6 (what the waiting client gets, the log line's
server and state). In HTTP mode poise does what configuration.txt describes; haproxy
2.6.12's HTTP/1 multiplexer was seen not to read a client's FIN once the request is whole
(the request stays queued until its turn or `timeout queue`), so there is nothing of its
to compare with there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.io.harness import Stage
from tests.io.test_server_options import haproxy, needs_haproxy
from tests.support import eventually, free_port, run

TCP = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout queue 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    {option}
    server s 127.0.0.1:{server} maxconn 1
"""


async def queued_client_shuts(port: int) -> tuple[bytes, bytes]:
    """A first client holds the server's one slot; a second one sends its bytes, waits in
    the queue and shuts its side. What the second one gets: at once (b"" when closed),
    then once the first one leaves."""
    first_reader, first = await asyncio.open_connection("127.0.0.1", port)
    first.write(b"first\n")
    assert await asyncio.wait_for(first_reader.readline(), 5) == b"first\n"  # echoed
    reader, second = await asyncio.open_connection("127.0.0.1", port)
    second.write(b"second\n")
    second.write_eof()
    try:
        at_once = await asyncio.wait_for(reader.read(), 0.5)
    except TimeoutError:
        at_once = b"<waiting>"
    first.close()
    later = b"" if at_once != b"<waiting>" else await asyncio.wait_for(reader.read(), 5)
    second.close()
    return at_once, later


@needs_haproxy
@pytest.mark.parametrize(
    ("option", "expected", "state"),
    [
        # Tw: the time it waited in the queue, as HAProxy logs it.
        ("option abortonclose", (b"", b""), r"be/<NOSRV> \d+/-1/\d+ 0 CQ "),
        ("no option abortonclose", (b"<waiting>", b"second\n"), r"be/s \d+/\d+/\d+ 7 -- "),
    ],
)
def test_a_queued_tcp_client_that_shuts_gives_up_as_haproxy(
    loop_kind: str, tmp_path: Path, option: str, expected: tuple[bytes, bytes], state: str
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            echo = await stage.backend("s", greet=False)
            fields = {"log": stage.logs.port, "option": option, "server": echo.port}
            poise = await stage.poise(TCP.format(port=0, **fields))
            ours = await queued_client_shuts(poise.port("fe"))
            await stage.logs.wait_for(state)  # the second client's line
            await poise.__aexit__(None, None, None)
            stage.balancers.remove(poise)
            stage.logs.lines.clear()
            port = free_port()
            async with haproxy(TCP.format(port=port, **fields), tmp_path, port):
                theirs = await queued_client_shuts(port)
                await stage.logs.wait_for(state)
            assert ours == theirs == expected

    run(loop_kind, main)


HTTP = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout queue 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    {option}
    server s 127.0.0.1:{server} maxconn 1
"""


@pytest.mark.parametrize("abort", [True, False])
def test_a_queued_http_request_whose_client_shuts(loop_kind: str, abort: bool) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("s")
            option = "option abortonclose" if abort else ""
            poise = await stage.poise(HTTP.format(log="{log}", option=option, server=app.port))
            port = poise.port("fe")
            slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
            slow.write(b"GET /slow/500 HTTP/1.1\r\nHost: x\r\n\r\n")
            await eventually(lambda: len(app.seen) == 1, 5, "the slow request at its server")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 5)
            assert (await asyncio.wait_for(slow_reader.readuntil(b"s /slow/500"), 5)).startswith(
                b"HTTP/1.1 200"
            )
            slow.close()
            writer.close()
            if abort:
                # Closed at once, unanswered; the server never saw it.
                assert answer == b""
                [line] = await stage.logs.wait_for(r" fe be/<NOSRV> .* CQ-- ")
                assert '"GET /queued HTTP/1.1"' in line
                assert [seen.target for seen in app.seen] == ["/slow/500"]
            else:
                assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"s /queued")
                await stage.logs.wait_for(r" fe be/s .* ---- .*GET /queued")

    run(loop_kind, main)
