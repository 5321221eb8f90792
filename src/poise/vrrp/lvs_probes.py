"""Keepalived's checkers as probes: one run of a TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK,
DNS_CHECK or MISC_CHECK against a real server, answered as a core.lvs.Result (good or not,
why not, and a MISC_CHECK's dynamic weight). What a result does to the pool is decided in
core/lvs.py.

- TCP_CHECK: the connection is accepted within `connect_timeout`;
- HTTP_GET / SSL_GET: each `url` is fetched (`GET path HTTP/1.0`, Keepalived's request,
  on a new connection, over TLS without certificate checks for SSL_GET, with SNI when
  `enable_sni`); its status must be in `status_code` (200-299 by default) and, with
  `digest`, the MD5 of the body (what `genhash` prints) must match; all within
  `connect_timeout` per url;
- SMTP_CHECK: the greeting is 220, HELO is answered 250, then QUIT;
- DNS_CHECK: a query of `type` for `name` over UDP is answered with the same id and no
  error (RCODE 0);
- MISC_CHECK: the script's exit status (killed, with what it started, after `misc_timeout`
  or `delay_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import ssl
import struct
from ipaddress import IPv6Address

from poise.config.keepalived_lvs_model import Checker, CheckerKind, Url
from poise.core.lvs import Result, misc_result
from poise.vrrp.scripts import RunAs, kill_group, spawn

MAX_BODY = 16 * 1024 * 1024  # bytes of an HTTP answer read at most (the digest's input)
SMTP_HELO = "smtpchecker.keepalived.org"  # Keepalived's default helo_name
DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}


async def probe(checker: Checker, who: RunAs | None = None) -> Result:
    """One run of `checker`."""
    kind = checker.kind
    try:
        if kind is CheckerKind.MISC_CHECK:
            return await _misc(checker, who or RunAs(None, None))
        if kind is CheckerKind.DNS_CHECK:
            return await asyncio.wait_for(_dns(checker), checker.connect_timeout)
        if kind in (CheckerKind.HTTP_GET, CheckerKind.SSL_GET):
            for url in checker.urls:
                result = await asyncio.wait_for(_http(checker, url), checker.connect_timeout)
                if not result.ok:
                    return result
            return Result(True)
        reader, writer = await asyncio.wait_for(_connect(checker), checker.connect_timeout)
        try:
            if kind is CheckerKind.SMTP_CHECK:
                smtp = _smtp(checker, reader, writer)
                return await asyncio.wait_for(smtp, checker.connect_timeout)
            return Result(True)
        finally:
            writer.close()
    except TimeoutError:
        return Result(False, "timeout")
    except (OSError, EOFError, ValueError) as exc:
        return Result(False, _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def _connect(
    checker: Checker, tls: ssl.SSLContext | None = None, server_name: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    local = None
    if checker.bindto is not None or checker.bind_port is not None:
        local = (str(checker.bindto or ""), checker.bind_port or 0)
    return await asyncio.open_connection(
        str(checker.connect_ip),
        checker.connect_port,
        ssl=tls,
        server_hostname=server_name if tls is not None else None,
        local_addr=local,
    )


def _host(checker: Checker, url: Url) -> str:
    host = url.virtualhost or checker.virtualhost
    if host is None:
        ip = checker.connect_ip
        host = f"[{ip}]" if isinstance(ip, IPv6Address) else str(ip)
        default = 443 if checker.kind is CheckerKind.SSL_GET else 80
        if checker.connect_port != default:
            host += f":{checker.connect_port}"
    return host


def http_request(checker: Checker, url: Url) -> bytes:
    """Keepalived's request (check_http.c): HTTP/1.0, its User-Agent, a Host."""
    version = "1.1" if checker.http_protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if checker.http_protocol in ("1.0C", "1.1") else ""
    return (
        f"GET {url.path} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\n"
        f"Host: {_host(checker, url)}\r\n{close}\r\n"
    ).encode("latin-1", "replace")


def judge_http(answer: bytes, url: Url) -> Result:
    """The status line and, with `digest`, the MD5 of the body after the head."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return Result(False, "no complete HTTP head")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        return Result(False, "not an HTTP answer")
    try:
        status = int(status_line[1])
    except ValueError:
        return Result(False, "not an HTTP answer")
    if not url.status_ok(status):
        return Result(False, f"status_code [{status}]")
    if url.digest is not None:
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if digest != url.digest:
            return Result(False, f"MD5 digest error, MD5SUM [{digest}]")
    return Result(True)


async def _http(checker: Checker, url: Url) -> Result:
    tls = None
    name = None
    if checker.kind is CheckerKind.SSL_GET:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # Keepalived does not verify the certificate either
        if checker.enable_sni:
            name = url.virtualhost or checker.virtualhost
    reader, writer = await _connect(checker, tls, name)
    try:
        writer.write(http_request(checker, url))
        await writer.drain()
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BODY:
            data = await reader.read(65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
        return judge_http(b"".join(chunks), url)
    finally:
        writer.close()


async def _smtp(
    checker: Checker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Result:
    async def reply() -> int:
        while True:  # a multi-line reply: "250-..." lines, then "250 ..."
            line = await reader.readline()
            if not line:
                raise EOFError("connection closed")
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3])

    code = await reply()
    if code != 220:
        return Result(False, f"greeting {code}")
    writer.write(f"HELO {checker.helo_name or SMTP_HELO}\r\n".encode())
    code = await reply()
    if code != 250:
        return Result(False, f"HELO answered {code}")
    writer.write(b"QUIT\r\n")
    with contextlib.suppress(OSError):
        await writer.drain()
    return Result(True)


def dns_query(ident: int, name: str, qtype: str) -> bytes:
    """A DNS query (RFC 1035 section 4.1) with recursion desired."""
    labels = [part for part in name.strip(".").split(".") if part]
    qname = b"".join(bytes([len(p)]) + p.encode("idna") for p in labels) + b"\0"
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + qname
        + struct.pack("!HH", DNS_TYPES[qtype], 1)
    )


def judge_dns(answer: bytes, ident: int) -> Result:
    if len(answer) < 12:
        return Result(False, "short DNS answer")
    got, flags = struct.unpack("!HH", answer[:4])
    if got != ident or not flags & 0x8000:
        return Result(False, "not an answer to the query")
    if flags & 0x000F:
        return Result(False, f"DNS RCODE {flags & 0x000F}")
    return Result(True)


async def _dns(checker: Checker) -> Result:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if isinstance(checker.connect_ip, IPv6Address) else socket.AF_INET
    ident = random.getrandbits(16)
    answered: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
            if not answered.done() and data[:2] == struct.pack("!H", ident):
                answered.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not answered.done():
                answered.set_exception(exc)

    local = (str(checker.bindto), checker.bind_port or 0) if checker.bindto else None
    transport, _ = await loop.create_datagram_endpoint(
        Client,
        remote_addr=(str(checker.connect_ip), checker.connect_port),
        local_addr=local,
        family=family,
    )
    try:
        transport.sendto(dns_query(ident, checker.dns_name, checker.dns_type))
        return judge_dns(await answered, ident)
    finally:
        transport.close()


async def _misc(checker: Checker, who: RunAs) -> Result:
    command = checker.misc_path
    assert command is not None
    timeout = checker.misc_timeout or checker.delay_loop
    try:
        process = await spawn(command.argv, who)
    except OSError as exc:
        return Result(False, f"cannot run: {exc.strerror or exc}")
    try:
        status = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        kill_group(process)
        await process.wait()
        return Result(False, f"timed out after {timeout:g}s")
    except asyncio.CancelledError:
        kill_group(process)
        await process.wait()
        raise
    if status < 0:
        return Result(False, f"killed by signal {-status}")
    return misc_result(status, checker.misc_dynamic)
