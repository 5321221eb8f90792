"""Services poise answers itself inside an HTTP frontend, before any backend is chosen:
the stats page (`stats enable`, `stats uri`...: admin/stats_http.py) and the Prometheus
exporter (`http-request use-service prometheus-exporter`: admin/prometheus.py). Both are
written from the same stats report (admin/stats_report.py) of the running model.

The HTTP session hands every request's verdict of the frontend's `http-request` rules to
serve(): a `use-service` verdict becomes the service's answer; when the rules let the
request go on and its URI is the frontend's stats page (or that of the backend it goes to,
after that backend's own `http-request` rules, as in HAProxy), the page answers. An admin
POST whose body has not arrived yet gives NEEDS_BODY: the session reads the body (up to
stats_http.MAX_BODY) and asks again with it.

`monitor-uri` answers first, before the frontend's rules (HAProxy's order): its analyser
is core/http/request_analysers.monitor, named here as `monitor` for the session.

This is the shell's side: the View of the running Context, the process facts of `show
info`, and a timer that reads the session counters once a second for the rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import replace

from poise.admin import prometheus, stats, stats_http, stats_merge, stats_report
from poise.config import model
from poise.core.backend import start
from poise.core.frontend import Frontend
from poise.core.http import reply, request_analysers, rules
from poise.core.http.message import Request
from poise.core.logline import PROMEX_SERVICE, STATS_SERVICE
from poise.net.admin_socket import admin_info
from poise.net.context import Context
from poise.net.siblings import Payload

SAMPLE_INTERVAL = 1.0  # seconds between two readings of the counters (rates per second)
MAX_BODY = stats_http.MAX_BODY
# serve()'s answer to an admin POST whose body is still to be read.
NEEDS_BODY = rules.Verdict("service", reason="the stats page reads the request body")
# `monitor-uri`, which the session asks before the frontend's rules.
monitor = request_analysers.monitor


class Services:
    """What the services of one running poise keep: the process facts, the rate meter and
    its timer."""

    __slots__ = ("ctx", "info", "meter", "others", "timer")

    def __init__(self, ctx: Context, info: stats.AdminInfo) -> None:
        self.ctx = ctx
        self.info = info
        self.meter = stats_report.RateMeter()
        self.timer: asyncio.TimerHandle | None = None
        # With several workers: each other worker's rows as it last sent them, by slot.
        self.others: dict[int, list[stats.Row]] = {}

    def view(self) -> stats.View:
        """This worker's model, and the other workers' last rows (the balancer's)."""
        view = self.ctx.view(self.info)
        if not self.others:
            return view
        by_key: dict[tuple[object, object, object], list[stats.Row]] = {}
        for rows in self.others.values():
            for row in rows:
                by_key.setdefault(stats_merge.key(row), []).append(row)
        return replace(view, others=by_key)

    def heard(self, payload: Payload) -> None:
        """Another worker's rows (kind "stat-rows", sent every second)."""
        slot, rows = payload.get("slot"), payload.get("rows")
        if isinstance(slot, int) and isinstance(rows, list):
            self.others[slot] = [row for row in rows if isinstance(row, dict)]

    def tick(self) -> None:
        """Read the counters, and again in a second, until the process stops."""
        ctx = self.ctx
        if ctx.stopping:
            self.timer = None
            if ctx.services is self:
                ctx.services = None
            return
        own = ctx.view(self.info)
        self.meter.sample(ctx.loop.time(), stats_report.counters(own))
        siblings = ctx.siblings
        if siblings.count > 1:  # the others' stats page and exporter add these up
            sections = stats_report.report(own, self.meter.rates())
            rows = [stats_merge.compact(row) for row in stats_report.all_rows(sections)]
            siblings.broadcast("stat-rows", {"slot": siblings.index, "rows": rows})
        self.timer = ctx.loop.call_later(SAMPLE_INTERVAL, self.tick)


def start_services(ctx: Context, global_: model.Global) -> None:
    """Called once poise serves: the facts `show info` would give, and the rates timer."""
    services = ctx.services = Services(ctx, admin_info(global_, ctx.loop))
    ctx.siblings.serve("stat-rows", services.heard)
    services.tick()


def services_of(ctx: Context) -> Services:
    """The services of `ctx` (started on first use when start_services was not called)."""
    services = ctx.services
    if services is None:
        age = process_age()
        info = admin_info(model.Global(), ctx.loop)
        info = replace(info, started=info.started - age, start_time=info.start_time - age)
        services = ctx.services = Services(ctx, info)
        services.tick()
    return services


def process_age() -> float:
    """Seconds since this process started (Linux /proc), 0 when unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime, the 22nd field, in clock ticks since boot
        boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return max(0.0, boot - ticks / os.sysconf("SC_CLK_TCK"))
    return 0.0


def has_pages(ctx: Context, frontend: Frontend) -> bool:
    """Whether a page could answer the frontend's requests (its own, or that of a backend
    it routes to): worked out once per frontend, so that the common request costs one
    attribute read."""
    found = frontend.pages
    if found is None:
        proxy = frontend.proxy
        targets = {proxy.default_backend, *(use.backend for use in proxy.use_backends)}
        found = frontend.pages = proxy.stats is not None or any(
            backend.proxy.stats is not None
            for name, backend in ctx.backends.items()
            if name in targets and backend.proxy is not proxy
        )
    return found


def serve(
    ctx: Context,
    frontend: Frontend,
    req: Request,
    verdict: rules.Verdict = rules.CONTINUE,
    *,
    close: bool = False,
    body: bytes | None = None,
) -> rules.Verdict:
    """The verdict to act on for this request: `verdict` itself (the frontend's rules'),
    or the answer of the service it is for, or NEEDS_BODY."""
    if verdict.kind == "service":
        return exporter(ctx, req, close) if verdict.service == "prometheus-exporter" else verdict
    if verdict.kind != "continue" or not has_pages(ctx, frontend):
        return verdict
    page = frontend.proxy.stats
    rest = stats_http.target(page.uri, req) if page is not None else None
    if page is None or rest is None:
        # The page of the backend the request goes to, after that backend's own rules.
        name = rules.select_backend(frontend.rules, req)
        backend = ctx.backends.get(name) if name is not None else None
        if backend is None or backend.proxy is frontend.proxy or backend.proxy.stats is None:
            return verdict
        page = backend.proxy.stats
        rest = stats_http.target(page.uri, req)
        if rest is None:
            return verdict
        if body is None:
            ruled = rules.request_rules(backend.rules, req, close=close)
            if ruled.kind != "continue":
                return ruled
    services = services_of(ctx)
    answer = stats_http.answer(
        page, services.view(), req, rest, services.meter.rates(), close=close, body=body
    )
    if answer.needs_body:
        return NEEDS_BODY
    start(list(answer.goes))
    return rules.Verdict(
        "reply", answer.status, answer.response, answer.close, STATS_SERVICE, "LR--"
    )


def exporter(ctx: Context, req: Request, close: bool) -> rules.Verdict:
    """`http-request use-service prometheus-exporter`."""
    try:
        query = prometheus.parse_query(req.query)
    except prometheus.BadQuery:
        response, closes = reply.finish(reply.PAGES[400], req, True)
        return rules.Verdict("reply", 400, response, closes, PROMEX_SERVICE, "LR--")
    services = services_of(ctx)
    view = services.view()
    rates = services.meter.rates()
    sections = stats_report.report(view, rates)
    text = prometheus.exporter(view, sections, rates, query)
    headers = [("cache-control", "no-cache"), ("content-type", prometheus.CONTENT_TYPE)]
    answer = stats_http.ok(req, headers, text.encode("utf-8"), close)
    return rules.Verdict(
        "reply", answer.status, answer.response, answer.close, PROMEX_SERVICE, "LR--"
    )
