"""Captures against HAProxy 2.6: `capture request|response header`, `declare capture`,
`http-request capture EXPR len N|id N` (in the frontend and in the backend, which fills
the frontend's slot), `http-response capture EXPR id N` and the `capture.req.hdr(N)`
fetch, in one configuration run by `poise run` and by `haproxy`: the same requests must
give the same `{...}` blocks in the log lines (slots in the order of the lines, values
cut to their length, `|`, `{` and `"` encoded as HAProxy does, an absent value empty) and
the same headers at the backend. Then `tcp-request content capture` fills a slot too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import eventually, run
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    capture request header Host len 10
    declare capture request len 5
    tcp-request inspect-delay 1s
    tcp-request content capture req.hdr(x-t) len 4
    http-request capture req.hdr(x-a) len 3
    http-request capture path id 1
    declare capture response len 8
    capture response header Content-Length len 4
    http-response capture status id 0
    http-request set-header X-C0 %[capture.req.hdr(0)]
    http-request set-header X-C1 %[capture.req.hdr(1)]
    http-request set-header X-C2 %[capture.req.hdr(2)]
    default_backend app
backend app
    http-request capture req.hdr(x-b) id 2
    server s 127.0.0.1:{app}
"""
REQUESTS = [
    b"GET /abcdefgh HTTP/1.1\r\nHost: www.example.com\r\nX-A: hello\r\nX-B: bee\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\n",
    b'GET /a|b{c} HTTP/1.1\r\nHost: ab\r\nX-A: "q\r\nX-T: tcp-capture\r\n',
    b"GET /status/404 HTTP/1.1\r\nHost: a\r\n",
]
CAPTURES = re.compile(r"(\{.*\}) \"(.*)\"")


async def exchange(command: list[str], tmp: Path, app: WebApp) -> list[str]:
    seen: list[str] = []
    async with running(command, tmp, CONFIG.replace("{app}", str(app.port))) as proxy:
        for raw in REQUESTS:
            app.seen.clear()
            answer = await send(proxy.port, [raw + b"Connection: close\r\n\r\n"])
            line = answer.split(b"\r\n", 1)[0].decode()
            for record in app.seen:
                values = {k.lower(): v for k, v in record.headers if k.lower().startswith("x-c")}
                line += f" {sorted(values.items())}"
            seen.append(line)
        lines = proxy.logs.lines
        await eventually(lambda: len(lines) >= len(REQUESTS), what="the log lines")
        seen.extend(sorted(" ".join(m.groups()) for x in lines if (m := CAPTURES.search(x))))
    return seen


def test_the_same_captures_in_the_log_and_the_fetches(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("app").start()
        try:
            ours, theirs = await both(exchange, app)
        finally:
            await app.stop()
        assert ours == theirs
        assert "{www.exampl|/abcd|bee|hel} {200|13}" in " ".join(ours)
        assert "{ab|/a#7Cb#7B|tcp-|#22q} {200|11} GET /a|b{c} HTTP/1.1" in ours

    run(loop_kind, main, timeout=60)
