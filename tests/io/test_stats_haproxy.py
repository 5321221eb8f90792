"""The stats outputs side by side with HAProxy 2.6 on the same configuration: `show servers
state` line by line (ssl, no-ssl, checks, forced ids...), the stats page's `scope=`
(which proxies a `;csv` export lists), and the Prometheus exporter's answer to odd query
strings (`scope=%00` and friends: the status and which metric families come back).
Both run as processes, as a user runs them; only the ports and socket paths differ.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port
from tests.unit.test_prometheus import HAPROXY_QUERIES

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
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    default_backend be1
backend be1
    server plain 127.0.0.1:{closed}
    server tls 127.0.0.1:{closed} ssl verify none
    server notls 127.0.0.1:{closed} no-ssl
    server both 127.0.0.1:{closed} ssl verify none no-ssl
    server chk 127.0.0.1:{closed} check inter 1h
    server chkssl 127.0.0.1:{closed} ssl verify none check inter 1h
    server chkport 127.0.0.1:{closed} check inter 1h port 9000 addr 127.0.0.9
    server off 127.0.0.1:{closed} disabled
    server bk 127.0.0.1:{closed} backup weight 7
    server noport 127.0.0.1
    server rr 127.0.0.1:{closed} check inter 1h rise 5 fall 4
    server checkssl 127.0.0.1:{closed} check-ssl verify none check inter 1h
backend be2
    default-server ssl verify none
    server d1 127.0.0.1:{closed}
    server d2 127.0.0.1:{closed} no-ssl
    server d3 127.0.0.1:{closed} id 42
backend be10
    id 77
    server e1 127.0.0.1:{closed} weight 0
backend BEX_long_name_abcdefghijklmnop
    server v1 127.0.0.1:{closed}
listen stats2
    bind 127.0.0.1:{scoped}
    stats enable
    stats uri /
    stats scope be1
    stats scope be2
"""
PAGE_URIS = [
    "/stats;csv;scope=be1", "/stats;csv;scope=BE1", "/stats;csv;scope=be", "/stats;csv;scope=e1",
    "/stats;csv?scope=be1", "/stats?scope=be1;csv", "/stats;csv&scope=be2", "/stats;csv;scope=",
    "/stats;csv;scope=be1;up", "/stats;csv;scope=bex_long_name_abcdefghijklmnop",
    "/stats;csv;scope=BEX_long_name_abcdefghXXX", "/stats;csv;scope=be%31",
    "/stats;csv;scope=b<e", "/stats;csv;scope=fe", "/stats;csv;xscope=be2",
    "/stats;csv;scope=be1;scope=be2", "/stats;csv;scope=stats", "/stats;csv;scope=b",
    "/stats;csv;scope=2", "/stats;csv;scope=e2;", "/statsscope=be2;csv",
    "/stats;csv;scope=be2%", "/stats;csv;scope=be.2", "/stats;csv;scope=abcdefghijklmnopqrstuvwxyz",
    "/stats;json;scope=be2", "/stats;typed;scope=e2",
]  # fmt: skip
SCOPED_URIS = ["/;csv", "/;csv;scope=be", "/;csv;scope=be2", "/;csv;scope=fe", "/;csv;scope=e1"]


@dataclass
class Balancer:
    proc: subprocess.Popen[bytes]
    sock: Path
    web: int
    scoped: int

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(self.sock))
            conn.sendall(command.encode() + b"\n")
            out = b""
            while data := conn.recv(65536):
                out += data
        return out.decode()

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.web, timeout=5)
        try:
            conn.request("GET", path)  # sent as written, odd bytes included
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()


def start(command: list[str], tmp: Path, name: str, closed: int) -> Balancer:
    web, scoped = free_port(), free_port()
    cfg = tmp / f"{name}.cfg"
    cfg.write_text(CONFIG.format(dir=tmp, name=name, web=web, scoped=scoped, closed=closed))
    proc = subprocess.Popen(
        [*command, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return Balancer(proc, tmp / f"{name}.sock", web, scoped)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Balancer, Balancer]]:
    tmp = tmp_path_factory.mktemp("stats-haproxy")
    closed = free_port()  # nothing listens there: the checks fail
    haproxy = start(["haproxy"], tmp, "haproxy", closed)
    poise = start([sys.executable, "-m", "poise.cli", "run"], tmp, "poise", closed)
    try:
        for balancer in (haproxy, poise):
            deadline = time.monotonic() + 15
            while True:
                assert balancer.proc.poll() is None, balancer.proc.stderr
                with contextlib.suppress(OSError):
                    # Ready once serving, and once the failing check has taken `chk` down.
                    state = balancer.cli("show servers state be1")
                    if balancer.get("/stats;csv")[0] == 200 and " chk 127.0.0.1 0 " in state:
                        break
                assert time.monotonic() < deadline, "not ready"
                time.sleep(0.05)
        yield haproxy, poise
    finally:
        for balancer in (haproxy, poise):
            balancer.proc.terminate()
            try:
                balancer.proc.wait(10)
            except subprocess.TimeoutExpired:
                balancer.proc.kill()
                balancer.proc.wait(10)


def servers_state(text: str) -> list[list[str]]:
    """The lines, without srv_time_since_last_change (seconds since each one started)."""
    lines = [line.split(" ") for line in text.splitlines()]
    for fields in lines[2:]:
        if len(fields) > 9:
            fields[9] = "-"
    return lines


def test_show_servers_state_is_haproxys_line_by_line(pair: tuple[Balancer, Balancer]) -> None:
    haproxy, poise = pair
    want = servers_state(haproxy.cli("show servers state"))
    got = servers_state(poise.cli("show servers state"))
    assert len(got) == len(want)
    for ours, theirs in zip(got, want, strict=True):
        assert ours == theirs


def proxies(text: str) -> list[str]:
    """Which proxy and service each row of a csv, json or typed export is about."""
    if text.startswith("["):
        fields = [field for row in json.loads(text) for field in row]
        return sorted({f"{f['proxyId']}:{f['objType']}" for f in fields})
    if text.startswith(("F.", "B.", "S.")):
        return sorted({line.split(":")[0].split(".")[1] for line in text.splitlines() if line})
    return sorted(",".join(line.split(",")[:2]) for line in text.splitlines()[1:] if line)


@pytest.mark.parametrize("uri", PAGE_URIS)
def test_the_pages_scope_selects_the_proxies_haproxy_selects(
    pair: tuple[Balancer, Balancer], uri: str
) -> None:
    haproxy, poise = pair
    want_status, want = haproxy.get(uri)
    got_status, got = poise.get(uri)
    assert (got_status, proxies(got)) == (want_status, proxies(want))


@pytest.mark.parametrize("uri", SCOPED_URIS)
def test_the_pages_scope_within_stats_scope(pair: tuple[Balancer, Balancer], uri: str) -> None:
    haproxy, poise = pair
    want = haproxy.get(uri, haproxy.scoped)
    got = poise.get(uri, poise.scoped)
    assert (got[0], proxies(got[1])) == (want[0], proxies(want[1]))


def families(text: str) -> list[str]:
    return sorted({line.split("_")[1] for line in text.splitlines() if line.startswith("haproxy_")})


@pytest.mark.parametrize("query", [q for q, _ in HAPROXY_QUERIES if "#" not in q])
def test_odd_exporter_queries_are_answered_as_haproxy_does(
    pair: tuple[Balancer, Balancer], query: str
) -> None:
    haproxy, poise = pair
    want_status, want = haproxy.get(f"/metrics?{query}")
    got_status, got = poise.get(f"/metrics?{query}")
    assert (got_status, families(got)) == (want_status, families(want))
