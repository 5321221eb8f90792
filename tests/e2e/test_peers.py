"""The peers protocol against HAProxy 2.6 (issue 18): poise and /usr/sbin/haproxy in one
`peers` section on two loopback ports. A client stuck to a server on one balancer lands on
the same server through the other (the failover story: the VIP moves, the table came
along); the counters and rates tracked on one appear in the other's `show table`; a
restarted poise gets the whole table back from HAProxy. Each node balances differently
(`first` on one, `roundrobin` on the other), so without the peers the clients would move.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_stick_tables import cli
from tests.support import Backend, accepting, eventually, free_port, run

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {dir}/{me}.sock level admin
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s
peers p
    peer hap 127.0.0.1:{hap_peer}
    peer poi 127.0.0.1:{poi_peer}
listen tcpstick
    mode tcp
    bind 127.0.0.1:{tcp}
    balance {balance}
    stick-table type ip size 100 expire 60s peers p store conn_cnt,gpc0
    stick on src
    server s1 127.0.0.1:{s1}
    server s2 127.0.0.1:{s2}
    server s3 127.0.0.1:{s3}
frontend web
    mode http
    bind 127.0.0.1:{web}
    http-request track-sc0 src table rates
    http-request return status 200
backend rates
    mode http
    stick-table type ip size 100 expire 60s peers p store http_req_cnt,http_req_rate(10s)
"""
POISE = [sys.executable, "-m", "poise.cli", "run", "-db"]
MASK = re.compile(r"^0x[0-9a-f]+: |exp=\d+ ", re.M)


class Node:
    """One balancer of the pair: its ports and its process."""

    def __init__(self, me: str, balance: str, folder: Path, ports: dict[str, int]) -> None:
        self.me = me
        self.tcp, self.web = free_port(), free_port()
        self.sock = folder / f"{me}.sock"
        self.cfg = folder / f"{me}.cfg"
        values = {"dir": folder, "me": me, "balance": balance, "tcp": self.tcp, "web": self.web}
        self.cfg.write_text(CONFIG.format(**values, **ports))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.me == "hap":
            command = ["haproxy", "-db", "-L", "hap", "-f", str(self.cfg)]
        else:
            command = [*POISE, "-L", "poi", "-f", str(self.cfg)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            assert self.proc.stderr is not None
            errors = self.proc.stderr.read().decode()
            self.proc.stderr.close()
            self.proc = None
            assert "Traceback" not in errors, errors

    def table(self, name: str) -> list[str]:
        return shown(cli(self.sock, f"show table {name}"))


def shown(text: str) -> list[str]:
    """`show table NAME` without the entries' addresses and expiry dates."""
    return sorted(MASK.sub("", line) for line in text.splitlines()[1:] if line)


@contextmanager
def pair(folder: Path, ports: dict[str, int]) -> Iterator[tuple[Node, Node]]:
    hap = Node("hap", "first", folder, ports)
    poi = Node("poi", "roundrobin", folder, ports)
    try:
        yield hap, poi
    finally:
        poi.stop()
        hap.stop()


async def name_from(source: str, port: int) -> str:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


async def http_from(source: str, port: int) -> None:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()


def test_tables_go_both_ways_and_clients_keep_their_server(tmp_path: Path) -> None:
    async def main() -> None:
        backends = [await Backend(f"s{n}").start() for n in (1, 2, 3)]
        ports = {"hap_peer": free_port(), "poi_peer": free_port()}
        ports.update({f"s{n}": b.port for n, b in enumerate(backends, 1)})
        with pair(tmp_path, ports) as (hap, poi):
            hap.start()
            poi.start()
            for node in (hap, poi):
                await accepting(node.tcp)
                await accepting(node.web)
                await eventually(lambda n=node: answers(n.sock), 30, "serving")  # type: ignore[misc]
            # poise balances round robin: its clients spread; then through HAProxy
            # (`balance first`: all to s1 on its own) each keeps its server.
            ours = {c: await name_from(c, poi.tcp) for c in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
            assert len(set(ours.values())) > 1, ours
            await eventually(lambda: len(hap.table("tcpstick")) >= 3, 10, "HAProxy learns")
            for client, server in ours.items():
                assert await name_from(client, hap.tcp) == server
            # HAProxy's clients (all on s1) keep s1 through poise.
            theirs = {c: await name_from(c, hap.tcp) for c in ("127.0.0.6", "127.0.0.7")}
            assert set(theirs.values()) == {"s1"}
            await eventually(lambda: len(poi.table("tcpstick")) >= 6, 10, "poise learns")
            for client in theirs:
                assert await name_from(client, poi.tcp) == "s1"
            # Counters and rates: requests on each side, the same table on both.
            for _ in range(3):
                await http_from("127.0.0.8", hap.web)
            await http_from("127.0.0.9", poi.web)
            await eventually(
                lambda: hap.table("rates") == poi.table("rates") and len(poi.table("rates")) == 2,
                10,
                "the same rates table",
            )
            assert "key=127.0.0.8 use=0 http_req_cnt=3 http_req_rate(10000)=3" in poi.table("rates")
            assert hap.table("tcpstick") == poi.table("tcpstick")
            # `show peers` and `show info` say what HAProxy's say of the session.
            for node, other in ((poi, "hap"), (hap, "poi")):
                peers = cli(node.sock, "show peers")
                assert f"id={other}(remote,active)" in peers and "last_status=ESTA" in peers
                assert "ConnectedPeers: 1\n" in cli(node.sock, "show info")
            # A restarted poise asks for the whole table and gets it from HAProxy.
            before = hap.table("tcpstick")
            poi.stop()
            poi.start()
            await accepting(poi.tcp)
            await eventually(lambda: answers(poi.sock), 30, "serving")
            await eventually(lambda: poi.table("tcpstick") == before, 10, "the resync")
        for backend in backends:
            await backend.stop()

    run("uvloop", main, timeout=90)


POISE_ALONE = """\
global
    stats socket {dir}/poi.sock level admin
peers p
    peer hap 127.0.0.1:{hap_peer}
    peer poi 127.0.0.1:{poi_peer}
backend rates
    stick-table type ip size 100 expire 60s peers p store http_req_cnt
"""


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data` as a peer would and read until poise closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


HELLO = b"HAProxyS 2.1\npoi\nhap 1 1\n"


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", b"501\n"),  # not the peers protocol
        (b"HAProxyS 3.0\npoi\nhap 1 1\n", b"502\n"),  # another version
        (b"HAProxyS 2.1\nsomeone\nhap 1 1\n", b"503\n"),  # not the peer it calls
        (b"HAProxyS 2.1\npoi\nstranger 1 1\n", b"504\n"),  # not a peer of the section
        (b"HAProxyS 2.1\npoi\nhap\n", b"501\n"),  # no pid
        # After the handshake: a message longer than HAProxy's buffer, a reserved class,
        # a truncated definition: HAProxy's error messages, then the end.
        (HELLO + b"\x0a\x80\xff\xff\xff\x0f", b"200\n" + b"\x01\x01"),
        (HELLO + b"\xff\x00", b"200\n" + b"\x01\x00"),
        (HELLO + b"\x0a\x82\x03\x00\xf5\x01", b"200\n" + b"\x01\x00"),
    ],
)
def test_bad_peers_are_answered_and_dropped(tmp_path: Path, sent: bytes, answer: bytes) -> None:
    async def main() -> None:
        ports = {"hap_peer": free_port(), "poi_peer": free_port()}
        cfg = tmp_path / "poi.cfg"
        cfg.write_text(POISE_ALONE.format(dir=tmp_path, **ports))
        command = [*POISE, "-L", "poi", "-f", str(cfg)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            await accepting(ports["poi_peer"])
            got = await exchange(ports["poi_peer"], sent)
            # The resync request poise sends once the session is up may come first.
            assert got.replace(b"\x00\x00", b"") == answer
            # It goes on: a good peer is still welcome, and the table is there.
            assert (await exchange(ports["poi_peer"], HELLO + b"\xff\x00")).startswith(b"200\n")
            assert cli(tmp_path / "poi.sock", "show table rates").startswith("# table: rates")
        finally:
            proc.terminate()
            proc.wait(10)
            assert proc.stderr is not None
            errors = proc.stderr.read().decode()
            proc.stderr.close()
        assert "Traceback" not in errors, errors

    run("uvloop", main, timeout=60)


SOLO = """\
global
    stats socket {dir}/solo.sock level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
peers p
    peer poi 127.0.0.1:{peer}
backend st
    stick-table type ip size 100 expire 60s peers p store http_req_cnt,gpc0
frontend web
    bind 127.0.0.1:{web}
    http-request track-sc0 src table st
    http-request sc-inc-gpc0(0)
    http-request return status 200
"""


def answers(sock: Path) -> bool:
    try:
        return cli(sock, "show info").startswith("Name:")
    except OSError:
        return False


def test_a_reload_keeps_the_table(tmp_path: Path) -> None:
    """The new worker calls its own peer address before it listens there, as HAProxy's
    new process calls the old one: the old worker teaches it every entry."""

    async def main() -> None:
        web = free_port()
        cfg = tmp_path / "solo.cfg"
        cfg.write_text(SOLO.format(dir=tmp_path, peer=free_port(), web=web))
        pidfile = tmp_path / "solo.pid"
        command = [*POISE, "-W", "-L", "poi", "-f", str(cfg), "-p", str(pidfile)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sock = tmp_path / "solo.sock"
        try:
            await accepting(web)
            await eventually(lambda: answers(sock), 30, "the worker serving")
            for client in ("127.0.0.2", "127.0.0.3", "127.0.0.3"):
                await http_from(client, web)
            before = shown(cli(sock, "show table st"))
            assert len(before) == 2
            worker = cli(sock, "show info")
            os.kill(proc.pid, signal.SIGUSR2)

            def new_worker_has_it() -> bool:
                try:
                    info, table = cli(sock, "show info"), cli(sock, "show table st")
                except OSError:
                    return False
                return info != worker and shown(table) == before

            await eventually(new_worker_has_it, 20, "the new worker with the old one's table")
        finally:
            proc.terminate()
            proc.wait(10)
            assert proc.stderr is not None
            errors = proc.stderr.read().decode()
            proc.stderr.close()
        assert "Traceback" not in errors, errors

    run("uvloop", main, timeout=60)
