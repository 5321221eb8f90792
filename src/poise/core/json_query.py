"""The `json_query(PATH[,int])`, `jwt_header_query([PATH[,int]])` and
`jwt_payload_query([PATH[,int]])` converters (configuration.txt 7.3.1), as HAProxy 2.6
computes them with mjson: PATH is `$` followed by `.key` and `[index]` steps; a string
gives its unescaped text, a number its `%g` text (or, with `int`, the integer, within
+/-(2^53-1)), true and false a boolean; null, an array, an object, a missing member or
text that is no JSON give nothing. The JWT converters decode the first (JOSE header) or
second (claims) dot-separated part of a token from base64url and query it; without a
path HAProxy 2.6 gives nothing (it runs the query with an empty path), and so does poise.
Pure.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from poise.core.values import Value, to_str

JSON_INT_MAX = 2**53 - 1
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
Convert = Callable[[Value], Value | None]


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """mjson finds the first member of a name; json.loads would keep the last."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


_MISSING = object()


def _member(node: Any, step: str | int) -> Any:
    """A member of an object or an element of an array; _MISSING when there is none."""
    if isinstance(step, str):
        return node[step] if isinstance(node, dict) and step in node else _MISSING
    return node[step] if isinstance(node, list) and step < len(node) else _MISSING


def _path(path: str) -> list[str | int] | None:
    if not path.startswith("$"):
        return None
    steps: list[str | int] = []
    at = 1
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            return None
        steps.append(match[1] if match[1] is not None else int(match[2]))
        at = match.end()
    return steps


def query(text: str, path: str, as_int: bool) -> Value | None:
    """sample_conv_json_query on `text`."""
    steps = _path(path)
    if steps is None:
        return None
    try:
        node: Any = json.loads(text, object_pairs_hook=_first_wins)
    except (ValueError, RecursionError):
        return None
    for step in steps:
        node = _member(node, step)
        if node is _MISSING:
            return None
    if isinstance(node, bool):
        return node
    if isinstance(node, int | float):
        if as_int:
            number = int(node)
            return number if -JSON_INT_MAX <= number <= JSON_INT_MAX else None
        return f"{float(node):g}"
    if isinstance(node, str):
        return node
    return None  # null, arrays and objects


def json_query(args: Sequence[str]) -> Convert:
    path, as_int = args[0], len(args) > 1 and args[1] == "int"
    return lambda value: query(to_str(value), path, as_int)


def jwt_query(part: int) -> Callable[[Sequence[str]], Convert]:
    """`jwt_header_query` (part 0) or `jwt_payload_query` (part 1)."""

    def make(args: Sequence[str]) -> Convert:
        path = args[0] if args and args[0] else None
        as_int = len(args) > 1 and args[1] == "int"

        def convert(value: Value) -> Value | None:
            parts = to_str(value).split(".")
            if len(parts) <= part:
                return None
            data = parts[part].replace("-", "+").replace("_", "/")
            try:
                decoded = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
            except (binascii.Error, ValueError):
                return None
            if path is None:
                return None  # HAProxy 2.6 queries an empty path then: nothing
            return query(decoded.decode("latin-1"), path, as_int)

        return convert

    return make
