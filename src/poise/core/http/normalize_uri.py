"""`http-request normalize-uri NORMALIZER` (configuration.txt 4.2, experimental in HAProxy
2.6: it needs `expose-experimental-directives`), one normalizer per rule, on the request
target as the server and the later rules see it:

- `path-merge-slashes`: runs of `/` in the path become one (`//a///b` -> `/a/b`);
- `path-strip-dot`: `/./` segments go (`/a/./b/.` -> `/a/b/`);
- `path-strip-dotdot [full]`: a `/..` segment takes the one before it away (`/a/../b`
  -> `/b`); at the root it stays, or goes with `full` (`/../a` -> `/a`);
- `percent-decode-unreserved [strict]`: `%XX` of a letter, digit, `-`, `.`, `_` or `~`
  is decoded, in the path and the query;
- `percent-to-uppercase [strict]`: the hex digits of `%xx` in upper case;
- `query-sort-by-name`: the `&`-separated query parameters sorted by name (stable);
- `fragment-strip`, `fragment-encode`: a `#fragment` dropped, or its `#` sent as `%23`.

With `strict`, a malformed `%` sequence answers 400 (HAProxy's); without, it is left as
it is. The path normalizers leave the query alone. Checked against haproxy 2.6 on the same
targets (tests/e2e/test_normalize_uri_differential.py). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from poise.config.haproxy_http_actions import NORMALIZER_OPTIONS, NORMALIZERS
from poise.core.http.message import Request

__all__ = ["NORMALIZERS", "NORMALIZER_OPTIONS", "apply", "normalizer"]

_SLASHES = re.compile(r"//+")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# A normalizer: the new target, or None for a malformed one (strict: 400).
Normalize = Callable[[str], str | None]


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme://authority, path, ?query#fragment) of a request target."""
    start = 0
    if not uri.startswith("/"):
        scheme = uri.find("://")
        if scheme < 0:
            return "", "", uri  # `*`, authority-form: nothing to do
        start = uri.find("/", scheme + 3)
        if start < 0:
            return uri, "", ""
    end = len(uri)
    for mark in ("?", "#"):
        found = uri.find(mark, start)
        if 0 <= found < end:
            end = found
    return uri[:start], uri[start:end], uri[end:]


def _on_path(edit: Callable[[str], str]) -> Normalize:
    def normalize(uri: str) -> str | None:
        head, path, tail = _split(uri)
        return head + edit(path) + tail if path else uri

    return normalize


def _strip_dot(path: str) -> str:
    segments = path.split("/")
    kept = [s for s in segments[1:-1] if s != "."]
    last = segments[-1] if len(segments) > 1 else ""
    return "/" + "/".join([*kept, "" if last == "." else last])


def _strip_dotdot(full: bool) -> Callable[[str], str]:
    def strip(path: str) -> str:
        out: list[str] = []
        segments = path.split("/")[1:]
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment == "..":
                if out and out[-1] != "..":
                    out.pop()
                elif not full:
                    out.append(segment)
                if last:
                    out.append("")
            else:
                out.append(segment)
        return "/" + "/".join(out)

    return strip


def _decode_unreserved(found: re.Match[str]) -> str:
    char = chr(int(found.group(1), 16))
    return char if char in _UNRESERVED else found.group(0)


def _percent(edit: Callable[[re.Match[str]], str], strict: bool) -> Normalize:
    def normalize(uri: str) -> str | None:
        if strict and _BAD_PERCENT.search(uri):
            return None
        return _PERCENT.sub(edit, uri)

    return normalize


def _sort_query(uri: str) -> str:
    path, mark, rest = uri.partition("?")
    if not mark:
        return uri
    query, hash_mark, fragment = rest.partition("#")
    params = sorted(query.split("&"), key=lambda p: p.partition("=")[0])
    return path + "?" + "&".join(params) + hash_mark + fragment


def normalizer(name: str, option: bool) -> Normalize:
    """The normalizer `name`, with its option (`full`, `strict`) or not."""
    if name == "path-merge-slashes":
        return _on_path(lambda path: _SLASHES.sub("/", path))
    if name == "path-strip-dot":
        return _on_path(_strip_dot)
    if name == "path-strip-dotdot":
        return _on_path(_strip_dotdot(option))
    if name == "percent-decode-unreserved":
        return _percent(_decode_unreserved, option)
    if name == "percent-to-uppercase":
        return _percent(lambda found: found.group(0).upper(), option)
    if name == "query-sort-by-name":
        return _sort_query
    if name == "fragment-strip":
        return lambda uri: uri.partition("#")[0]
    assert name == "fragment-encode"
    return lambda uri: uri.replace("#", "%23")


def apply(normalize: Normalize, req: Request) -> bool:
    """Normalize the request's target; False: it is malformed (strict)."""
    uri = normalize(req.uri)
    if uri is None:
        return False
    if uri != req.uri:
        if req.received_line is None:
            req.received_line = req.request_line  # the log shows the line as received
        req.uri = uri
        req.headers.modified = True  # the head is rebuilt (request_analysers.request_head)
    return True
