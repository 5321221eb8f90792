"""The `http_auth_bearer([HEADER])` fetch through `poise run` and `haproxy` on the same
configuration: a `return` shows what the fetch gives (or `-` when it gives nothing) for
Authorization headers of every shape HAProxy 2.6 tells apart (Bearer in any case, the
scheme read as a prefix, several spaces, no token, Basic, several values) and for a
named header. Each answer must be the same from both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-var(txn.b) http_auth_bearer
    http-request set-var(txn.h) http_auth_bearer(X-Token)
    http-request return status 200 content-type text/plain lf-string "{shown}"
"""
SHOWN = "%[var(txn.b)]|%[var(txn.h)]|%[http_auth_bearer,length]"
HEADERS = (
    "",
    "Authorization: Bearer abc.def.ghi\r\n",
    "Authorization: bearer   spaced\r\n",
    "Authorization: Bea prefix\r\n",
    "Authorization: BearerX nope\r\n",
    "Authorization: B YWxpY2U6cHc=\r\n",
    "Authorization: Basic YWxpY2U6cHc=\r\n",
    "Authorization: Bearer \r\n",
    "Authorization: Bearer one, Bearer two\r\n",
    "Authorization:Bearer\r\n",
    "X-Token: Bearer tok\r\n",
    "X-Token: Basic tok\r\n",
    "X-Token: BEARER   t2\r\nX-Token: Bearer t3\r\n",
)


async def answers(command: list[str], tmp: Path) -> list[str]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, shown=SHOWN))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(port)
        for headers in HEADERS:
            raw = f"GET / HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"
            got = await request(port, raw.encode(), until_close=True)
            body = got.partition(b"\r\n\r\n")[2]
            seen.append(f"{headers!r}: {body!r}")
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_http_auth_bearer_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert ours[1].endswith("b'abc.def.ghi||11'")
        assert ours == theirs

    run(loop_kind, main, timeout=60)
