"""`monitor-uri` and `monitor fail` side by side with HAProxy 2.6 on the same
configuration: the bytes of each answer (200, 503 when the backend has no server left,
an `errorfile` for them, HEAD, HTTP/1.0, an absolute-form target, pipelined requests on
one connection), that a monitor request is neither forwarded nor logged (while the
others are), and the frontend's counters (`intercepted`, `req_tot`, `hrsp_*`); and a
frontend with no backend at all, which HAProxy takes (every request gets its 503).

Both run as processes, as a user runs them, in front of one real HTTP backend whose
health answer the test turns from 200 to 500; only the ports and paths differ.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing")

CONFIG = """\
global
    stats socket {dir}/{name}.sock level admin
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    monitor-uri /from-defaults
frontend fe
    bind 127.0.0.1:{web}
    monitor-uri /alive
    acl site_dead nbsrv(be) lt 1
    monitor fail if site_dead
    monitor fail unless {{ always_true }}
    http-request deny if {{ path /alive }}
    default_backend be
frontend fe2
    bind 127.0.0.1:{web2}
    errorfile 200 {dir}/200.http
    default_backend be
frontend nobackend
    bind 127.0.0.1:{web3}
    monitor-uri /nothing-here
backend be
    option httpchk GET /health
    server app 127.0.0.1:{app} check inter 100 rise 1 fall 1
"""
ERRORFILE_200 = b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n"
# Raw requests whose answers must be HAProxy's byte for byte.
MONITOR_REQUESTS = [
    b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\nGET /alive HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /alive HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /alive HTTP/1.0\r\n\r\n",
    b"GET /alive HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET http://x/alive HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS /alive HTTP/1.1\r\nHost: x\r\nX-Anything: 1\r\n\r\n",
]


class App(http.server.BaseHTTPRequestHandler):
    """The backend: `/health` answers with the server's health status, the rest 200."""

    protocol_version = "HTTP/1.1"
    health = 200
    seen: list[str] = []

    def do_GET(self) -> None:
        status = App.health if self.path == "/health" else 200
        if self.path != "/health":
            App.seen.append(self.path)
        body = b"app\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a health check that hangs up after the status line is no error here


@dataclass
class Balancer:
    proc: subprocess.Popen[bytes]
    sock: Path
    web: int
    web2: int
    web3: int
    log: socket.socket
    lines: list[str]

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(self.sock))
            conn.sendall(command.encode() + b"\n")
            out = b""
            while data := conn.recv(65536):
                out += data
        return out.decode()

    def logs(self) -> list[str]:
        """The log lines received so far."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.lines.append(self.log.recv(65536).decode("utf-8", "replace"))
        return self.lines

    def frontend(self, name: str) -> dict[str, str]:
        rows = self.cli("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields["pxname"] == name and fields["svname"] == "FRONTEND":
                return fields
        raise AssertionError(f"no frontend {name}")

    def server_status(self) -> str:
        for row in self.cli("show stat").splitlines():
            if row.startswith("be,app,"):
                return row.split(",")[17]
        return ""


def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw` on a new connection; everything received until the balancer closes, or
    until nothing more comes for a moment (`<open>` is then added)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        out = b""
        conn.settimeout(0.5)
        try:
            while data := conn.recv(65536):
                out += data
        except TimeoutError:
            return out + b"<open>"
        return out + b"<closed>"


def start(command: list[str], tmp: Path, name: str, app: int) -> Balancer:
    web, web2, web3 = free_port(), free_port(), free_port()
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    log.setblocking(False)
    cfg = tmp / f"{name}.cfg"
    port = log.getsockname()[1]
    text = CONFIG.format(dir=tmp, name=name, web=web, web2=web2, web3=web3, app=app, log=port)
    cfg.write_text(text)
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return Balancer(proc, tmp / f"{name}.sock", web, web2, web3, log, [])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Balancer, Balancer]]:
    tmp = tmp_path_factory.mktemp("monitor-haproxy")
    (tmp / "200.http").write_bytes(ERRORFILE_200)
    server = QuietServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    App.health = 200
    app = server.server_address[1]
    haproxy = start(["haproxy"], tmp, "haproxy", app)
    poise = start([sys.executable, "-m", "poise.cli", "run"], tmp, "poise", app)
    try:
        for balancer in (haproxy, poise):
            wait_status(balancer, "UP")
        yield haproxy, poise
    finally:
        for balancer in (haproxy, poise):
            balancer.proc.terminate()
            try:
                balancer.proc.wait(10)
            except subprocess.TimeoutExpired:
                balancer.proc.kill()
                balancer.proc.wait(10)
            balancer.log.close()
        server.shutdown()
        server.server_close()


def wait_status(balancer: Balancer, status: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert balancer.proc.poll() is None, balancer.proc.stderr
        with contextlib.suppress(OSError):
            if balancer.server_status() == status:
                return
        assert time.monotonic() < deadline, f"the server never became {status}"
        time.sleep(0.05)


@pytest.mark.parametrize("raw", MONITOR_REQUESTS)
def test_monitor_answers_as_haproxy_when_the_site_is_up(
    pair: tuple[Balancer, Balancer], raw: bytes
) -> None:
    haproxy, poise = pair
    want = exchange(haproxy.web, raw)
    assert want.startswith(b"HTTP/1.1 200 OK\r\n")
    assert exchange(poise.web, raw) == want


def test_monitor_uri_from_defaults_and_errorfile_200(pair: tuple[Balancer, Balancer]) -> None:
    haproxy, poise = pair
    raw = b"GET /from-defaults HTTP/1.1\r\nHost: x\r\n\r\n"
    want = exchange(haproxy.web2, raw)
    assert want == ERRORFILE_200.replace(b"\r\n\r\n", b"\r\nconnection: keep-alive\r\n\r\n", 1) + (
        b"<open>"
    )
    assert exchange(poise.web2, raw) == want
    # fe has its own monitor URI: the defaults' one is forwarded there.
    forwarded = exchange(poise.web, raw)
    assert forwarded.startswith(b"HTTP/1.1 200 OK\r\n") and forwarded.endswith(b"app\n<open>")


def test_monitor_requests_are_not_forwarded_nor_logged(pair: tuple[Balancer, Balancer]) -> None:
    haproxy, poise = pair
    for balancer in (haproxy, poise):
        before = frontend_counts(balancer)
        seen = len(App.seen)
        # Answered before the `http-request deny if { path /alive }` rule is looked at.
        exchange(balancer.web, b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
        # A query string makes it another URI: the rule denies it (and it is logged).
        exchange(balancer.web, b"GET /alive?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        exchange(balancer.web, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while not any("/other" in line for line in balancer.logs()):
            assert time.monotonic() < deadline, "the forwarded request was not logged"
            time.sleep(0.02)
        assert [line for line in balancer.logs() if " 403 " in line and "/alive?x=1" in line]
        assert not [line for line in balancer.logs() if "/alive " in line]
        assert App.seen[seen:] == ["/other"]
        after = frontend_counts(balancer)
        assert after["intercepted"] - before["intercepted"] == 1
        assert after["req_tot"] - before["req_tot"] == 3
        assert after["hrsp_2xx"] - before["hrsp_2xx"] == 2
        assert after["hrsp_4xx"] - before["hrsp_4xx"] == 1


def test_a_frontend_without_backend_answers_503_as_haproxy(
    pair: tuple[Balancer, Balancer],
) -> None:
    haproxy, poise = pair
    raw = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    want = exchange(haproxy.web3, raw)
    assert want.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert exchange(poise.web3, raw) == want
    for balancer in (haproxy, poise):
        deadline = time.monotonic() + 10
        while not (found := [line for line in balancer.logs() if " nobackend " in line]):
            assert time.monotonic() < deadline, "the refused request was not logged"
            time.sleep(0.02)
        assert "nobackend nobackend/<NOSRV> " in found[0] and " 503 " in found[0]
        assert " SC-- " in found[0] and '"GET /x HTTP/1.1"' in found[0]


def frontend_counts(balancer: Balancer) -> dict[str, int]:
    fields = balancer.frontend("fe")
    return {
        name: int(fields[name] or 0) for name in ("intercepted", "req_tot", "hrsp_2xx", "hrsp_4xx")
    }


def test_monitor_fail_answers_503_as_haproxy_when_the_site_is_down(
    pair: tuple[Balancer, Balancer],
) -> None:
    haproxy, poise = pair
    App.health = 500
    try:
        for balancer in (haproxy, poise):
            wait_status(balancer, "DOWN")
        for raw in MONITOR_REQUESTS:
            want = exchange(haproxy.web, raw)
            assert want.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert exchange(poise.web, raw) == want
    finally:
        App.health = 200
        for balancer in (haproxy, poise):
            wait_status(balancer, "UP")
