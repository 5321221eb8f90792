"""`slowstart` side by side with HAProxy 2.6 on the same configuration: a server leaving
maintenance starts at a sixteenth of its weight (`show stat` weight and throttle, the
backend's weight, `show servers state`'s srv_op_state 1, "starting") and gets that share of
the requests. A slowstart of 1000 s keeps the first step for a minute: the numbers are
exact whenever the test reads them.

Both run as processes, as a user runs them, in front of the same two real HTTP servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from poise.core import slowstart
from tests.io.harness import Stage
from tests.io.test_stats_haproxy import Balancer
from tests.support import eventually, free_port, run

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing")

CONFIG = """\
global
    stats socket {dir}/{name}.sock level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{web}
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} weight 16 slowstart 1000s
    server b 127.0.0.1:{b} weight 16
"""


class Named(http.server.BaseHTTPRequestHandler):
    """Answers every request with its server's name."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def app(name: str) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Named)
    server.name = name  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running(command: list[str], tmp: Path, name: str, a: int, b: int) -> Iterator[Balancer]:
    web = free_port()
    cfg = tmp / f"{name}.cfg"
    cfg.write_text(CONFIG.format(dir=tmp, name=name, web=web, a=a, b=b))
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    balancer = Balancer(proc, tmp / f"{name}.sock", web, 0)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr
            with contextlib.suppress(OSError):
                if " a 127.0.0.1 2 " in balancer.cli("show servers state be"):
                    break
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.05)
        yield balancer
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def observe(balancer: Balancer) -> tuple[dict[str, tuple[str, str]], dict[str, str], Counter[str]]:
    """After server a leaves maintenance: the stats' weight and throttle of a, b and the
    backend, each server's srv_op_state, and which server answered 34 requests."""
    assert balancer.cli("set server be/a state maint") == "\n"
    assert balancer.cli("set server be/a state ready") == "\n"
    lines = [line.split(",") for line in balancer.cli("show stat").splitlines()]
    header = lines[0]
    weight, throttle = header.index("weight"), header.index("throttle")
    stats = {row[1]: (row[weight], row[throttle]) for row in lines[1:] if row[0] == "be"}
    state = {
        fields[3]: fields[5]
        for line in balancer.cli("show servers state be").splitlines()[2:]
        if len(fields := line.split()) > 5
    }
    answers: Counter[str] = Counter()
    for _ in range(34):
        with urllib.request.urlopen(f"http://127.0.0.1:{balancer.web}/", timeout=5) as response:
            answers[response.read().decode()] += 1
    return stats, state, answers


def test_a_server_leaving_maintenance_ramps_up_as_haproxy(tmp_path: Path) -> None:
    with app("a") as a, app("b") as b:
        with running(["haproxy"], tmp_path, "haproxy", a, b) as haproxy:
            theirs = observe(haproxy)
        poise = [sys.executable, "-m", "poise.cli", "run"]
        with running(poise, tmp_path, "poise", a, b) as ours_running:
            ours = observe(ours_running)
    # a at 16 x 1/16 = 1 (throttle 6 %), b at 16, the backend at ceil((16 + 256) / 16).
    expected = {"a": ("1", "6"), "b": ("16", ""), "BACKEND": ("17", "")}
    assert (ours[0], theirs[0]) == (expected, expected)
    assert ours[1] == theirs[1] == {"a": "1", "b": "2"}  # starting, running
    # a gets about one request in 17 (HAProxy's tree and poise's smooth round robin
    # place it differently in the cycle).
    for answers in (ours[2], theirs[2]):
        assert 1 <= answers["a"] <= 2 and answers["a"] + answers["b"] == 34, answers


def test_the_ramp_runs_to_full_weight_on_its_own(loop_kind: str) -> None:
    """The one-second tick (process/runtime.py) steps the ramp until it ends."""

    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("a")
            poise = await stage.poise(
                "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
                "    timeout server 5s\nfrontend fe\n    bind 127.0.0.1:0\n"
                f"    default_backend be\nbackend be\n    server a 127.0.0.1:{web.port} "
                "weight 32 slowstart 2s\n"
            )
            backend = poise.ctx.backends["be"]
            [server] = backend.servers
            slowstart.begin(server, asyncio.get_running_loop().time())
            assert server.ramp == 1
            await eventually(lambda: server.ramp == 9, 3, "half way: (16 + 2) // 2")
            await eventually(lambda: server.warm_since is None, 3, "the end of the ramp")
            assert server.ramp == slowstart.WEIGHT_SCALE

    run(loop_kind, main)
