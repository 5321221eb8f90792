"""The `cache` section with `http-request cache-use` and `http-response cache-store`
through `poise run` and `haproxy`, on the same configuration and a real backend that
counts the requests it gets (its body says which one answered): what is stored (a 200
with a max-age, an ETag, a Set-Cookie), what is not (no freshness nor validator, private,
Vary, an Age of 0, too big), what a hit carries (the stored head and `age`), HEAD and
conditional requests (304), requests that bypass the cache (Cache-Control no-cache,
Authorization), and a POST that drops the entry. Each answer and each log line must be
the same from both."""

from __future__ import annotations

import asyncio
import csv
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    log stdout format raw local0
    stats socket {sock} level admin
defaults
    mode http
    log global
    option dontlognull
    log-format "%b/%s %ST %ts %HM %HU"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
cache small
    total-max-size 1
    max-object-size 2000
    max-age 60
frontend fe
    bind 127.0.0.1:{port}
    http-request cache-use small
    http-response cache-store small
    http-after-response set-header X-Cache %[res.cache_name] if {{ res.cache_hit }}
    http-after-response set-header X-Cache MISS unless {{ res.cache_hit }}
    default_backend app
backend app
    server s 127.0.0.1:{app}
"""
HEADERS = {
    "/cc": "Cache-Control: max-age=30\r\n",
    "/etag": 'ETag: "v1"\r\n',
    "/plain": "",
    "/cookie": "Cache-Control: max-age=30\r\nSet-Cookie: a=b\r\n",
    "/private": "Cache-Control: private, max-age=30\r\n",
    "/vary": "Cache-Control: max-age=30\r\nVary: Accept-Encoding\r\n",
    "/aged": "Cache-Control: max-age=30\r\nAge: 5\r\n",
    "/age0": "Cache-Control: max-age=30\r\nAge: 0\r\n",
    "/big": "Cache-Control: max-age=30\r\n",
    "/inv": "Cache-Control: max-age=30\r\n",
    "/expires": "Expires: Fri, 31 Dec 2100 23:59:59 GMT\r\n",
    "/expired": "Expires: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
}
REQUESTS = (
    *[("GET", path, "") for path in HEADERS for _ in range(2)],
    ("HEAD", "/cc", ""),
    ("GET", "/etag", 'If-None-Match: "v1"\r\n'),
    ("GET", "/etag", 'If-None-Match: W/"v1", "x"\r\n'),
    ("GET", "/etag", 'If-None-Match: "other"\r\n'),
    ("GET", "/etag", "If-Modified-Since: Fri, 31 Dec 2100 23:59:59 GMT\r\n"),
    ("GET", "/etag", "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n"),
    ("GET", "/etag", "If-Modified-Since: Fri Dec 31 23:59:59 2100\r\n"),
    ("GET", "/expires", ""),
    ("GET", "/expires", ""),
    ("GET", "/expired", ""),
    ("GET", "/expired", ""),
    ("GET", "/cc", "Cache-Control: no-cache\r\n"),
    ("GET", "/cc", "Authorization: Basic eDp5\r\n"),
    ("POST", "/inv", ""),
    ("GET", "/inv", ""),
)


VARY_CONFIG = CONFIG.replace("    max-age 60\n", "    max-age 60\n    process-vary on\n")
VARY_REQUESTS = (
    ("GET", "/ae", "Accept-Encoding: gzip\r\n"),
    ("GET", "/ae", "Accept-Encoding: gzip\r\n"),
    ("GET", "/ae", ""),
    ("GET", "/ae", "Accept-Encoding: identity\r\n"),
    ("GET", "/ae", "Accept-Encoding: identity\r\n"),
    ("GET", "/ae", "Accept-Encoding: br, gzip;q=0\r\n"),
    ("GET", "/ae", "Accept-Encoding: deflate, *\r\n"),
    ("GET", "/ref", "Referer: http://a/\r\n"),
    ("GET", "/ref", "Referer: http://a/\r\n"),
    ("GET", "/ref", "Referer: http://b/\r\n"),
    ("GET", "/ref", "Referer: http://b/\r\n"),
    ("GET", "/ref", ""),
    ("GET", "/ua", ""),
    ("GET", "/ua", ""),
    ("GET", "/both", "Accept-Encoding: gzip\r\nReferer: x\r\n"),
    ("GET", "/both", "Accept-Encoding: gzip, br\r\nReferer: x\r\n"),
    ("GET", "/both", "Accept-Encoding: gzip\r\nReferer: y\r\n"),
)


def vary_headers(path: str, head: str) -> str:
    """What the backend varies on, and its encoding when the client takes gzip."""
    if path == "/ua":
        return "Cache-Control: max-age=30\r\nVary: User-Agent\r\n"
    vary = {"/ae": "Accept-Encoding", "/ref": "Referer", "/both": "Accept-Encoding,Referer"}
    extra = f"Cache-Control: max-age=30\r\nVary: {vary[path]}\r\n"
    wants = (
        head.lower().split("accept-encoding:", 1)[1].split("\r\n")[0]
        if "accept-encoding:" in head.lower()
        else ""
    )
    if "gzip" in wants and "gzip;q=0" not in wants:
        extra += "Content-Encoding: gzip\r\n"
    return extra


async def backend() -> tuple[asyncio.Server, int]:
    counts: dict[str, int] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, path = head.decode().split(" ")[:2]
        counts[path] = counts.get(path, 0) + 1
        body = f"{path} #{counts[path]}".encode() * (300 if path == "/big" else 1)
        extra = HEADERS[path] if path in HEADERS else vary_headers(path, head.decode())
        writer.write(
            f"HTTP/1.1 200 OK\r\n{extra}Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + (body if method != "HEAD" else b"")
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def cache_counters(sock: Path) -> str:
    """The cache_lookups and cache_hits columns of `show stat`, by proxy and row."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(b"show stat\n")
    text = (await asyncio.wait_for(reader.read(), 5)).decode()
    writer.close()
    rows = list(csv.reader(text.lstrip("# ").splitlines()))
    names = rows[0]
    found = [dict(zip(names, row, strict=False)) for row in rows[1:] if row]
    return " ".join(
        f"{r['pxname']}/{r['svname']}:{r['cache_lookups']}/{r['cache_hits']}" for r in found
    )


async def answers(
    command: list[str],
    tmp: Path,
    config: str = CONFIG,
    requests: tuple[tuple[str, str, str], ...] = REQUESTS,
) -> tuple[list[str], list[str]]:
    server, app = await backend()
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
    cfg.write_text(config.format(port=port, app=app, sock=sock))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        await accepting(port)
        for method, path, headers in requests:
            raw = f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n"
            length = "Content-Length: 0\r\n" if method == "POST" else ""
            got = await request(port, (raw + length + "\r\n").encode(), until_close=True)
            head, _, body = got.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            # The age is whole seconds since the entry was stored: a second may tick over
            # between two runs, so only its presence is compared.
            kept = sorted(
                re.sub(r"^age: \d+$", "age: N", x.lower())
                for x in lines[1:]
                if not x.lower().startswith("date:")
            )
            seen.append(f"{method} {path} {headers!r}: {lines[0]} {kept} {body[:12]!r}")
        seen.append(await cache_counters(sock))
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
        server.close()
    logs = [x for x in out.splitlines() if x.strip() and ": failed while" not in x]
    return seen, logs


def test_cache_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        (ours, our_logs), (theirs, their_logs) = await both(answers)
        assert "age: N" in ours[1] and "b'/cc #1'" in ours[1] and "x-cache: small" in ours[1]
        assert "x-cache: miss" in ours[0]
        assert ours[-1].startswith("fe/FRONTEND:"), ours[-1]
        assert ours == theirs
        assert sorted(our_logs) == sorted(their_logs)  # haproxy may log a miss after the next hit

    run(loop_kind, main, timeout=60)


def test_process_vary_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="cv", dir="/tmp") as name:
            tmp = Path(name)
            poise = [sys.executable, "-m", "poise.cli", "run", "-f"]
            ours, our_logs = await answers(poise, tmp, VARY_CONFIG, VARY_REQUESTS)
            haproxy = ["haproxy", "-db", "-f"]
            theirs, their_logs = await answers(haproxy, tmp, VARY_CONFIG, VARY_REQUESTS)
        assert "b'/ae #1'" in ours[1] and "age: N" in ours[1]
        assert "b'/ref #2'" in ours[8]  # HAProxy 2.6 never serves a Vary: Referer alone
        assert ours == theirs
        assert sorted(our_logs) == sorted(their_logs)  # haproxy may log a miss after the next hit

    run(loop_kind, main, timeout=60)
