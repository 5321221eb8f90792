"""The stick-table keywords of proxy sections: `stick-table type ... size N [expire T]
[nopurge] [store ...]` (configuration.txt 4.2) and the rule actions on stick counters,
`track-sc0|1|2 KEY [table T]`, `sc-inc-gpc0|1(N)` and `sc-set-gpt0(N) VALUE` (of
`http-request`, `http-response` and `tcp-request`). Texts follow `haproxy -c` 2.6's. Pure;
table names are resolved by the link pass (link_stick.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from poise.config.haproxy_draft import Problem
from poise.config.model_stick import (
    DATA_TYPES,
    KEY_SIZES,
    LATER_DATA_TYPES,
    KeyType,
    StickAction,
    StickRule,
    StickRuleKind,
    StickTable,
)
from poise.config.samples import Scope, check_scope, parse_sample
from poise.config.units import MAX_TIME_MS, parse_size, parse_time
from poise.config.where import Where

_TYPES: tuple[KeyType, ...] = ("ip", "ipv6", "integer", "string", "binary")
_ACTION = re.compile(r"(track-sc|sc-inc-gpc|sc-set-gpt)(\d*)(?:\((.*)\))?")


def parse_stick_table(name: str, args: Sequence[str], where: Where) -> StickTable:
    """The arguments of `stick-table` in the proxy `name`."""
    key_type: KeyType | None = None
    key_size = 0
    size: int | None = None
    expire: int | None = None
    nopurge = False
    peers = ""
    store: dict[str, int] = {}
    index = 0

    def value(word: str) -> str:
        if index + 1 >= len(args):
            raise Problem(f"stick-table: missing argument after '{word}'.")
        return args[index + 1]

    while index < len(args):
        word = args[index]
        if word == "size":
            size = parse_size(value(word))
            index += 2
        elif word == "expire":
            expire = parse_time(value(word))
            if expire > MAX_TIME_MS:
                raise Problem(f"stick-table: timer overflow in argument <{args[index + 1]}>")
            index += 2
        elif word == "nopurge":
            nopurge = True
            index += 1
        elif word == "type":
            kind = value(word)
            if kind not in _TYPES:
                raise Problem(f"stick-table: unknown type '{kind}'.")
            key_type, key_size = kind, KEY_SIZES[kind]
            index += 2
            if kind in ("string", "binary") and args[index : index + 1] == ["len"]:
                length = args[index + 1] if index + 1 < len(args) else ""
                if not length.isdigit() or int(length) == 0:
                    raise Problem(f"stick-table: unknown type '{kind}'.")
                key_size = int(length) + (1 if kind == "string" else 0)
                index += 2
        elif word == "store":
            for option in value(word).split(","):
                store.update([_store_option(option)])
            index += 2
        elif word == "peers":
            peers = value(word)
            index += 2
        elif word in ("srvkey", "write-to"):
            raise Problem(f"stick-table: '{word}' is not implemented yet in poise")
        else:
            raise Problem(f"stick-table: unknown argument '{word}'.")
    if size is None:
        raise Problem("stick-table: missing size.")
    if key_type is None:
        raise Problem("stick-table: missing type.")
    ordered = tuple((data, store[data]) for data in DATA_TYPES if data in store)
    return StickTable(
        name, key_type, size, where, key_size, expire or None, nopurge, ordered, peers
    )


def _store_option(option: str) -> tuple[str, int]:
    data, paren, rest = option.partition("(")
    if data in LATER_DATA_TYPES:
        raise Problem(f"stick-table: store option '{data}' is not implemented yet in poise")
    kind = DATA_TYPES.get(data)
    if kind is None:
        raise Problem(f"stick-table: unknown store option '{data}'.")
    if paren and not rest.endswith(")"):
        raise Problem(f"stick-table: missing closing parenthesis after store option '{data}'.")
    argument = rest[:-1] if paren else ""
    if kind != "rate":
        if paren:
            raise Problem(f"stick-table: unexpected argument to store option '{data}'.")
        return data, 0
    if not argument:
        raise Problem(f"stick-table: missing argument to store option '{data}'.")
    period = parse_time(argument)
    if not period or period > MAX_TIME_MS:
        raise Problem(f"stick-table: error when processing store option '{data}'.")
    return data, period


def is_stick_action(word: str) -> bool:
    return _ACTION.fullmatch(word) is not None


def parse_stick_action(
    keyword: str, args: Sequence[str], scope: Scope
) -> tuple[StickAction, list[str]]:
    """`args` from the action word on: the action and what follows it (the condition)."""
    written = args[0]
    match = _ACTION.fullmatch(written)
    assert match is not None
    action, number, inside = match.groups()
    if action == "track-sc":
        if inside is not None or number not in ("0", "1", "2"):
            raise Problem(f"unknown action '{written}' (track-sc0, track-sc1 or track-sc2)")
        if len(args) < 2 or args[1] in ("if", "unless", "table"):
            raise Problem(f"'{keyword} {written}' expects a sample fetch (the key to track)")
        key = parse_sample(args[1], "res" if scope == "res" else "req")
        needs = check_scope(key, scope)
        if needs:
            raise Problem(
                f"'{keyword} {written}': fetch method '{key.text}' extracts information from "
                f"'{needs}', none of which is available here."
            )
        rest = list(args[2:])
        table = ""
        if rest[:1] == ["table"]:
            if len(rest) < 2:
                raise Problem(f"'{keyword} {written}': missing table name after 'table'")
            table, rest = rest[1], rest[2:]
        return StickAction("track", int(number), table, key), rest
    if number not in ("0", "1") or (action == "sc-set-gpt" and number != "0"):
        raise Problem(f"action '{action}{number}' is not implemented yet in poise")
    counter = int(inside) if inside is not None and inside.isdigit() else -1
    if not 0 <= counter <= 2:
        raise Problem(
            f"invalid stick table track ID '{inside or ''}' in '{written}'. The max allowed ID is 2"
        )
    if action == "sc-inc-gpc":
        return StickAction("inc-gpc", counter, index=int(number)), list(args[1:])
    if len(args) < 2 or args[1] in ("if", "unless"):
        raise Problem(f"'{keyword} {written}' expects an integer or a sample expression")
    if re.fullmatch(r"-?\d+", args[1]):
        return StickAction("set-gpt", counter, value=int(args[1])), list(args[2:])
    value = parse_sample(args[1], "res" if scope == "res" else "req")
    needs = check_scope(value, scope)
    if needs:
        raise Problem(
            f"'{keyword} {written}': fetch method '{value.text}' extracts information from "
            f"'{needs}', none of which is available here."
        )
    return StickAction("set-gpt", counter, key=value), list(args[2:])


def parse_stick_rule(
    kind: StickRuleKind, args: Sequence[str], proxy: str, where: Where
) -> tuple[StickRule, list[str]]:
    """`stick KIND PATTERN [table T]` and what follows (the condition)."""
    keyword = f"stick {kind}"
    if not args or args[0] in ("if", "unless", "table"):
        raise Problem(f"'{keyword}' expects a fetch method (the key).")
    scope: Scope = "res" if kind == "store-response" else "req"
    key = parse_sample(args[0], scope)
    needs = check_scope(key, scope)
    if needs:
        raise Problem(
            f"'{keyword}': fetch method '{key.text}' extracts information from '{needs}', "
            "none of which is available here."
        )
    rest = list(args[1:])
    table = proxy
    if rest[:1] == ["table"]:
        if len(rest) < 2:
            raise Problem(f"'{keyword}': missing table name after 'table'")
        table, rest = rest[1], rest[2:]
    if rest and rest[0] not in ("if", "unless"):
        raise Problem(f"'{keyword}': unexpected argument '{rest[0]}'.")
    return StickRule(kind, key, table, where), rest
