"""The source address a server sees, between network namespaces: HAProxy's `source ADDR`
and `source ... usesrc clientip` (poise run, and HAProxy 2.6 on the same configuration),
and a Keepalived `virtual_server` (lb_kind NAT, TCP and UDP) keeping the client's address
as LVS NAT does. The backend routes the client's address through the balancer node (as LVS NAT
requires) and the node has the documented set-up (README, "Transparent source"): a policy
route for marked packets and an nftables rule marking those of a transparent socket.
"""

from __future__ import annotations

import sys

import pytest

from tests.netns.hosts import POISE, start_backend, start_vrrp, vrrp_conf
from tests.netns.lab import BACKEND_PORT, VIP, Lab, ip_of, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

START = 10.0
LB = ip_of("lb1")
CLIENT = ip_of("cl")
BE = ip_of("be")
PLAIN_SOURCE = "198.51.100.40"  # a second address of lb1
NFT = """table inet poise_tproxy {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        socket transparent 1 meta mark set 1
    }
}
"""
ASK = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    print(s.makefile().readline().strip() or "empty")
"""

CONF = """global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
listen transparent
    bind {lb}:81
    source 0.0.0.0 usesrc clientip
    server be {be}:{port}
listen plain
    bind {lb}:82
    server be {be}:{port} source {plain}
"""


def host_setup(lab: Lab) -> None:
    """The backend answers the client through lb1; lb1 hands those answers to its
    transparent sockets."""
    for node, argv in (
        ("be", ["ip", "route", "add", f"{CLIENT}/32", "via", LB]),
        ("lb1", ["ip", "addr", "add", f"{PLAIN_SOURCE}/24", "dev", "eth0"]),
        ("lb1", ["ip", "rule", "add", "fwmark", "1", "lookup", "100"]),
        ("lb1", ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"]),
    ):
        result = lab.run(node, argv)
        assert result.returncode == 0, (argv, result.stderr)
    rules = lab.workdir / "tproxy.nft"
    rules.write_text(NFT)
    result = lab.run("lb1", ["nft", "-f", str(rules)])
    assert result.returncode == 0, result.stderr


def ask(lab: Lab, host: str, port: int) -> str:
    result = lab.run("cl", [sys.executable, "-c", ASK, host, str(port)], timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("kind", ["poise", "haproxy"])
def test_the_server_sees_the_source_and_the_clients_address(lab: Lab, kind: str) -> None:
    host_setup(lab)
    start_backend(lab)
    sock = lab.workdir / "lb1.sock"
    conf = lab.workdir / "lb1.cfg"
    conf.write_text(CONF.format(sock=sock, lb=LB, be=BE, port=BACKEND_PORT, plain=PLAIN_SOURCE))
    argv = [POISE, "run", "-f", str(conf), "-db"] if kind == "poise" else []
    if kind == "haproxy":
        argv = ["haproxy", "-f", str(conf), "-db"]
    proc = lab.spawn("lb1", kind, argv)
    wait_for(sock.exists, START, f"{kind}'s stats socket")
    # Without usesrc the backend would see lb1's address; with it, the client's.
    assert ask(lab, LB, 81) == CLIENT, proc.text()
    assert ask(lab, LB, 82) == PLAIN_SOURCE, proc.text()
    # Not to the balancer: nothing on lb1 holds the client's address.
    assert CLIENT not in lab.addresses("lb1")


def virtual_server() -> str:
    return f"""
virtual_server {VIP} 80 {{
    delay_loop 0.2
    lb_algo rr
    lb_kind NAT
    protocol TCP
    warmup 0
    real_server {BE} {BACKEND_PORT} {{
        TCP_CHECK {{
            connect_timeout 0.5
        }}
    }}
}}
"""


def test_a_virtual_server_keeps_the_clients_address(lab: Lab) -> None:
    start_backend(lab)
    # Before the host is set up: the node's own address, and a warning naming the VS.
    first = start_vrrp(lab, "lb1", "poise", vrrp_conf(priority=150) + virtual_server())
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    warning = f"VS [{VIP}]:tcp:80: the real servers see this node's address, not the client's"
    wait_for(lambda: warning in first.log(), START, "the warning")
    assert ask(lab, VIP, 80) == LB
    first.graceful_stop()

    host_setup(lab)
    second = start_vrrp(
        lab, "lb1", "poise", vrrp_conf(priority=150) + virtual_server(), tag="-setup"
    )
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1 again")
    assert ask(lab, VIP, 80) == CLIENT, second.log()
    assert "see this node's address" not in second.log()


UDP_PORT = 5353
UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(f"{peer[0]}:{peer[1]}".encode(), peer)
"""
UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(1)
for _ in range(10):  # until poise vrrp runs its loop
    s.sendto(b"who", (sys.argv[1], int(sys.argv[2])))
    try:
        data, peer = s.recvfrom(2048)
    except TimeoutError:
        continue
    print(data.decode(), f"{peer[0]}:{peer[1]}")
    break
"""


def udp_virtual_server() -> str:
    return f"""
virtual_server {VIP} {UDP_PORT} {{
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server {BE} {UDP_PORT} {{
    }}
}}
"""


def udp_ask(lab: Lab, port: int) -> list[str]:
    """What the real server saw as the datagram's source, and where the answer came from."""
    argv = [sys.executable, "-c", UDP_ASK, VIP, str(UDP_PORT), str(port)]
    result = lab.run("cl", argv, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_udp_virtual_server_keeps_the_clients_address_and_port(lab: Lab) -> None:
    lab.spawn("be", "udp-server", [sys.executable, "-c", UDP_SERVER, BE, str(UDP_PORT)])
    conf = vrrp_conf(priority=150) + udp_virtual_server()
    first = start_vrrp(lab, "lb1", "poise", conf)
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1")
    seen, answered_from = udp_ask(lab, 40001)
    assert seen.split(":")[0] == LB  # without the set-up: the node's own address
    assert answered_from == f"{VIP}:{UDP_PORT}"
    first.graceful_stop()

    host_setup(lab)
    second = start_vrrp(lab, "lb1", "poise", conf, tag="-setup")
    wait_for(lambda: lab.has_vip("lb1"), START, "the address on lb1 again")
    # as IPVS NAT: the client's address and port, the answer from the virtual address
    assert udp_ask(lab, 40002) == [f"{CLIENT}:40002", f"{VIP}:{UDP_PORT}"], second.log()
    assert udp_ask(lab, 40003) == [f"{CLIENT}:40003", f"{VIP}:{UDP_PORT}"], second.log()
    assert "cannot send from the client's address" not in second.log()
