"""The refusal and error counters of `show stat` against HAProxy 2.6: the same
configuration and traffic under `poise run` and `haproxy -db` must give the same dreq,
dresp, ereq, dcon, dses, eresp, wrew, eint and response counts on every row, the
listener's of `option socket-stats` included, the same lines in the Prometheus exporter
(haproxy_frontend_requests_denied_total...), and the same zeros after `clear counters
all`. The traffic: `http-request deny` in the frontend and in the backend, `tarpit`,
`tcp-request content reject` of an HTTP request in both, the same in a `listen`,
`http-response deny`, `tcp-response content reject`, a malformed request, one that
`normalize-uri ... strict` refuses, a client that leaves in the middle of its head, one
that sends nothing, one too slow to send its head (`timeout http-request`), `tcp-request
connection reject`, `tcp-request session reject`, and a `tcp-request content reject` in
`mode tcp`."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import free_port, run, until
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {sock} level admin
    expose-experimental-directives
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-request 300ms
    timeout tarpit 100ms
frontend fe
    bind 127.0.0.1:{port} name web
    option socket-stats
    tcp-request connection reject if { src 127.0.0.2 }
    tcp-request session reject if { src 127.0.0.3 }
    http-request use-service prometheus-exporter if { path /metrics }
    http-request normalize-uri percent-decode-unreserved strict
    tcp-request content reject if { path /l4 }
    http-request deny if { path /deny }
    http-request tarpit if { path /tarpit }
    default_backend app
backend app
    tcp-request content reject if { path /bl4 }
    http-request deny if { path /bdeny }
    http-response deny if { status 404 }
    server s 127.0.0.1:{app}
listen li
    bind 127.0.0.1:{listen}
    http-request deny if { path /deny }
    http-response deny if { status 404 }
    server s 127.0.0.1:{app}
frontend tcpfe
    mode tcp
    bind 127.0.0.1:{tcp}
    tcp-request content reject if { src 127.0.0.4 }
    default_backend tcpapp
backend tcpapp
    mode tcp
    tcp-response inspect-delay 1s
    tcp-response content reject if { res.len gt 0 }
    server s 127.0.0.1:{app}
"""
# The exporter's metrics of these counters (their lines are compared too).
DENIED = "requests_denied|responses_denied|request_errors|denied_connections|denied_sessions"
DENIED += "|internal_errors|failed_header_rewriting"
METRICS = re.compile(rf"^haproxy_\w+_(?:{DENIED})_total.*$", re.MULTILINE)
COLUMNS: tuple[str, ...] = ("dreq", "dresp", "ereq", "dcon", "dses", "eresp", "wrew", "eint")
COLUMNS += ("hrsp_2xx", "hrsp_4xx", "hrsp_5xx")


async def cli(sock: Path, line: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(line.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


async def connect_from(source: str, port: int) -> bytes:
    """Connect from a loopback source address and read until the balancer closes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            return await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    except ConnectionResetError:
        sock.close()
        return b"reset"


async def leave_early(port: int, sent: bytes = b"GET / HTTP/1.1\r\nHost: a") -> None:
    """Half a request head (or nothing), then the client closes."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def table(csv: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = csv.splitlines()
    names = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(names, line.split(","), strict=False)) for line in lines[1:] if line]
    return {(r["pxname"], r["svname"]): {c: r[c] for c in (*COLUMNS, "scur")} for r in rows}


async def exchange(command: list[str], tmp: Path, app: WebApp) -> dict[str, object]:
    sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
    tcp = free_port()
    config = CONFIG.replace("{app}", str(app.port)).replace("{sock}", str(sock))
    listen = free_port()
    config = config.replace("{tcp}", str(tcp)).replace("{listen}", str(listen))
    async with running(command, tmp, config) as proxy:
        port = proxy.port
        seen: dict[str, object] = {}
        for path in ("/", "/deny", "/bdeny", "/status/404", "/tarpit", "/l4", "/bl4"):
            head = f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            answer = await send(port, [head.encode()])
            seen[path] = answer.split(b"\r\n", 1)[0]
        bad_encoding = b"GET /a%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        seen["bad encoding"] = (await send(port, [bad_encoding]))[:12]
        seen["bad"] = (await send(port, [b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"]))[:12]
        await leave_early(port)
        await leave_early(port, b"")
        seen["timeout"] = (await send(port, [b"GET / HTTP/1.1\r\nHost"]))[:12]
        seen["reject-conn"] = await connect_from("127.0.0.2", port)
        seen["reject-sess"] = await connect_from("127.0.0.3", port)
        seen["reject-content"] = await connect_from("127.0.0.4", tcp)
        request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        seen["reject-response"] = await send(tcp, [request])
        for path in ("/", "/deny", "/status/404"):
            head = f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            answer = await send(listen, [head.encode()])
            seen["listen " + path] = answer.split(b"\r\n", 1)[0]
        stats: dict[tuple[str, str], dict[str, str]] = {}

        async def settled() -> None:
            nonlocal stats
            stats = table(await cli(sock, "show stat"))

        def done() -> bool:
            return (
                stats.get(("fe", "FRONTEND"), {}).get("scur") == "0"
                and int(stats["fe", "FRONTEND"]["ereq"]) >= 6
                and stats["tcpfe", "FRONTEND"]["dreq"] == "1"
                and stats["tcpfe", "FRONTEND"]["dresp"] == "1"
            )

        async def counted() -> bool:  # until the early leaver is counted
            await settled()
            return done()

        await until(counted, timeout=2, what="the counters settled")
        for name, row in stats.items():
            row.pop("scur")
            seen[":".join(name)] = row
        scrape = b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        metrics = (await send(port, [scrape])).decode()
        seen["metrics"] = sorted(METRICS.findall(metrics))
        await cli(sock, "clear counters all")  # every row's, the listener's too
        for name, row in table(await cli(sock, "show stat")).items():
            row.pop("scur")
            seen["cleared " + ":".join(name)] = row
    return seen


def test_refusals_and_request_errors_are_counted_as_haproxy_counts_them(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("app").start()
        try:
            ours, theirs = await both(exchange, app)
        finally:
            await app.stop()
        assert ours == theirs
        front = ours["fe:FRONTEND"]
        assert isinstance(front, dict)
        assert (front["dreq"], front["dresp"], front["ereq"]) == ("5", "1", "6")
        assert (front["dcon"], front["dses"]) == ("1", "1")
        metrics = ours["metrics"]
        assert isinstance(metrics, list)
        assert 'haproxy_frontend_requests_denied_total{proxy="fe"} 5' in metrics
        assert ours["cleared fe:web"] == dict.fromkeys(COLUMNS, "0") | {
            "eresp": "", "hrsp_2xx": "", "hrsp_4xx": "", "hrsp_5xx": ""
        }  # fmt: skip

    run(loop_kind, main, timeout=60)
