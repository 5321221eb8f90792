"""The converters poise implements (configuration.txt 7.3.1), as haproxy.cfg writes them:
their arguments, checked as HAProxy 2.6 checks them (its messages), and their output type.

Arguments stay text in the model (Sample.converters); core/convert.py compiles them. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from poise.config import patterns
from poise.config.haproxy_draft import Problem
from poise.config.variables import check_var_name

# What a converter gives: a sample type, or "same" (the input's type, e.g. set-var).
Output = Literal["bool", "int", "ip", "str", "any", "same"]
# How an argument is read: an integer, text, a variable name, an integer or a variable,
# a regex, IPv4 and IPv6 masks.
ArgKind = Literal["int", "str", "var", "int_or_var", "regex", "mask4", "mask6"]


@dataclass(frozen=True, slots=True)
class ConverterSpec:
    output: Output
    args: tuple[ArgKind, ...] = ()
    required: int = 0


_NONE = ConverterSpec("str")
_HASH = ConverterSpec("int", ("int",))
_ARITH = ConverterSpec("int", ("int_or_var",))
_TYPE_NAMES = {
    "int": "integer",
    "str": "string",
    "var": "string",
    "int_or_var": "string",
    "regex": "string",
    "mask4": "IPv4 mask",
    "mask6": "IPv6 mask",
}
CONVERTERS: dict[str, ConverterSpec] = {
    "lower": _NONE,
    "upper": _NONE,
    "length": ConverterSpec("int"),
    "base64": _NONE,
    "b64dec": _NONE,
    "ub64enc": _NONE,
    "ub64dec": _NONE,
    "hex": _NONE,
    "hex2i": ConverterSpec("int"),
    "url_dec": ConverterSpec("str", ("int",)),
    "regsub": ConverterSpec("str", ("regex", "str", "str"), 2),
    "field": ConverterSpec("str", ("int", "str", "int"), 2),
    "word": ConverterSpec("str", ("int", "str", "int"), 2),
    "bytes": ConverterSpec("str", ("int", "int"), 1),
    "concat": ConverterSpec("str", ("str", "var", "str")),
    "strcmp": ConverterSpec("int", ("var",), 1),
    "secure_memcmp": ConverterSpec("bool", ("var",), 1),
    "ipmask": ConverterSpec("ip", ("mask4", "mask6"), 1),
    "json": ConverterSpec("str", ("str",)),
    "json_query": ConverterSpec("any", ("str", "str"), 1),
    "jwt_header_query": ConverterSpec("any", ("str", "str")),
    "jwt_payload_query": ConverterSpec("any", ("str", "str")),
    "ltrim": ConverterSpec("str", ("str",), 1),
    "rtrim": ConverterSpec("str", ("str",), 1),
    "sha1": _NONE,
    "sha2": ConverterSpec("str", ("int",)),
    "sdbm": _HASH,
    "djb2": _HASH,
    "crc32": _HASH,
    "wt6": _HASH,
    "xxh3": _HASH,
    "xxh32": _HASH,
    "xxh64": _HASH,
    "add": _ARITH,
    "sub": _ARITH,
    "mul": _ARITH,
    "div": _ARITH,
    "mod": _ARITH,
    "and": _ARITH,
    "or": _ARITH,
    "xor": _ARITH,
    "neg": ConverterSpec("int"),
    "cpl": ConverterSpec("int"),
    "bool": ConverterSpec("bool"),
    "not": ConverterSpec("bool"),
    "odd": ConverterSpec("bool"),
    "even": ConverterSpec("bool"),
    "set-var": ConverterSpec("same", ("var",), 1),
    "unset-var": ConverterSpec("same", ("var",), 1),
}
# map(FILE[,DEFAULT]), map_MATCH(...) and map_MATCH_OUTPUT(...) (7.3.1 `map`).
MAP_MATCHES = ("str", "beg", "sub", "dir", "dom", "end", "reg", "regm", "int", "ip")
_MAP_OUTPUTS: tuple[Output, ...] = ("str", "int", "ip")
MAPS: dict[str, tuple[str, Output]] = {"map": ("str", "str")}
for _match in MAP_MATCHES:
    MAPS[f"map_{_match}"] = (_match, "str")
    for _output in _MAP_OUTPUTS:
        MAPS[f"map_{_match}_{_output}"] = (_match, _output)
for _name, (_, _output) in MAPS.items():
    CONVERTERS[_name] = ConverterSpec(_output, ("str", "str"), 1)
# table_X(TABLE) (7.3.1): what table TABLE stores for the key (core/stickfetch.py).
TABLE_DATA = [
    "bytes_in_rate",
    "bytes_out_rate",
    "conn_cnt",
    "conn_cur",
    "conn_rate",
    "gpc0",
    "gpc0_rate",
    "gpc1",
    "gpc1_rate",
    "gpt0",
    "http_err_cnt",
    "http_err_rate",
    "http_fail_cnt",
    "http_fail_rate",
    "http_req_cnt",
    "http_req_rate",
    "kbytes_in",
    "kbytes_out",
    "server_id",
    "sess_cnt",
    "sess_rate",
    "trackers",
]
for _data in TABLE_DATA:
    CONVERTERS[f"table_{_data}"] = ConverterSpec("int", ("str",), 1)
JSON_CODES = ("ascii", "utf8", "utf8s", "utf8p", "utf8ps")
_INT = re.compile(r"[-+]?\d+")


def _mask(text: str, bits: int) -> bool:
    if text.isdigit():
        return int(text) <= bits
    if bits == 32:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
            return False
        value = int.from_bytes(bytes(int(p) for p in parts), "big")
    else:
        try:
            value = int(ipaddress.IPv6Address(text))
        except ValueError:
            return False
    inverted = ~value & ((1 << bits) - 1)
    return inverted & (inverted + 1) == 0  # contiguous ones from the top


def mask_bits(text: str, bits: int) -> int:
    """A checked mask as a number of leading one bits."""
    if text.isdigit():
        return int(text)
    if bits == 32:
        value = int.from_bytes(bytes(int(p) for p in text.split(".")), "big")
    else:
        value = int(ipaddress.IPv6Address(text))
    return bin(value).count("1")


def _check_arg(name: str, kind: ArgKind, value: str, position: int) -> None:
    where = f"invalid arg {position} in converter '{name}' : "
    if kind == "int" and not _INT.fullmatch(value):
        raise Problem(f"{where}failed to parse '{value}' as type 'integer' at position {position}.")
    if kind in ("mask4", "mask6") and not _mask(value, 32 if kind == "mask4" else 128):
        raise Problem(
            f"{where}failed to parse '{value}' as type '{_TYPE_NAMES[kind]}' at position "
            f"{position}."
        )


def check_converter(name: str, args: tuple[str, ...]) -> None:
    """A converter's arguments, checked as HAProxy checks them (its messages)."""
    spec = CONVERTERS[name]
    most = len(spec.args)
    if len(args) > most:
        extra = ("," if most else "") + ",".join(args[most:]) + ")"
        raise Problem(
            f"invalid arg {max(most, 1)} in converter '{name}' : expected ')' before '{extra}'."
        )
    if not args and spec.required and spec.args[0] == "var":
        raise Problem(f"invalid args in converter '{name}' : missing variable name.")
    if len(args) < spec.required:
        position = len(args) + 1
        kind = _TYPE_NAMES[spec.args[len(args)]]
        if not args:
            raise Problem(
                f"invalid arg 1 in converter '{name}' : expected type '{kind}' at position 1, "
                "but got nothing."
            )
        raise Problem(
            f"invalid arg {position} in converter '{name}' : missing arguments (got "
            f"{len(args)}/{spec.required}), type '{kind}' expected."
        )
    for position, (kind, value) in enumerate(zip(spec.args, args, strict=False), 1):
        _check_arg(name, kind, value, position)
    _check_meaning(name, args)
    if name.startswith("table_"):
        patterns.refer_to_table(name, args[0])


def _check_meaning(name: str, args: tuple[str, ...]) -> None:
    """What HAProxy checks beyond each argument's type."""
    invalid = f"invalid args in converter '{name}' : "
    if name in ("field", "word"):
        if int(args[0]) == 0:
            raise Problem(f"{invalid}Unexpected value 0 for index.")
        if not args[1]:
            raise Problem(f"{invalid}Empty separators list.")
    elif name == "regsub":
        flags = args[2] if len(args) > 2 else ""
        for flag in flags:
            if flag not in "ig":
                raise Problem(
                    f"{invalid}invalid regex flag '{flag}', only 'i' and 'g' are supported."
                )
        try:
            re.compile(args[0], re.IGNORECASE if "i" in flags else 0)
        except re.error as exc:
            raise Problem(
                f"error in regex '{args[0]}' in arg 1 of conversion keyword 'regsub' : "
                f"regex '{args[0]}' is invalid ({exc})"
            ) from None
    elif name == "json" and args and args[0] not in JSON_CODES:
        raise Problem(
            f"{invalid}Unexpected input code type. Allowed value are 'ascii', 'utf8', "
            "'utf8s', 'utf8p' and 'utf8ps'."
        )
    elif name in ("strcmp", "secure_memcmp", "set-var", "unset-var"):
        if not args[0]:
            raise Problem(f"{invalid}missing variable name.")
        _var(invalid, args[0])
    elif name == "concat" and len(args) > 1 and args[1]:
        _var(invalid, args[1])
    elif CONVERTERS[name] is _ARITH and args and not _INT.fullmatch(args[0]):
        try:
            check_var_name(args[0])
        except Problem:
            raise Problem(f"{invalid}expects an integer or a variable name.") from None
    elif name in MAPS:
        _check_map(name, args)
    elif name == "json_query" and not args[0]:
        raise Problem(f"{invalid}json_path must not be empty")
    elif name.startswith(("json_query", "jwt_")) and len(args) > 1 and args[1] != "int":
        raise Problem(f'{invalid}output_type only supports "int" as argument')
    elif name == "sha2" and args and args[0] not in ("224", "256", "384", "512"):
        raise Problem(f"{invalid}Unsupported number of bits: '{args[0]}'.")


def _check_map(name: str, args: tuple[str, ...]) -> None:
    """A map's file is read now, and its keys checked for the match (an address for
    map_ip, a number or range for map_int, a regex for map_reg)."""
    invalid = f"invalid args in converter '{name}' : "
    try:
        ref = patterns.load(args[0], "map")
    except Problem as exc:
        raise Problem(f"{invalid}{exc}") from None
    match = MAPS[name][0]
    for entry in ref.entries:
        problem = check_key(match, entry.key)
        if problem:
            raise Problem(f"{invalid}{problem} in file '{args[0]}'.")
    if match == "ip":
        ref.ip_keys = True


def check_key(match: str, key: str) -> str | None:
    """What is wrong with a map key for a match method, or None."""
    if match == "ip":
        try:
            ipaddress.ip_network(key, strict=False)
        except ValueError:
            return f"'{key}' is not a valid IPv4 or IPv6 address"
    elif match == "int" and not re.fullmatch(r"[-+]?\d+|([-+]?\d+)?:([-+]?\d+)?", key):
        return f"'{key}' is not a valid integer or range"
    elif match in ("reg", "regm"):
        try:
            re.compile(key)
        except re.error as exc:
            return f"regex '{key}' is invalid ({exc})"
    return None


def _var(invalid: str, name: str) -> None:
    try:
        check_var_name(name)
    except Problem as exc:
        raise Problem(f"{invalid}{exc}") from None
