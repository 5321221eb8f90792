"""`tcp-request content set-log-level` and `tcp-response content set-log-level` against
HAProxy 2.6, one configuration run by `poise run` and by `haproxy`: in `mode tcp` the
session's `option tcplog` line goes out at the level a request rule (on the client's
first bytes) or a response rule (on the server's) set, or not at all for `silent`; in
`mode http` a content rule's level is the request's `option httplog` line's. The syslog
priorities received must be the same, in the same order (`option dontlognull`: the
connection that finds the balancer listening is not logged)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import eventually, run

pytestmark = pytest.mark.e2e

TCP = """\
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content set-log-level err if { req.payload(0,3) -m str ERR }
    tcp-request content set-log-level silent if { req.payload(0,5) -m str QUIET }
    default_backend echo
backend echo
    tcp-response inspect-delay 1s
    tcp-response content set-log-level warning if { res.payload(0,4) -m str WARN }
    server s 127.0.0.1:{echo}
"""
HTTP = """\
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content set-log-level err if { req.hdr(x-level) -m str err }
    tcp-request content set-log-level silent if { req.hdr(x-level) -m str silent }
    http-request return status 200
"""


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that sends back what it first receives, then closes."""
    data = await reader.read(1024)
    writer.write(data)
    await writer.drain()
    writer.close()


def more_than(lines: list[str], count: int) -> Callable[[], bool]:
    return lambda: len(lines) > count


def priority(line: str) -> str:
    return line.split(">", 1)[0] + ">"


async def exchange(command: list[str], tmp: Path, config: str, sends: list[bytes]) -> list[str]:
    """The log lines' priorities for `sends`, one connection each, in order: each line
    waited for before the next connection, except after a `silent` one."""
    server = await asyncio.start_server(echo_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with running(command, tmp, config.replace("{echo}", str(port))) as proxy:
            lines = proxy.logs.lines
            for data in sends:
                before = len(lines)
                answer = await send(proxy.port, [data])
                assert answer, f"no answer to {data!r}"
                if b"QUIET" not in data and b"silent" not in data:
                    await eventually(more_than(lines, before), what="a log line")
            return [priority(line) for line in lines]
    finally:
        server.close()


def test_tcp_rules_set_the_level_of_a_tcp_session_line(loop_kind: str) -> None:
    sends = [b"ERR!!", b"WARN!", b"plain", b"QUIET", b"after"]

    async def main() -> None:
        ours, theirs = await both(exchange, TCP, sends)
        # local0 (16): err 131, warning 132, info 134; the QUIET session has no line.
        assert theirs == ["<131>", "<132>", "<134>", "<134>"]
        assert ours == theirs

    run(loop_kind, main)


def test_a_content_rule_sets_the_level_of_an_http_request_line(loop_kind: str) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    sends = [
        head + b"X-Level: err\r\n\r\n",
        head + b"\r\n",
        head + b"X-Level: silent\r\n\r\n",
        head + b"\r\n",
    ]

    async def main() -> None:
        ours, theirs = await both(exchange, HTTP, sends)
        assert theirs == ["<131>", "<134>", "<134>"]
        assert ours == theirs

    run(loop_kind, main)
