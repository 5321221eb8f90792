"""Sample fetches that read the process rather than the request (configuration.txt 7.3.2:
`date`, `env`, `rand`, `uuid`, and the backends' state: `nbsrv`, `be_conn`, `queue`,
`avg_queue`, `connslots`, `srv_is_up`), and those of 7.3.6 that hash or cut the URL
(`base32`, `url_ip`, `url_port`). Each is a function of (request, response) giving one
value or None, as core/fetch.py's simple fetches. Values compared with HAProxy 2.6.12.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Sequence

from poise.core import proc
from poise.core.balancer import hashfn
from poise.core.http.message import Request, Response
from poise.core.values import Ip, Value, parse_ip

Get = Callable[[Request, Response | None], Value | None]
_UNITS = {"s": 1, "ms": 1000, "us": 1_000_000}


def _date(args: Sequence[str]) -> Get:
    offset = int(args[0]) if args and args[0] else 0
    scale = _UNITS[args[1]] if len(args) > 1 and args[1] else 1
    return lambda req, resp: int(proc.clock() * scale) + offset


def _env(args: Sequence[str]) -> Get:
    name = args[0] if args else ""
    return lambda req, resp: proc.environ.get(name)


def _rand(args: Sequence[str]) -> Get:
    span = int(args[0]) if args else 1 << 32
    return lambda req, resp: random.randrange(span) if span > 0 else 0


def _backend(args: Sequence[str]) -> Callable[[], proc.BackendView | None]:
    name = args[0] if args else ""
    return lambda: proc.BACKENDS.get(name)


def _usable(backend: proc.BackendView) -> int:
    """HAProxy's usable servers: the active ones up, else the backups."""
    active = sum(1 for s in backend.servers if s.usable and not s.backup)
    return active or sum(1 for s in backend.servers if s.usable and s.backup)


def _queue(backend: proc.BackendView) -> int:
    return backend.queued + sum(s.queued for s in backend.servers)


def _avg_queue(backend: proc.BackendView) -> int:
    """The queue per usable server, rounded up; twice the queue when none is usable."""
    active = sum(1 for s in backend.servers if s.usable and not s.backup)
    queued = _queue(backend)
    return (queued + active - 1) // active if active else 2 * queued


def _connslots(backend: proc.BackendView) -> int:
    """Free connection and queue slots of the servers up; -1 when one has no limit."""
    total = 0
    for server in backend.servers:
        if not server.up or server.in_maint:
            continue
        if not server.maxconn or not server.maxqueue:
            return -1
        total += server.maxconn - server.cur_sess + server.maxqueue - server.queued
    return total


def _of_backend(read: Callable[[proc.BackendView], Value]) -> Callable[[Sequence[str]], Get]:
    def make(args: Sequence[str]) -> Get:
        find = _backend(args)

        def get(req: Request, resp: Response | None) -> Value | None:
            backend = find()
            return read(backend) if backend is not None else None

        return get

    return make


def _srv_is_up(args: Sequence[str]) -> Get:
    backend_name, _, server_name = args[0].rpartition("/")

    def get(req: Request, resp: Response | None) -> Value | None:
        backend = proc.BACKENDS.get(backend_name)
        if backend is None:
            return None
        for server in backend.servers:
            if server.name == server_name:
                return server.up and not server.in_maint
        return None

    return get


# HAProxy 2.6's url2sa: `http://` or `https://` (any case), then an IPv4 literal read as its
# url2ipv4 reads one (the run of digits and dots, four octets of at most 255, leading zeros
# allowed); a host name, an IPv6 literal or user info gives nothing. A `:` right after the
# address starts the port, its leading digits (none: 0) kept to 16 bits; else 80 or 443.
_URL_V4 = re.compile(r"(https?)://([0-9.]*)(?::([0-9]*))?", re.IGNORECASE)


def _url_address(uri: str) -> tuple[Ip, int] | None:
    found = _URL_V4.match(uri)
    if found is None:
        return None
    scheme, host, port = found.groups()
    octets = host.split(".")
    if len(octets) != 4 or any(not octet or int(octet) > 255 for octet in octets):
        return None
    ip = parse_ip(".".join(str(int(octet)) for octet in octets))
    if ip is None:
        return None
    if port is None:
        return ip, 443 if len(scheme) == 5 else 80
    return ip, int(port or 0) & 0xFFFF


def _url_ip(req: Request, resp: Response | None) -> Value | None:
    found = _url_address(req.uri)
    return found[0] if found is not None else None


def _url_port(req: Request, resp: Response | None) -> Value | None:
    found = _url_address(req.uri)
    return found[1] if found is not None else None


def base32(base: Callable[[Request], str | None]) -> Get:
    """`base,sdbm(1)` (configuration.txt: "exactly equal")."""

    def get(req: Request, resp: Response | None) -> Value | None:
        text = base(req)
        if text is None:
            return None
        return hashfn.full_hash(hashfn.sdbm(text.encode("latin-1", "replace")))

    return get


def _auth_bearer(args: Sequence[str]) -> Get:
    """`http_auth_bearer([HEADER])`, as HAProxy 2.6's smp_fetch_http_auth_bearer reads the
    first value of the header: with HEADER, the token after `Bearer ` ("" when there is
    none); without, that of Authorization, whose scheme HAProxy compares as a prefix
    (strncasecmp over the scheme's length: `Bea` is Bearer, `B` is Basic), and no value
    unless the scheme is Bearer."""
    header = args[0] if args and args[0] else None

    def get(req: Request, resp: Response | None) -> Value | None:
        values = req.headers.values(header or "authorization")
        if header is not None:
            scheme, _, token = values[0].partition(" ") if values else ("", "", "")
            token = token.lstrip(" ")
            return token if scheme.lower() == "bearer" and token else ""
        if not values or (space := values[0].find(" ")) <= 0:
            return None
        scheme = values[0][:space].lower()
        if "basic".startswith(scheme) or not "bearer".startswith(scheme):
            return None
        return values[0][space:].lstrip(" ")

    return get


MAKERS: dict[str, Callable[[Sequence[str]], Get]] = {
    "date": _date,
    "env": _env,
    "rand": _rand,
    "uuid": lambda args: lambda req, resp: str(uuid.uuid4()),
    "nbsrv": _of_backend(_usable),
    "be_conn": _of_backend(lambda backend: backend.cur_sess),
    "queue": _of_backend(_queue),
    "avg_queue": _of_backend(_avg_queue),
    "connslots": _of_backend(_connslots),
    "srv_is_up": _srv_is_up,
    "url_ip": lambda args: _url_ip,
    "url_port": lambda args: _url_port,
    "http_auth_bearer": _auth_bearer,
}
