"""What `poise doctor` saw, as values: the target (URL, `--resolve`, `--nameserver`), and
one observation per probe (name resolution, TCP connect, TLS handshake, chain verification,
HTTP reply, WebSocket upgrade, idle WebSocket). The probes (probes.py, probe_ws.py) fill
them in; the judge (judge.py) turns them into checks. Pure: parsing and data only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from poise.certs.names import is_ip

DEFAULT_PORTS = {"http": 80, "https": 443}
# Response headers by which servers commonly say who they are (the tests' webapp sets
# X-Backend). `--server-header NAME` adds one.
SERVER_HEADERS = ("x-backend", "x-server", "x-served-by", "x-backend-server", "x-upstream")


class UsageError(ValueError):
    """A URL or option `poise doctor` cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Target:
    """The service as a client names it: `https://view.example:8443/app`."""

    url: str
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    path: str  # with the query string

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def sni(self) -> str | None:
        """The name sent in the TLS handshake: none for an IP address (RFC 6066 3)."""
        return None if is_ip(self.host) else self.host


def parse_url(url: str) -> Target:
    """`http://` or `https://` URL as curl takes it; without a scheme, https."""
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UsageError(f"'{url}': poise doctor tests http:// and https:// URLs")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise UsageError(f"'{url}': {exc}") from None
    if not parts.hostname:
        raise UsageError(f"'{url}': no host name")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url, scheme, parts.hostname, port, path)


def parse_resolve(text: str) -> tuple[str, int | None, str]:
    """`--resolve NAME:ADDR`, or curl's `NAME:PORT:ADDR` (ADDR may be `[::1]`)."""
    name, sep, rest = text.partition(":")
    port: int | None = None
    match = re.fullmatch(r"(\d+|\*):(.+)", rest)
    if match and is_ip(match.group(2)):
        port = None if match.group(1) == "*" else int(match.group(1))
        rest = match.group(2)
    address = rest.strip("[]")
    if not sep or not name or not is_ip(address):
        raise UsageError(f"--resolve '{text}': give NAME:ADDR (or curl's NAME:PORT:ADDR)")
    return name, port, address


def parse_nameserver(text: str) -> tuple[str, int]:
    """`--nameserver IP[:PORT]` (`[::1]:53` for IPv6 with a port)."""
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", text)
    if match:
        host, port = match.group(1), match.group(2)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    if not is_ip(host) or (port is not None and not 0 < int(port) < 65536):
        raise UsageError(f"--nameserver '{text}': give IP or IP:PORT")
    return host, int(port) if port else 53


@dataclass(frozen=True, slots=True)
class Resolved:
    """The addresses a name resolved to, and by whom (`the system resolver`,
    `--resolve`, `nameserver 127.0.0.1:53`); `error` says why there are none."""

    host: str
    via: str
    addresses: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class Connected:
    """One TCP connect: `local` is the source address the connection used."""

    address: str
    port: int
    seconds: float
    local: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Handshake:
    """A TLS handshake with verification off, to see what the server presents."""

    sni: str | None
    protocol: str = ""
    cipher: str = ""
    der: bytes | None = None  # the peer's certificate
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class Verified:
    """The same handshake with the chain verified (names are judged apart)."""

    trusted: bool
    ca_file: str | None = None
    reason: str = ""  # OpenSSL's verify message when not trusted


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP request and its response head; `sent_cookie` is the Cookie header sent."""

    status: int = 0
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    sent_cookie: str = ""
    error: str = ""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket upgrade, and the answer to one text message sent on it."""

    path: str
    status: int = 0
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    sent: str = ""
    answer: str | None = None  # the first text message back, None when none came
    closed: bool = False  # the connection was closed before an answer came
    error: str = ""  # the connection failed before any response

    def header(self, name: str) -> str | None:
        return Reply(headers=self.headers).header(name)


@dataclass(frozen=True, slots=True)
class Idle:
    """A WebSocket left idle `wanted` seconds: closed after `closed_after` seconds, or
    still open and (maybe) still answering."""

    wanted: float
    closed_after: float | None = None
    answer: str | None = None
    sent: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Persistence:
    """How to tell which server answered: the persistence cookies by name, each value
    naming a `backend/server` (from the configuration with `-f`; empty without it: then any
    Set-Cookie is taken as the persistence cookie), and the server headers to look for."""

    cookie_servers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    server_headers: tuple[str, ...] = SERVER_HEADERS


def parse_head(head: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """An HTTP/1 response head (status line and header lines) as (status, reason, headers).
    Raises ValueError when it is not one."""
    lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: (.*))?", lines[0])
    if not match:
        raise ValueError(f"not an HTTP response: {lines[0][:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"a malformed header line: {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    return int(match.group(1)), match.group(2) or "", tuple(headers)


def set_cookies(values: list[str]) -> dict[str, str]:
    """The NAME=VALUE pairs of Set-Cookie header values (attributes dropped; a cookie set
    to an empty value, as a deletion is, is left out)."""
    jar: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.split(";", 1)[0].partition("=")
        if sep and name.strip() and rest.strip():
            jar[name.strip()] = rest.strip()
    return jar


def cookie_header(jar: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def parse_cookie_header(text: str) -> dict[str, str]:
    jar: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            jar[name.strip()] = value.strip()
    return jar
