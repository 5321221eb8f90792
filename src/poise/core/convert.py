"""Converters (configuration.txt 7.3.1): each compiled once from its arguments into a
function of (value, request) giving the converted value, or None when the conversion
fails (the sample then has no value, as in HAProxy).

Values are core/fetch.py's: text, integers, booleans, addresses. HAProxy's binary samples
are text here too, one character per byte (latin-1, as poise decodes what it receives).
Where HAProxy casts (an integer to binary is its 8 bytes, big-endian; text to an integer
is its leading digits) poise casts the same way; the results were compared with HAProxy
2.6.12 on the same expressions (tests/unit/test_converters.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence

import xxhash

from poise.config.converters import MAPS, mask_bits
from poise.core import json_query, patterns, stickfetch, variables
from poise.core.balancer import hashfn
from poise.core.http.message import Request
from poise.core.template import expand
from poise.core.values import Ip, Value, as_bytes, parse_ip, to_int, to_str

Step = Callable[[Value, Request], Value | None]
Convert = Callable[[Value], Value | None]
INT_MAX = (1 << 63) - 1
INT_MIN = -(1 << 63)


def to_bytes(value: Value) -> bytes:
    """A value as HAProxy's binary sample: text as its bytes, an integer as 8 bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    text = to_str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # text from the configuration: its UTF-8 bytes
        return text.encode("utf-8", "surrogateescape")


def from_bytes(data: bytes) -> str:
    return data.decode("latin-1")


def _clamp(number: int) -> int:
    return INT_MAX if number > INT_MAX else INT_MIN if number < INT_MIN else number


def _int(value: Value) -> int:
    number = to_int(value)
    return number if number is not None else 0


# --- text --------------------------------------------------------------------------------


def _b64dec(urlsafe: bool) -> Convert:
    def decode(value: Value) -> Value | None:
        data = to_bytes(value)
        if urlsafe:
            data = data.replace(b"-", b"+").replace(b"_", b"/")
            data += b"=" * (-len(data) % 4)
        try:
            return from_bytes(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            return None

    return decode


def _ub64enc(value: Value) -> Value:
    return base64.urlsafe_b64encode(to_bytes(value)).rstrip(b"=").decode("ascii")


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _url_dec(in_form: bool) -> Convert:
    """`%XX` decoded; `+` is a space in a query string (after '?') or everywhere when the
    input is known to be a form (`url_dec(1)`); a `%` not followed by two hex digits
    makes the conversion fail (HAProxy's url_decode)."""

    def decode(value: Value) -> Value | None:
        text = to_str(value)
        if "%" in text and text.count("%") != len(_PERCENT.findall(text)):
            return None
        if in_form:
            text = text.replace("+", " ")
        elif "?" in text and "+" in text:
            path, _, query = text.partition("?")
            text = path + "?" + query.replace("+", " ")
        return _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)

    return decode


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
_JSON_ESCAPES.update({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _json(code: str) -> Convert:
    """A JSON string's inside: `ascii` escapes every byte above 127 as \\u00XX; the utf8
    decoders read the bytes as UTF-8 (`utf8`, `utf8p`: fail on a bad sequence; `utf8s`,
    `utf8ps`: drop it)."""

    def escape(value: Value) -> Value | None:
        data = to_bytes(value)
        if code == "ascii":
            text = data.decode("latin-1")
        else:
            try:
                text = data.decode("utf-8", "ignore" if code.endswith("s") else "strict")
            except UnicodeDecodeError:
                return None
        out = []
        for char in text:
            escaped = _JSON_ESCAPES.get(char)
            if escaped is not None:
                out.append(escaped)
            elif char < " " or char > "~":
                if ord(char) > 0xFFFF:
                    if not code.endswith("s"):
                        return None
                    continue
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        return "".join(out)

    return escape


def _regsub(args: Sequence[str]) -> Convert:
    flags = args[2] if len(args) > 2 else ""
    regex = re.compile(args[0], re.IGNORECASE if "i" in flags else 0)
    template = args[1]
    count = 0 if "g" in flags else 1

    def substitute(value: Value) -> Value:
        return regex.sub(lambda m: expand(template, m), to_str(value), count=count)

    return substitute


def _spans(text: str, delimiters: str, words: bool) -> list[tuple[int, int]]:
    """Where each field (or, for words, each non-empty field) of `text` is."""
    spans, start = [], 0
    for index, char in enumerate(text):
        if char in delimiters:
            spans.append((start, index))
            start = index + 1
    spans.append((start, len(text)))
    return [s for s in spans if s[0] < s[1]] if words else spans


def _field(args: Sequence[str], words: bool) -> Convert:
    """`field` and `word`: the part at an index (negative: from the end) and `count`
    parts from it (0: all up to that end), as the text between them. A field that is not
    there fails; a word that is not there is empty (HAProxy 2.6)."""
    index, delimiters = int(args[0]), args[1]
    count = int(args[2]) if len(args) > 2 else 1

    def extract(value: Value) -> Value | None:
        text = to_str(value)
        spans = _spans(text, delimiters, words)
        if index > 0:
            first = index - 1
            if first >= len(spans):
                return "" if words else None
            last = len(spans) - 1 if count <= 0 else min(len(spans), first + count) - 1
        else:
            last = len(spans) + index
            if last < 0:
                return "" if words else None
            first = 0 if count <= 0 else max(0, last - count + 1)
        return text[spans[first][0] : spans[last][1]]

    return extract


def _bytes(args: Sequence[str]) -> Convert:
    offset = int(args[0])
    length = int(args[1]) if len(args) > 1 else None

    def extract(value: Value) -> Value:
        data = to_str(value) if isinstance(value, str) else from_bytes(to_bytes(value))
        if offset < 0:
            return ""
        return data[offset:] if length is None else data[offset : offset + max(length, 0)]

    return extract


def _ipmask(args: Sequence[str]) -> Convert:
    bits4 = mask_bits(args[0], 32)
    mask4 = ((1 << bits4) - 1) << (32 - bits4)
    mask6: int | None = None
    if len(args) > 1:
        bits6 = mask_bits(args[1], 128)
        mask6 = ((1 << bits6) - 1) << (128 - bits6)

    def apply(value: Value) -> Value | None:
        ip: Ip | None
        if isinstance(value, tuple):
            ip = value
        elif isinstance(value, int):
            ip = (4, value & 0xFFFFFFFF)
        else:
            ip = parse_ip(value)
        if ip is None:
            return None
        version, number = ip
        if version == 4:
            return 4, number & mask4
        return (6, number & mask6) if mask6 is not None else None

    return apply


def _hash(function: Callable[[bytes], int], args: Sequence[str]) -> Convert:
    avalanche = bool(args) and int(args[0]) != 0

    def digest(value: Value) -> Value:
        number = function(to_bytes(value))
        return hashfn.full_hash(number) if avalanche else number

    return digest


def _xxh(bits: str, args: Sequence[str]) -> Convert:
    """`xxh32([SEED])` (unsigned 32-bit), `xxh64([SEED])` and `xxh3([SEED])` (signed
    64-bit, as HAProxy gives them)."""
    seed = int(args[0]) & 0xFFFFFFFFFFFFFFFF if args else 0
    if bits == "32":
        return lambda value: xxhash.xxh32_intdigest(to_bytes(value), seed & 0xFFFFFFFF)
    digest = xxhash.xxh64_intdigest if bits == "64" else xxhash.xxh3_64_intdigest

    def signed(value: Value) -> Value:
        number = digest(to_bytes(value), seed)
        return number - (1 << 64) if number >= 1 << 63 else number

    return signed


def _sha2(args: Sequence[str]) -> Convert:
    name = f"sha{args[0] if args else '256'}"
    return lambda value: from_bytes(hashlib.new(name, to_bytes(value)).digest())


def _hex2i(value: Value) -> Value:
    text = to_str(value)
    match = re.match(r"[-+]?[0-9A-Fa-f]+", text)
    return _clamp(int(match.group(0), 16)) if match else 0


# --- arithmetic ----------------------------------------------------------------------------


def _divide(a: int, b: int) -> int:
    if b == 0:
        return INT_MAX
    quotient = abs(a) // abs(b)  # C truncates towards zero
    return _clamp(quotient if (a < 0) == (b < 0) else -quotient)


def _modulo(a: int, b: int) -> int:
    """C's remainder: the sign of the dividend (-7 mod 3 is -1); 0 for a null divisor."""
    if b == 0:
        return 0
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


_ARITH: dict[str, Callable[[int, int], int]] = {
    "add": lambda a, b: _clamp(a + b),
    "sub": lambda a, b: _clamp(a - b),
    "mul": lambda a, b: _clamp(a * b),
    "div": _divide,
    "mod": _modulo,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
}


def _arith(name: str, args: Sequence[str]) -> Step:
    """`add(N|VAR)` ...: the operand is a number, or a variable (absent: no value)."""
    operate = _ARITH[name]
    operand = args[0] if args else "0"
    if re.fullmatch(r"[-+]?\d+", operand):
        number = int(operand)
        return lambda value, req: operate(_int(value), number)
    get = variables.getter(operand)

    def with_variable(value: Value, req: Request) -> Value | None:
        found = get(req)
        return None if found is None else operate(_int(value), _int(found))

    return with_variable


# --- with variables ----------------------------------------------------------------------


def _concat(args: Sequence[str]) -> Step:
    start = as_bytes(args[0]) if args else ""
    end = as_bytes(args[2]) if len(args) > 2 else ""
    get = variables.getter(args[1]) if len(args) > 1 and args[1] else None

    def concat(value: Value, req: Request) -> Value:
        found = get(req) if get is not None else None
        middle = to_str(found) if found is not None else ""
        return to_str(value) + start + middle + end

    return concat


def _strcmp(args: Sequence[str]) -> Step:
    """strcmp(3) as HAProxy computes it: the difference of the first differing bytes,
    else -1, 0 or 1 by length."""
    get = variables.getter(args[0])

    def compare(value: Value, req: Request) -> Value | None:
        found = get(req)
        if found is None:
            return None
        left, right = to_bytes(to_str(value)), to_bytes(to_str(found))
        for a, b in zip(left, right, strict=False):
            if a != b:
                return a - b
        return (len(left) > len(right)) - (len(left) < len(right))

    return compare


def _secure_memcmp(args: Sequence[str]) -> Step:
    get = variables.getter(args[0])

    def compare(value: Value, req: Request) -> Value | None:
        found = get(req)
        if found is None:
            return None
        return hmac.compare_digest(to_bytes(value), to_bytes(found))

    return compare


def _set_var(args: Sequence[str]) -> Step:
    store = variables.setter(args[0])

    def set_var(value: Value, req: Request) -> Value:
        store(req, value)
        return value

    return set_var


def _unset_var(args: Sequence[str]) -> Step:
    unset = variables.unsetter(args[0])

    def unset_var(value: Value, req: Request) -> Value:
        unset(req)
        return value

    return unset_var


# --- the table ----------------------------------------------------------------------------

_SIMPLE: dict[str, Convert] = {
    "lower": lambda v: to_str(v).lower(),
    "upper": lambda v: to_str(v).upper(),
    "length": lambda v: len(to_str(v)),
    "base64": lambda v: base64.b64encode(to_bytes(v)).decode("ascii"),
    "b64dec": _b64dec(False),
    "ub64enc": _ub64enc,
    "ub64dec": _b64dec(True),
    "hex": lambda v: to_bytes(v).hex().upper(),
    "hex2i": _hex2i,
    "sha1": lambda v: from_bytes(hashlib.sha1(to_bytes(v)).digest()),
    "neg": lambda v: _clamp(-_int(v)),
    "cpl": lambda v: ~_int(v),
    "bool": lambda v: _int(v) != 0,
    "not": lambda v: _int(v) == 0,
    "odd": lambda v: _int(v) % 2 == 1,
    "even": lambda v: _int(v) % 2 == 0,
}
_WITH_ARGS: dict[str, Callable[[Sequence[str]], Convert]] = {
    "url_dec": lambda args: _url_dec(bool(args) and int(args[0]) != 0),
    "regsub": _regsub,
    "field": lambda args: _field(args, False),
    "word": lambda args: _field(args, True),
    "bytes": _bytes,
    "ipmask": _ipmask,
    "json": lambda args: _json(args[0] if args else "ascii"),
    "ltrim": lambda args: lambda v: to_str(v).lstrip(args[0]),
    "rtrim": lambda args: lambda v: to_str(v).rstrip(args[0]),
    "sha2": _sha2,
    "json_query": json_query.json_query,  # core/json_query.py
    "jwt_header_query": json_query.jwt_query(0),
    "jwt_payload_query": json_query.jwt_query(1),
    "sdbm": lambda args: _hash(hashfn.sdbm, args),
    "djb2": lambda args: _hash(hashfn.djb2, args),
    "crc32": lambda args: _hash(hashfn.crc32, args),
    "wt6": lambda args: _hash(hashfn.wt6, args),
    "xxh3": lambda args: _xxh("3", args),
    "xxh32": lambda args: _xxh("32", args),
    "xxh64": lambda args: _xxh("64", args),
}
_WITH_REQUEST: dict[str, Callable[[Sequence[str]], Step]] = {
    "concat": _concat,
    "strcmp": _strcmp,
    "secure_memcmp": _secure_memcmp,
    "set-var": _set_var,
    "unset-var": _unset_var,
}


def converter(name: str, args: Sequence[str]) -> Step:
    """One converter, compiled (its arguments were checked by config/converters.py)."""
    if name in _SIMPLE:
        simple = _SIMPLE[name]
        return lambda value, req: simple(value)
    if name in _WITH_ARGS:
        convert = _WITH_ARGS[name](args)
        return lambda value, req: convert(value)
    if name in _ARITH:
        return _arith(name, args)
    if name in MAPS:
        lookup = patterns.map_converter(name, args)
        return lambda value, req: lookup(value)
    if name in _WITH_REQUEST:
        return _WITH_REQUEST[name](args)
    if name.startswith("table_"):
        return stickfetch.converter(name[6:], args[0])
    raise AssertionError(f"converter {name} has no implementation")


def chain(converters: Sequence[tuple[str, Sequence[str]]]) -> Step:
    """Converters applied in turn; the first that fails ends the chain with None."""
    steps = [converter(name, args) for name, args in converters]
    if len(steps) == 1:
        return steps[0]

    def run(value: Value, req: Request) -> Value | None:
        for step in steps:
            converted = step(value, req)
            if converted is None:
                return None
            value = converted
        return value

    return run
