"""The per-request counters of `show stat` (core/counters.py) after known traffic through a
running poise: real HTTP and TCP backends, a real client, the stats socket, under both
event loops. What each counts was compared with HAProxy 2.6.12 given the same
configuration and traffic (bytes aside: HAProxy counts its internal message sizes).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from poise.net.admin_socket import open_admin_sockets
from tests.io.harness import Poise, Stage
from tests.support import eventually, run

WAIT = 5.0
CONFIG = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    http-request deny if {{ path /deny }}
    http-request redirect location /ok if {{ path /redir }}
    use_backend empty if {{ path /nosrv }}
    default_backend be
backend be
    server w 127.0.0.1:{w}
backend empty
    server d 127.0.0.1:{w} disabled
listen li
    bind 127.0.0.1:0
    http-request deny if {{ path /deny }}
    server w2 127.0.0.1:{w}
frontend tcpfe
    mode tcp
    bind 127.0.0.1:0
    default_backend echo
backend echo
    mode tcp
    server e 127.0.0.1:{e}
"""


class RawClient:
    """Keep-alive requests on one connection, counting the bytes each way."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sent = self.received = 0

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> int:
        raw = f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
        self.writer.write(raw)
        self.sent += len(raw)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await self.reader.readexactly(int(match.group(1)) if match else 0)
        self.received += len(head) + len(body)
        return int(head.split()[1])

    def close(self) -> None:
        self.writer.close()


async def show_stat(sock: Path) -> dict[tuple[str, str], dict[str, str]]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(b"show stat\n")
    text = (await asyncio.wait_for(reader.read(), WAIT)).decode()
    writer.close()
    lines = text.split("\n")
    names = lines[0][2:].split(",")
    return {
        (fields[0], fields[1]): dict(zip(names, fields, strict=True))
        for fields in (line.split(",") for line in lines[1:] if line)
    }


def pick(row: dict[str, str], columns: str) -> dict[str, str]:
    return {c: row[c] for c in columns.split()}


HRSP = "hrsp_1xx hrsp_2xx hrsp_3xx hrsp_4xx hrsp_5xx hrsp_other req_tot"


def test_show_stat_counts_responses_and_bytes_per_frontend_backend_server(
    loop_kind: str,
) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="pc", dir="/tmp") as name:
            sock = Path(name) / "admin.sock"
            async with Stage() as stage:
                w = await stage.webapp("w")
                e = await stage.backend("e")
                text = CONFIG.format(sock=sock, w=w.port, e=e.port)
                poise = Poise(text)
                poise.runtime.admin_socks = open_admin_sockets(poise.config.global_.stats_sockets)
                await poise.__aenter__()
                stage.balancers.append(poise)

                client = await RawClient.connect(poise.port("fe"))
                paths = ["/ok"] * 3 + ["/status/404"] * 2 + ["/deny", "/nosrv", "/redir"]
                statuses = [await client.get(p) for p in paths]
                assert statuses == [200, 200, 200, 404, 404, 403, 503, 302]
                # Sent and answered by the server, and the bytes of each part.
                routed = RawClient(client.reader, client.writer)
                for p in ["/ok"] * 3 + ["/status/404"] * 2:
                    await routed.get(p)
                empty = RawClient(client.reader, client.writer)
                await empty.get("/nosrv")
                listen = await RawClient.connect(poise.port("li"))
                assert [await listen.get(p) for p in ("/ok", "/deny")] == [200, 403]

                reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("tcpfe"))
                greeting = await asyncio.wait_for(reader.readline(), WAIT)
                writer.write(b"ping\n")
                echoed = await asyncio.wait_for(reader.readline(), WAIT)
                writer.close()
                client.close()
                listen.close()

                frontends = poise.ctx.frontends.values()
                await eventually(
                    lambda: all(f.cur_conn == 0 for f in frontends), WAIT, "sessions ended"
                )
                stat = await show_stat(sock)

                # Every response the frontend sent: its own 403, 503 and 302 too.
                fe = stat[("fe", "FRONTEND")]
                assert pick(fe, HRSP) == dict(
                    zip(HRSP.split(), ["0", "6", "1", "5", "2", "0", "14"], strict=True)
                )
                parts = (client, routed, empty)
                assert fe["bin"] == str(sum(c.sent for c in parts))
                assert fe["bout"] == str(sum(c.received for c in parts))
                # The server counts what it answered; its backend the same, with the bytes
                # of the requests sent to it.
                for row in (stat[("be", "w")], stat[("be", "BACKEND")]):
                    assert pick(row, HRSP) == dict(
                        zip(HRSP.split(), ["0", "6", "0", "4", "0", "0", "10"], strict=True)
                    )
                    assert (row["bin"], row["bout"]) == (
                        str(2 * routed.sent),
                        str(2 * routed.received),
                    )
                    assert pick(row, "eresp wretr wredis cli_abrt srv_abrt") == dict.fromkeys(
                        ["eresp", "wretr", "wredis", "cli_abrt", "srv_abrt"], "0"
                    )
                # The 503 of a backend without a usable server: the backend's, not a server's.
                empty_be = stat[("empty", "BACKEND")]
                assert (empty_be["hrsp_5xx"], empty_be["req_tot"]) == ("2", "2")
                assert (empty_be["bin"], empty_be["bout"]) == (
                    str(2 * empty.sent),
                    str(2 * empty.received),
                )
                assert stat[("empty", "d")]["req_tot"] == "0"
                # A `listen` denying before routing: its backend counts the bytes, not the
                # response (as HAProxy does).
                li_fe, li_be = stat[("li", "FRONTEND")], stat[("li", "BACKEND")]
                assert (li_fe["hrsp_2xx"], li_fe["hrsp_4xx"], li_fe["req_tot"]) == ("1", "1", "2")
                assert (li_be["hrsp_2xx"], li_be["hrsp_4xx"], li_be["req_tot"]) == ("1", "0", "1")
                assert li_be["bin"] == li_fe["bin"] == str(listen.sent)
                assert li_be["bout"] == li_fe["bout"] == str(listen.received)
                assert int(stat[("li", "w2")]["bin"]) < listen.sent
                # TCP: bytes on every row, no HTTP columns (a frontend's req_tot is 0,
                # as HAProxy 2.6 shows it).
                for key in (("tcpfe", "FRONTEND"), ("echo", "e"), ("echo", "BACKEND")):
                    row = stat[key]
                    assert row["bin"] == "5", key
                    assert row["bout"] == str(len(greeting) + len(echoed)), key
                    assert row["hrsp_2xx"] == "", key
                    assert row["req_tot"] == ("0" if key[1] == "FRONTEND" else ""), key

                # `clear counters all` starts them again.
                reader, writer = await asyncio.open_unix_connection(str(sock))
                writer.write(b"clear counters all\n")
                await asyncio.wait_for(reader.read(), WAIT)
                writer.close()
                stat = await show_stat(sock)
                for key in (("fe", "FRONTEND"), ("be", "w"), ("be", "BACKEND")):
                    assert stat[key]["req_tot"] == stat[key]["bin"] == "0", key

    run(loop_kind, main)
