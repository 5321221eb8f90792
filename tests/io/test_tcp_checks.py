"""Protocol health checks (`option tcp-check` rules, redis-check, mysql-check, pgsql-check,
ssl-hello-chk) against real servers: raw TCP servers that answer right, wrong, nothing or
garbage, and Debian's redis-server, MariaDB and PostgreSQL. Every expected line is the one
haproxy 2.6.12 logged (`option log-health-checks`) with the same configuration against the
same server, but for the check duration.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests import dbservers
from tests.io.harness import Stage
from tests.support import free_port, run
from tests.tlskit import Pki

CONFIG = """
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check {check}
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    option log-health-checks
"""

PONG_RULES = """    option tcp-check
    tcp-check comment hello
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG comment pongcheck
"""


class ScriptServer:
    """A raw TCP server: on each connection it sends `greeting`, then (with `reads`) reads
    what comes and sends `reply`; it closes `linger` seconds later, or never (`silent`)."""

    def __init__(
        self, greeting: bytes = b"", reply: bytes = b"", reads: bool = True, silent: bool = False
    ) -> None:
        self.greeting = greeting
        self.reply = reply
        self.reads = reads
        self.silent = silent
        self.linger = 0.1
        self.received: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.done = asyncio.Event()

    async def __aenter__(self) -> ScriptServer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.done.set()
        if self.server is not None:
            self.server.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.greeting:
                writer.write(self.greeting)
            if self.reads:
                self.received.append(await reader.read(1000))
                writer.write(self.reply)
            await writer.drain()
            if self.silent:
                await self.done.wait()
            else:
                await asyncio.wait_for(self.done.wait(), self.linger)
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()


def normalise(line: str) -> str:
    return re.sub(r"check duration: \d+ms", "check duration: Nms", line)


async def first_check(stage: Stage, lines: str, port: int, check: str = "300ms") -> str:
    """poise with `lines` in backend `be` and server `a` on `port`: its first health check
    line."""
    server = f"    server a 127.0.0.1:{port} check inter 100ms rise 1 fall 1\n"
    await stage.poise(CONFIG.replace("{check}", check) + lines + server)
    return normalise((await stage.logs.wait_for("Health check"))[0])


def checked(lines: str, port: int | None, kind: str = "loop", check: str = "2s") -> str:
    """The first check line of `lines` against `port`; `timeout check` is long enough for
    a busy database server to answer (the timeout cases say so)."""

    async def main() -> str:
        async with Stage() as stage:
            assert port is not None
            return await first_check(stage, lines, port, check)

    return run(kind, main)


def passed(info: str, level: str = "Layer7 check passed, code: 0") -> str:
    return (
        f"Health check for server be/a succeeded, reason: {level}, "
        f'info: "{info}", check duration: Nms, status: 1/1 UP.'
    )


def failed(reason: str, info: str | None = None) -> str:
    shown = f', info: "{info}"' if info is not None else ""
    return (
        f"Health check for server be/a failed, reason: {reason}{shown}, "
        "check duration: Nms, status: 0/1 DOWN."
    )


RAW_CASES: dict[str, tuple[Callable[[], ScriptServer], str]] = {
    "pong": (
        lambda: ScriptServer(reply=b"+PONG\r\n"),
        passed("(tcp-check)"),
    ),
    "wrong answer": (
        lambda: ScriptServer(reply=b"-ERR wrong thing\r\n"),
        failed(
            "Layer7 invalid response",
            "TCPCHK did not match content '+PONG' at step 3 comment: pongcheck",
        ),
    ),
    "garbage": (
        lambda: ScriptServer(greeting=b"\x00\xffgarbage\x01\r\nmore", reads=False),
        failed(
            "Layer7 invalid response",
            "TCPCHK did not match content '+PONG' at step 3 comment: pongcheck",
        ),
    ),
    "closes without answering": (
        ScriptServer,
        failed(
            "Layer7 invalid response", "TCPCHK got an empty response at step 3 comment: 'pongcheck'"
        ),
    ),
    "never answers": (
        lambda: ScriptServer(silent=True),
        failed(
            "Layer7 timeout", " at step 3 of tcp-check (expect string '+PONG') comment: 'pongcheck'"
        ),
    ),
}


@pytest.mark.parametrize("case", RAW_CASES)
def test_tcp_check_rules_judge_what_the_server_sends(case: str, loop_kind: str) -> None:
    make, expected = RAW_CASES[case]

    async def main() -> None:
        async with Stage() as stage, make() as server:
            assert await first_check(stage, PONG_RULES, server.port) == expected
            if server.received:
                assert server.received[0] == b"PING\r\n"

    run(loop_kind, main)


def test_tcp_check_refused_names_the_initial_connection(loop_kind: str) -> None:
    expected = failed(
        "Layer4 connection problem", "Connection refused at initial connection step of tcp-check"
    )
    assert checked(PONG_RULES, free_port(), loop_kind) == expected
    lines = "    option tcp-check\n    tcp-check connect port 1\n"
    expected = failed(
        "Layer4 connection problem", "Connection refused at step 1 of tcp-check (connect port 1)"
    )
    assert checked(lines, free_port(), loop_kind) == expected


def test_protocol_checks_fail_on_garbage_with_haproxys_reason(loop_kind: str) -> None:
    async def main() -> None:
        garbage = b"\x00\xffgarbage\x01\r\nmore"
        async with Stage() as stage, ScriptServer(greeting=garbage, reads=False) as server:
            line = await first_check(stage, "    option redis-check\n", server.port)
            # The answer's first line is the info: empty, as C reads "\0...".
            assert line == (
                "Health check for server be/a failed, reason: Layer7 wrong status, code: 0, "
                "check duration: Nms, status: 0/1 DOWN."
            )
        async with Stage() as stage, ScriptServer(greeting=garbage, reads=False) as server:
            line = await first_check(stage, "    option ssl-hello-chk\n", server.port)
            assert line == failed("Layer6 invalid response")
        async with (
            Stage() as stage,
            ScriptServer(greeting=b"hello world\r\n", reads=False) as server,
        ):
            line = await first_check(stage, "    option mysql-check\n", server.port)
            assert line == failed("Layer7 invalid response")

    run(loop_kind, main)


def test_ssl_hello_chk_passes_on_a_real_tls_server(loop_kind: str, tmp_path: Path) -> None:
    """OpenSSL's s_server answers the SSLv3 hello with an alert record: a TLS server all
    the same (HAProxy's check passes on a handshake or an alert record)."""
    pki = Pki(tmp_path)
    bundle = pki.issue("server.pem", dns=["localhost"])
    port = free_port()
    command = ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "-cert", str(bundle)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        dbservers.wait_port(port, server, "openssl s_server")
        assert checked("    option ssl-hello-chk\n", port, loop_kind) == (
            "Health check for server be/a succeeded, reason: Layer6 check passed, "
            "check duration: Nms, status: 1/1 UP."
        )
    finally:
        dbservers.stop(server)


# -- real servers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with dbservers.redis() as port:
        yield port


def _with(server: Callable[[], AbstractContextManager[int]], cases: dict[str, str]) -> None:
    with server() as port:
        for lines, expected in cases.items():
            assert checked(lines, port) == expected, lines


def test_redis_check_against_redis_server(redis_port: int) -> None:
    assert checked("    option redis-check\n", redis_port) == passed("Redis server is ok")
    info = """    option tcp-check
    tcp-check send "info replication\\r\\n"
    tcp-check expect string role:master
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
"""
    assert checked(info, redis_port) == passed("(tcp-check)")
    replica = """    option tcp-check
    tcp-check send "info replication\\r\\n"
    tcp-check expect string role:slave
"""
    assert checked(replica, redis_port, check="300ms") == failed(
        "Layer7 timeout", " at step 2 of tcp-check (expect string 'role:slave')"
    )


def test_mysql_check_against_mariadb() -> None:
    version = re.compile(r'info: "5\.5\.5-[0-9.]+-MariaDB[^"]*"')
    with dbservers.mariadb() as port:
        for lines in ("    option mysql-check\n", "    option mysql-check user haproxy\n"):
            line = checked(lines, port)
            assert "succeeded, reason: Layer7 check passed, code: 0, " in line, line
            assert version.search(line), line
        assert checked("    option mysql-check user haproxy pre-41\n", port).endswith("1/1 UP.")
        assert checked("    option mysql-check user nosuch\n", port) == (
            "Health check for server be/a failed, reason: Layer7 wrong status, code: 1045, "
            "info: \"#28000Access denied for user 'nosuch'@'localhost' (using password: NO)\", "
            "check duration: Nms, status: 0/1 DOWN."
        )
        # Another protocol against it: the greeting is not a Redis answer.
        assert checked("    option redis-check\n", port) == (
            'Health check for server be/a failed, reason: Layer7 wrong status, code: 0, info: "d", '
            "check duration: Nms, status: 0/1 DOWN."
        )


def test_pgsql_check_against_postgresql() -> None:
    _with(
        dbservers.postgres,
        {
            "    option pgsql-check user postgres\n": passed("PostgreSQL server is ok"),
            "    option redis-check\n": (
                "Health check for server be/a failed, reason: Layer7 wrong status, code: 0, "
                'info: "TCPCHK got an empty response at step 2", check duration: Nms, '
                "status: 0/1 DOWN."
            ),
        },
    )
