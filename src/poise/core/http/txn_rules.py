"""The steps of the actions that change how a transaction is handled, not its message
(config/haproxy_http_actions.py): `set-timeout server|tunnel` (kept on the request, read
when the request goes to the server and when a tunnel starts) and `set-log-level` (read
by the log line: net/httplog.py). Pure."""

from __future__ import annotations

from collections.abc import Callable

from poise.config.model import HttpRule
from poise.config.samples import Scope
from poise.core.fetch import sample_values, to_int
from poise.core.http.message import Request, Response

Step = Callable[[Request, Response | None, bool], None]


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
