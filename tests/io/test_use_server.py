"""`use-server NAME if|unless COND` through real sockets: a request whose condition holds
goes to that server, ahead of the balancer; a rule whose server is in maintenance is
passed over (unless `option persist`); a rule wins over a persistence cookie, as in
HAProxy; in TCP mode the connection's facts decide (the client's address); and `del
server` refuses a server a rule names, with HAProxy 2.6's message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from poise.net.admin_socket import open_admin_sockets
from tests.io.harness import Poise, Stage
from tests.support import ask_from, run
from tests.webapp import Client

HTTP = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    balance roundrobin
    {persist}
    cookie S insert indirect nocache
    use-server b if {{ path_beg /to-b }}
    use-server c if {{ hdr(x-to) c }}
    server a 127.0.0.1:{a} cookie a
    server b 127.0.0.1:{b} cookie b
    server c 127.0.0.1:{c} cookie c
"""


async def cli(sock: Path, line: str) -> str:
    """One command on the stats socket, as `socat` sends it (the answer, trimmed)."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(line.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode().strip()
    finally:
        writer.close()


async def with_socket(stage: Stage, text: str) -> Poise:
    """poise with its stats socket open, stopped with the stage."""
    poise = Poise(text)
    poise.runtime.admin_socks = open_admin_sockets(poise.config.global_.stats_sockets)
    await poise.__aenter__()
    stage.balancers.append(poise)
    return poise


async def served_by(client: Client, path: str, headers: str = "") -> str:
    status, _, body = await client.get(path, headers=headers)
    assert status == 200, (status, body)
    return body.split()[0].decode()


def test_a_rule_chooses_the_server_ahead_of_the_balancer(loop_kind: str, tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"

    async def main() -> None:
        async with Stage() as stage:
            a, b, c = [await stage.webapp(name) for name in "abc"]
            text = HTTP.format(sock=sock, persist="", a=a.port, b=b.port, c=c.port)
            poise = await with_socket(stage, text)
            client = await Client.connect(poise.port("fe"))
            assert [await served_by(client, "/to-b/x") for _ in range(4)] == ["b"] * 4
            assert await served_by(client, "/", "X-To: c\r\n") == "c"
            # No rule applies: round robin over the three.
            assert sorted([await served_by(client, "/") for _ in range(3)]) == ["a", "b", "c"]
            # The rules run before the cookie is read, as in HAProxy 2.6 (AN_REQ_SRV_RULES
            # before AN_REQ_HTTP_INNER): a client of a asking for /to-b/ goes to b, and
            # gets no new cookie (the rule made it direct; haproxy logs its cookie U).
            status, headers, body = await client.get("/to-b/", headers="Cookie: S=a\r\n")
            assert (status, body.split()[0], "set-cookie" in headers) == (200, b"b", False)
            assert await served_by(client, "/", "Cookie: S=a\r\n") == "a"
            # b in maintenance: its rule is passed over, the balancer chooses among a, c.
            assert await cli(sock, "set server be/b state maint") == ""
            assert {await served_by(client, "/to-b/") for _ in range(4)} == {"a", "c"}
            refused = await cli(sock, "del server be/b")
            assert refused == (
                "This server cannot be removed at runtime due to other configuration "
                "elements pointing to it."
            )
            client.close()

    run(loop_kind, main)


def test_option_persist_keeps_the_rule_for_a_server_in_maintenance(
    loop_kind: str, tmp_path: Path
) -> None:
    sock = tmp_path / "s.sock"

    async def main() -> None:
        async with Stage() as stage:
            a, b, c = [await stage.webapp(name) for name in "abc"]
            text = HTTP.format(sock=sock, persist="option persist", a=a.port, b=b.port, c=c.port)
            poise = await with_socket(stage, text)
            assert await cli(sock, "set server be/b state maint") == ""
            client = await Client.connect(poise.port("fe"))
            assert await served_by(client, "/to-b/") == "b"
            client.close()

    run(loop_kind, main)


TCP = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen l
    bind 127.0.0.1:0
    use-server two if {{ src 127.0.0.9 }}
    server one 127.0.0.1:{one}
    server two 127.0.0.1:{two}
"""


def test_in_tcp_mode_the_connection_decides(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            one = await stage.backend("one")
            two = await stage.backend("two")
            poise = await stage.poise(TCP.format(one=one.port, two=two.port))
            port = poise.port("l")
            assert [await ask_from("127.0.0.9", port) for _ in range(3)] == ["two"] * 3
            assert {await ask_from("127.0.0.8", port) for _ in range(4)} == {"one", "two"}

    run(loop_kind, main)
