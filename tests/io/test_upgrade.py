"""HAProxy's implicit HTTP upgrade, through real sockets and side by side with HAProxy 2.6: a
`mode tcp` frontend whose switching rules choose a `mode http` backend. The connection
becomes a stream of HTTP requests (the backend's rules and `option forwardfor` apply to
each), the bytes the layer-4 rules held start the first request (and are read as HTTP by
the switching rules), later requests on the connection run the frontend's switching rules
again (one sent to a `mode tcp` backend ends the connection, logged IR), and each request
is logged in the TCP frontend's format.

HAProxy runs as a process (tests/io/test_server_options.haproxy) in front of the same
real backends (tests/webapp.py) as poise, logging to the same syslog receiver.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.io.harness import Stage
from tests.io.test_server_options import haproxy, needs_haproxy
from tests.support import eventually, free_port, run
from tests.tlskit import Pki, tls_open
from tests.webapp import WebApp

CONFIG = """
defaults
    log 127.0.0.1:{log} format raw local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    log global
    {rules}
    use_backend tcpb if {{ path_beg /tcp }}
    default_backend web
backend web
    mode http
    option forwardfor
    http-request set-header X-Via web-rules
    server w 127.0.0.1:{web}
backend tcpb
    mode tcp
    server t 127.0.0.1:{tcp}
"""
# The tcplog line of one request, its numbers left out (they are times and counts).
LINE = re.compile(r"\] fe (\S+) -?\d+/-?\d+/\d+ \d+ (\S\S) [\d/]+ [\d/]+$")


async def exchange(port: int, requests: list[bytes], pause: bool = False) -> bytes:
    """Send the requests on one connection (each after the previous one's answer when
    `pause`); everything received until the connection closes or stays quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    closed = False
    try:
        for sent, raw in enumerate(requests, 1):
            if closed:
                break
            writer.write(raw)
            while not closed and (not pause or received.count(b"\r\n\r\nweb /") < sent):
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 0.5)
                except TimeoutError:
                    break
                closed = not chunk
                received += chunk
    finally:
        writer.close()
    return received


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def observe(
    port: int, stage: Stage, web: WebApp, requests: list[bytes], *, pause: bool, lines: int
) -> tuple[list[str], list[tuple[str | None, str | None]], list[tuple[str, str]]]:
    """What one balancer does with `requests` on one connection: the bodies answered, what
    the web backend received (its rule's header, X-Forwarded-For), the log lines."""
    stage.logs.lines.clear()
    web.seen.clear()
    received = await exchange(port, requests, pause)
    bodies = re.findall(rb"\r\n\r\n(web [^\r\n]*?)(?=HTTP/|$)", received)
    # (Not the line HAProxy writes for the probe that waits for its port: PR, <NOSRV>.)
    logs = await stage.logs.wait_for(r"\] fe (web|tcpb)/", lines)
    shapes = []
    for line in logs:
        found = LINE.search(line)
        assert found, line
        shapes.append((found[1], found[2]))
    seen = [(s.header("X-Via"), s.header("X-Forwarded-For")) for s in web.seen]
    return [b.decode() for b in bodies], seen, shapes


@needs_haproxy
def test_a_tcp_frontend_hands_its_connection_to_an_http_backend_as_haproxy(
    loop_kind: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("web")
            tcp = await stage.backend("tcp")
            fields = {"web": web.port, "tcp": tcp.port, "log": stage.logs.port}
            cases = [
                # No inspect-delay: the switching rules run at once, on nothing (the
                # first request goes to the default backend: HAProxy's does most often,
                # unless the bytes beat its first look at the connection); the next ones
                # run them on each request head. Keep-alive, requests pipelined.
                ("", [get("/a"), get("/b"), get("/c")], False, 3),
                # A later request routed to the TCP backend: the connection ends, IR.
                ("", [get("/a"), get("/tcp/2"), get("/c")], True, 2),
                # The layer-4 rules wait for a whole head (`HTTP`), and the switching rules
                # read it as HTTP (core/tcp_http.py): by path to the TCP backend, or to the
                # HTTP one, whose next requests route again.
                (
                    "tcp-request inspect-delay 2s\n    tcp-request content accept if HTTP",
                    [get("/tcp/1")],
                    False,
                    1,
                ),
                (
                    "tcp-request inspect-delay 2s\n    tcp-request content accept if HTTP",
                    [get("/a"), get("/tcp/2")],
                    True,
                    2,
                ),
                # The layer-4 rules wait for the head and route on it... here by its size.
                (
                    "tcp-request inspect-delay 2s\n"
                    "    tcp-request content accept if { req.len ge 20 }",
                    [get("/a"), get("/b")],
                    True,
                    2,
                ),
            ]
            for rules, requests, pause, lines in cases:
                text = CONFIG.format(port=0, rules=rules, **fields)
                poise = await stage.poise(text)
                port = poise.port("fe")
                ours = await observe(port, stage, web, requests, pause=pause, lines=lines)
                await poise.__aexit__(None, None, None)
                stage.balancers.remove(poise)
                port = free_port()
                text = CONFIG.format(port=port, rules=rules, **fields)
                async with haproxy(text, tmp_path, port):
                    theirs = await observe(port, stage, web, requests, pause=pause, lines=lines)
                assert ours == theirs, (rules, requests)
                assert ours[2], "a line logged"

    run(loop_kind, main)


def test_bytes_held_by_layer4_rules_start_the_first_request(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("web")
            rules = "tcp-request inspect-delay 5s\n    tcp-request content accept if HTTP"
            text = CONFIG.format(port=0, web=web.port, tcp=web.port, log="{log}", rules=rules)
            poise = await stage.poise(text)
            reader, writer = await asyncio.open_connection("127.0.0.1", poise.port("fe"))
            try:
                writer.write(b"GET /first HTTP/1.1\r\nHo")
                ctx = poise.ctx

                def held() -> int:
                    return sum(
                        len(session.held.req)
                        for session in ctx.sessions
                        if getattr(session, "held", None) is not None
                    )

                await eventually(lambda: held() == 23, 5, "the first bytes held")
                writer.write(b"st: x\r\nContent-Length: 4\r\n\r\nbody")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200")
                assert await reader.readexactly(len(b"web /first")) == b"web /first"
                [seen] = web.seen
                assert (seen.body, seen.header("X-Via")) == (b"body", "web-rules")
            finally:
                writer.close()
            [line] = await stage.logs.wait_for(r"\] fe web/w ")
            assert " -- " in line

    run(loop_kind, main)


@needs_haproxy
def test_a_first_request_left_half_way_is_logged_pr_as_haproxy(
    loop_kind: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("web")
            fields = {"web": web.port, "tcp": web.port, "log": stage.logs.port, "rules": ""}

            async def half_way(port: int) -> str:
                stage.logs.lines.clear()
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /a HT")
                await writer.drain()
                await asyncio.sleep(0.2)  # the time the line reports, not a condition
                writer.close()
                # (Not the line HAProxy may write for the probe that waits for its port,
                # which closes at once: this one lasted the 200 ms.)
                [line] = await stage.logs.wait_for(r"\] fe fe/<NOSRV> -1/-1/[1-9]\d\d ")
                return re.sub(r"^.*\] ", "", re.sub(r"/\d+ 0 PR", "/T 0 PR", line))

            poise = await stage.poise(CONFIG.format(port=0, **fields))
            ours = await half_way(poise.port("fe"))
            port = free_port()
            async with haproxy(CONFIG.format(port=port, **fields), tmp_path, port):
                theirs = await half_way(port)
            assert ours == theirs == "fe fe/<NOSRV> -1/-1/T 0 PR 1/1/0/0/0 0/0", (ours, theirs)

    run(loop_kind, main)


def test_a_tls_connection_turns_http_too(loop_kind: str, tmp_path: Path) -> None:
    """`bind ... ssl` in a TCP frontend: the decrypted bytes become the HTTP session's."""
    pki = Pki(tmp_path)
    cert = pki.issue("site.pem", ["site.example"])

    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("web")
            poise = await stage.poise(
                CONFIG.format(port=0, web=web.port, tcp=web.port, log="{log}", rules="").replace(
                    "bind 127.0.0.1:0", f"bind 127.0.0.1:0 ssl crt {cert}"
                )
            )
            reader, writer = await tls_open(poise.port("fe"), pki.client(), "site.example")
            try:
                for path in ("/a", "/b"):
                    writer.write(get(path))
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                    assert head.startswith(b"HTTP/1.1 200")
                    assert await reader.readexactly(len(f"web {path}")) == f"web {path}".encode()
            finally:
                writer.close()
            assert [seen.header("X-Via") for seen in web.seen] == ["web-rules", "web-rules"]
            await stage.logs.wait_for(r"\] fe web/w ", 2)

    run(loop_kind, main)
