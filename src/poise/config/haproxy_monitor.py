"""`monitor-uri URI` and `monitor fail if|unless COND` (configuration.txt 4.2), and their
link-pass rules; and the link pass's word on a frontend with no backend at all.

`monitor-uri` may come from a `defaults` section (the last line wins); `monitor fail` is a
frontend's own (HAProxy refuses it in `defaults`) and its conditions add up. The errors
are `haproxy -c` 2.6's. HAProxy says nothing of a monitor URI in a `mode tcp` frontend,
where it never answers, nor of `monitor fail` without a monitor URI; poise warns of both,
since such lines do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from poise.config.acl_parse import ReadFile, parse_condition
from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import Problem, SectionDraft
from poise.config.link_http import Resolver
from poise.config.model import Mode, Monitor, Proxy, Where

Handler = Callable[[Sequence[str], Where], None]


class MonitorKeywords:
    """The handlers of `monitor-uri` and `monitor fail` for one section."""

    def __init__(
        self,
        section: SectionDraft,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None = None,
    ) -> None:
        self.section = section
        self.diagnostics = diagnostics
        self.read_file = read_file

    def handlers(self) -> dict[str, Handler]:
        return {"monitor-uri": self.uri, "monitor fail": self.fail}

    def uri(self, args: Sequence[str], where: Where) -> None:
        if not args or not args[0]:
            raise Problem("'monitor-uri' expects an URI.")
        if len(args) > 1:
            raise Problem(f"'monitor-uri' cannot handle unexpected argument '{args[1]}'.")
        self.section.settings.monitor_uri = (args[0], where)

    def fail(self, args: Sequence[str], where: Where) -> None:
        if not args or args[0] not in ("if", "unless"):
            raise Problem(
                "'monitor fail' requires either 'if' or 'unless' followed by a condition."
            )
        condition = parse_condition(args, where, self.diagnostics, self.read_file, "monitor fail")
        self.section.monitor_fail.append(condition)


def link_monitor(
    proxy: Proxy, section: SectionDraft, resolver: Resolver, diagnostics: list[Diagnostic]
) -> Monitor | None:
    """A linked frontend's monitor: its URI (its own or its defaults'), its `monitor fail`
    conditions resolved; None in a backend, in `mode tcp` or without a URI."""
    if not proxy.is_frontend:
        return None
    written = section.effective().monitor_uri
    if written is None:
        for cond in section.monitor_fail:
            diagnostics.append(
                warning(cond.where, "has no effect without 'monitor-uri'", "monitor fail")
            )
        return None
    uri, where = written
    if proxy.mode is not Mode.HTTP:
        kind = "listen" if proxy.is_backend else "frontend"
        diagnostics.append(
            warning(
                where,
                f"ignored for {kind} '{proxy.name}' as it requires HTTP mode",
                "monitor-uri",
            )
        )
        return None
    resolved = (resolver.condition(cond, "monitor fail", "req") for cond in section.monitor_fail)
    fail = tuple(cond for cond in resolved if cond is not None)
    return Monitor(where, uri, fail)


def no_backend(proxy: Proxy, label: str) -> list[Diagnostic]:
    """A frontend with nothing to answer its requests with: no backend, no rule, no page
    and no monitor URI. HAProxy 2.6 takes it silently (each request gets a 503, each TCP
    connection is closed: `<NOSRV>`, SC in the log); poise warns."""
    if (
        not proxy.is_frontend
        or proxy.is_backend
        or proxy.default_backend is not None
        or proxy.use_backends
        or proxy.redirects
        or proxy.http_request_rules
        or proxy.stats is not None
        or proxy.monitor is not None
    ):
        return []
    refused = "request gets a 503" if proxy.mode is Mode.HTTP else "connection is closed"
    text = f"{label} has no backend (no 'default_backend' or 'use_backend'): every {refused}"
    return [warning(proxy.where, text)]
