"""The steps of the actions that change how a transaction is handled, not its message
(config/haproxy_http_actions.py): `set-timeout server|tunnel` (kept on the request, read
when the request goes to the server and when a tunnel starts) and `set-log-level` (read
by the log line: net/httplog.py); `capture` (the request's capture slots, which the log
line and the `capture.req.hdr(N)` fetches read); `set-map`, `del-map`, `add-acl`, `del-acl`
(the entries of a map or ACL file, as the runtime API's `set map` ... change them: the
next lookup, this request's later rules included, sees the change). Pure."""

from __future__ import annotations

from collections.abc import Callable

from poise.config import patterns
from poise.config.model import HttpRule
from poise.config.samples import Scope
from poise.core.fetch import compile_format, sample_last, sample_values, to_int, to_str
from poise.core.http.message import Request, Response
from poise.core.patterns import valid_key

Step = Callable[[Request, Response | None, bool], None]


def capture_step(rule: HttpRule, scope: Scope) -> Step:
    """`capture EXPR len N|id N`: the sample's text, cut to the slot's length, in slot N of
    the frontend's (a slot it does not have, or no value: nothing changes, as in HAProxy)."""
    assert rule.sample is not None
    values = sample_values(rule.sample, scope)
    last = sample_last(rule.sample)
    index = rule.status
    response = scope == "res"

    def capture(req: Request, resp: Response | None, close: bool) -> None:
        slots = req.resp_captures if response else req.captures
        if slots is None or index >= len(slots):
            return
        found = values(req, resp)
        if found:
            length = req.capture_lengths[response][index]
            slots[index] = to_str(found[-1] if last else found[0])[:length]

    return capture


def timing_step(rule: HttpRule, scope: Scope) -> Step:
    if rule.action == "set-log-level":
        level = rule.name

        def set_log_level(req: Request, resp: Response | None, close: bool) -> None:
            req.log_level = level

        return set_log_level
    tunnel = rule.name == "tunnel"
    if rule.sample is None:
        fixed = rule.status / 1000

        def set_timeout(req: Request, resp: Response | None, close: bool) -> None:
            if tunnel:
                req.tunnel_timeout = fixed
            else:
                req.server_timeout = fixed

        return set_timeout
    values = sample_values(rule.sample, scope)

    def set_timeout_from(req: Request, resp: Response | None, close: bool) -> None:
        found = values(req, resp)
        millis = to_int(found[-1]) if found else None
        if millis is None or millis <= 0:
            return  # no value: the timeout stays as it was (HAProxy)
        if tunnel:
            req.tunnel_timeout = millis / 1000
        else:
            req.server_timeout = millis / 1000

    return set_timeout_from


def pattern_step(rule: HttpRule, scope: Scope) -> Step:
    """HAProxy 2.6's semantics: `set-map` changes the value of every entry of the key, or
    adds one; `add-acl` adds the key unless it is there; `del-*` removes every entry of
    the key. A file that no ACL or map loaded gets an empty reference on first use, as
    HAProxy makes one; a key a map of addresses cannot hold is left out."""
    assert rule.value is not None
    path, action = rule.name, rule.action
    key_of = compile_format(rule.value, scope)
    value_of = compile_format(rule.map_value, scope) if rule.map_value is not None else None

    def change(req: Request, resp: Response | None, close: bool) -> None:
        ref = patterns.REFERENCES.get(path)
        if ref is None:
            ident = max((r.ident for r in patterns.REFERENCES.values()), default=-1) + 1
            ref = patterns.REFERENCES[path] = patterns.PatternRef(ident, path)
        key = key_of(req, resp)
        if action in ("del-map", "del-acl"):
            kept = [entry for entry in ref.entries if entry.key != key]
            if len(kept) != len(ref.entries):
                ref.entries = kept
                ref.changed()
            return
        if ref.ip_keys and not valid_key(key):
            return
        found = [entry for entry in ref.entries if entry.key == key]
        if action == "add-acl":
            if not found:
                ref.add(key, None)
            return
        assert value_of is not None
        value = value_of(req, resp)
        for entry in found:
            entry.value = value
        if found:
            ref.changed()
        else:
            ref.add(key, value)

    return change


def early_hint_step(rule: HttpRule, scope: Scope) -> Step:
    """`early-hint NAME FMT`: a `103 Early Hints` response with that one header, sent
    before the final one (each rule its own 103, none to an HTTP/1.0 client, as HAProxy
    2.6 does; the stream sends them: core/http/stream_request.py)."""
    assert rule.value is not None
    value_of = compile_format(rule.value, scope)
    start = b"HTTP/1.1 103 Early Hints\r\n" + rule.name.lower().encode("latin-1") + b": "

    def early_hint(req: Request, resp: Response | None, close: bool) -> None:
        if req.version == "1.0":
            return
        hint = start + value_of(req, resp).encode("latin-1", "replace") + b"\r\n\r\n"
        if req.hints is None:
            req.hints = [hint]
        else:
            req.hints.append(hint)

    return early_hint
