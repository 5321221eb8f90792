"""`option socket-stats`: a row of type 3 per listener in `show stat`, after its
frontend's, named by the bind's `name` or "sock-N", through `poise run` and `haproxy` on
the same configuration and traffic (an HTTP frontend with a named bind, an unnamed one and
one bind of two addresses; a TCP frontend). The rows must be the same but for the bytes
(HAProxy counts its internal message sizes), which must add up to the frontend's."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import tempfile
from pathlib import Path

from poise.admin.stats import COLUMNS
from tests.e2e.side_by_side import HAPROXY, POISE, running
from tests.support import free_port, run
from tests.unit.test_compression import unchunk
from tests.webapp import request

CONFIG = """
global
    stats socket SOCK level admin
defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend pub
    mode http
    bind 127.0.0.1:{port} name clear
    bind 127.0.0.1:P2
    bind 127.0.0.1:P3,127.0.0.1:P4 name multi
    option socket-stats
    http-request return status 200 content-type text/plain string hello
frontend plain
    mode http
    bind 127.0.0.1:P5
    http-request return status 200
frontend tcp
    mode tcp
    bind 127.0.0.1:P6 name raw
    option socket-stats
    tcp-request connection reject
frontend stats
    mode http
    bind 127.0.0.1:P7
    http-request use-service prometheus-exporter if { path /metrics }
    stats uri /
"""
BYTES = ("bin", "bout")
STATIC = len(COLUMNS)  # the modules' columns follow
# The most connections at once: the probe that finds it listening may not be closed yet.
# The first bind's port is each run's own. The denials and errors (and the modules'
# columns) poise leaves empty on the frontend's row and the listeners'.
EMPTY = ("dreq", "dresp", "ereq", "dcon", "dses", "wrew", "eint")
UNEVEN = (*BYTES, "smax", "addr", *EMPTY)
PROMETHEUS_UNEVEN = ("bytes_", "max_sessions", "current_sessions", "denied", "errors", "rewriting")


async def rows(sock: Path) -> list[dict[str, str]]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(b"show stat\n")
    text = (await asyncio.wait_for(reader.read(), 5)).decode()
    writer.close()
    lines = list(csv.reader(text.lstrip("# ").splitlines()))
    return [dict(zip(lines[0], line, strict=False)) for line in lines[1:] if line]


async def refused(port: int) -> None:
    """A connection the TCP frontend's rule closes (a reset, from both)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    except ConnectionResetError:
        pass


async def traffic(command: list[str], tmp: Path, ports: list[int]) -> list[dict[str, str]]:
    sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
    config = CONFIG.replace("SOCK", str(sock))
    for n, port in enumerate(ports, 2):
        config = config.replace(f"P{n}", str(port))
    async with running(command, tmp, config) as proc:
        get = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        for port in (proc.port, ports[1], ports[1], ports[2], ports[3]):
            assert b" 200 " in await request(port, get, until_close=True)
        await refused(ports[4])
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # the last connection may not be counted out yet
            found = await rows(sock)
            if all(r["scur"] == "0" for r in found) or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.01)


def test_socket_rows_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ss", dir="/tmp") as name:
            tmp = Path(name)
            ports = [free_port() for _ in range(6)]
            ours = await traffic(POISE, tmp, ports)
            theirs = await traffic(HAPROXY, tmp, ports)
        ours_sockets = [r for r in ours if r["type"] == "3"]
        assert [(r["pxname"], r["svname"], r["stot"]) for r in ours_sockets] == [
            ("pub", "clear", "2"),  # the probe that found it listening, a request
            ("pub", "sock-2", "0"),
            ("pub", "multi", "2"),
            ("pub", "multi", "1"),
            ("tcp", "raw", "1"),
        ]
        for fe in ("pub", "tcp"):
            front = next(r for r in ours if r["pxname"] == fe and r["svname"] == "FRONTEND")
            for column in BYTES:
                total = sum(int(r[column]) for r in ours_sockets if r["pxname"] == fe)
                assert total == int(front[column]) > 0 or fe == "tcp"

        def comparable(found: list[dict[str, str]]) -> list[tuple[str, ...]]:
            return [
                tuple(f"{k}={v}" for k, v in list(r.items())[:STATIC] if k not in UNEVEN)
                for r in found
                if r["type"] == "3"
            ]

        assert [r["svname"] for r in ours] == [r["svname"] for r in theirs]
        assert comparable(ours) == comparable(theirs)
        assert [r["addr"] for r in ours_sockets[1:]] == [
            *(f"127.0.0.1:{port}" for port in ports[:3]),
            f"127.0.0.1:{ports[4]}",
        ]

    run(loop_kind, main, timeout=60)


def test_typed_and_json_rows_as_haproxy(loop_kind: str) -> None:
    async def answer(command: list[str], tmp: Path, ports: list[int]) -> list[str]:
        sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
        config = CONFIG.replace("SOCK", str(sock))
        for n, port in enumerate(ports, 2):
            config = config.replace(f"P{n}", str(port))
        async with running(command, tmp, config):
            found = []
            for export in ("/;typed", "/;json", "/metrics?scope=listener"):
                get = f"GET {export} HTTP/1.0\r\nHost: t\r\n\r\n"
                got = await request(ports[5], get.encode(), until_close=True)
                head, _, body = got.partition(b"\r\n\r\n")
                if b"chunked" in head.lower():
                    body = b"".join(unchunk(body)[0])
                found.append(body.decode())
        typed = [line for line in found[0].splitlines() if line.startswith("L.")]
        listeners = [r for r in json.loads(found[1]) if r and r[0]["objType"] == "Listener"]
        metrics = [
            line
            for line in found[2].splitlines()
            if not any(f"_{m}" in line for m in PROMETHEUS_UNEVEN)
        ]
        return [
            *typed,
            *(f"{f['id']}:{f['field']}:{f['tags']}" for r in listeners for f in r),
            *metrics,
        ]

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ss", dir="/tmp") as name:
            tmp = Path(name)
            ports = [free_port() for _ in range(6)]
            ours = await answer(POISE, tmp, ports)
            theirs = await answer(HAPROXY, tmp, ports)
        assert ours  # the probe's bytes and the first port differ from run to run

        def same(lines: list[str]) -> list[str]:
            return [
                re.sub(
                    r"(addr\.1:CGS:str:|bin\.1:MCP:u64:|bout\.1:MCP:u64:|s(cur|max)\.1:M[GM]P:u32:).*",
                    r"\1",
                    x,
                )
                for x in lines
                if "ssl_" not in x and not any(f".{c}." in x or f"'{c}'" in x for c in EMPTY)
            ]

        assert same(ours) == same(theirs)

    run(loop_kind, main, timeout=60)


def test_the_page_shows_each_listener_after_its_frontend(loop_kind: str) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ss", dir="/tmp") as name:
            tmp = Path(name)
            ports = [free_port() for _ in range(6)]
            config = CONFIG.replace("SOCK", str(tmp / "poise.sock"))
            config = config.replace(
                "stats uri /", "stats uri /\n    stats show-legends\n    stats show-modules"
            )
            for n, port in enumerate(ports, 2):
                config = config.replace(f"P{n}", str(port))
            async with running(POISE, tmp, config):
                get = b"GET / HTTP/1.0\r\nHost: t\r\n\r\n"
                got = await request(ports[5], get, until_close=True)
        page = got.partition(b"\r\n\r\n")[2].decode()
        names = re.findall(
            r'<tr class="(\w+)"><td class="name"(?: title="([^"]*)")?>([^<]+)<', page
        )
        assert names[:6] == [
            ("frontend", "", "Frontend"),
            ("socket", ANY_PORT, "clear"),
            ("socket", f"127.0.0.1:{ports[0]}", "sock-2"),
            ("socket", f"127.0.0.1:{ports[1]}", "multi"),
            ("socket", f"127.0.0.1:{ports[2]}", "multi"),
            ("frontend", "", "Frontend"),  # plain: no option socket-stats
        ]
        # `stats show-modules`: HAProxy's three modules, ssl only on a listener's row.
        assert page.count('<th colspan="3">Extra modules</th>') == 4
        assert "<th>ssl</th><th>h2</th><th>h1</th></tr>" in page
        clear = page[page.index(">clear<") :]
        clear = clear[: clear.index("</tr>")]
        assert clear.endswith("</td><td></td><td></td>")
        assert '<td class="module" title="ssl_sess, ssl_reused_sess' in clear

    run(loop_kind, main, timeout=60)


class AnyPort(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(r"127\.0\.0\.1:\d+", other) is not None

    __hash__ = str.__hash__


ANY_PORT = AnyPort()


def test_a_listener_that_finds_its_frontend_full_waits_as_haproxy(loop_kind: str) -> None:
    async def statuses(command: list[str], tmp: Path, ports: list[int]) -> list[str]:
        sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
        config = CONFIG.replace("SOCK", str(sock)).replace(
            "    option socket-stats\n    http-request",
            "    option socket-stats\n    maxconn 1\n    http-request",
        )
        for n, port in enumerate(ports, 2):
            config = config.replace(f"P{n}", str(port))
        async with running(command, tmp, config) as proc:
            held = await asyncio.open_connection("127.0.0.1", proc.port)  # the one it takes
            waiting = await asyncio.open_connection("127.0.0.1", ports[0])  # in the backlog
            deadline = asyncio.get_running_loop().time() + 5
            while True:
                found = [r for r in await rows(sock) if r["pxname"] == "pub"]
                # Which of the two takes the one place after the probe left may vary.
                settled = (
                    found[0]["scur"] == "1" and found[1]["status"] == found[2]["status"] != "OPEN"
                )
                if settled or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.01)
            for _, writer in (held, waiting):
                writer.close()
        return [f"{r['svname']}:{r['status']}" for r in found]

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ss", dir="/tmp") as name:
            tmp = Path(name)
            ports = [free_port() for _ in range(6)]
            ours = await statuses(POISE, tmp, ports)
            theirs = await statuses(HAPROXY, tmp, ports)
        assert ours == [
            "FRONTEND:OPEN",
            "clear:WAITING",
            "sock-2:WAITING",
            "multi:OPEN",
            "multi:OPEN",
        ]
        assert ours == theirs

    run(loop_kind, main, timeout=60)
