"""One peers session after the handshake, and the handshake itself, pure (HAProxy 2.6's
src/peers.c as the reference): bytes from the peer go in, the bytes to answer come out,
and what the peer teaches is written into the stick tables.

The accepting side reads three lines ("HAProxyS 2.1", the name the caller thinks we have,
"<its name> <pid> <relative pid>") and answers a status line: 200, or 501 (not the
protocol), 502 (another version), 503 (we are not the peer it calls), 504 (a peer this
section does not have). Then both sides send messages: a table's definition before its
updates, acknowledgements, heartbeats, and the resync request a starting node sends, which
the other answers with every entry it has ("a lesson") and a "finished" message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from poise.config.model_stick import DATA_TYPES
from poise.core.peers import wire
from poise.core.peers.wire import Definition, Malformed
from poise.core.sticktable import Entry, FreqCtr, Key, Table

_U32 = 0xFFFF_FFFF
_MASKS = {"uint": _U32, "ull": (1 << 64) - 1}
# Data HAProxy keeps to each node and never takes from a peer (stick_table.c: is_local).
LOCAL_DATA = frozenset({"conn_cur"})


class Closed(Exception):
    """The session must end: `reply` is the last thing to send (an error message or a
    status line), `reason` says why for the log."""

    def __init__(self, reason: str, reply: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def read_line(buffer: bytearray) -> str | None:
    """The next handshake line, taken from the buffer (None: not all there yet)."""
    end = buffer.find(b"\n")
    if end < 0:
        if len(buffer) > wire.MAX_LINE:
            raise Closed("handshake line too long", wire.status(wire.ERR_PROTO))
        return None
    line = bytes(buffer[:end]).rstrip(b"\r").decode("latin-1")
    del buffer[: end + 1]
    return line


def check_hello(lines: list[str], local: str, known: Iterable[str]) -> str | None:
    """The caller's lines read so far, checked as each arrives (HAProxy answers a wrong
    first line without waiting for the others): the caller's name once all three are
    there, None before; Closed with HAProxy's status."""
    version = lines[0]
    if not version.startswith("HAProxyS "):
        raise Closed("not the peers protocol", wire.status(wire.ERR_PROTO))
    major, dot, minor = version[9:].partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise Closed(f"bad version '{version[9:]}'", wire.status(wire.ERR_VERSION))
    if int(major) != wire.VERSION[0] or int(minor) > wire.VERSION[1]:
        raise Closed(f"version {version[9:]} not supported", wire.status(wire.ERR_VERSION))
    if len(lines) < 2:
        return None
    if lines[1] != local:
        raise Closed(f"called as '{lines[1]}', not '{local}'", wire.status(wire.ERR_HOST))
    if len(lines) < 3:
        return None
    name, space, _ = lines[2].partition(" ")
    if not space:
        raise Closed("no pid after the peer's name", wire.status(wire.ERR_PROTO))
    if name not in set(known):
        raise Closed(f"unknown peer '{name}'", wire.status(wire.ERR_PEER))
    return name


@dataclass(slots=True)
class _Remote:
    """A table as the peer defined it, with ours of the same name (None: we have none,
    or a different one, and its updates are skipped as HAProxy skips them)."""

    definition: Definition
    table: Table | None
    last_get: int = 0
    acked: int = 0


class Session:
    """The message phase of one session with one peer. `tables` are the tables that
    name this `peers` section, by name; `now` is the tables' clock (ms)."""

    def __init__(self, tables: Mapping[str, Table], now: Callable[[], int]) -> None:
        self.tables = dict(tables)
        self.now = now
        self.local_ids = {name: number for number, name in enumerate(self.tables, 1)}
        self.defined: set[str] = set()
        self.current: str | None = None  # our table the last definition/switch announced
        self.remote: dict[int, _Remote] = {}
        self.remote_current: _Remote | None = None
        self.cache: dict[int, str] = {}
        self.buffer = bytearray()
        self.teach = False  # the peer asked for a resync: send every entry
        self.confirm = 0  # "finished" messages to confirm
        self.learned = False  # a resync we asked for is finished
        self.received = 0  # messages read (heartbeats included): the peer is alive
        self.heartbeats = 0  # heartbeats read
        self.updates = 0  # entries written into our tables

    # -- what the peer sends ----------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Read what arrived; the bytes to send back (acknowledgements, confirmations)."""
        self.buffer += data
        pos = 0
        out = bytearray()
        try:
            while True:
                found = wire.next_message(self.buffer, pos)
                if found is None:
                    break
                klass, kind, payload, pos = found
                self.received += 1
                out += self.message(klass, kind, payload)
        except wire.TooBig as exc:
            raise Closed(str(exc), wire.error(wire.ERR_SIZE_LIMIT)) from None
        except Malformed as exc:
            raise Closed(f"malformed message: {exc}", wire.error(wire.ERR_PROTOCOL)) from None
        del self.buffer[:pos]
        out += self.acks()
        return bytes(out)

    def message(self, klass: int, kind: int, payload: bytes) -> bytes:
        if klass == wire.CONTROL:
            if kind == wire.RESYNC_REQUEST:
                self.teach = True
            elif kind == wire.HEARTBEAT:
                self.heartbeats += 1
            elif kind in (wire.RESYNC_FINISHED, wire.RESYNC_PARTIAL):
                self.learned = True
                return wire.control(wire.RESYNC_CONFIRM)
            return b""
        if klass == wire.ERROR:
            raise Closed(f"the peer reports error {kind}")
        if klass == wire.RESERVED:
            raise Closed("reserved message class", wire.error(wire.ERR_PROTOCOL))
        if klass != wire.STICKTABLE:
            return b""
        if kind == wire.DEFINE:
            self.define(wire.read_define(payload))
        elif kind == wire.SWITCH:
            self.remote_current = self.remote.get(wire.read_switch(payload))
        elif kind in (wire.UPDATE, wire.INC_UPDATE, wire.UPDATE_TIMED, wire.INC_UPDATE_TIMED):
            self.update(kind, payload)
        return b""

    def define(self, definition: Definition) -> None:
        for number, known in list(self.remote.items()):
            if number == definition.table_id or known.definition.name == definition.name:
                del self.remote[number]
        table = self.tables.get(definition.name)
        if table is not None and (
            wire.KEY_TYPES.get(definition.key_type) != table.type
            or definition.key_size != table.config.key_size
        ):
            table = None  # HAProxy ignores a table of another type or key size
        self.remote_current = self.remote[definition.table_id] = _Remote(definition, table)

    def update(self, kind: int, payload: bytes) -> None:
        remote = self.remote_current
        if remote is None:
            return
        definition = remote.definition
        if definition.key_type not in wire.KEY_TYPES:
            return
        found = wire.read_update(kind, payload, definition, self.cache)
        remote.last_get = found.update_id if found.update_id is not None else remote.last_get + 1
        if remote.table is not None:
            apply(remote.table, found, self.now())
            self.updates += 1

    def acks(self) -> bytes:
        out = bytearray()
        for number, remote in self.remote.items():
            if remote.last_get != remote.acked:
                out += wire.ack(number, remote.last_get)
                remote.acked = remote.last_get
        return bytes(out)

    # -- what we send -----------------------------------------------------------------

    def push(self, name: str, entries: Iterable[tuple[int, Entry]], timed: bool = False) -> bytes:
        """Updates of our table `name`: (update id, entry) each, after its definition (or
        a switch to it) when the last one announced another table."""
        table = self.tables[name]
        out = bytearray()
        if self.current != name:
            number = self.local_ids[name]
            if name in self.defined:
                out += wire.switch(number)
            else:
                config = table.config
                out += wire.define(
                    number,
                    name,
                    key=config.type,
                    key_size=config.key_size,
                    store=config.store,
                    expire=table.expire,
                )
                self.defined.add(name)
            self.current = name
        now = self.now()
        for update_id, entry in entries:
            expire = entry.expire - now if timed and table.expire else None
            out += wire.update(
                update_id,
                entry.key,
                values(table, entry, now),
                kind=table.type,
                key_size=table.config.key_size,
                expire=expire,
            )
        return bytes(out)

    def lesson(self, ids: Mapping[str, int]) -> bytes:
        """Every entry of every table (as timed updates), then "finished": the answer to
        a resync request. `ids` gives each table's last update id."""
        out = bytearray()
        for name, table in self.tables.items():
            entries = list(table.live())
            if entries:
                out += self.push(name, ((ids.get(name, 0), e) for e in entries), timed=True)
        self.teach = False
        return bytes(out) + wire.control(wire.RESYNC_FINISHED)


def values(table: Table, entry: Entry, now: int) -> list[tuple[str, wire.Value]]:
    """An entry's data in wire order, a rate as (age of its period, current, previous)."""
    found: list[tuple[str, wire.Value]] = []
    for name in sorted(entry.data, key=wire.DATA_IDS.__getitem__):
        value = entry.data[name]
        if isinstance(value, FreqCtr):
            found.append((name, ((now - value.curr_tick) & _U32, value.curr_ctr, value.prev_ctr)))
        else:
            found.append((name, value))
    return found


def apply(table: Table, found: wire.Update, now: int) -> None:
    """Write an entry a peer sent into our table, as HAProxy's peer_treat_updatemsg:
    the data our table stores are set (not `conn_cur`, which each node keeps), the entry
    expires after the table's `expire` (or the time the peer gave) and is the most recent.
    It is not marked changed: what a peer taught is not sent back."""
    key: Key = found.key
    entry = table.get(key)
    if entry is None:  # full, and nothing can go
        return
    data = entry.data
    for name, value in found.values.items():
        if name not in data or name in LOCAL_DATA:
            continue
        if isinstance(value, tuple):
            counter = FreqCtr()
            counter.curr_tick = (now - value[0]) & ~1
            counter.curr_ctr, counter.prev_ctr = value[1], value[2]
            data[name] = counter
        elif isinstance(value, str):
            data[name] = value
        else:
            kind = DATA_TYPES[name]
            data[name] = value if kind == "sint" else value & _MASKS.get(kind, _U32)
    expire = found.expire if found.expire is not None else table.expire
    entry.expire = now + expire
    table.entries.move_to_end(entry.key)
