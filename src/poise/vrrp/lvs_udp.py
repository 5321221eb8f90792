"""A `virtual_server` with `protocol UDP`, relayed as IPVS NAT relays datagrams: each client
(address and port) is a flow to one real server, chosen by the virtual server's balancer
(persistence included) when its first datagram comes; its datagrams go to that real server
from a socket of this node, and the answers go back to the client from the virtual address.
Where the node is set up for a transparent source (`transparent`: README, "Transparent
source") that socket is bound to the client's own address and port (IP_TRANSPARENT), so the
real server sees the client as behind IPVS NAT; when that bind fails (an IPv6 client for an
IPv4 real server, the address in use) the flow goes from the node's address, said once.
A flow ends after `UDP_TIMEOUT` seconds without a datagram either way (IPVS's UDP timeout),
or when its real server leaves the pool (its next datagram picks another). The flows are
counted as the real servers' connections (lc and wlc weigh them).

Plain non-blocking sockets watched by the loop: a datagram in is a datagram out, nothing is
queued (a socket that cannot take one drops it, as the network may).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass

from poise.config import model
from poise.core.backend import Backend
from poise.core.http.hashkey import source_key
from poise.core.server import ServerState
from poise.net.listener import IP_FREEBIND
from poise.net.source import set_transparent

UDP_TIMEOUT = 300.0  # ipvsadm --set's default for UDP
SWEEP = 5.0  # seconds between two sweeps of the idle flows
MAX_FLOWS = 10_000  # clients at once per virtual server; beyond, new ones are dropped
MAX_DATAGRAM = 65_535


def open_udp(bind: model.Bind) -> socket.socket:
    """The virtual address's UDP socket, bound with IP_FREEBIND; raises OSError."""
    address = bind.address
    family = socket.AF_INET6 if address.family == "ipv6" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        level = socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP
        sock.setsockopt(level, IP_FREEBIND, 1)
        sock.bind((address.host, address.port or 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(slots=True)
class Flow:
    client: tuple[str, int]
    server: ServerState
    sock: socket.socket
    last: float


class UdpRelay:
    """The datagrams of one listening socket of a UDP virtual server."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        backend: Backend,
        transparent: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.backend = backend
        self.transparent = transparent  # flows from the clients' own addresses
        self.say = say  # where a transparent bind's first failure is told
        self.refused = False
        self.flows: dict[tuple[str, int], Flow] = {}
        self.dropped = 0  # datagrams that found no real server or no room
        self.sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self.readable)
        self.sweeper = self.loop.call_later(SWEEP, self.sweep)

    def readable(self) -> None:
        for _ in range(64):  # a bounded batch per turn of the loop
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self.forward(data, (addr[0], addr[1]))

    def forward(self, data: bytes, client: tuple[str, int]) -> None:
        flow = self.flows.get(client)
        if flow is not None and not flow.server.serves_persistent:
            self.end(flow)
            flow = None
        if flow is None:
            flow = self.open(client)
            if flow is None:
                self.dropped += 1
                return
        flow.last = self.loop.time()
        with contextlib.suppress(OSError):
            flow.sock.send(data)

    def open(self, client: tuple[str, int]) -> Flow | None:
        if len(self.flows) >= MAX_FLOWS:
            return None
        backend = self.backend
        key = source_key(client[0]) if backend.hashes_source else b""
        server = backend.balancer.pick(key or b"")
        if server is None or server.port is None:
            return None
        family = socket.AF_INET6 if ":" in server.addr else socket.AF_INET
        sock = self._socket(family, client) if self.transparent else None
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((server.addr, server.port))
        except OSError:
            sock.close()
            return None
        flow = Flow(client, server, sock, self.loop.time())
        self.flows[client] = flow
        server.cur_sess += 1
        server.total_sess += 1
        server.max_sess = max(server.max_sess, server.cur_sess)
        self.loop.add_reader(sock.fileno(), self.answer, flow)
        return flow

    def _socket(
        self, family: socket.AddressFamily, client: tuple[str, int]
    ) -> socket.socket | None:
        """A socket bound to the client's address and port (None: the bind failed)."""
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if (":" in client[0]) != (family == socket.AF_INET6):
                raise OSError(f"a client of the other family ({client[0]})")
            set_transparent(sock, family)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(client)
        except OSError as exc:
            sock.close()
            if not self.refused and self.say is not None:
                self.refused = True
                why = exc.strerror or str(exc)
                self.say(
                    f"UDP {self.sock.getsockname()[0]}:{self.sock.getsockname()[1]}: cannot "
                    f"send from the client's address ({why}): the real servers see this "
                    "node's address instead"
                )
            return None
        return sock

    def answer(self, flow: Flow) -> None:
        for _ in range(64):
            try:
                data = flow.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable from the real server: nothing to pass
                return
            flow.last = self.loop.time()
            with contextlib.suppress(OSError):
                self.sock.sendto(data, flow.client)

    def end(self, flow: Flow) -> None:
        self.flows.pop(flow.client, None)
        self.loop.remove_reader(flow.sock.fileno())
        flow.sock.close()
        flow.server.cur_sess -= 1

    def sweep(self) -> None:
        now = self.loop.time()
        for flow in [f for f in self.flows.values() if now - f.last >= UDP_TIMEOUT]:
            self.end(flow)
        self.sweeper = self.loop.call_later(SWEEP, self.sweep)

    def close(self, *, sockets: bool) -> None:
        """Stop relaying (the flows end); the listening socket too with `sockets`."""
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.sock.fileno())
        for flow in list(self.flows.values()):
            self.end(flow)
        if sockets:
            self.sock.close()
