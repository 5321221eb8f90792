"""`http-check disable-on-404` side by side with HAProxy 2.6: a 404 to a running server's
check puts it in NOLB (stats `NOLB`, check `L7OKC` 404, `show servers state` op state 3,
HAProxy's "is stopping" log line), where it gets no new load-balanced request but still
serves its persistent clients; a 2xx brings it back UP; a DOWN server that answers 404
stays DOWN. Also `on-marked-down shutdown-sessions`: a session on a server that goes DOWN
is ended at once (`D-` termination state).

Both run as processes, as a user runs them, in front of the same two real HTTP backends
whose health answer the test changes; only the ports and paths differ.
"""

from __future__ import annotations

import contextlib
import http.server
import re
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
frontend fe
    bind 127.0.0.1:{web}
    default_backend be
frontend tunnel
    mode tcp
    option tcplog
    bind 127.0.0.1:{tcp}
    default_backend raw
backend be
    option httpchk GET /health
    http-check disable-on-404
    http-check expect status 200
    cookie SRV insert indirect nocache
    server s1 127.0.0.1:{app1} check inter 100 rise 2 fall 2 cookie s1
    server s2 127.0.0.1:{app2} check inter 100 rise 2 fall 2 cookie s2
backend raw
    mode tcp
    option httpchk GET /health
    server r1 127.0.0.1:{app3} check inter 100 rise 1 fall 1 on-marked-down shutdown-sessions
"""


class App(http.server.BaseHTTPRequestHandler):
    """A backend: `/health` answers with its server's `health`, the rest 200 with its
    name; `/hold` answers slowly (a session that lasts)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, AppServer)
        status = server.health if self.path == "/health" else 200
        body = f"{server.name}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class AppServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), App)
        self.name = name
        self.health = 200

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a health check that hangs up after the status line is no error here


@dataclass
class Balancer:
    proc: subprocess.Popen[bytes]
    sock: Path
    web: int
    tcp: int
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
        with contextlib.suppress(BlockingIOError):
            while True:
                self.lines.append(self.log.recv(65536).decode("utf-8", "replace").strip())
        return self.lines

    def server(self, backend: str, name: str) -> dict[str, str]:
        rows = self.cli("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if (fields["pxname"], fields["svname"]) == (backend, name):
                return fields
        raise AssertionError(f"no server {backend}/{name}")

    def op_state(self, name: str) -> str:
        for line in self.cli("show servers state be").splitlines()[2:]:
            fields = line.split(" ")
            if fields[3] == name:
                return fields[5]
        raise AssertionError(name)

    def wait(self, name: str, status: str, backend: str = "be") -> None:
        deadline = time.monotonic() + 15
        while True:
            assert self.proc.poll() is None, self.proc.stderr
            with contextlib.suppress(OSError):
                if self.server(backend, name)["status"] == status:
                    return
            assert time.monotonic() < deadline, f"{backend}/{name} never became {status}"
            time.sleep(0.05)

    def get(self, cookie: str = "") -> str:
        """One request on a new connection: the server that answered."""
        with socket.create_connection(("127.0.0.1", self.web), timeout=5) as conn:
            extra = f"Cookie: SRV={cookie}\r\n" if cookie else ""
            conn.sendall(f"GET / HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
            out = b""
            while data := conn.recv(65536):
                out += data
        return out.rsplit(b"\r\n\r\n", 1)[1].decode().strip()


def start(command: list[str], tmp: Path, name: str, apps: list[AppServer]) -> Balancer:
    web, tcp = free_port(), free_port()
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    log.setblocking(False)
    cfg = tmp / f"{name}.cfg"
    ports = {f"app{n + 1}": app.server_address[1] for n, app in enumerate(apps)}
    cfg.write_text(
        CONFIG.format(dir=tmp, name=name, web=web, tcp=tcp, log=log.getsockname()[1], **ports)
    )
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return Balancer(proc, tmp / f"{name}.sock", web, tcp, log, [])


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[AppServer], Balancer, Balancer]]:
    tmp = tmp_path_factory.mktemp("nolb-haproxy")
    apps = [AppServer(name) for name in ("s1", "s2", "r1")]
    for app in apps:
        threading.Thread(target=app.serve_forever, daemon=True).start()
    haproxy = start(["haproxy"], tmp, "haproxy", apps)
    poise = start([sys.executable, "-m", "poise.cli", "run"], tmp, "poise", apps)
    try:
        for balancer in (haproxy, poise):
            balancer.wait("s1", "UP")
            balancer.wait("s2", "UP")
        yield apps, haproxy, poise
    finally:
        for balancer in (haproxy, poise):
            balancer.proc.terminate()
            try:
                balancer.proc.wait(10)
            except subprocess.TimeoutExpired:
                balancer.proc.kill()
                balancer.proc.wait(10)
            balancer.log.close()
        for app in apps:
            app.shutdown()
            app.server_close()


def check_fields(balancer: Balancer, name: str) -> tuple[str, ...]:
    """The server's status and last check, read between two checks (HAProxy writes `* `
    before the status while a check runs, and no code)."""
    deadline = time.monotonic() + 5
    while (fields := balancer.server("be", name))["check_status"].startswith("*"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return (fields["status"], fields["check_status"], fields["check_code"], fields["weight"])


def state_lines(balancer: Balancer, server: str) -> list[str]:
    """The server's state-change log lines, the check duration blanked."""
    lines = [re.sub(r"check duration: \d+ms", "check duration: Nms", line.split(": ", 1)[-1])
             for line in balancer.logs() if f"Server be/{server} is" in line]  # fmt: skip
    return [line[line.index("Server be/") :] for line in lines]


def wait_lines(balancer: Balancer, server: str, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(found := state_lines(balancer, server)) < count:
        assert time.monotonic() < deadline, (server, found)
        time.sleep(0.05)
    return found


def test_a_404_puts_a_running_server_in_nolb_as_haproxy(
    world: tuple[list[AppServer], Balancer, Balancer],
) -> None:
    (s1, _, _), haproxy, poise = world
    s1.health = 404
    try:
        for balancer in (haproxy, poise):
            balancer.wait("s1", "NOLB")
        assert check_fields(haproxy, "s1") == ("NOLB", "L7OKC", "404", "1")
        assert check_fields(poise, "s1") == check_fields(haproxy, "s1")
        assert poise.op_state("s1") == haproxy.op_state("s1") == "3"
        assert poise.server("be", "BACKEND")["act"] == haproxy.server("be", "BACKEND")["act"]
        for balancer in (haproxy, poise):
            # No new load-balanced client; a persistent one is still served.
            assert [balancer.get() for _ in range(4)] == ["s2"] * 4
            assert balancer.get(cookie="s1") == "s1"
        want = wait_lines(haproxy, "s1", 1)
        assert want[-1].startswith(
            "Server be/s1 is stopping, reason: Layer7 check conditionally passed, code: 404"
        )
        assert wait_lines(poise, "s1", 1) == want
    finally:
        s1.health = 200
    for balancer in (haproxy, poise):
        balancer.wait("s1", "UP")
    want = wait_lines(haproxy, "s1", 2)
    assert want[-1].startswith("Server be/s1 is UP, reason: Layer7 check passed, code: 200")
    assert wait_lines(poise, "s1", 2) == want


def test_a_down_server_that_answers_404_stays_down_as_haproxy(
    world: tuple[list[AppServer], Balancer, Balancer],
) -> None:
    (_, s2, _), haproxy, poise = world
    s2.health = 500
    try:
        for balancer in (haproxy, poise):
            balancer.wait("s2", "DOWN")
        s2.health = 404
        for balancer in (haproxy, poise):
            deadline = time.monotonic() + 10
            while check_fields(balancer, "s2")[2] != "404":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(0.5)  # several more checks: it must not come back
        assert check_fields(haproxy, "s2") == ("DOWN", "L7STS", "404", "1")
        assert check_fields(poise, "s2") == check_fields(haproxy, "s2")
    finally:
        s2.health = 200
    for balancer in (haproxy, poise):
        balancer.wait("s2", "UP")


def test_on_marked_down_shutdown_sessions_ends_them_as_haproxy(
    world: tuple[list[AppServer], Balancer, Balancer],
) -> None:
    (_, _, r1), haproxy, poise = world
    for balancer in (haproxy, poise):
        balancer.wait("r1", "UP", "raw")
    tunnels = [socket.create_connection(("127.0.0.1", b.tcp), timeout=5) for b in (haproxy, poise)]
    try:
        for tunnel in tunnels:  # established through to the server
            tunnel.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"r1\n"):
                data = tunnel.recv(65536)
                assert data, answer
                answer += data
        r1.health = 500
        for balancer, tunnel in zip((haproxy, poise), tunnels, strict=True):
            balancer.wait("r1", "DOWN", "raw")
            tunnel.settimeout(5)
            assert tunnel.recv(65536) == b""  # ended by the balancer, not by a timeout
        for balancer in (haproxy, poise):
            deadline = time.monotonic() + 10
            while not (found := [line for line in balancer.logs() if " tunnel raw/r1 " in line]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert " D- " in found[0], found  # HAProxy's: shut down, in no particular phase
    finally:
        r1.health = 200
        for tunnel in tunnels:
            tunnel.close()
