"""The steps of the actions that change how a transaction is handled, not its message
(config/haproxy_http_actions.py): `set-timeout server|tunnel` (kept on the request, read
when the request goes to the server and when a tunnel starts) and `set-log-level` (read
by the log line: net/httplog.py); `capture` (the request's capture slots, which the log
line and the `capture.req.hdr(N)` fetches read). Pure."""

from __future__ import annotations

from collections.abc import Callable

from poise.config.model import HttpRule
from poise.config.samples import Scope
from poise.core.fetch import sample_last, sample_values, to_int, to_str
from poise.core.http.message import Request, Response

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
