"""HAProxy's Prometheus exporter (`http-request use-service prometheus-exporter`), written
from the stats report's rows (admin/stats_report.py), with HAProxy 2.6's metric names,
types, help texts and labels, so that dashboards and alerts written for HAProxy's built-in
exporter (addons/promex) read poise unchanged:

- `haproxy_process_*` for the process, `haproxy_frontend_*{proxy}`,
  `haproxy_backend_*{proxy}` and `haproxy_server_*{proxy,server}`; each metric is one group
  (its HELP and TYPE lines, then one line per object), in HAProxy's order;
- a status is one line per state with the value 1 for the current one
  (`haproxy_server_status{proxy="app",server="web1",state="UP"} 1`);
- a time is in seconds with six decimals, a missing limit is `NaN`, as HAProxy writes them;
- the query string filters as HAProxy's does (admin/prometheus_query.py): `scope=...`
  (repeatable, in order) and `no-maint`.

The metric table (names, types, help texts, order) is admin/prometheus_fields.py.
A metric whose column poise does not measure (compression, caches, response codes...) is
left out rather than reported as zero: a dashboard then shows "no data", not a false 0.

Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from poise.admin import stats
from poise.admin.prometheus_fields import (
    BACKEND_METRICS,
    CHECK_STATES,
    FIELDS,
    FRONTEND_METRICS,
    LISTENER_METRICS,
    LISTENER_STATES,
    MILLISECONDS,
    PROCESS_METRICS,
    PROXY_STATES,
    RESPONSE_CODES,
    SERVER_METRICS,
    SERVER_NAN,
    SERVER_STATES,
)
from poise.admin.prometheus_query import EVERYTHING, SCOPES, BadQuery, Query, parse_query
from poise.admin.stats_report import PROCESS, Rates, Section
from poise.core.peers import state as peers_state
from poise.core.server import AdminState

CONTENT_TYPE = "text/plain; version=0.0.4"
__all__ = [
    "FIELDS",
    "FRONTEND_METRICS",
    "SCOPES",
    "BadQuery",
    "Query",
    "exporter",
    "parse_query",
]


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if isinstance(value, float):
        return f"{value:f}"
    return str(value)


Line = tuple[str, float]  # (labels, value)


class Writer:
    """Metric groups: HELP and TYPE, then the lines; a metric with no line is left out."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def group(self, name: str, kind: str, helptext: str, lines: Iterable[Line]) -> None:
        found = list(lines)
        if not found:
            return
        self.out.append(f"# HELP {name} {helptext}\n# TYPE {name} {kind}\n")
        self.out.extend(f"{name}{labels} {number(value)}\n" for labels, value in found)

    def text(self) -> str:
        return "".join(self.out)


def label(**labels: str) -> str:
    inner = ",".join(f'{key}="{escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exporter(
    view: stats.View,
    sections: Sequence[Section],
    rates: Rates,
    query: Query = EVERYTHING,
) -> str:
    """The whole exposition text."""
    out = Writer()
    if "global" in query.scopes:
        process(out, view, rates)
    if "frontend" in query.scopes:
        rows = [(s.proxy.name, s.frontend) for s in sections if s.frontend is not None]
        proxies(out, "frontend", FRONTEND_METRICS, rows)
    if "listener" in query.scopes:
        listeners(out, sections)
    if "backend" in query.scopes:
        rows = [(s.proxy.name, s.backend) for s in sections if s.backend is not None]
        proxies(out, "backend", BACKEND_METRICS, rows, sections)
    if "server" in query.scopes:
        servers(out, sections, query.no_maint)
    return out.text()


def process(out: Writer, view: stats.View, rates: Rates) -> None:
    info = view.info
    uptime = max(0, int(view.now - info.started))
    current = rates.current.get(PROCESS, 0)
    highest = rates.maximum.get(PROCESS, 0)
    values: dict[str, list[Line]] = {
        "nbthread": [("", info.nbthread)],
        "nbproc": [("", 1)],
        "relative_process_id": [("", 1)],
        "uptime_seconds": [("", uptime)],
        "max_sockets": [("", view.maxsock)] if view.maxsock else [],
        "max_connections": [("", view.maxconn)],
        "hard_max_connections": [("", view.hard_maxconn or view.maxconn)],
        "current_connections": [("", view.actconn)],
        "connections_total": [("", view.cum_conns)],
        "requests_total": [("", sum(fe.req_tot for fe in view.frontends.values()))],
        "max_pipes": [("", 0)],  # poise never splices through pipes
        "pipes_used_total": [("", 0)],
        "pipes_free_total": [("", 0)],
        "current_connection_rate": [("", current)],
        "limit_connection_rate": [("", 0)],
        "max_connection_rate": [("", highest)],
        "current_session_rate": [("", current)],
        "limit_session_rate": [("", 0)],
        "max_session_rate": [("", highest)],
        "stopping": [("", int(view.stopping))],
        "active_peers": [("", peers_state.active_peers())],
        "connected_peers": [("", peers_state.connected_peers())],
        "busy_polling_enabled": [("", 0)],  # the event loop chooses its own poller
        "bytes_out_total": [("", sum(fe.bytes_out for fe in view.frontends.values()))],
        "spliced_bytes_out_total": [("", 0)],
        "failed_accepts_total": [("", view.failed_accepts)],
        "build_info": [(label(version=info.version), 1)],
        "max_memory_bytes": [("", 0)],  # no memory limit (HAProxy's -m)
        "start_time_seconds": [("", int(info.start_time))],
    }
    for name, kind, helptext in PROCESS_METRICS:
        out.group(f"haproxy_process_{name}", kind, helptext, values[name])


def value_of(row: stats.Row, column: str, nan: bool = False) -> float | None:
    """A column's value as the exporter writes it; None when the row has none (the line
    is left out), NaN where HAProxy writes NaN."""
    raw = row.get(column, "")
    if raw == "":
        return float("nan") if nan else None
    if isinstance(raw, str):
        try:
            raw = int(raw)
        except ValueError:
            return None
    if column in MILLISECONDS:
        return raw / 1000.0
    return raw


def proxies(
    out: Writer,
    scope: str,
    columns: Sequence[str],
    rows: Sequence[tuple[str, stats.Row]],
    sections: Sequence[Section] = (),
) -> None:
    for column in columns:
        name, kind, helptext = FIELDS[column]
        metric = f"haproxy_{scope}_{name}"
        lines: list[Line] = []
        if column == "status":
            for proxy, row in rows:
                state = "UP" if row.get("status") in ("OPEN", "UP") else "DOWN"
                lines.extend((label(proxy=proxy, state=s), int(s == state)) for s in PROXY_STATES)
        elif column == "hrsp":
            for code in RESPONSE_CODES:
                for proxy, row in rows:
                    value = value_of(row, f"hrsp_{code}")
                    if value is not None:
                        lines.append((label(proxy=proxy, code=code), value))
        elif column.startswith("agg_"):
            for section in sections:
                lines.extend(aggregate(column, section))
        else:
            for proxy, row in rows:
                value = value_of(row, column)
                if value is not None:
                    lines.append((label(proxy=proxy), value))
        out.group(metric, kind, helptext, lines)


def listeners(out: Writer, sections: Sequence[Section]) -> None:
    """`option socket-stats`: each listener's metrics, as HAProxy 2.6's exporter writes
    them (a metric poise leaves empty in the CSV is left out)."""
    rows = [row for section in sections for row in section.sockets]
    for column in LISTENER_METRICS:
        name, kind, helptext = FIELDS[column]
        lines: list[Line] = []
        for row in rows:
            names = {"proxy": str(row["pxname"]), "listener": str(row["svname"])}
            if column == "status":
                now = row.get("status")
                lines.extend((label(**names, state=s), int(s == now)) for s in LISTENER_STATES)
            elif (value := value_of(row, column)) is not None:
                lines.append((label(**names), value))
        out.group(f"haproxy_listener_{name}", kind, helptext, lines)


def server_state(row: stats.Row) -> str:
    """HAProxy's state label from the status column ("no check" is UP)."""
    word = str(row.get("status", "")).split(" ")[0]
    return word if word in SERVER_STATES else "UP" if word in ("no", "") else "DOWN"


def checked(server_row: stats.Row, maint: bool) -> bool:
    """HAProxy exports a server's check only while its checks run (not in maintenance)."""
    return bool(server_row.get("check_status")) and not maint


def aggregate(column: str, section: Section) -> list[Line]:
    if section.backend is None:
        return []
    proxy = section.proxy.name
    if column == "agg_check_status":
        counts = dict.fromkeys(CHECK_STATES, 0)
        for _, row in section.servers:
            status = str(row.get("check_status", ""))
            if status in counts:
                counts[status] += 1
    else:
        counts = dict.fromkeys(SERVER_STATES, 0)
        for _, row in section.servers:
            counts[server_state(row)] += 1
    return [(label(proxy=proxy, state=state), count) for state, count in counts.items()]


# Server columns the CSV leaves empty without a health check and the exporter writes as 0.
UNCHECKED_ZERO = frozenset({"chkdown", "downtime"})


def servers(out: Writer, sections: Sequence[Section], no_maint: bool) -> None:
    chosen = [
        (section.proxy.name, server.name, row, server.admin is AdminState.MAINT)
        for section in sections
        for server, row in section.servers
        if not (no_maint and server.admin is AdminState.MAINT)
    ]
    for column in SERVER_METRICS:
        name, kind, helptext = FIELDS[column]
        lines: list[Line] = []
        if column == "status":
            for proxy, server, row, _ in chosen:
                state = server_state(row)
                lines.extend(
                    (label(proxy=proxy, server=server, state=s), int(s == state))
                    for s in SERVER_STATES
                )
        elif column == "check_status":
            for proxy, server, row, maint in chosen:
                if checked(row, maint):
                    status = row.get("check_status")
                    lines.extend(
                        (label(proxy=proxy, server=server, state=s), int(s == status))
                        for s in CHECK_STATES
                    )
        elif column in ("check_code", "check_duration"):
            for proxy, server, row, maint in chosen:
                if checked(row, maint):
                    value = value_of(row, column)
                    if value is None and column == "check_code":
                        value = 0  # HAProxy reports 0 for a check without a code
                    if value is not None:
                        lines.append((label(proxy=proxy, server=server), value))
        elif column == "hrsp":
            for code in RESPONSE_CODES:
                for proxy, server, row, _ in chosen:
                    value = value_of(row, f"hrsp_{code}")
                    if value is not None:
                        lines.append((label(proxy=proxy, server=server, code=code), value))
        else:
            for proxy, server, row, _ in chosen:
                value = value_of(row, column, nan=column in SERVER_NAN)
                if value is None and column in UNCHECKED_ZERO:
                    value = 0  # an unchecked server never went down: HAProxy writes 0
                if value is not None:
                    lines.append((label(proxy=proxy, server=server), value))
        out.group(f"haproxy_server_{name}", kind, helptext, lines)
