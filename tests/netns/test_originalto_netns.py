"""`option originalto` behind netfilter's NAT: a client connects to 198.51.100.77, an
address no node holds; a route in the client's namespace sends it to the balancer node,
whose nftables `dnat` hands the connection to `poise run` on its own address. The server
gets X-Original-To with 198.51.100.77, the destination before NAT (SO_ORIGINAL_DST), as
HAProxy 2.6 writes it on the same configuration; the socket's own address would be the
node's.
"""

from __future__ import annotations

import sys

import pytest

from tests.netns.hosts import POISE
from tests.netns.lab import Lab, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0
LB = ip_of("lb1")
ORIGINAL = "198.51.100.77"
NFT = f"""table ip poise_dnat {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {ORIGINAL} tcp dport 80 dnat to {LB}:8092
    }}
}}
"""
CONF = """global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
listen web
    bind {lb}:8092
    option originalto
    server echo {lb}:9100
"""
# An HTTP server that answers with the head it got, for 60 seconds.
ECHO = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9100)); s.listen(8); s.settimeout(60)
end = time.time() + 60
while time.time() < end:
    try:
        c, _ = s.accept()
    except OSError:
        break
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        data = c.recv(4096)
        if not data:
            break
        head += data
    ok = b"HTTP/1.1 200 OK\\r\\nConnection: close\\r\\n"
    c.sendall(ok + b"Content-Length: %d\\r\\n\\r\\n%s" % (len(head), head))
    c.close()
"""
ASK = """
import socket, sys
with socket.create_connection((sys.argv[1], 80), timeout=5) as s:
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
print([l.lower() for l in data.decode().split("\\r\\n") if l.lower().startswith("x-original-to")])
"""


def listening(lab: Lab, port: int) -> bool:
    return "LISTEN" in lab.run("lb1", ["ss", "-ltnH", f"sport = :{port}"]).stdout


@pytest.mark.parametrize("kind", ["poise", "haproxy"])
def test_originalto_names_the_destination_before_nat(lab: Lab, kind: str) -> None:
    rules = lab.workdir / "dnat.nft"
    rules.write_text(NFT)
    result = lab.run("lb1", ["nft", "-f", str(rules)])
    assert result.returncode == 0, result.stderr
    route = lab.run("cl", ["ip", "route", "add", f"{ORIGINAL}/32", "via", LB])
    assert route.returncode == 0, route.stderr
    lab.spawn("lb1", "echo", [sys.executable, "-c", ECHO, LB])
    wait_for(lambda: listening(lab, 9100), START, "the echo server")
    sock = lab.workdir / "lb1.sock"
    conf = lab.workdir / "lb1.cfg"
    conf.write_text(CONF.format(sock=sock, lb=LB))
    argv = [POISE, "run", "-f", str(conf), "-db"]
    if kind == "haproxy":
        argv = ["haproxy", "-f", str(conf), "-db"]
    proc = lab.spawn("lb1", kind, argv)
    wait_for(sock.exists, START, f"{kind}'s stats socket")
    asked = lab.run("cl", [sys.executable, "-c", ASK, ORIGINAL], timeout=30)
    assert asked.returncode == 0, asked.stderr + proc.text()
    assert asked.stdout.strip() == f"['x-original-to: {ORIGINAL}']", proc.text()
