"""The http-request actions that rewrite the request line (configuration.txt 4.2):
`set-method`, `set-path`, `set-pathq`, `set-query`, `set-uri`, `replace-path`,
`replace-pathq`, `replace-uri`. Each edits the Request in place and marks its head as
modified, so that the session writes the request line again from `method` and `uri`
instead of forwarding the bytes it received (net/http.py does so for edited headers).

The parts are HAProxy's: the path runs from the first '/' after an optional
scheme://authority to before the '?'; the query is what follows the first '?'. A
`replace-*` works as `replace-header`: when the regex matches the part, the whole part
becomes the replacement with its `\\N` groups. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from poise.config.model import HttpRule
from poise.core.fetch import compile_format
from poise.core.http.message import Request, Response
from poise.core.template import expand

URI_ACTIONS = frozenset(
    {
        "set-method",
        "set-path",
        "set-pathq",
        "set-query",
        "set-uri",
        "replace-path",
        "replace-pathq",
        "replace-uri",
    }
)
Edit = Callable[[Request, Response | None, bool], None]


def split(uri: str) -> tuple[str, str, str]:
    """(scheme://authority, path, ?query) of a request target; `*` is all path."""
    prefix = ""
    if not uri.startswith("/") and "://" in uri:
        start = uri.index("://") + 3
        ends = [i for i in (uri.find("/", start), uri.find("?", start)) if i >= 0]
        cut = min(ends) if ends else len(uri)
        prefix, uri = uri[:cut], uri[cut:]
    path, mark, query = uri.partition("?")
    return prefix, path, mark + query


def _set(req: Request, uri: str | None = None, method: str | None = None) -> None:
    if req.received_line is None:
        req.received_line = req.request_line  # what the log shows
    if uri is not None:
        req.uri = uri
    if method is not None:
        req.method = method
    req.headers.modified = True  # the request line is written again


def uri_step(rule: HttpRule) -> Edit:
    """The edit a rule makes (its condition is the caller's)."""
    assert rule.value is not None
    value = compile_format(rule.value, "req")
    action = rule.action
    if action.startswith("replace-"):
        return _replace(action, re.compile(rule.regex), value)

    def edit(req: Request, resp: Response | None, close: bool) -> None:
        text = value(req, resp)
        if action == "set-method":
            _set(req, method=text)
            return
        prefix, path, query = split(req.uri)
        if action == "set-path":
            _set(req, prefix + text + query)
        elif action == "set-pathq":
            _set(req, prefix + text)
        elif action == "set-uri":
            _set(req, text)
        elif query or text:  # set-query: the '?' stays, even before an empty query
            _set(req, prefix + path + "?" + text)

    return edit


def _replace(action: str, regex: re.Pattern[str], value: Callable[..., str]) -> Edit:
    def edit(req: Request, resp: Response | None, close: bool) -> None:
        prefix, path, query = split(req.uri)
        part = {"replace-path": path, "replace-pathq": path + query}.get(action, req.uri)
        found = regex.search(part)
        if found is None:
            return
        new = expand(value(req, resp), found)
        if action == "replace-path":
            _set(req, prefix + new + query)
        elif action == "replace-pathq":
            _set(req, prefix + new)
        else:
            _set(req, new)

    return edit
