"""`http-after-response` through `poise run` and `haproxy` on the same configuration and
the same real backend: the rules edit every response, the server's and the ones the
balancer makes itself (a deny, a `return`, a redirect, the 503 of a backend with no
server), the backend's rules first, then the frontend's; `allow` ends its proxy's rules
only; `set-status` changes what the client gets and what is logged; conditions see the
status. Each answer (status line, the headers the rules touch) and each log line must be
the same from both."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import WebApp, request

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    log stdout format raw local0
defaults
    mode http
    log global
    option dontlognull
    log-format "%b %ST %HU"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    # The request is gone when these rules run: what they test of it goes in a variable.
    http-request set-var(txn.path) path
    http-request deny if {{ path_beg /deny }}
    http-request return status 200 content-type text/plain string ok if {{ path_beg /ret }}
    http-request redirect location /elsewhere if {{ path_beg /redir }}
    http-after-response set-header Strict-Transport-Security "max-age=31536000"
    http-after-response add-header X-Order fe
    http-after-response set-header X-Status %[status] if {{ status ge 400 }}
    http-after-response set-status 418 if {{ var(txn.path) -m beg /deny/teapot }}
    http-after-response del-header X-Backend if {{ var(txn.path) -m beg /hide }}
    use_backend empty if {{ path_beg /empty }}
    default_backend app
backend app
    http-after-response add-header X-Order be
    http-after-response allow if {{ var(txn.path) -m beg /allow }}
    http-after-response add-header X-Order be-after-allow
    http-after-response replace-header X-Backend (.*) srv-\\1
    server s 127.0.0.1:{app}
backend empty
    http-after-response set-var(txn.seen) str(yes)
    http-after-response set-header X-Seen %[var(txn.seen)]
    http-after-response set-status 503 reason "Nobody Home"
"""
PATHS = (
    "/",
    "/allow",
    "/hide",
    "/deny",
    "/deny/teapot",
    "/ret",
    "/redir",
    "/empty",
    "/status/404",
)
SHOWN = ("strict-transport-security", "x-order", "x-status", "x-backend", "x-seen", "location")


async def answers(command: list[str], tmp: Path, app: int) -> tuple[list[str], list[str]]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, app=app))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        await accepting(port)
        for path in PATHS:
            raw = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
            got = await request(port, raw, until_close=True)
            lines = got.partition(b"\r\n\r\n")[0].decode().split("\r\n")
            kept = [x.lower() for x in lines[1:] if x.lower().startswith(SHOWN)]
            seen.append(f"{path}: {lines[0]} {kept}")
        # The same on a kept connection: the rules run on a response forwarded as it
        # came (the plain path, core/http/stream_response.py) too.
        for path in PATHS:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            lines = head.partition(b"\r\n\r\n")[0].decode().split("\r\n")
            kept = [x.lower() for x in lines[1:] if x.lower().startswith(SHOWN)]
            seen.append(f"{path} (kept): {lines[0]} {kept}")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    # poise also says why it refused a request, on lines of its own.
    logs = [line for line in out.splitlines() if line.strip() and ": failed while" not in line]
    return seen, logs


def test_after_response_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("a").start()
        try:
            (ours, our_logs), (theirs, their_logs) = await both(answers, app.port)
        finally:
            await app.stop()
        assert ours[1] == (
            "/allow: HTTP/1.1 200 OK ['x-backend: a', 'x-order: be', "
            "'strict-transport-security: max-age=31536000', 'x-order: fe']"
        )
        assert ours[4].startswith("/deny/teapot: HTTP/1.1 418 I'm a teapot")
        assert ours == theirs
        assert sorted(our_logs) == sorted(their_logs)  # one may log a line late

    run(loop_kind, main, timeout=60)
