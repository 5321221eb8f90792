"""A sample's control characters in an HTTP action's log-format string, through `poise
run` and `haproxy` on the same configuration: HAProxy 2.6 writes each (but HTAB) and DEL
as `%XX` in a header set by `set-header`, `replace-header`, `return ... hdr`, a variable of
`set-var-fmt` and a redirect's location, so that a decoded `%0D%0A` cannot end the header
line and add one; and the bytes of an `lf-string` body. Each answer must be the same from both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import run

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-var-fmt(txn.v) "%[url_param(p),url_dec]"
    http-request redirect location "/r%[url_param(p),url_dec]" if { path /r }
    http-request set-header h1 "%[url_param(p),url_dec]"
    http-request replace-header h1 (.*) "\\1<%[url_param(p),url_dec]" if { path /rh }
    http-request return status 200 content-type text/x lf-string "é=%[var(txn.v)]" if { path /b }
    http-request return status 200 hdr v "%[var(txn.v)]" hdr h1 "%[req.hdr(h1)]"
"""
PARAMS = (b"a%01b%0D%0AX-Injected:%201%7F%09t%22q", b"plain%20x", b"caf%E9%20caf%C3%A9")


async def answers(command: list[str], tmp: Path) -> list[bytes]:
    seen = []
    async with running(command, tmp, CONFIG) as proxy:
        for path in (b"/", b"/r", b"/rh", b"/b"):
            for param in PARAMS:
                raw = b"GET %s?p=%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                seen.append(await send(proxy.port, [raw % (path, param)]))
    return seen


def test_control_characters_are_percent_encoded_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert b'\r\nv: a%01b%0D%0AX-Injected: 1%7F\tt"q\r\n' in ours[0], ours[0]
        assert all(b"\r\nX-Injected" not in answer for answer in ours)
        # A `return` body: the configuration's text as UTF-8, a sample's bytes as they came.
        assert ours[-1].endswith("é=caf".encode() + b"\xe9 caf\xc3\xa9"), ours[-1]
        assert ours == theirs

    run(loop_kind, main, timeout=60)
