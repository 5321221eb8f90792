"""What layer-4 fetches read in the first bytes of a connection (configuration.txt 7.3.5):
`req.len`, `req.payload`, `req.payload_lv`, the TLS ClientHello's type, version, server name
and ALPN protocols (`req.ssl_hello_type`, `req.ssl_ver`, `req.ssl_sni`, `req.ssl_alpn`),
whether the bytes are an HTTP request (`req.proto_http`), the RDP cookie, and the same on
the response side (`res.len`, `res.payload`, `res.payload_lv`, `res.ssl_hello_type`).

Each reader is a function of the bytes held so far giving a value, None (no value: the
bytes are not what the fetch reads, and more of them will not change that) or MORE (the
bytes so far are too short to tell: HAProxy's SMP_F_MAY_CHANGE, on which a content rule
waits until inspect-delay ends). Malformed input is "no value", never an exception.

The ClientHello is read as RFC 8446 4.1.2 (and RFC 5246 7.4.1.2) lays it out: a TLS
record (type 22, version, length), a handshake header (type 1, 24-bit length), the client
version, 32 random bytes, then the session id, cipher suites and compression methods,
each after its length, then the extensions (RFC 6066 3 server_name, type 0; RFC 7301
3.1 ALPN, type 16). Like HAProxy, the whole handshake message must be in the first record.
Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING

from poise.core import rdp_cookie

if TYPE_CHECKING:
    from poise.core.http.message import Request, Response
    from poise.core.values import Value


class More(Enum):
    MORE = "more"


MORE = More.MORE
Found = str | int | bool | tuple[str, ...] | None | More
Reader = Callable[[bytes], Found]

HANDSHAKE = 22  # TLS record type (RFC 8446 5.1)
_NONE: tuple[Value, ...] = ()


class Held:
    """The bytes a session holds for its content rules (on its Conn record, core/txn.py,
    while they run): the request's first bytes, the response's, whether they are final
    (inspect-delay over, the peer closed, the buffer full), and whether a fetch found them
    too short to tell (`missing`: the rule waits for more)."""

    __slots__ = ("final", "missing", "req", "res")

    def __init__(self) -> None:
        self.req = b""
        self.res = b""
        self.final = False
        self.missing = False


SERVER_NAME = 0  # extension type (RFC 6066 3)
ALPN = 16  # extension type (RFC 7301 3.1)


def length(data: bytes) -> Found:
    return len(data)


def payload(offset: int, size: int) -> Reader:
    """`payload(OFFSET,LENGTH)`: LENGTH bytes from OFFSET (0: all from OFFSET on), as
    latin-1 text (one character per byte, as poise holds binary samples)."""

    def read(data: bytes) -> Found:
        end = offset + size if size else len(data)
        if end > len(data) or offset > len(data):
            return MORE
        return data[offset:end].decode("latin-1")

    return read


def payload_lv(offset1: int, size: int, offset2: str | None) -> Reader:
    """`payload_lv(OFFSET1,LENGTH[,OFFSET2])`: the block whose length is the LENGTH-byte
    big-endian number at OFFSET1; it starts right after that number, or at OFFSET2
    (absolute, or relative to that point when written with a sign)."""
    after = offset1 + size
    if offset2 is None or offset2 == "":
        start = after
    elif offset2[0] in "+-":
        start = after + int(offset2)
    else:
        start = int(offset2)

    def read(data: bytes) -> Found:
        if after > len(data):
            return MORE
        block = int.from_bytes(data[offset1:after], "big")
        if start < 0:
            return None
        if start + block > len(data):
            return MORE
        return data[start : start + block].decode("latin-1")

    return read


# --- TLS -----------------------------------------------------------------------------------


def _handshake(data: bytes) -> bytes | More | None:
    """The first handshake message of a TLS stream (its header included), None when the
    bytes are not one, MORE when they could still become one."""
    if not data:
        return MORE
    if data[0] != HANDSHAKE:
        return None
    if len(data) < 9:
        return MORE
    if data[1] < 3:  # SSLv3 and later only
        return None
    record = (data[3] << 8) | data[4]
    if record < 4:
        return None
    size = (data[6] << 16) | (data[7] << 8) | data[8]
    if size + 4 > record:  # the message must be whole within the first record
        return None
    if len(data) < 9 + size:
        return MORE
    return data[5 : 9 + size]


def hello_type(data: bytes) -> Found:
    """`req.ssl_hello_type`: the type of the first handshake message (1: ClientHello,
    2: ServerHello) once it is whole."""
    message = _handshake(data)
    if message is None or message is MORE:
        return message
    assert isinstance(message, bytes)
    return message[0]


def version(data: bytes) -> Found:
    """`req.ssl_ver`: the record's protocol version as MAJOR * 65536 + MINOR (TLS 1.0 is
    3.1), from an SSLv3-style record or an SSLv2 ClientHello."""
    if len(data) < 5:
        return MORE
    if data[0] & 0x80:  # SSLv2: 2-byte length, type 1 (client hello), version
        if data[2] != 1:
            return None
        return (data[3] << 16) | data[4]
    if data[0] not in (20, 21, 22, 23):
        return None
    found = (data[1] << 16) | data[2]
    record = (data[3] << 8) | data[4]
    if found < 0x30000 or not 1 <= record <= (1 << 14) + 2048:
        return None
    return found


def _extensions(data: bytes) -> dict[int, bytes] | More | None:
    """The extensions of a whole ClientHello, by type."""
    message = _handshake(data)
    if message is None or message is MORE:
        return message
    assert isinstance(message, bytes)
    if message[0] != 1:
        return None
    at = 4 + 2 + 32  # handshake header, client version, random
    try:
        at += 1 + message[at]  # session id
        at += 2 + int.from_bytes(message[at : at + 2], "big")  # cipher suites
        at += 1 + message[at]  # compression methods
        if at + 2 > len(message):
            return {}  # no extensions (allowed before TLS 1.3)
        end = at + 2 + int.from_bytes(message[at : at + 2], "big")
        at += 2
        if end > len(message):
            return None
        found: dict[int, bytes] = {}
        while at + 4 <= end:
            kind = int.from_bytes(message[at : at + 2], "big")
            size = int.from_bytes(message[at + 2 : at + 4], "big")
            if at + 4 + size > end:
                return None
            found.setdefault(kind, message[at + 4 : at + 4 + size])
            at += 4 + size
    except IndexError:
        return None
    return found


def sni(data: bytes) -> Found:
    """`req.ssl_sni`: the host_name of the server_name extension (RFC 6066 3)."""
    extensions = _extensions(data)
    if extensions is None or extensions is MORE:
        return extensions
    assert isinstance(extensions, dict)
    body = extensions.get(SERVER_NAME)
    if body is None or len(body) < 5:
        return None
    at, end = 2, min(len(body), 2 + int.from_bytes(body[:2], "big"))
    while at + 3 <= end:
        kind, size = body[at], int.from_bytes(body[at + 1 : at + 3], "big")
        if kind == 0 and at + 3 + size <= end:
            return body[at + 3 : at + 3 + size].decode("latin-1")
        at += 3 + size
    return None


def alpn(data: bytes) -> Found:
    """`req.ssl_alpn`: the protocols the client offers, in its order (RFC 7301 3.1)."""
    extensions = _extensions(data)
    if extensions is None or extensions is MORE:
        return extensions
    assert isinstance(extensions, dict)
    body = extensions.get(ALPN)
    if body is None or len(body) < 3:
        return None
    names: list[str] = []
    at, end = 2, min(len(body), 2 + int.from_bytes(body[:2], "big"))
    while at < end:
        size = body[at]
        if not size or at + 1 + size > end:
            return None
        names.append(body[at + 1 : at + 1 + size].decode("latin-1"))
        at += 1 + size
    return tuple(names) or None


# --- HTTP and RDP --------------------------------------------------------------------------

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def proto_http(data: bytes) -> Found:
    """`req.proto_http`: whether the bytes start with a whole HTTP/1 request head (RFC 9112
    3: METHOD SP TARGET SP HTTP/x.y, then header fields with a colon, then an empty
    line); MORE while a head could still be coming."""
    end = data.find(b"\r\n\r\n")
    head = data[:end] if end >= 0 else data
    line, _, fields = head.partition(b"\r\n")
    method, _, rest = line.partition(b" ")
    if not method or not all(byte in _TOKEN for byte in method[:32]):
        return False if (method or rest) else MORE
    if end < 0:
        return MORE if len(data) < 16384 else False
    target, _, proto = rest.rpartition(b" ")
    if not target or len(proto) != 8 or not proto.startswith(b"HTTP/"):
        return False
    for field in fields.split(b"\r\n") if fields else ():
        name, colon, _ = field.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t"):
            return False
    return True


def rdp(name: str | None, count: bool) -> Reader:
    """`req.rdp_cookie([NAME])` (the value) and `req.rdp_cookie_cnt([NAME])` (0 or 1: the
    parser reads the first cookie only, as HAProxy's)."""

    def read(data: bytes) -> Found:
        found = rdp_cookie.rdp_cookie(data, name)
        if found is rdp_cookie.INCOMPLETE:
            return MORE
        if found is rdp_cookie.NOT_FOUND:
            return 0 if count else None
        assert isinstance(found, bytes)
        return 1 if count else found.decode("latin-1")

    return read


# --- the fetches ---------------------------------------------------------------------------

Values = Callable[["Request", "Response | None"], Sequence["Value"]]


def _reader(name: str, args: tuple[str, ...]) -> Reader | None:
    kind = name.partition(".")[2]
    if kind == "payload":
        return payload(int(args[0]), int(args[1]))
    if kind == "payload_lv":
        return payload_lv(int(args[0]), int(args[1]), args[2] if len(args) > 2 else None)
    if kind in ("rdp_cookie", "rdp_cookie_cnt"):
        return rdp(args[0] if args else None, kind == "rdp_cookie_cnt")
    return {
        "len": length,
        "ssl_hello_type": hello_type,
        "ssl_sni": sni,
        "ssl_ver": version,
        "ssl_alpn": alpn,
        "proto_http": proto_http,
    }.get(kind)


def values(name: str, args: tuple[str, ...]) -> Values | None:
    """The fetch of a layer-4 sample, or None when `name` is not one. Outside a content
    rule (no bytes held: an HTTP request's rules) `req.len` is the request head's size and
    `req.proto_http` true, as HAProxy 2.6 has them in HTTP mode; the others give nothing."""
    if name == "wait_end":
        return _wait_end
    reader = _reader(name, args)
    if reader is None:
        return None
    response = name.startswith("res.")
    changing = name.endswith(".len")  # req.len and res.len may grow until final

    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        conn = req.conn
        held = conn.held if conn is not None else None
        if held is None:
            if name == "req.len":
                return (_head_length(req),)
            return (True,) if name == "req.proto_http" else _NONE
        found = reader(held.res if response else held.req)
        if found is MORE or (changing and not held.final):
            if not held.final:
                held.missing = True
            if found is MORE:
                return _NONE
        if found is None or isinstance(found, More):
            return _NONE
        return found if isinstance(found, tuple) else (found,)

    return fetch


def _wait_end(req: Request, resp: Response | None) -> Sequence[Value]:
    """`wait_end`: true once the contents are final; until then nothing, and the rule
    waits (the WAIT_END ACL)."""
    conn = req.conn
    held = conn.held if conn is not None else None
    if held is None or held.final:
        return (True,)
    held.missing = True
    return _NONE


def _head_length(req: Request) -> int:
    """HAProxy's `req.len` in HTTP mode counts the parsed request in its buffer."""
    size = len(req.method) + len(req.uri) + 13
    return size + sum(len(k) + len(v) + 4 for k, v in req.headers.items)
