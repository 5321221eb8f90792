"""The runtime API acting on a running poise: real TCP and HTTP backends, real clients, a
real stats socket in a temporary directory, under both event loops. Each test changes
something through the socket and watches the traffic follow.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from poise.net.admin_socket import open_admin_sockets
from tests.io.harness import Poise, Stage
from tests.support import Backend, ask_name, eventually, free_port, run
from tests.webapp import Client, WebApp

WAIT = 5.0
CONFIG = """
global
    stats socket {sock} level admin
defaults
    mode tcp
    log 127.0.0.1:{{log}} format raw local0
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server a 127.0.0.1:{a}
frontend web
    mode http
    bind 127.0.0.1:{web}
    default_backend app
backend app
    mode http
    server w 127.0.0.1:{w}
backend checked
    server c 127.0.0.1:{b} check inter 100ms
"""


@dataclass
class Rig:
    stage: Stage
    poise: Poise
    sock: Path
    a: Backend
    b: Backend
    w1: WebApp
    w2: WebApp

    async def cli(self, line: str) -> str:
        """One command on the stats socket, as `socat` sends it."""
        reader, writer = await asyncio.open_unix_connection(str(self.sock))
        writer.write(line.encode() + b"\n")
        try:
            return (await asyncio.wait_for(reader.read(), WAIT)).decode()
        finally:
            writer.close()

    def stat(self, text: str) -> dict[tuple[str, str], dict[str, str]]:
        lines = text.split("\n")
        names = lines[0][2:].split(",")
        return {
            (fields[0], fields[1]): dict(zip(names, fields, strict=True))
            for fields in (line.split(",") for line in lines[1:] if line)
        }

    async def show_stat(self) -> dict[tuple[str, str], dict[str, str]]:
        return self.stat(await self.cli("show stat"))


@asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    with tempfile.TemporaryDirectory(prefix="pr", dir="/tmp") as name:
        sock = Path(name) / "admin.sock"
        async with Stage() as stage:
            a = await stage.backend("a")
            b = await stage.backend("b")
            w1 = await stage.webapp("w1")
            w2 = await stage.webapp("w2")
            # Fixed ports: a disabled frontend stops listening and listens again on its
            # port when enabled (the kernel would pick another for a port 0).
            text = CONFIG.format(
                sock=sock, a=a.port, b=b.port, w=w1.port, fe=free_port(), web=free_port()
            )
            poise = Poise(text.replace("{log}", str(stage.logs.port)))
            poise.runtime.admin_socks = open_admin_sockets(poise.config.global_.stats_sockets)
            await poise.__aenter__()
            stage.balancers.append(poise)
            yield Rig(stage, poise, sock, a, b, w1, w2)


async def greeting(reader: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(reader.readline(), WAIT)).decode().strip()


# -- frontends ----------------------------------------------------------------------------


def test_a_disabled_frontend_refuses_new_connections(loop_kind: str) -> None:
    """HAProxy 2.6: `disable frontend` stops listening (new connections are refused) and
    `enable frontend` listens again on the same port."""

    async def main() -> None:
        async with rig() as r:
            fe = r.poise.ctx.frontends["fe"]
            port = r.poise.port("fe")
            kept = await asyncio.open_connection("127.0.0.1", port)
            assert await greeting(kept[0]) == "a"
            assert await r.cli("disable frontend fe") == "\n"
            assert (await r.show_stat())["fe", "FRONTEND"]["status"] == "PAUSED"
            for _ in range(3):
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection("127.0.0.1", port)
            assert fe.cur_conn == 1 and r.a.accepted == 1  # the session under way goes on
            kept[1].write(b"still here\n")
            assert await greeting(kept[0]) == "still here"
            assert await r.cli("enable frontend fe") == "\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await greeting(reader) == "a"
            writer.close()
            kept[1].close()
            assert (await r.show_stat())["fe", "FRONTEND"]["status"] == "OPEN"

    run(loop_kind, main)


def test_a_disabled_http_frontend_answers_once_enabled(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            assert await r.cli("disable frontend web") == "\n"
            with pytest.raises(ConnectionRefusedError):
                await Client.connect(r.poise.port("web"))
            assert r.w1.seen == []
            assert await r.cli("enable frontend web") == "\n"
            client = await Client.connect(r.poise.port("web"))
            status, _, body = await client.get("/")
            assert (status, body) == (200, b"w1 /")
            client.close()

    run(loop_kind, main)


def test_maxconn_limits_follow_the_socket(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            fe = r.poise.ctx.frontends["fe"]
            port = r.poise.port("fe")
            assert await r.cli("set maxconn frontend fe 1") == "\n"
            assert (await r.show_stat())["fe", "FRONTEND"]["slim"] == "1"
            first = await asyncio.open_connection("127.0.0.1", port)
            assert await greeting(first[0]) == "a"
            second = await asyncio.open_connection("127.0.0.1", port)
            # The listener stops at the limit: the second waits in the kernel's backlog.
            await eventually(lambda: bool(r.poise.ctx.limited), WAIT, "the listener to stop")
            assert fe.cur_conn == 1 and r.a.accepted == 1
            assert await r.cli("set maxconn frontend fe 2") == "\n"
            assert await greeting(second[0]) == "a"
            # The process's limit, below the frontend's.
            assert await r.cli("set maxconn frontend fe 10") == "\n"
            assert await r.cli("set maxconn global 2") == "\n"
            assert "\nMaxconn: 2\n" in await r.cli("show info")
            third = await asyncio.open_connection("127.0.0.1", port)
            await eventually(lambda: bool(r.poise.ctx.limited), WAIT, "the listener to stop")
            assert fe.cur_conn == 2 and r.a.accepted == 2
            assert await r.cli("set maxconn global 0") == "\n"  # back to the configured one
            assert await greeting(third[0]) == "a"
            for _, writer in (first, second, third):
                writer.close()

    run(loop_kind, main)


# -- sessions -----------------------------------------------------------------------------


def test_show_sess_and_shutdown_session(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("fe")
            one = await asyncio.open_connection("127.0.0.1", port)
            two = await asyncio.open_connection("127.0.0.1", port)
            assert [await greeting(one[0]), await greeting(two[0])] == ["a", "a"]
            listed = await r.cli("show sess")
            local = one[1].get_extra_info("sockname")[1]
            mine = [line for line in listed.splitlines() if f"src=127.0.0.1:{local} " in line]
            assert len(mine) == 1
            assert " proto=tcpv4 " in mine[0] and " fe=fe be=be srv=a " in mine[0]
            assert re.search(r" proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> ", listed)
            session = mine[0].split(":")[0]
            assert await r.cli(f"show sess {session}") != "Session not found.\n\n"
            assert await r.cli(f"shutdown session {session}") == "\n"
            assert await asyncio.wait_for(one[0].read(), WAIT) == b""  # ended
            await r.stage.logs.wait_for(r" fe be/a .* KD ")
            two[1].write(b"still here\n")
            assert await greeting(two[0]) == "still here"
            assert await r.cli(f"shutdown session {session}") == (
                "No such session (use 'show sess').\n\n"
            )
            two[1].close()

    run(loop_kind, main)


def test_shutdown_sessions_server_ends_every_session_on_it(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("fe")
            clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            for reader, _ in clients:
                assert await greeting(reader) == "a"
            # Maintenance alone keeps the sessions under way, as in HAProxy.
            assert await r.cli("set server be/a state maint") == "\n"
            assert (await r.show_stat())["be", "a"]["scur"] == "2"
            assert await r.cli("shutdown sessions server be/a") == "\n"
            for reader, writer in clients:
                assert await asyncio.wait_for(reader.read(), WAIT) == b""
                writer.close()
            await r.stage.logs.wait_for(r" fe be/a .* KD ", count=2)
            await eventually(lambda: r.poise.ctx.backends["be"].cur_sess == 0, WAIT)

    run(loop_kind, main)


# -- servers ------------------------------------------------------------------------------


def test_add_server_then_del_server_while_serving(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("fe")
            added = await r.cli(f"add server be/b 127.0.0.1:{r.b.port}")
            assert added == "New server registered.\n\n"
            assert [await ask_name(port) for _ in range(2)] == ["a", "a"]  # in maintenance
            assert await r.cli("set server be/b state ready") == "\n"
            assert {await ask_name(port) for _ in range(4)} == {"a", "b"}
            assert await r.cli("del server be/a") == (
                "Only servers in maintenance mode can be deleted.\n"
            )
            held = await asyncio.open_connection("127.0.0.1", port)
            first = await greeting(held[0])
            assert await r.cli(f"set server be/{first} state maint") == "\n"
            assert await r.cli(f"del server be/{first}") == (
                "Server still has connections attached to it, cannot remove it.\n"
            )
            held[1].close()
            backend = r.poise.ctx.backends["be"]
            await eventually(lambda: backend.cur_sess == 0, WAIT, "the session to end")
            assert await r.cli(f"del server be/{first}") == "Server deleted.\n"
            other = "b" if first == "a" else "a"
            assert {await ask_name(port) for _ in range(3)} == {other}
            assert ("be", first) not in await r.show_stat()

    run(loop_kind, main)


def test_deleting_a_checked_server_ends_its_health_checks(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            checks = r.poise.runtime.checks
            assert checks is not None
            check = next(c for c in checks.checks if c.server.name == "c")
            await eventually(lambda: r.b.accepted > 0, WAIT, "a health check")
            assert await r.cli("set server checked/c state maint") == "\n"
            assert await r.cli("del server checked/c") == "Server deleted.\n"
            assert check.task is not None
            await eventually(check.task.done, WAIT, "the checks of c to end")
            assert r.poise.ctx.backends["checked"].servers == []

    run(loop_kind, main)


def test_set_server_addr_sends_new_connections_elsewhere(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("fe")
            old = await asyncio.open_connection("127.0.0.1", port)
            assert await greeting(old[0]) == "a"
            answer = await r.cli(f"set server be/a addr 127.0.0.1 port {r.b.port}")
            assert answer == (
                f"no need to change the addr, port changed from '{r.a.port}' to '{r.b.port}' "
                "by 'stats socket command'\n\n"
            )
            assert await ask_name(port) == "b"
            old[1].write(b"on a\n")
            assert await greeting(old[0]) == "on a"  # a session under way stays
            old[1].close()
            assert f",127.0.0.1:{r.b.port}," in await r.cli("show stat")

    run(loop_kind, main)


def test_set_server_addr_drops_the_idle_connections_to_the_old_address(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("web")
            pools = r.poise.ctx.io[r.poise.ctx.backends["app"]].pools
            first = await Client.connect(port)
            assert (await first.get("/"))[2] == b"w1 /"
            first.close()  # its server connection goes back to the pool
            await eventually(lambda: any(p.idle for p in pools.values()), WAIT, "an idle one")
            await r.cli(f"set server app/w addr 127.0.0.1 port {r.w2.port}")
            assert not any(p.idle for p in pools.values())
            second = await Client.connect(port)
            # A client's second request may reuse another's connection (http-reuse safe):
            # none is left to the old address.
            assert [(await second.get("/"))[2] for _ in range(2)] == [b"w2 /", b"w2 /"]
            second.close()

    run(loop_kind, main)


def test_clear_counters_over_the_socket(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            port = r.poise.port("fe")
            for _ in range(3):
                assert await ask_name(port) == "a"
            await eventually(lambda: r.poise.ctx.actconn == 0, WAIT, "the sessions to end")
            table = await r.show_stat()
            assert (table["fe", "FRONTEND"]["stot"], table["be", "a"]["stot"]) == ("3", "3")
            assert table["be", "a"]["smax"] != "0"
            assert await r.cli("clear counters") == "\n"
            table = await r.show_stat()
            assert (table["be", "a"]["smax"], table["be", "a"]["stot"]) == ("0", "3")
            assert await r.cli("clear counters all") == "\n"
            table = await r.show_stat()
            assert (table["fe", "FRONTEND"]["stot"], table["be", "a"]["stot"]) == ("0", "0")
            assert "\nCumConns: " in await r.cli("show info")

    run(loop_kind, main)


def test_set_timeout_cli_closes_an_idle_interactive_session(loop_kind: str) -> None:
    async def main() -> None:
        async with rig() as r:
            reader, writer = await asyncio.open_unix_connection(str(r.sock))
            writer.write(b"prompt\nset timeout cli 200ms\n")
            seen = b""
            while not seen.endswith(b"\n> \n> "):
                seen += await asyncio.wait_for(reader.read(100), WAIT)
            # `stats timeout` is 10s: the connection's own 200ms closes it.
            assert await asyncio.wait_for(reader.read(), 2.0) == b""
            writer.close()

    run(loop_kind, main)


def test_a_stats_socket_serves_ten_connections_at_once(loop_kind: str) -> None:
    """HAProxy's stats sockets take 10 connections at once (`maxconn 10`, outside the
    global maxconn); an eleventh waits in the backlog until one of them ends."""

    async def main() -> None:
        async with rig() as r:
            held = []
            for _ in range(10):
                reader, writer = await asyncio.open_unix_connection(str(r.sock))
                writer.write(b"prompt\n")
                assert await asyncio.wait_for(reader.readexactly(3), WAIT) == b"\n> "
                held.append((reader, writer))
            reader, writer = await asyncio.open_unix_connection(str(r.sock))
            writer.write(b"show info\n")
            # The stats socket's listener stopped at its limit: the eleventh waits.
            await eventually(lambda: bool(r.poise.ctx.limited), WAIT, "the listener to stop")
            assert r.poise.ctx.actconn == 0  # not counted against the global maxconn
            held[0][1].close()
            assert "\nMaxconn: " in (await asyncio.wait_for(reader.read(), WAIT)).decode()
            writer.close()
            for _, other in held[1:]:
                other.close()

    run(loop_kind, main)
