"""A header's bytes in a `log-format` line through `poise run` and `haproxy` on the same
configuration: `%[...]` writes a sample's bytes as they came (obs-text such as latin-1
`\\xe9` or UTF-8 `\\xc3\\xa9`, `"`, `\\`, a tab), `%{+E}[...]` escapes `"` and `\\`, and a
captured header (`%hr`, `%[capture.req.hdr(0)]`) is `#XX`-encoded or not as HAProxy 2.6
writes it. Each datagram must be the same from both, after the syslog header."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import eventually, run

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    capture request header x len 60
    http-request set-var(txn.x) req.hdr(x)
    log-format "a=%[var(txn.x)] q=%{+Q}[var(txn.x)] e=%{+E}[var(txn.x)] {fmt}"
    http-request return status 200
"""
CAPTURED = "hr=%hr c=%[capture.req.hdr(0)]"
VALUES = (
    b'caf\xc3\xa9 "q" \\b\tt',
    b"caf\xe9 #{|}",
    b"plain",
)


async def lines(command: list[str], tmp: Path) -> list[str]:
    async with running(command, tmp, CONFIG.replace("{fmt}", CAPTURED)) as proxy:
        for value in VALUES:
            raw = b"GET / HTTP/1.1\r\nHost: t\r\nx: " + value + b"\r\nConnection: close\r\n\r\n"
            await send(proxy.port, [raw])

        # The connection that found the port open is logged too (hr= without a capture).
        def requests() -> list[str]:
            return sorted(line for line in proxy.logs.lines if " hr={" in line)

        await eventually(lambda: len(requests()) >= len(VALUES), 10, "the log lines")
        return requests()


def test_a_headers_bytes_are_logged_as_haproxy_logs_them(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(lines)
        assert any("a=café " in line for line in theirs), theirs
        assert ours == theirs

    run(loop_kind, main, timeout=60)
