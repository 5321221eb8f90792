"""Lookups in pattern files (config/patterns.py's references): the `map` converters
(configuration.txt 7.3.1) and the patterns an ACL reads with `-f`.

A lookup is compiled from a reference's entries and compiled again when the reference's
version changes (a runtime `add map`, `del acl` ...), so a request costs one integer
comparison more than a static table. As HAProxy: exact strings and prefixes (`beg`) and
addresses are trees there, so the longest prefix wins (the first of equals); the other
methods are lists, tried in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from poise.config import patterns
from poise.config.acl_parse import ip_network
from poise.config.converters import MAPS, check_key
from poise.core.template import expand
from poise.core.values import Value, parse_ip, to_int, to_str

# A compiled map: the value for an input, None when no key matches.
Lookup = Callable[[Value], str | None]


def _network(key: str) -> tuple[int, int, int, int]:
    """(version, network, mask, prefix length) of an address or network key."""
    network = ip_network(key)
    bits = 32 if network.version == 4 else 128
    mask = ((1 << network.prefixlen) - 1) << (bits - network.prefixlen)
    return network.version, int(network.network_address), mask, network.prefixlen


def valid_key(key: str) -> bool:
    """Whether `key` is an address or a network, as a map of addresses needs."""
    try:
        _network(key)
    except ValueError:
        return False
    return True


def _ip_lookup(entries: Sequence[patterns.Entry]) -> Lookup:
    """The longest network that holds the address (the first of equal ones): one table
    per prefix length, tried from the longest, so a lookup costs at most 33 (IPv4) or
    129 (IPv6) dict probes whatever the size of the map."""
    tables: dict[tuple[int, int], dict[int, str]] = {}
    for entry in entries:
        version, net, _, length = _network(entry.key)
        tables.setdefault((version, length), {}).setdefault(net, entry.value or "")
    order = {
        version: [
            (
                ((1 << length) - 1) << ((32 if version == 4 else 128) - length),
                tables[version, length],
            )
            for length in sorted((n for v, n in tables if v == version), reverse=True)
        ]
        for version in (4, 6)
    }

    def lookup(value: Value) -> str | None:
        ip = value if isinstance(value, tuple) else parse_ip(to_str(value))
        if ip is None:
            return None
        version, number = ip
        if version == 6 and number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is a.b.c.d
            version, number = 4, number & 0xFFFFFFFF
        for mask, table in order[version]:
            found = table.get(number & mask)
            if found is not None:
                return found
        return None

    return lookup


def _int_lookup(entries: Sequence[patterns.Entry]) -> Lookup:
    ranges = []
    for entry in entries:
        low_text, colon, high_text = entry.key.partition(":")
        low = int(low_text) if low_text else None
        high = (int(high_text) if high_text else None) if colon else low
        ranges.append((low, high, entry.value or ""))

    def lookup(value: Value) -> str | None:
        number = to_int(value)
        if number is None:
            return None
        for low, high, result in ranges:
            if (low is None or number >= low) and (high is None or number <= high):
                return result
        return None

    return lookup


def _exact(entries: Sequence[patterns.Entry]) -> Lookup:
    table: dict[str, str] = {}
    for entry in entries:
        table.setdefault(entry.key, entry.value or "")
    return lambda value: table.get(to_str(value))


def _prefix(entries: Sequence[patterns.Entry]) -> Lookup:
    table: dict[str, str] = {}
    for entry in entries:
        table.setdefault(entry.key, entry.value or "")
    lengths = sorted({len(key) for key in table}, reverse=True)

    def lookup(value: Value) -> str | None:
        text = to_str(value)
        for length in lengths:
            if length <= len(text):
                found = table.get(text[:length])
                if found is not None:
                    return found
        return None

    return lookup


def _word(key: str, delimiters: str) -> re.Pattern[str]:
    word = key.strip(delimiters)
    cls = "[" + re.escape(delimiters) + "]"
    return re.compile(f"(?:^|{cls}){re.escape(word)}(?:{cls}|\\Z)")


def _key_test(match: str, key: str) -> Callable[[str], re.Match[str] | bool | None]:
    if match == "sub":
        return lambda text: key in text
    if match == "end":
        return lambda text: text.endswith(key)
    if match in ("dom", "dir"):
        return _word(key, "/?.:" if match == "dom" else "/?").search
    return re.compile(key).search  # reg, regm


def _listed(match: str, entries: Sequence[patterns.Entry]) -> Lookup:
    """The methods HAProxy keeps as lists: the first entry that matches."""
    tests = [(_key_test(match, entry.key), entry.value or "") for entry in entries]

    def lookup(value: Value) -> str | None:
        text = to_str(value)
        for test, result in tests:
            found = test(text)
            if found:
                if match == "regm" and isinstance(found, re.Match):
                    return expand(result, found)
                return result
        return None

    return lookup


def _compile(match: str, entries: Sequence[patterns.Entry]) -> Lookup:
    if match in ("ip", "int", "reg", "regm"):
        # A key the runtime API added that this match cannot read is left out.
        entries = [e for e in entries if check_key(match, e.key) is None]
    if match == "str":
        return _exact(entries)
    if match == "beg":
        return _prefix(entries)
    if match == "ip":
        return _ip_lookup(entries)
    if match == "int":
        return _int_lookup(entries)
    return _listed(match, entries)


class _Live:
    """A lookup in a reference, compiled again when the reference changed."""

    __slots__ = ("compiled", "match", "ref", "version")

    def __init__(self, ref: patterns.PatternRef, match: str) -> None:
        self.ref, self.match = ref, match
        self.version = ref.version
        self.compiled = _compile(match, ref.entries)

    def __call__(self, value: Value) -> str | None:
        if self.version != self.ref.version:
            self.compiled = _compile(self.match, list(self.ref.entries))
            self.version = self.ref.version
        return self.compiled(value)


def live(ref: patterns.PatternRef, match: str) -> Lookup:
    """A lookup in `ref` that follows its changes."""
    return _Live(ref, match)


def map_converter(name: str, args: Sequence[str]) -> Callable[[Value], Value | None]:
    """`map_MATCH_OUTPUT(FILE[,DEFAULT])`: the value of the key the input matches, as the
    output type; else the default (none: the conversion fails)."""
    match, output = MAPS[name]
    lookup = live(patterns.REFERENCES[args[0]], match)
    default = args[1] if len(args) > 1 else None

    def cast(text: str) -> Value | None:
        if output == "int":
            return to_int(text)
        if output == "ip":
            return parse_ip(text)
        return text

    fallback = cast(default) if default is not None else None

    def convert(value: Value) -> Value | None:
        found = lookup(value)
        return fallback if found is None else cast(found)

    return convert
