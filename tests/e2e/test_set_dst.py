"""`http-request set-dst`, `set-dst-port` and `set-src-port` through `poise run` and
`haproxy` on the same configuration: corpus 175's forward proxy, whose transparent
server (`server next-hop 0.0.0.0`) connects where the request's absolute URI points
(`set-dst url_ip`, `set-dst-port url_port`), two real backends reached that way; the
`dst`, `dst_port` and `src_port` fetches and the log's `%fi`, `%fp` and `%cp` show the
changed addresses, and a request whose sample gives nothing keeps the connection's.
Each answer and each log line must be the same from both."""

from __future__ import annotations

import re
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
    log-format "%fi:%fp %cp %s %ST %HU"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-response set-header X-Seen %[dst]:%[dst_port]:%[src_port]
    use_backend direct if {{ path_beg /direct }}
    default_backend proxy
backend proxy
    http-request set-dst url_ip
    http-request set-dst-port url_port
    http-request set-dst hdr(x-dst) if {{ hdr(x-dst) -m found }}
    http-request set-src-port hdr(x-sport) if {{ hdr(x-sport) -m found }}
    http-request set-uri %[pathq]
    server next-hop 0.0.0.0
backend direct
    http-request set-dst-port int(7) if {{ path_beg /direct/port }}
    server s 127.0.0.1:{a}
"""


async def answers(command: list[str], tmp: Path, a: int, b: int) -> tuple[list[str], list[str]]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, a=a))
    requests = (
        (f"http://127.0.0.1:{a}/one?x=1", ""),
        (f"http://127.0.0.1:{b}/two", "X-Sport: 70000\r\n"),
        (f"http://127.0.0.2:{b}/three", "X-Dst: 127.0.0.1\r\n"),
        ("/direct/x", ""),
        ("/direct/port", ""),
    )
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        await accepting(port)
        for target, headers in requests:
            host = target.split("/")[2] if "://" in target else "t"
            raw = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
            got = await request(port, raw.encode(), until_close=True)
            head, _, body = got.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            kept = [line.lower() for line in lines if line.lower().startswith("x-seen")]
            seen.append(f"{target}: {lines[0]} {kept} {body!r}")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    logs = [mask(line, port) for line in out.splitlines() if line.strip()]
    return [mask(line, port) for line in seen], logs


def mask(line: str, port: int) -> str:
    """The line without the client's ephemeral port (what set-src-port did stays: 4464)
    nor the balancer's own port."""
    line = re.sub(r"(x-seen: [^:]+:\d+:)(\d+)", lambda m: m[1] + _port(m[2]), line)
    line = re.sub(r"^(\S+ )(\d+)( )", lambda m: m[1] + _port(m[2]) + m[3], line)
    return line.replace(str(port), "PORT")


def _port(text: str) -> str:
    return text if text == "4464" else "CPORT"


def test_set_dst_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        a = await WebApp("a").start()
        b = await WebApp("b").start()
        try:
            (ours, our_logs), (theirs, their_logs) = await both(answers, a.port, b.port)
        finally:
            await a.stop()
            await b.stop()
        assert "b'a /one?x=1'" in ours[0] and "b'b /two'" in ours[1] and "b'b /three'" in ours[2]
        assert "4464" in ours[1] and "4464" in our_logs[1]
        assert ours == theirs
        assert sorted(our_logs) == sorted(their_logs)  # one may log a line late

    run(loop_kind, main, timeout=60)
