"""The probes of `poise doctor`: a client's view of the service, with blocking sockets and a
timeout on every step, so that a run always stops by itself. Each probe returns what it saw
(facts.py), errors included, and decides nothing.

Name resolution as a client does it (the system resolver, curl's `--resolve`, or one DNS
server asked directly), TCP connect, the TLS handshake (once with verification off, to see
the certificate whatever it is, once verified against `--ca` or the system store), and
HTTP/1.1 requests with `Connection: close`, one connection each, as a new client would.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence

from poise.certs.names import is_ip
from poise.doctor.facts import (
    Connected,
    Handshake,
    Reply,
    Resolved,
    Target,
    parse_head,
)

MAX_HEAD = 64 * 1024  # a response head larger than this is not worth reading
MAX_BODY = 1024 * 1024  # the body is read (so the server is not reset) up to this much
USER_AGENT = "poise-doctor"


# --- names ---------------------------------------------------------------------------------


def resolve(
    target: Target,
    overrides: Sequence[tuple[str, int | None, str]],
    nameserver: tuple[str, int] | None,
    timeout: float,
) -> Resolved:
    """The target's addresses: an IP literal as it is; `--resolve` entries for its name
    and port; else the given DNS server; else the system resolver (getaddrinfo)."""
    host = target.host
    if is_ip(host):
        return Resolved(host, "an address, no lookup", (host,))
    forced = tuple(
        address
        for name, port, address in overrides
        if name.lower() == host.lower() and port in (None, target.port)
    )
    if forced:
        return Resolved(host, "--resolve", forced)
    if nameserver is not None:
        return resolve_with(host, nameserver, timeout)
    try:
        infos = socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Resolved(host, "the system resolver", error=exc.strerror or str(exc))
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return Resolved(host, "the system resolver", addresses)


def resolve_with(host: str, nameserver: tuple[str, int], timeout: float) -> Resolved:
    """A and AAAA records of `host`, asked of one DNS server (dnspython)."""
    import dns.exception
    import dns.resolver

    ip, port = nameserver
    via = f"nameserver {ip}:{port}"
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ip]
    resolver.port = port
    resolver.lifetime = timeout
    addresses: list[str] = []
    errors: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Resolved(host, via, error="NXDOMAIN (no such name)")
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.Timeout:
            errors.append(f"no answer within {timeout:g} s")
            continue
        except dns.exception.DNSException as exc:
            errors.append(str(exc))
            continue
        addresses.extend(rdata.to_text() for rdata in answer)
    if not addresses:
        return Resolved(host, via, error="; ".join(dict.fromkeys(errors)) or "no A/AAAA record")
    return Resolved(host, via, tuple(addresses))


def local_addresses() -> frozenset[str]:
    """The IP addresses of this host's interfaces (netlink; else `ip -o addr`)."""
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            return frozenset(
                str(msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS"))
                for msg in ipr.get_addr()
            )
    except Exception:  # no netlink here (not Linux, a sandbox): ask ip(8)
        pass
    try:
        out = subprocess.run(
            ["ip", "-o", "addr"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset({"127.0.0.1", "::1"})
    found = {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
    return frozenset(found)


# --- TCP and TLS ---------------------------------------------------------------------------


def connect(address: str, port: int, timeout: float) -> tuple[socket.socket | None, Connected]:
    """A TCP connection, and how long it took; the socket is None when it failed."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    started = time.monotonic()
    try:
        sock.connect((address, port))
    except TimeoutError:
        sock.close()
        return None, Connected(address, port, timeout, error=f"timed out after {timeout:g} s")
    except OSError as exc:
        sock.close()
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return None, Connected(address, port, time.monotonic() - started, error=reason)
    seconds = time.monotonic() - started
    return sock, Connected(address, port, seconds, local=str(sock.getsockname()[0]))


def unverified() -> ssl.SSLContext:
    """A client that accepts any certificate: to see what the server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def handshake(sock: socket.socket, sni: str | None) -> tuple[ssl.SSLSocket | None, Handshake]:
    """The TLS handshake on a connected socket, with verification off."""
    started = time.monotonic()
    try:
        tls = unverified().wrap_socket(sock, server_hostname=sni)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        return None, Handshake(sni, seconds=time.monotonic() - started, error=_tls_error(exc))
    cipher = tls.cipher()
    return tls, Handshake(
        sni,
        protocol=tls.version() or "",
        cipher=cipher[0] if cipher else "",
        der=tls.getpeercert(binary_form=True),
        seconds=time.monotonic() - started,
    )


def _tls_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__


def verify_chain(
    address: str, port: int, sni: str | None, ca_file: str | None, timeout: float
) -> tuple[bool, str]:
    """Does the chain verify against `ca_file` (or the system store)? The name is judged
    apart, so check_hostname is off here. (trusted, OpenSSL's reason)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    sock, connected = connect(address, port, timeout)
    if sock is None:
        return False, connected.error
    try:
        with context.wrap_socket(sock, server_hostname=sni):
            return True, ""
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return False, _tls_error(exc)
    finally:
        sock.close()


def open_stream(target: Target, address: str, timeout: float) -> tuple[socket.socket | None, str]:
    """A connection as a client's next request would open it (TLS without verification:
    trust and names are their own checks). (socket, error)."""
    sock, connected = connect(address, target.port, timeout)
    if sock is None:
        return None, connected.error
    if not target.tls:
        return sock, ""
    tls, seen = handshake(sock, target.sni)
    return tls, seen.error


# --- HTTP ----------------------------------------------------------------------------------


class Wire:
    """Reads from a socket with one deadline for the whole exchange, keeping what was read
    past the point asked for (a response head, then WebSocket frames)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.eof = False

    def fill(self) -> bool:
        """Read once more; False at end of stream. TimeoutError past the deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buffer += data
        return bool(data)

    def head(self) -> bytes:
        """Up to the blank line after the headers (that line not included)."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise ValueError("the response head is larger than 64 kB")
            if not self.fill():
                raise ConnectionError("the connection was closed before a response")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self.fill():
                raise ConnectionError("the connection was closed")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def drain(self, length: int | None) -> None:
        """The body: `length` bytes, or until the server closes (Connection: close)."""
        while (length is None or len(self.buffer) < length) and len(self.buffer) < MAX_BODY:
            if not self.fill():
                return


def request_bytes(target: Target, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {target.host_header}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_get(target: Target, address: str, timeout: float, cookie: str = "") -> Reply:
    """GET the URL's path on a new connection, with `cookie` as the Cookie header."""
    started = time.monotonic()
    sock, error = open_stream(target, address, timeout)
    if sock is None:
        return Reply(sent_cookie=cookie, error=error)
    headers = [("Accept", "*/*"), ("Connection", "close")]
    if cookie:
        headers.append(("Cookie", cookie))
    wire = Wire(sock, started + timeout)
    try:
        sock.sendall(request_bytes(target, target.path, headers))
        status, reason, fields = parse_head(wire.head())
        length = next((v for k, v in fields if k.lower() == "content-length"), None)
        with contextlib.suppress(OSError, TimeoutError):
            wire.drain(int(length) if length and length.isdigit() else None)
    except TimeoutError:
        return Reply(sent_cookie=cookie, error=f"no response within {timeout:g} s")
    except (OSError, ValueError) as exc:
        return Reply(sent_cookie=cookie, error=str(exc) or type(exc).__name__)
    finally:
        sock.close()
    return Reply(status, reason, fields, time.monotonic() - started, sent_cookie=cookie)
