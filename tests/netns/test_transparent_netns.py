"""A transparent server behind netfilter's NAT: clients connect to ports 80 and 81 of the
balancer node, an nftables `redirect` hands those connections to `poise run` on 8090 and
8091, and `server s 0.0.0.0:9000` / `server s *:+1000` take the address and port the client
connected to before the redirect (SO_ORIGINAL_DST), as HAProxy 2.6 does on the same
configuration; the socket's own address (8090, 8091) would give other answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.netns.hosts import POISE
from tests.netns.lab import Lab, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0
LB = ip_of("lb1")
NFT = """table ip poise_redirect {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport 80 redirect to :8090
        tcp dport 81 redirect to :8091
    }
}
"""
CONF = """global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
listen fixed
    bind {lb}:8090
    server s 0.0.0.0:9000
listen mapped
    bind {lb}:8091
    server s *:+1000
"""
ASK = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    print(s.makefile().readline().strip() or "empty")
"""
RESPONDER = str(Path(__file__).parent / "responder.py")


def ask(lab: Lab, port: int) -> str:
    result = lab.run("cl", [sys.executable, "-c", ASK, LB, str(port)], timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def listening(lab: Lab, port: int) -> bool:
    return "LISTEN" in lab.run("lb1", ["ss", "-ltnH", f"sport = :{port}"]).stdout


@pytest.mark.parametrize("kind", ["poise", "haproxy"])
def test_a_transparent_server_takes_the_destination_before_nat(lab: Lab, kind: str) -> None:
    rules = lab.workdir / "redirect.nft"
    rules.write_text(NFT)
    result = lab.run("lb1", ["nft", "-f", str(rules)])
    assert result.returncode == 0, result.stderr
    # What each possible destination answers: only the original one is right.
    for port in (9000, 1081, 9091):
        argv = [sys.executable, RESPONDER, LB, str(port), "60", "--answer", f"port {port}"]
        lab.spawn("lb1", f"responder-{port}", argv)
    wait_for(
        lambda: all(listening(lab, port) for port in (9000, 1081, 9091)),
        START,
        "the responders",
    )
    sock = lab.workdir / "lb1.sock"
    conf = lab.workdir / "lb1.cfg"
    conf.write_text(CONF.format(sock=sock, lb=LB))
    argv = [POISE, "run", "-f", str(conf), "-db"]
    if kind == "haproxy":
        argv = ["haproxy", "-f", str(conf), "-db"]
    proc = lab.spawn("lb1", kind, argv)
    wait_for(sock.exists, START, f"{kind}'s stats socket")
    assert ask(lab, 80) == "port 9000", proc.text()
    # 81 (before the redirect) + 1000, not 8091 + 1000.
    assert ask(lab, 81) == "port 1081", proc.text()
