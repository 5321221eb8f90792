"""`force-persist` and `ignore-persist` through `poise run` and `haproxy`, side by side on
the same configuration and the same two real backends: a cookie naming a server in
maintenance is redispatched unless `force-persist` holds (then the server is reached,
cookie status D), `ignore-persist` sends a cookie holder to the balancer and leaves the
response without a cookie (status U), and `use-server` reaches a down server only when
forced. Each answer (status, server, Set-Cookie) and each log line (server, cookie
flags, status) must be the same from both."""

from __future__ import annotations

import subprocess
import sys
import tempfile
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
    log-format "%s %tsc %ST %HU"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    option redispatch
    cookie S insert indirect nocache
    acl forced hdr(x-force) 1
    force-persist if forced
    ignore-persist if {{ path_beg /static }} || {{ hdr(x-ignore) 1 }}
    use-server b if {{ path_beg /to-b }}
    server a 127.0.0.1:{a} cookie a
    server b 127.0.0.1:{b} cookie b disabled
"""
REQUESTS = (
    ("/", ""),  # no cookie: the balancer (only a is up), a cookie inserted
    ("/", "Cookie: S=a\r\n"),  # valid: a, no new cookie
    ("/", "Cookie: S=b\r\n"),  # b in maintenance: redispatched to a, cookie S=a
    ("/", "Cookie: S=b\r\nX-Force: 1\r\n"),  # forced: b itself
    ("/static/x", "Cookie: S=a\r\n"),  # ignored: the balancer, no cookie set
    ("/", "Cookie: S=b\r\nX-Ignore: 1\r\n"),  # ignored: not even marked down
    ("/static/y", ""),  # ignored without a cookie: none inserted either
    ("/cookie", "X-Ignore: 1\r\n"),  # the server's own cookies pass untouched
    ("/to-b", ""),  # use-server to a server in maintenance: passed over
    ("/to-b", "X-Force: 1\r\n"),  # forced: taken
)


async def answers(command: list[str], tmp: Path, a: int, b: int) -> tuple[list[str], list[str]]:
    port = free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(CONFIG.format(port=port, a=a, b=b))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        await accepting(port)
        for path, headers in REQUESTS:
            raw = f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"
            got = await request(port, raw.encode(), until_close=True)
            head, _, body = got.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            kept = sorted(
                line.lower()
                for line in lines[1:]
                if line.lower().startswith(("set-cookie", "x-backend", "cache-control"))
            )
            seen.append(f"{path} {headers!r}: {lines[0]} {kept} {body.split()[0]!r}")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    logs = [line for line in out.splitlines() if line.strip()]
    return seen, logs


def test_force_and_ignore_persist_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        a = await WebApp("a").start()
        b = await WebApp("b").start()
        try:
            (ours, our_logs), (theirs, their_logs) = await both(answers, a.port, b.port)
        finally:
            await a.stop()
            await b.stop()
        assert "x-backend: b" in ours[3] and "set-cookie" not in ours[3]
        assert "x-backend: a" in ours[4] and "set-cookie" not in ours[4]
        assert "set-cookie: app=server-own" in ours[7]
        assert ours == theirs
        assert sorted(our_logs) == sorted(their_logs)  # one may log a line late

    run(loop_kind, main, timeout=60)


def test_a_rule_needs_a_condition_and_a_backend() -> None:
    text = CONFIG.format(port=1, a=2, b=3).replace("force-persist if forced", "force-persist")
    text = text.replace("frontend fe\n", "frontend fe\n    ignore-persist if TRUE\n")
    lines = text.splitlines()
    force = lines.index("    force-persist") + 1
    ignore = lines.index("    ignore-persist if TRUE") + 1
    with tempfile.TemporaryDirectory(prefix="pp", dir="/tmp") as name:
        cfg = Path(name) / "p.cfg"
        cfg.write_text(text)
        checked = subprocess.run(
            [sys.executable, "-m", "poise.cli", "check", "-f", str(cfg)],
            capture_output=True,
            text=True,
            check=False,
        )
    assert checked.returncode == 1
    assert (
        f"{cfg}:{force}: error: 'force-persist': 'force-persist' requires either 'if' or 'unless' "
        "followed by a condition." in checked.stderr
    )
    assert (
        f"{cfg}:{ignore}: warning: 'ignore-persist': ignored because frontend 'fe' has no backend "
        "capability" in checked.stderr
    )
