"""`http-request normalize-uri` against HAProxy 2.6: every normalizer (with and without
its option) on the same request targets, run by `poise run` and by `haproxy` on one
configuration, and the target the server receives (or the 400 of `strict`) must be the
same. Each normalizer sits alone in a backend of its own, chosen by a header.

(In HAProxy 2.6.12 `normalize-uri path-strip-dotdot|percent-decode-unreserved|
percent-to-uppercase` followed by `if COND` without the option does not do what the
documentation says; as an unconditional rule it does, and poise follows the documentation
in both cases.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import run
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
NORMALIZERS = [
    "path-merge-slashes",
    "path-strip-dot",
    "path-strip-dotdot",
    "path-strip-dotdot full",
    "percent-decode-unreserved",
    "percent-decode-unreserved strict",
    "percent-to-uppercase",
    "percent-to-uppercase strict",
    "query-sort-by-name",
]
TARGETS = [
    "//a///b//",
    "/a//b?x=//y",
    "/./a/./b/.",
    "/a/.",
    "/.",
    "/a/./",
    "/.a/b.",
    "/a/../b",
    "/a/b/..",
    "/a/b/../",
    "/../a",
    "/a/../../b",
    "/a/..b/../c",
    "/..",
    "/a/./../b",
    "/%41%62%2e%7E%2F%2f?q=%41%zz",
    "/%4",
    "/a%2",
    "/%zz",
    "/%4a%aa?%2f=%2a",
    "/a/%2E%2E/b",
    "/p?b=2&a=1&c&a=0",
    "/p?z&y=1&&x",
    "/p?a=2&a=1&b",
    "/p?",
    "/p",
    "http://h/a/../b//c?x=%41&b&a",
    "http://h",
]


def config() -> str:
    lines = [
        "global",
        "    expose-experimental-directives",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 5s",
        "    timeout server 5s",
        "frontend fe",
        "    bind 127.0.0.1:{port}",
    ]
    lines += [f"    use_backend n{i} if {{ req.hdr(x-n) {i} }}" for i in range(len(NORMALIZERS))]
    lines.append("    default_backend n0")
    for i, normalizer in enumerate(NORMALIZERS):
        lines += [
            f"backend n{i}",
            f"    http-request normalize-uri {normalizer}",
            "    server s 127.0.0.1:{app}",
        ]
    return "\n".join(lines) + "\n"


async def exchange(command: list[str], tmp: Path, app: WebApp) -> list[str]:
    seen: list[str] = []
    async with running(command, tmp, config().replace("{app}", str(app.port))) as proxy:
        for index, normalizer in enumerate(NORMALIZERS):
            for target in TARGETS:
                app.seen.clear()
                raw = f"GET {target} HTTP/1.1\r\nHost: h\r\nX-N: {index}\r\nConnection: close\r\n"
                answer = await send(proxy.port, [raw.encode() + b"\r\n"])
                got = app.seen[0].target if app.seen else answer[9:12].decode()
                seen.append(f"{normalizer}: {target} -> {got}")
    return seen


def test_the_same_targets_reach_the_server(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("app").start()
        try:
            ours, theirs = await both(exchange, app)
        finally:
            await app.stop()
        different = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
        assert different == []
        assert "path-strip-dotdot full: /../a -> /a" in ours
        assert "percent-to-uppercase strict: /%zz -> 400" in ours

    run(loop_kind, main, timeout=120)
