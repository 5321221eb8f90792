"""The fetches that read stick tables (configuration.txt 7.3.3): `sc_X(N[,T])` and
`scN_X([T])` read the entry stick counter N tracks, `src_X([T])` the entry of the
client's address, `table_avl([T])` and `table_cnt([T])` a table's room and use. As in
HAProxy 2.6 a counter that tracks nothing, or a table that does not store what is asked,
gives no value; an address not in the table reads 0. `src_inc_gpc0`, `src_clr_gpc0` and
`src_updt_conn_cnt` make its entry. Pure; the stick counters themselves are here too (the
rules that set them are core/sticktrack.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from poise.config.stick_fetches import table_argument
from poise.core.http.message import Request, Response
from poise.core.sticktable import TABLES, Entry, Table
from poise.core.values import Value, parse_ip

COUNTERS = 3  # sc0, sc1, sc2 (MAX_SESS_STKCTR)
_NONE: tuple[Value, ...] = ()
Values = Callable[[Request, Response | None], Sequence[Value]]


class Counter:
    """A stick counter: the entry tracked and its table."""

    __slots__ = ("entry", "table")

    def __init__(self, table: Table, entry: Entry) -> None:
        self.table = table
        self.entry = entry


Counters = list[Counter | None]


def counter(req: Request, index: int) -> Counter | None:
    """scN: the request's own, else its connection's (smp_fetch_sc_stkctr)."""
    own = req.track
    if own is not None and own[index] is not None:
        return own[index]
    conn = req.conn
    return conn.track[index] if conn is not None and conn.track is not None else None


_ALIASES = {
    "get_gpc0": "gpc0",
    "get_gpc1": "gpc1",
    "get_gpt0": "gpt0",
    "kbytes_in": "bytes_in_cnt",
    "kbytes_out": "bytes_out_cnt",
}


def _read(table: Table, entry: Entry | None, what: str, data: str = "") -> tuple[Value, ...]:
    """One datum (`what` as the fetch names it, `data` as the table stores it) of an
    entry; none when not stored."""
    if what == "trackers":
        return (entry.refs if entry is not None else 0,)
    data = data or _ALIASES.get(what, what)
    if data not in table.periods:
        return _NONE
    if entry is None:
        return (0,)
    value = table.read(entry, data) or 0
    return (value >> 10 if what.startswith("kbytes_") else value,)


def _change(table: Table, entry: Entry, what: str) -> tuple[Value, ...]:
    """inc_gpcN (the new value) and clr_gpcN (the old one)."""
    from poise.core.sticktrack import increment_gpc

    name = what[4:]
    if name not in table.periods:
        return _NONE
    if what.startswith("inc_"):
        value = increment_gpc(table, entry, name)
        return (value,) if value is not None else _NONE
    old = entry.data[name]
    assert isinstance(old, int)
    entry.data[name] = 0  # its rate stays, as in HAProxy
    table.touch(entry)
    return (old,)


def values(name: str, args: Sequence[str]) -> Values:
    """A stick-table fetch, compiled."""
    if name in ("table_avl", "table_cnt"):
        table_name = args[0] if args else ""  # the link pass names it

        def room(req: Request, resp: Response | None) -> Sequence[Value]:
            table = TABLES.get(table_name)
            if table is None:
                return _NONE
            used = table.used()
            return (table.size - used if name == "table_avl" else used,)

        return room
    match = re.fullmatch(r"(sc|sc\d|src)_(.*)", name)
    assert match is not None
    family, what = match.groups()
    other = table_argument(name, args)
    if family == "src":
        return _src(what, other or "")
    index = int(args[0]) if family == "sc" else int(family[2])
    return _sc(index, what, other)


def _sc(index: int, what: str, other: str | None) -> Values:
    data = _ALIASES.get(what, what)

    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        item = counter(req, index)
        if what == "tracked":
            return (item is not None,)
        if item is None:
            return _NONE
        table, entry = item.table, item.entry
        if other is not None and other != table.name:
            # Another table: the same key there (smp_fetch_sc_stkctr).
            found = TABLES.get(other)
            if found is None:
                return _NONE
            table, entry_there = found, found.lookup(entry.key)
            if entry_there is None:
                return _read(table, None, what) if not what.startswith(("inc_", "clr_")) else ()
            entry = entry_there
        if what.startswith(("inc_", "clr_")):
            return _change(table, entry, what)
        return _read(table, entry, what, data)

    return fetch


def _src(what: str, table_name: str) -> Values:
    creates = what.startswith(("inc_", "clr_")) or what == "updt_conn_cnt"

    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        table = TABLES.get(table_name)
        if table is None:
            return _NONE
        ip = parse_ip(req.src)
        key = table.key(ip) if ip is not None else None
        if key is None:
            return _NONE
        if not creates:
            return _read(table, table.lookup(key), what)
        entry = table.get(key)
        if entry is None:
            return _NONE
        if what == "updt_conn_cnt":
            if "conn_cnt" not in table.periods:
                return _NONE
            count = entry.data["conn_cnt"]
            assert isinstance(count, int)
            entry.data["conn_cnt"] = count = (count + 1) & 0xFFFF_FFFF
            table.touch(entry)
            return (count,)
        return _change(table, entry, what)

    return fetch


def converter(what: str, table_name: str) -> Callable[[Value, Request], Value | None]:
    """`table_X(T)`: what table T stores under the sample as a key (0 when the key is not
    there; nothing when T does not store X)."""

    def convert(value: Value, req: Request) -> Value | None:
        table = TABLES.get(table_name)
        key = table.key(value) if table is not None else None
        if table is None or key is None:
            return None
        found = _read(table, table.lookup(key), what)
        return found[0] if found else None

    return convert
