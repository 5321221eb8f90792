"""The `url_ip` and `url_port` fetches through `poise run` and `haproxy` on the same
configuration: a `return` shows what each gives for absolute URIs of every shape HAProxy
2.6's url2sa tells apart (an IPv4 literal with leading zeros or trailing text, a host name,
an IPv6 literal, ports out of range or cut short by a letter).
HAProxy takes only IPv4 literals; each answer must be the same from both."""

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
    http-request return status 200 content-type text/plain lf-string "[%[url_ip]] [%[url_port]]"
"""
# (URI, Host header): the Host must match the URI's authority, or both answer 400.
URIS = (
    ("http://1.2.3.4/x", "1.2.3.4"),
    ("http://1.2.3.4:81/x", "1.2.3.4:81"),
    ("https://1.2.3.4/", "1.2.3.4"),
    ("HTTP://1.2.3.4:84/", "1.2.3.4:84"),
    ("http://localhost:82/x", "localhost:82"),
    ("http://example.com/", "example.com"),
    ("http://[::1]:83/x", "[::1]:83"),
    ("http://[::1]/x", "[::1]"),
    ("/x", "a"),
    ("http://1.2.3:87/", "1.2.3:87"),
    ("http://1.2.3.4.5/", "1.2.3.4.5"),
    ("http://1.2.3.256/", "1.2.3.256"),
    ("http://1..2.3/", "1..2.3"),
    ("http://0x1.2.3.4/", "0x1.2.3.4"),
    ("http://001.002.003.0004:1/", "001.002.003.0004:1"),
    ("http://1.2.3.4x/", "1.2.3.4x"),
    ("http://1.2.3.4x:5/", "1.2.3.4x:5"),
    ("http://1.2.3.4:0/", "1.2.3.4:0"),
    ("http://1.2.3.4:08/", "1.2.3.4:08"),
    ("http://1.2.3.4:65535/", "1.2.3.4:65535"),
    ("http://1.2.3.4:65536/", "1.2.3.4:65536"),
    ("http://1.2.3.4:99999/", "1.2.3.4:99999"),
)


async def answers(command: list[str], tmp: Path) -> list[str]:
    seen = []
    async with running(command, tmp, CONFIG) as proxy:
        for uri, host in URIS:
            raw = f"GET {uri} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            got = await send(proxy.port, [raw.encode()])
            head, _, body = got.partition(b"\r\n\r\n")
            seen.append(f"{uri}: {head.split(b' ', 2)[1]!r} {body!r}")
    return seen


def test_url_ip_and_url_port_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert ours[1] == "http://1.2.3.4:81/x: b'200' b'[1.2.3.4] [81]'"
        assert ours == theirs

    run(loop_kind, main, timeout=60)
