"""`poise doctor` as a user runs it, against a real poise (a process, started here with one
configuration of several frontends) in front of two real web applications: each check seen
to pass on a set-up that works and to fail on one broken for the seed's reason (WebSockets
blocked, no persistence, a trusted certificate for another name, an untrusted CA, DNS
pointing elsewhere, the balancer in its own pool, a WebSocket cut by `timeout client`).

Only 127.0.0.1. The web applications run on an event loop in a thread of their own, so
that the test can wait for `poise doctor` (a process) with plain subprocess calls.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.dnsserver import DnsServer
from tests.support import free_port
from tests.tlskit import Pki
from tests.webapp import WebApp

POISE = [sys.executable, "-m", "poise.cli"]
NAME = "view.test"
T = TypeVar("T")

pytestmark = pytest.mark.e2e

CONFIG = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

# TLS terminated, cookie persistence, WebSockets pass with timeout tunnel.
frontend good
    bind 127.0.0.1:{good} ssl crt {crt} crt {soon}
    default_backend sticky

# Plain HTTP, roundrobin over two servers and no cookie: not sticky.
frontend plain
    bind 127.0.0.1:{plain}
    default_backend roundrobin

# WebSockets refused by a rule.
frontend blocked
    bind 127.0.0.1:{blocked}
    http-request deny if {{ hdr(upgrade) -i websocket }}
    default_backend sticky

# WebSockets pass, but an idle one is cut by timeout client (no timeout tunnel).
frontend short
    bind 127.0.0.1:{short}
    timeout client 500ms
    default_backend untunneled

backend sticky
    balance roundrobin
    timeout tunnel 1h
    cookie SERVERID insert indirect nocache
    server a 127.0.0.1:{a} cookie a
    server b 127.0.0.1:{b} cookie b

backend roundrobin
    balance roundrobin
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}

backend untunneled
    server a 127.0.0.1:{a}
"""


class Apps:
    """Two web applications (tests/webapp.py: X-Backend header, WebSocket echo) on an
    event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.apps = [self.call(WebApp(name).start()) for name in ("a", "b")]

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(5)

    def stop(self) -> None:
        for app in self.apps:
            self.call(app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class World:
    tmp: Path
    ca_pem: Path
    cfg: Path
    ports: dict[str, int]

    def url(self, frontend: str, name: str = NAME) -> str:
        scheme = "https" if frontend == "good" else "http"
        return f"{scheme}://{name}:{self.ports[frontend]}/"


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "poise exited"
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"poise does not listen on {port}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("doctor")
    pki = Pki(tmp)
    crt = pki.issue("view.pem", dns=[NAME])
    soon = pki.issue("soon.pem", dns=["soon.test"], days=10)
    apps = Apps()
    ports = {name: free_port() for name in ("good", "plain", "blocked", "short")}
    ports |= {"a": apps.apps[0].port, "b": apps.apps[1].port}
    cfg = tmp / "poise.cfg"
    cfg.write_text(CONFIG.format(crt=crt, soon=soon, **ports))
    proc = subprocess.Popen(
        [*POISE, "run", "-db", "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for name in ("good", "plain", "blocked", "short"):
            wait_listening(ports[name], proc)
        yield World(tmp, pki.ca_pem, cfg, ports)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        apps.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def line(self, name: str) -> str:
        """The line of check `name` (its status first)."""
        for line in self.out.splitlines():
            words = line.split()
            if len(words) > 1 and words[1] == name:
                return line
        raise AssertionError(f"no check {name} in:\n{self.out}{self.err}")

    def status(self, name: str) -> str:
        return self.line(name).split()[0]


def doctor(*args: str) -> Result:
    done = subprocess.run(
        [*POISE, "doctor", *args], capture_output=True, text=True, timeout=30, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


def resolve(world: World, frontend: str, name: str = NAME) -> list[str]:
    return ["--resolve", f"{name}:{world.ports[frontend]}:127.0.0.1"]


# --- a set-up that works -------------------------------------------------------------------


def test_a_working_setup_passes_every_check(world: World) -> None:
    result = doctor(
        world.url("good"), *resolve(world, "good"), "--ca", str(world.ca_pem),
        "-f", str(world.cfg), "--websocket", "/socket", "--requests", "6",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    for name in ("dns", "dns.binds", "tcp", "tls.handshake", "tls.chain", "tls.san"):
        assert result.status(name) == "PASS", result.out
    for name in ("tls.expiry", "http", "http.server", "sticky", "spread", "websocket"):
        assert result.status(name) == "PASS", result.out
    assert "view.test -> 127.0.0.1 (--resolve)" in result.line("dns")
    assert "SNI view.test" in result.line("tls.handshake")
    assert "verified by --ca" in result.line("tls.chain")
    assert "GET /: 200 OK" in result.line("http")
    assert result.line("http.server").split()[2] in ("sticky/a", "sticky/b")
    assert "6 requests with the cookie all went to sticky/" in result.line("sticky")
    assert "went to 2 servers" in result.line("spread")
    assert "101 Switching Protocols" in result.line("websocket")
    assert ": poise doctor: hello" in result.line("websocket")
    assert result.status("config.self-server") == "PASS"


def test_json_report_has_every_check(world: World) -> None:
    result = doctor(
        world.url("good"), *resolve(world, "good"), "--ca", str(world.ca_pem),
        "--requests", "3", "--json",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["target"] == world.url("good")
    assert report["ok"] is True
    names = [check["name"] for check in report["checks"]]
    assert names[:4] == ["dns", "tcp", "tls.handshake", "tls.chain"]
    assert {"tls.san", "tls.expiry", "http", "http.server", "sticky", "spread"} <= set(names)
    assert report["counts"]["FAIL"] == 0
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["http.server"]["saw"].startswith("SERVERID=")  # no -f: the cookie itself


def test_the_name_is_resolved_by_a_dns_server(world: World) -> None:
    with DnsServer() as dns:
        dns.set(NAME, ["127.0.0.1"])
        result = doctor(
            world.url("plain"), "--nameserver", dns.address, "-f", str(world.cfg),
            "--requests", "2",
        )  # fmt: skip
        assert dns.count(NAME) >= 1
    assert result.status("dns") == "PASS", result.out
    assert f"(nameserver {dns.address})" in result.line("dns")
    assert result.status("dns.binds") == "PASS", result.out


def test_a_certificate_near_its_end_warns_but_does_not_fail(world: World) -> None:
    result = doctor(
        world.url("good", "soon.test"), *resolve(world, "good", "soon.test"),
        "--ca", str(world.ca_pem), "--requests", "2",
    )  # fmt: skip
    assert result.code == 0, result.out
    assert result.status("tls.san") == "PASS"
    line = result.line("tls.expiry")
    assert line.startswith("WARN") and "in 10 days" in line, result.out


def test_a_usage_error_exits_2(world: World) -> None:
    result = doctor("ftp://view.test/")
    assert result.code == 2 and "http:// and https://" in result.err
    result = doctor(world.url("plain"), "--resolve", "view.test")
    assert result.code == 2 and "NAME:ADDR" in result.err


# --- the seed's failures -------------------------------------------------------------------


def test_websocket_blocked_by_the_balancer_fails(world: World) -> None:
    result = doctor(world.url("blocked"), *resolve(world, "blocked"), "--websocket", "/socket")
    assert result.code == 1, result.out + result.err
    assert result.status("http") == "PASS"  # plain requests still pass
    line = result.line("websocket")
    assert line.startswith("FAIL") and "got 403" in line and "WebSockets are blocked" in line
    assert "http-request deny" in result.out


def test_no_persistence_fails_sticky(world: World) -> None:
    result = doctor(world.url("plain"), *resolve(world, "plain"), "--requests", "4")
    assert result.code == 1, result.out + result.err
    line = result.line("sticky")
    assert line.startswith("FAIL"), result.out
    assert "4 requests with the cookie went to 2 servers" in line
    assert "persistence is not working (seed: sessions must be sticky)" in line
    assert "cookie SERVERID insert" in result.out
    assert result.status("spread") == "PASS"
    assert "x-backend: " in result.line("http.server")


def test_certificate_for_another_name_fails_san(world: World) -> None:
    other = "other.test"
    result = doctor(
        world.url("good", other), *resolve(world, "good", other), "--ca", str(world.ca_pem),
        "--requests", "2",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert result.status("tls.chain") == "PASS"  # trusted, but for another name
    line = result.line("tls.san")
    assert line.startswith("FAIL")
    assert "the certificate covers view.test; you asked for other.test" in line


def test_untrusted_ca_fails_chain(world: World) -> None:
    result = doctor(world.url("good"), *resolve(world, "good"), "--requests", "2")
    assert result.code == 1, result.out + result.err
    line = result.line("tls.chain")
    assert line.startswith("FAIL")
    assert "untrusted: issued by CN=Poise Test CA" in line
    assert "which the system store does not trust" in line
    assert result.status("tls.san") == "PASS"
    assert result.status("http") == "PASS"  # the service still answers, for a client that trusts


def test_dns_pointing_elsewhere_fails(world: World) -> None:
    port = world.ports["plain"]
    result = doctor(world.url("plain"), "--resolve", f"{NAME}:127.0.0.99", "-f", str(world.cfg))
    assert result.code == 1, result.out + result.err
    assert result.status("dns") == "PASS"
    line = result.line("dns.binds")
    assert line.startswith("FAIL")
    assert f"view.test resolves to 127.0.0.99, but poise listens on 127.0.0.1:{port}" in line
    assert "the DNS record points elsewhere" in line
    assert result.status("tcp") == "FAIL"
    assert "connection refused" in result.line("tcp")


def test_a_name_the_dns_server_does_not_know_fails(world: World) -> None:
    with DnsServer() as dns:
        result = doctor(world.url("plain"), "--nameserver", dns.address)
    assert result.code == 1, result.out + result.err
    line = result.line("dns")
    assert line.startswith("FAIL") and "view.test does not resolve" in line and "NXDOMAIN" in line
    assert "tcp" not in [line.split()[1] for line in result.out.splitlines() if line[:1] != " "]


def test_a_vip_that_poise_does_not_bind_fails(world: World) -> None:
    keepalived = world.tmp / "keepalived.conf"
    keepalived.write_text(
        "vrrp_instance VI_1 {\n    state MASTER\n    interface lo\n    virtual_router_id 51\n"
        "    priority 100\n    virtual_ipaddress {\n        127.0.0.99/8\n    }\n}\n"
    )
    result = doctor(
        world.url("plain"), "--resolve", f"{NAME}:127.0.0.99", "-f", str(world.cfg),
        "-k", str(keepalived),
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    line = result.line("dns.binds")
    assert line.startswith("FAIL") and "127.0.0.99 is the VIP of VI_1 but no bind takes it" in line
    assert "bind 127.0.0.99:" in result.out


def test_the_balancer_in_its_own_pool_fails(world: World) -> None:
    port = world.ports["plain"]
    text = world.cfg.read_text().replace(
        "\nbackend roundrobin\n", f"\nbackend roundrobin\n    server me 127.0.0.1:{port}\n"
    )
    cfg = world.tmp / "self.cfg"
    cfg.write_text(text)
    result = doctor(world.url("plain"), *resolve(world, "plain"), "-f", str(cfg), "--requests", "2")
    assert result.code == 1, result.out + result.err
    line = result.line("config.self-server")
    assert line.startswith("FAIL") and f"server roundrobin/me (127.0.0.1:{port})" in line
    assert "requests would loop back into poise" in line


def test_an_idle_websocket_cut_by_timeout_client_fails(world: World) -> None:
    result = doctor(
        world.url("short"), *resolve(world, "short"), "-f", str(world.cfg),
        "--websocket", "/socket", "--idle", "1.5", "--requests", "2",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert result.status("websocket") == "PASS", result.out
    line = result.line("websocket.idle")
    assert line.startswith("FAIL") and "closed after 0." in line and "idle" in line
    assert "timeout client 500ms" in result.out


def test_an_idle_websocket_with_timeout_tunnel_passes(world: World) -> None:
    result = doctor(
        world.url("good"), *resolve(world, "good"), "--ca", str(world.ca_pem),
        "--websocket", "/socket", "--idle", "0.7", "--requests", "2",
    )  # fmt: skip
    assert result.code == 0, result.out
    assert result.status("websocket.idle") == "PASS"
    assert "still open after 0.7 s idle" in result.line("websocket.idle")
