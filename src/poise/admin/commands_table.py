"""The runtime commands of stick tables (management.txt 9.3): `show table [NAME [data.X OP
V]... | [key K]]`, `clear table NAME [data.X OP V]... | [key K]` and `set table NAME key K
[data.X V]...`, on core/sticktable.py's running tables, answered as HAProxy 2.6 answers
them (src/stick_table.c), byte for byte but for the entry's address, which poise makes up
from the entry's serial number. Below the operator level, entries are neither shown nor
changed, as in HAProxy.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from ipaddress import IPv6Address

from poise.admin.commands_base import Answer, Level, Request
from poise.config.model_stick import DATA_TYPES
from poise.core.sticktable import TABLES, Entry, Key, Table

_OPS: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "le": operator.le,
    "ge": operator.ge,
    "lt": operator.lt,
    "gt": operator.gt,
}
_FILTERS = 4  # STKTABLE_FILTER_LEN
_INTEGER = re.compile(r"[+-]?\d+")
_BASE = 0x5600_0000_0000  # where poise's made-up entry addresses start
Filter = tuple[str, Callable[[int, int], bool], int]
_USAGE = {
    "show": 'Optional argument only supports "data.<store_data_type>" <operator> <value> and '
    "key <key>\n",
    "clear": 'Required arguments: <table> "data.<store_data_type>" <operator> <value> or '
    "<table> key <key>\n",
    "set": "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
}
_NO_KEYS = {
    "show": "Showing keys from",
    "clear": "Removing keys from",
    "set": "Inserting keys into",
}


def head(table: Table) -> str:
    return f"# table: {table.name}, type: {table.type}, size:{table.size}, used:{table.used()}\n"


def _dump_text(text: str) -> str:
    """HAProxy's dump_text(): printable ASCII as is, blanks, `\\` and `=` escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in " \\=":
            out.append("\\" + char)
        elif char in "\t\n\r\x1b":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\x1b": "e"}[char])
        elif 0x20 < code < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{code & 0xFF:02x}")
    return "".join(out)


def key_text(table: Table, key: Key) -> str:
    if isinstance(key, bytes):
        return key.hex().upper()
    if isinstance(key, str):
        return _dump_text(key)
    if table.type == "ip":
        return ".".join(str((key >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    if table.type == "ipv6":
        return ipv6_text(key)
    return str(key)


def ipv6_text(number: int) -> str:
    """An IPv6 address as glibc's inet_ntop writes it: an IPv4-mapped (::ffff:a.b.c.d) or
    IPv4-compatible (::a.b.c.d) one ends in dotted quads (Python 3.11 writes hex)."""
    high = number >> 32
    if high == 0xFFFF or (high == 0 and number >> 16):
        quads = ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0))
        return f"::ffff:{quads}" if high else f"::{quads}"
    return str(IPv6Address(number))


def entry_line(table: Table, entry: Entry) -> str:
    now = table.clock()
    remain = max(entry.expire - now, 0)
    parts = [f"0x{_BASE + entry.serial * 0x60:x}: key={key_text(table, entry.key)}"]
    parts.append(f"use={entry.refs} exp={remain}")
    for name, period in table.config.store:
        if name == "server_key":
            parts.append(f"server_key={entry.data[name] or '-'}")
            continue
        value = table.read(entry, name)
        parts.append(f"{name}({period})={value}" if period else f"{name}={value}")
    return " ".join(parts) + "\n"


def _sort_key(table: Table, key: Key) -> bytes:
    """The order of HAProxy's key tree: the key's bytes as stored."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("latin-1", "replace")
    if table.type == "integer":
        return key.to_bytes(4, "little")
    return key.to_bytes(16 if table.type == "ipv6" else 4, "big")


def _entries(table: Table) -> list[Entry]:
    return sorted(table.live(), key=lambda e: _sort_key(table, e.key))


def _filters(req: Request, table: Table) -> list[Filter] | str:
    """The `data.X OP V` filters from the 4th word on, or HAProxy's message."""
    found: list[Filter] = []
    at = 3
    for number in range(1, _FILTERS + 1):
        word = req.arg(at)
        if number > 1 and not word:
            return found
        data = word[5:]
        if data not in DATA_TYPES:
            return f"Filter entry #{number}: Unknown data type\n"
        if data not in table.periods:
            return f"Filter entry #{number}: Data type not stored in this table\n"
        op = _OPS.get(req.arg(at + 1))
        if op is None:
            return (
                f'Filter entry #{number}: Require and operator among "eq", "ne", "le", "ge", '
                '"lt", "gt"\n'
            )
        value = req.arg(at + 2)
        if not _INTEGER.fullmatch(value):
            return f"Filter entry #{number}: Require a valid integer value to compare against\n"
        found.append((data, op, int(value)))
        at += 3
    if req.arg(at):
        return (
            f"Detected extra data in filter, {at + 1}th word of input, after '{req.arg(at - 1)}'\n"
        )
    return found


def _matches(table: Table, entry: Entry, filters: list[Filter]) -> bool:
    return all(op(table.read(entry, data) or 0, value) for data, op, value in filters)


def _key(req: Request, table: Table, action: str) -> tuple[Key, str]:
    """The key of `key K` (4th word), or HAProxy's message."""
    text = req.arg(4)
    if not text:
        return 0, "Key value expected\n"
    if table.type == "binary":
        return 0, (
            f"{_NO_KEYS[action]} tables of type other than ip, ipv6, string and integer is not "
            "supported\n"
        )
    key = table.parse_key(text)
    if table.type == "ip":
        return (key if key is not None else 0), ""  # inetaddr_host(): 0.0.0.0 if no address
    if key is None or (table.type == "integer" and not 0 <= int(text) <= 0xFFFF_FFFF):
        return 0, "Invalid key\n"
    return key, ""


def _run(req: Request, action: str) -> Answer:
    name = req.arg(2)
    if not name:
        if action != "show":
            return Answer(_USAGE[action])
        # HAProxy lists the tables last declared first (its stktables_list).
        return Answer("".join(head(table) for table in reversed(TABLES.values())))
    table = TABLES.get(name)
    if table is None:
        return Answer("No such table\n")
    allowed = req.session.level >= Level.OPERATOR
    word = req.arg(3)
    if word == "key":
        return _per_key(req, table, action, allowed)
    if word.startswith("data."):
        if action == "set":
            return Answer(
                'content-based lookup is only supported with the "show" and "clear" actions\n'
            )
        filters = _filters(req, table)
        if isinstance(filters, str):
            return Answer(filters)
    elif word:
        return Answer(_USAGE[action])
    else:
        filters = []
    if action == "set":
        return Answer(_USAGE[action])
    if action == "clear":
        if allowed:
            for entry in _entries(table):
                if _matches(table, entry, filters):
                    table.remove(entry.key)
        return Answer("")
    if not allowed:
        return Answer(head(table) + "# contents not dumped due to insufficient privileges\n")
    lines = [entry_line(table, e) for e in _entries(table) if _matches(table, e, filters)]
    return Answer(head(table) + "".join(lines))


def _per_key(req: Request, table: Table, action: str, allowed: bool) -> Answer:
    key, problem = _key(req, table, action)
    if problem:
        return Answer(problem)
    if not allowed:
        return Answer("Permission denied\n")
    if action == "show":
        entry = table.lookup(key)
        return Answer(head(table) + entry_line(table, entry) if entry is not None else "")
    if action == "clear":
        ok = table.remove(key)
        return Answer("" if ok else "Entry currently in use, cannot remove\n")
    entry = table.get(key)
    if entry is None:
        return Answer("Unable to allocate a new entry\n")
    at = 5
    try:
        while req.arg(at):
            problem = _set_one(req, table, entry, at)
            if problem:
                return Answer(problem)
            at += 2
    finally:
        table.touch(entry)
    return Answer("")


def _set_one(req: Request, table: Table, entry: Entry, at: int) -> str:
    word = req.arg(at)
    if not word.startswith("data."):
        return '"data.<type>" followed by a value expected\n'
    data = word[5:]
    if data not in DATA_TYPES:
        return "Unknown data type\n"
    if data not in table.periods:
        return "Data type not stored in this table\n"
    value = req.arg(at + 1)
    if not _INTEGER.fullmatch(value):
        return "Require a valid integer value to store\n"
    table.set(entry, data, int(value))
    return ""


def cmd_show_table(req: Request) -> Answer:
    return _run(req, "show")


def cmd_clear_table(req: Request) -> Answer:
    return _run(req, "clear")


def cmd_set_table(req: Request) -> Answer:
    return _run(req, "set")
