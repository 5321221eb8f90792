"""Stick tables (configuration.txt 4.2 `stick-table`): keys and what is stored for each,
with HAProxy 2.6's expiry, its eviction of the least recently touched entries when the
table is full, and its rate counters (freq_ctr: include/haproxy/freq_ctr.h and
src/freq_ctr.c, whose arithmetic FreqCtr follows to the unit).

Pure: time is a number of milliseconds handed in by the caller (`Table.clock`, set by the
shell; 0 until then). The running tables are in TABLES by name, made once from the
configuration (install), so that a rule, a fetch and the runtime API find the same one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from poise.config.model_stick import DATA_TYPES, StickTable
from poise.core.values import Value, as_bytes, parse_ip, to_int, to_str

Key = int | str | bytes
_V4_MAPPED = 0xFFFF << 32
_U32 = 0xFFFF_FFFF
_MASKS = {"uint": _U32, "ull": (1 << 64) - 1}
# Where the clock the shell gives starts: far enough from 0 that a rate counter's first
# period is a fresh one, as with HAProxy's clock (its ticks are never near 0).
CLOCK_BASE = 1 << 32


def _zero() -> int:
    return 0


class FreqCtr:
    """A rate over a period: the events of the current period and of the previous one;
    read, the previous period counts for the part of it still within one period of now."""

    __slots__ = ("curr_ctr", "curr_tick", "prev_ctr")

    def __init__(self) -> None:
        self.curr_tick = 0  # when the current period started (even: HAProxy's lock bit)
        self.curr_ctr = 0
        self.prev_ctr = 0

    def add(self, now: int, period: int, inc: int = 1) -> None:
        """update_freq_ctr_period()."""
        if now - self.curr_tick < period:
            self.curr_ctr += inc
            return
        self.prev_ctr, self.curr_ctr = self.curr_ctr, inc
        tick = self.curr_tick + period
        if now - tick >= period:  # two periods or more went by
            self.prev_ctr = 0
            tick = now
        self.curr_tick = tick & ~1

    def read(self, now: int, period: int) -> int:
        """read_freq_ctr_period(): freq_ctr_total(..., -1) / period."""
        curr, past = self.curr_ctr, self.prev_ctr
        remain = self.curr_tick + period - now
        if remain < 0:
            remain += period
            past = curr if remain >= 0 else 0
            curr = 0
        if not curr and past <= 1:  # HAProxy's correction of flapping low rates
            return past
        return (past * remain + curr * period) // period


# A stored datum: a counter, a rate, or a server's name (`server_key`, "" when unset).
Datum = int | FreqCtr | str


class Entry:
    """One key's data: integers, and a FreqCtr for each rate. `refs` counts the stick
    counters tracking it (an entry tracked is never expired or evicted)."""

    __slots__ = ("data", "expire", "key", "refs", "serial")

    def __init__(self, key: Key, data: dict[str, Datum], expire: int, serial: int) -> None:
        self.key = key
        self.data = data
        self.expire = expire
        self.refs = 0
        self.serial = serial  # what `show table` prints where HAProxy prints the address


class Table:
    """A running stick table."""

    __slots__ = (
        "changed",
        "clock",
        "config",
        "counters",
        "entries",
        "expire",
        "name",
        "periods",
        "serial",
        "size",
        "type",
    )

    def __init__(self, config: StickTable, clock: Callable[[], int] = _zero) -> None:
        self.config = config
        self.name = config.name
        self.type = config.type
        self.size = config.size
        self.clock = clock
        self.periods = dict(config.store)  # data type -> period (0: not a rate)
        self.expire = config.expire or 0
        # What `add` counts for each event, worked out once: the counter and the rate it
        # stores (None: not stored), and the rate's period. Events not stored are absent.
        self.counters: dict[str, tuple[str | None, str | None, int]] = {}
        for event in ("conn", "sess", "http_req", "http_err", "http_fail", "bytes_in", "bytes_out"):
            count, rate = event + "_cnt", event + "_rate"
            found = (
                count if count in self.periods else None,
                rate if rate in self.periods else None,
                self.periods.get(rate, 0),
            )
            if found[0] or found[1]:
                self.counters[event] = found
        # Least recently touched first: the order HAProxy's expiry tree gives them.
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.serial = 0
        # The entries touched since the peers last took them (core/peers): a dict only
        # when a `peers` section shares the table, so other tables pay one test.
        self.changed: dict[Key, Entry] | None = None

    # -- keys ------------------------------------------------------------------------------

    def key(self, value: Value) -> Key | None:
        """A sample's value as a key of this table (HAProxy's cast to the table's type),
        None when it has none (an IPv6 address in a `type ip` table)."""
        kind = self.type
        if kind in ("ip", "ipv6"):
            ip = value if isinstance(value, tuple) else None
            if ip is None:
                ip = parse_ip(value) if isinstance(value, str) else None
                if ip is None and not isinstance(value, str):
                    number = to_int(value)
                    ip = (4, number & _U32) if number is not None else None
            if ip is None:
                return None
            version, number = ip
            if kind == "ipv6":
                return number | _V4_MAPPED if version == 4 else number
            if version == 4:
                return number
            return number & _U32 if number >> 32 == 0xFFFF else None
        if kind == "integer":
            number = to_int(value)
            return None if number is None else number & _U32
        size = self.config.key_size
        if kind == "string":
            return to_str(value)[: size - 1]
        text = as_bytes(value) if isinstance(value, str) else to_str(value)
        return text.encode("latin-1", "replace")[:size].ljust(size, b"\0")

    def parse_key(self, text: str) -> Key | None:
        """A key as the runtime API writes it (`key K`)."""
        if self.type == "binary":
            try:
                return bytes.fromhex(text)[: self.config.key_size].ljust(
                    self.config.key_size, b"\0"
                )
            except ValueError:
                return None
        if self.type == "integer":
            return int(text) & _U32 if text.lstrip("-").isdigit() else None
        if self.type in ("ip", "ipv6"):
            ip = parse_ip(text)
            if ip is None or (self.type == "ipv6" and ip[0] != 6):  # inet_pton(AF_INET6)
                return None
            return self.key(ip)
        return self.key(text)

    # -- entries ---------------------------------------------------------------------------

    def expire_at(self, now: int) -> int:
        return now + self.expire

    def lookup(self, key: Key) -> Entry | None:
        """The entry of a key, if it is there and not expired."""
        entry = self.entries.get(key)
        if entry is not None and self.expire and not entry.refs and entry.expire <= self.clock():
            self._drop(entry)
            return None
        return entry

    def get(self, key: Key) -> Entry | None:
        """The entry of a key, made when there is none (stktable_get_entry); None when the
        table is full and nothing can go (`nopurge`, or every entry tracked)."""
        entry = self.lookup(key)
        if entry is not None:
            return entry
        now = self.clock()
        self.purge(now)
        if len(self.entries) >= self.size and (
            self.config.nopurge or not self._evict((self.size >> 8) + 1)
        ):
            return None
        data: dict[str, Datum] = {
            name: FreqCtr() if period else "" if name == "server_key" else 0
            for name, period in self.config.store
        }
        self.serial += 1
        entry = self.entries[key] = Entry(key, data, self.expire_at(now), self.serial)
        return entry

    def touch(self, entry: Entry, now: int = 0) -> None:
        """The entry was used (at `now`, 0: the clock's): it expires `expire` from now and
        is the most recent."""
        entry.expire = (now or self.clock()) + self.expire
        entries = self.entries
        if entry.key in entries:  # (a `clear table` may have removed it)
            entries.move_to_end(entry.key)
            if self.changed is not None:
                self.changed[entry.key] = entry

    def remove(self, key: Key) -> bool:
        """`clear table ... key K`: False when the entry is tracked (HAProxy keeps it)."""
        entry = self.entries.get(key)
        if entry is None:
            return True
        if entry.refs:
            return False
        self._drop(entry)
        return True

    def clear(self) -> None:
        """`clear table NAME`: every entry not tracked goes."""
        for entry in [e for e in self.entries.values() if not e.refs]:
            self._drop(entry)

    def purge(self, now: int) -> None:
        """Drop the expired entries (HAProxy's expiry task)."""
        if not self.expire:
            return
        doomed = []
        for entry in self.entries.values():  # oldest first: stops at the first one alive
            if entry.expire > now:
                break
            if not entry.refs:
                doomed.append(entry)
        for entry in doomed:
            self._drop(entry)

    def live(self) -> Iterator[Entry]:
        """The entries, expired ones dropped first."""
        self.purge(self.clock())
        return iter(list(self.entries.values()))

    def used(self) -> int:
        """How many entries there are, expired ones dropped first (`table_cnt`)."""
        self.purge(self.clock())
        return len(self.entries)

    def _evict(self, count: int) -> int:
        """__stktable_trash_oldest(): up to `count` of the least recently touched entries
        not tracked, looking at no more than twice that many."""
        doomed = []
        for entry in islice(self.entries.values(), 2 * count):
            if not entry.refs:
                doomed.append(entry)
                if len(doomed) >= count:
                    break
        for entry in doomed:
            self._drop(entry)
        return len(doomed)

    def _drop(self, entry: Entry) -> None:
        self.entries.pop(entry.key, None)

    # -- data ------------------------------------------------------------------------------

    def read(self, entry: Entry, data: str) -> int | None:
        """A datum's value now (None: the table does not store it)."""
        value = entry.data.get(data)
        if value is None or isinstance(value, int):
            return value
        if isinstance(value, str):
            return None
        return value.read(self.clock(), self.periods[data])

    def add(self, entry: Entry, event: str, inc: int = 1, now: int = 0) -> None:
        """Count `inc` events in a counter and its rate (`conn`: conn_cnt, conn_rate)."""
        found = self.counters.get(event)
        if found is None:
            return
        count_name, rate_name, period = found
        data = entry.data
        if count_name is not None:
            count = data[count_name]
            assert isinstance(count, int)
            data[count_name] = count + inc
        if rate_name is not None:
            rate = data[rate_name]
            assert isinstance(rate, FreqCtr)
            rate.add(now or self.clock(), period, inc)

    def set(self, entry: Entry, data: str, value: int) -> None:
        """`set table ... data.X V`: an integer is set, a rate gets V events now."""
        current = entry.data.get(data)
        if isinstance(current, FreqCtr):
            fresh = FreqCtr()  # HAProxy: curr_ctr = V (an unsigned 32-bit), prev_ctr = 0
            fresh.add(self.clock(), self.periods[data], value & _U32)
            entry.data[data] = fresh
        elif isinstance(current, int):
            kind = DATA_TYPES[data]
            entry.data[data] = value if kind == "sint" else value & _MASKS[kind]


TABLES: dict[str, Table] = {}


def install(tables: Iterable[StickTable], clock: Callable[[], int]) -> None:
    """The running tables of a configuration (its proxies' `stick-table` lines)."""
    TABLES.clear()
    for config in tables:
        TABLES[config.name] = Table(config, clock)
