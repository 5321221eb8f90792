"""The bytes of HAProxy's peers protocol 2.1 (HAProxy 2.6's src/peers.c, whose
doc/peers-v2.0.txt is older): the handshake lines, the varint that every number uses, the
message frame (class, type, and for stick-table messages a varint length), and the
stick-table messages (definition, update, acknowledgement). Pure: bytes in, values out.

Verified against HAProxy 2.6.12 (tests/e2e/test_peers.py): a `define` names the table with
its key type, key size, the bit field of its data types (their numbers are the order of
model_stick.DATA_TYPES), the expiry, then each rate's period; an update carries the key
and each datum the definition announced, a rate as (ms since its period began, current
count, previous count); `server_key` travels through a per-session dictionary cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poise.config.model_stick import DATA_TYPES, DataKind, KeyType

PROTOCOL = b"HAProxyS"
VERSION = (2, 1)
# Handshake status codes (peers.c PEER_SESS_SC_*).
SUCCESS, TRY_AGAIN, ERR_PROTO, ERR_VERSION, ERR_HOST, ERR_PEER = 200, 300, 501, 502, 503, 504

# Message classes and types.
CONTROL, ERROR, STICKTABLE, RESERVED = 0, 1, 10, 255
RESYNC_REQUEST, RESYNC_FINISHED, RESYNC_PARTIAL, RESYNC_CONFIRM, HEARTBEAT = 0, 1, 2, 3, 4
ERR_PROTOCOL, ERR_SIZE_LIMIT = 0, 1
UPDATE, INC_UPDATE, DEFINE, SWITCH, ACK, UPDATE_TIMED, INC_UPDATE_TIMED = range(0x80, 0x87)
# The largest message HAProxy accepts: its trash buffer, tune.bufsize (16384).
MAX_MESSAGE = 16384
# The longest handshake line HAProxy reads (its trash buffer too).
MAX_LINE = 16384

# Key types on the wire (peers.c PEER_KT_*).
WIRE_KEY_TYPES: dict[KeyType, int] = {"integer": 2, "ip": 4, "ipv6": 5, "string": 6, "binary": 7}
KEY_TYPES = {number: name for name, number in WIRE_KEY_TYPES.items()}
DATA_IDS = {name: number for number, name in enumerate(DATA_TYPES)}
_U64 = (1 << 64) - 1
_U32 = 0xFFFF_FFFF


class Malformed(ValueError):
    """A message that cannot be read: the session ends with a protocol error."""


class TooBig(ValueError):
    """A message longer than HAProxy's buffer: the session ends with a size-limit error."""


def varint(number: int) -> bytes:
    """intencode(): below 240 one byte; else 4 bits in the first byte (with 0xf0 set),
    then 7 bits a byte, the high bit set on every byte but the last."""
    number &= _U64
    if number < 0xF0:
        return bytes((number,))
    out = bytearray(((number | 0xF0) & 0xFF,))
    number = (number - 0xF0) >> 4
    while number >= 0x80:
        out.append((number | 0x80) & 0xFF)
        number = (number - 0x80) >> 7
    out.append(number)
    return bytes(out)


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """intdecode(): (value, position after it); Malformed when it runs past `end`."""
    if pos >= end:
        raise Malformed("truncated number")
    value = data[pos]
    pos += 1
    if value >= 0xF0:
        shift = 4
        while True:
            if pos >= end or shift > 70:
                raise Malformed("truncated number")
            byte = data[pos]
            pos += 1
            value += byte << shift
            shift += 7
            if byte < 0x80:
                break
    return value & _U64, pos


def hello(remote: str, local: str, pid: int) -> bytes:
    """What the connecting side sends: protocol and version, the name of the peer it
    calls, its own name, its pid and relative pid (always 1 since HAProxy 2.0)."""
    return f"HAProxyS {VERSION[0]}.{VERSION[1]}\n{remote}\n{local} {pid} 1\n".encode()


def status(code: int) -> bytes:
    return f"{code}\n".encode()


def control(kind: int) -> bytes:
    return bytes((CONTROL, kind))


def error(kind: int) -> bytes:
    return bytes((ERROR, kind))


def frame(kind: int, payload: bytes) -> bytes:
    """A stick-table message: class, type, length, payload."""
    return bytes((STICKTABLE, kind)) + varint(len(payload)) + payload


def next_message(data: bytes | bytearray, pos: int) -> tuple[int, int, bytes, int] | None:
    """The message at `pos`: (class, type, payload, position after it), None when it is
    not all there yet. TooBig or Malformed end the session as HAProxy ends it."""
    if len(data) - pos < 2:
        return None
    klass, kind = data[pos], data[pos + 1]
    if not kind & 0x80:
        return klass, kind, b"", pos + 2
    head = bytes(data[pos + 2 : pos + 7])
    try:
        length, used = read_varint(head, 0, len(head))
    except Malformed:
        if len(head) < 5:
            return None
        raise
    if length > MAX_MESSAGE:
        raise TooBig(f"a message of {length} bytes")
    start = pos + 2 + used
    if len(data) - start < length:
        return None
    return klass, kind, bytes(data[start : start + length]), start + length


# --- stick-table definitions ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Definition:
    """A table as a peer announces it: its id on that peer's side, its name, key type
    and size, the data it sends in its updates (names, in wire order) and their periods."""

    table_id: int
    name: str
    key_type: int
    key_size: int
    data: tuple[str, ...]
    expire: int = 0
    periods: dict[str, int] = field(default_factory=dict)


def define(
    table_id: int,
    name: str,
    *,
    key: KeyType,
    key_size: int,
    store: tuple[tuple[str, int], ...],
    expire: int,
) -> bytes:
    """The definition of one of our tables (the rates' periods follow the expiry)."""
    bits = 0
    params = bytearray()
    for data, period in sorted(store, key=lambda item: DATA_IDS[item[0]]):
        bits |= 1 << DATA_IDS[data]
        if DATA_TYPES[data] == "rate":
            params += varint(DATA_IDS[data]) + varint(period)
    raw = name.encode()
    body = varint(table_id) + varint(len(raw)) + raw + varint(WIRE_KEY_TYPES[key])
    body += varint(key_size) + varint(bits) + varint(expire) + bytes(params)
    return frame(DEFINE, body)


def read_define(payload: bytes) -> Definition:
    end = len(payload)
    table_id, pos = read_varint(payload, 0, end)
    length, pos = read_varint(payload, pos, end)
    if not length or pos + length >= end:
        raise Malformed("table name")
    name = payload[pos : pos + length].decode("latin-1")
    pos += length
    key_type, pos = read_varint(payload, pos, end)
    key_size, pos = read_varint(payload, pos, end)
    bits, pos = read_varint(payload, pos, end)
    names = tuple(name for name, number in DATA_IDS.items() if bits >> number & 1)
    if bits >> len(DATA_IDS):
        # A data type poise does not know (the gpt/gpc arrays): its size is unknown, so
        # the table's updates cannot be read; HAProxy ignores such a table too.
        return Definition(table_id, name, -1, key_size, names)
    expire = 0
    periods: dict[str, int] = {}
    if pos < end:
        expire, pos = read_varint(payload, pos, end)
        for data in names:
            if DATA_TYPES[data] == "rate":
                number, pos = read_varint(payload, pos, end)
                if number != DATA_IDS[data]:
                    raise Malformed("rate parameters")
                periods[data], pos = read_varint(payload, pos, end)
    return Definition(table_id, name, key_type, key_size, names, expire, periods)


def ack(table_id: int, update: int) -> bytes:
    """Acknowledge the updates up to `update` of the peer's table `table_id`."""
    return frame(ACK, varint(table_id) + (update & _U32).to_bytes(4, "big"))


def read_ack(payload: bytes) -> tuple[int, int]:
    table_id, pos = read_varint(payload, 0, len(payload))
    if len(payload) - pos < 4:
        raise Malformed("acknowledgement")
    return table_id, int.from_bytes(payload[pos : pos + 4], "big")


def switch(table_id: int) -> bytes:
    return frame(SWITCH, varint(table_id))


def read_switch(payload: bytes) -> int:
    return read_varint(payload, 0, len(payload))[0]


# --- keys and data ---------------------------------------------------------------------

Key = int | str | bytes
Value = int | str | tuple[int, int, int]


def encode_key(kind: KeyType, key_size: int, key: Key) -> bytes:
    if kind == "string":
        raw = str(key).encode("utf-8", "surrogateescape")
        return varint(len(raw)) + raw
    if kind in ("ip", "integer"):
        return (int(key) & _U32).to_bytes(4, "big")
    if kind == "ipv6":
        return int(key).to_bytes(16, "big")
    return bytes(key).ljust(key_size, b"\0")[:key_size] if isinstance(key, bytes) else b""


def decode_key(kind: KeyType, key_size: int, data: bytes, pos: int) -> tuple[Key, int]:
    end = len(data)
    if kind == "string":
        length, pos = read_varint(data, pos, end)
        keep = min(length, key_size - 1)
        if pos + keep > end:
            raise Malformed("key")
        return data[pos : pos + keep].decode("utf-8", "surrogateescape"), pos + length
    size = {"ip": 4, "integer": 4, "ipv6": 16}.get(kind, key_size)
    if pos + size > end:
        raise Malformed("key")
    raw = data[pos : pos + size]
    return (raw if kind == "binary" else int.from_bytes(raw, "big")), pos + size


def kind_of(data: str) -> DataKind:
    return DATA_TYPES[data]


@dataclass(slots=True)
class Update:
    """One entry as an update carries it: values by datum, a rate as (age of its period
    in ms, current count, previous count), `server_key` as its text."""

    update_id: int | None
    expire: int | None
    key: Key
    values: dict[str, Value]


def update(
    update_id: int,
    key: Key,
    values: list[tuple[str, Value]],
    *,
    kind: KeyType,
    key_size: int,
    expire: int | None = None,
) -> bytes:
    """An update with its id (`expire`: the ms left, for a timed one, as in a lesson)."""
    body = bytearray((update_id & _U32).to_bytes(4, "big"))
    if expire is not None:
        body += (max(0, expire) & _U32).to_bytes(4, "big")
    body += encode_key(kind, key_size, key)
    for _, value in values:
        if isinstance(value, tuple):
            body += varint(value[0] & _U32) + varint(value[1] & _U32) + varint(value[2] & _U32)
        elif isinstance(value, str):
            if not value:
                body += varint(0)
                continue
            raw = value.encode()
            # Always entry 1 of the peer's dictionary cache, with its value: valid for
            # HAProxy's reader, which stores each value it is given under its id.
            entry = varint(1) + varint(len(raw)) + raw
            body += varint(len(entry)) + entry
        else:
            body += varint(value)
    return frame(UPDATE_TIMED if expire is not None else UPDATE, bytes(body))


def read_update(
    kind: int,
    payload: bytes,
    definition: Definition,
    cache: dict[int, str],
) -> Update:
    """An update of a table the peer defined (`definition`: its key and data, in that
    order). `cache` is the session's dictionary of `server_key` values by id."""
    key_type = KEY_TYPES.get(definition.key_type)
    if key_type is None:
        raise Malformed("update of a table of unknown key type")
    key_size, data = definition.key_size, definition.data
    end = len(payload)
    pos = 0
    update_id: int | None = None
    expire: int | None = None
    if kind in (UPDATE, UPDATE_TIMED):
        if end < 4:
            raise Malformed("update id")
        update_id, pos = int.from_bytes(payload[:4], "big"), 4
    if kind in (UPDATE_TIMED, INC_UPDATE_TIMED):
        if end - pos < 4:
            raise Malformed("expiry")
        expire = int.from_bytes(payload[pos : pos + 4], "big", signed=True)
        pos += 4
    key, pos = decode_key(key_type, key_size, payload, pos)
    values: dict[str, Value] = {}
    for name in data:
        number, pos = read_varint(payload, pos, end)
        datum = DATA_TYPES[name]
        if datum == "rate":
            current, pos = read_varint(payload, pos, end)
            previous, pos = read_varint(payload, pos, end)
            values[name] = (number & _U32, current & _U32, previous & _U32)
        elif datum == "dict":
            values[name] = _read_dict(payload, pos, number, cache) if number else ""
            pos += number
        elif datum == "sint":
            number &= _U32
            values[name] = number - (1 << 32) if number >> 31 else number
        else:
            values[name] = number & (_U32 if datum == "uint" else _U64)
    return Update(update_id, expire, key, values)


def _read_dict(payload: bytes, pos: int, length: int, cache: dict[int, str]) -> str:
    end = pos + length
    if end > len(payload):
        raise Malformed("dictionary entry")
    ident, pos = read_varint(payload, pos, end)
    if not ident or ident > 128:
        raise Malformed("dictionary entry id")
    if pos == end:
        if ident not in cache:
            raise Malformed("unknown dictionary entry")
        return cache[ident]
    size, pos = read_varint(payload, pos, end)
    if pos + size > end:
        raise Malformed("dictionary entry")
    text = payload[pos : pos + size].decode("utf-8", "replace")
    cache[ident] = text
    return text
