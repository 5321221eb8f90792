"""A small real DNS server for the tests: UDP and TCP on 127.0.0.1 with an ephemeral port,
answering from records the test changes while it runs.

    with DnsServer() as dns:
        dns.set("gw.test.", ["127.0.0.2"])          # A (and AAAA for IPv6 addresses)
        dns.set_srv("_http._tcp.gw.test.", [(0, 10, 8080, "a.gw.test.")])
        # point a `resolvers` section at dns.address ("127.0.0.1:PORT")
        dns.set("gw.test.", ["127.0.0.3"])          # the record moves
        dns.nxdomain("gw.test.")                    # the name goes away
        dns.rcode("gw.test.", dns.REFUSED)          # or answers with an error
        dns.silence("gw.test.")                     # or never answers (a timeout)
        dns.queries                                 # [(name, type), ...] seen so far

An unknown name answers NXDOMAIN; a known name without records of the asked type answers
NOERROR with no answer (NODATA), as a real server does. SRV answers carry the A/AAAA records
of their targets, when known, in the additional section (HAProxy uses them).

It runs in its own thread with blocking sockets, so it serves tests on any event loop and
poise started as a process alike. Messages are parsed and built by dnspython.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Srv = tuple[int, int, int, str]  # priority, weight, port, target


@dataclass
class _Entry:
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    srv: list[Srv] = field(default_factory=list)
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    silent: bool = False


def _key(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else name + "."


class DnsServer:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port) whose answers the test sets."""

    NOERROR = dns.rcode.NOERROR
    NXDOMAIN = dns.rcode.NXDOMAIN
    SERVFAIL = dns.rcode.SERVFAIL
    REFUSED = dns.rcode.REFUSED

    def __init__(self, host: str = "127.0.0.1", ttl: int = 1) -> None:
        self.host = host
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._udp, self._tcp = _bind_pair(host)
        self.port: int = self._udp.getsockname()[1]
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        """`IP:PORT`, as a `nameserver` line takes it."""
        return f"{self.host}:{self.port}"

    # -- what the test changes -------------------------------------------------------

    def set(self, name: str, addresses: Iterable[str]) -> None:
        """`name` answers these A (IPv4) and AAAA (IPv6) records; an empty list is NODATA."""
        entry = _Entry()
        for address in addresses:
            if ipaddress.ip_address(address).version == 4:
                entry.a.append(address)
            else:
                entry.aaaa.append(address)
        with self._lock:
            old = self._entries.get(_key(name))
            if old is not None:
                entry.srv = old.srv
            self._entries[_key(name)] = entry

    def set_srv(self, name: str, records: Iterable[Srv]) -> None:
        """`name` answers these SRV records: (priority, weight, port, target)."""
        with self._lock:
            entry = self._entries.get(_key(name))
            entry = _Entry() if entry is None or entry.rcode or entry.silent else entry
            entry.srv = [(p, w, port, _key(t)) for p, w, port, t in records]
            self._entries[_key(name)] = entry

    def nxdomain(self, name: str) -> None:
        """`name` does not exist (NXDOMAIN)."""
        self.rcode(name, dns.rcode.NXDOMAIN)

    def rcode(self, name: str, rcode: dns.rcode.Rcode) -> None:
        """`name` answers with this error code (SERVFAIL, REFUSED, NXDOMAIN...)."""
        with self._lock:
            self._entries[_key(name)] = _Entry(rcode=rcode)

    def silence(self, name: str) -> None:
        """Queries for `name` are never answered (the client times out)."""
        with self._lock:
            self._entries[_key(name)] = _Entry(silent=True)

    def count(self, name: str) -> int:
        """How many queries for `name` (any type) arrived so far."""
        with self._lock:
            return sum(1 for seen, _ in self.queries if seen == _key(name))

    # -- answering --------------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes | None:
        """The answer to one query in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # a test server drops garbage
            return None
        if not query.question:
            return None
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.RdataType(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype.name))
            entry = self._entries.get(name)
            if entry is not None and entry.silent:
                return None
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if entry is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif entry.rcode != dns.rcode.NOERROR:
                response.set_rcode(entry.rcode)
            else:
                self._fill(response, question.name, rdtype, entry)
        return response.to_wire()

    def _fill(
        self, response: dns.message.Message, qname: dns.name.Name, rdtype: int, entry: _Entry
    ) -> None:
        if rdtype == dns.rdatatype.A and entry.a:
            response.answer.append(self._rrset(qname, "A", entry.a))
        elif rdtype == dns.rdatatype.AAAA and entry.aaaa:
            response.answer.append(self._rrset(qname, "AAAA", entry.aaaa))
        elif rdtype == dns.rdatatype.SRV and entry.srv:
            texts = [f"{p} {w} {port} {t}" for p, w, port, t in entry.srv]
            response.answer.append(self._rrset(qname, "SRV", texts))
            for target in dict.fromkeys(t for _, _, _, t in entry.srv):
                known = self._entries.get(target)
                if known is not None and known.a:
                    response.additional.append(self._rrset(target, "A", known.a))
                if known is not None and known.aaaa:
                    response.additional.append(self._rrset(target, "AAAA", known.aaaa))

    def _rrset(self, name: dns.name.Name | str, rdtype: str, texts: list[str]) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(name, self.ttl, dns.rdataclass.IN, rdtype, texts)

    # -- threads ----------------------------------------------------------------------

    def start(self) -> DnsServer:
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, name=f"dns-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping = True
        for sock in (self._udp, self._tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve_udp(self) -> None:
        while not self._stopping:
            try:
                wire, peer = self._udp.recvfrom(65535)
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                try:
                    self._udp.sendto(reply, peer)
                except OSError:
                    return

    def _serve_tcp(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                    if wire is None:
                        return
                    reply = self.answer(wire)
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return


def _bind_pair(host: str, attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on one ephemeral port (retried: the port the
    system picks for one protocol may be taken in the other)."""
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise OSError("no port free for both UDP and TCP")


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
