"""The statistics report: one row per frontend, server and backend, in HAProxy's column
names, built from the run-time model by admin/stats.py's row functions. report() is the
one builder: the runtime API's `show stat`, the stats page's HTML, its `;csv`, `;json` and
`;typed` exports and the Prometheus exporter are all written from its rows, so they always
agree.

Its Filter holds what each reader asks for: `show stat`'s proxy, type and server id, and
the page's `stats scope` and `scope=`; `up` (hide servers that are down) and `no-maint`
(hide servers in maintenance) for both; the per-second rates the shell measures
(RateMeter, fed once a second) and the legend fields of `stats show-legends` (address,
cookie) for the page.

Pure: time comes in as numbers (the loop's clock), nothing here reads a clock or a socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from poise.admin import stats, stats_merge
from poise.config import model
from poise.core.backend import Backend
from poise.core.server import ServerState

# A counter's identity in the rate meter: ("F"|"B"|"S", proxy name, server name or ""),
# or PROCESS for the connections of the whole process.
Key = tuple[str, str, str]
PROCESS: Key = ("P", "", "")


class RateMeter:
    """Events per second, from cumulative counters read about once a second: the rate is
    what the counter gained over the last reading, per second (HAProxy's `rate` columns
    count the events of the last second), and the maximum is the highest rate seen."""

    __slots__ = ("at", "current", "last", "maximum")

    def __init__(self) -> None:
        self.at: float | None = None
        self.last: dict[Key, int] = {}
        self.current: dict[Key, int] = {}
        self.maximum: dict[Key, int] = {}

    def sample(self, now: float, totals: Mapping[Key, int]) -> None:
        if self.at is not None and now > self.at:
            elapsed = max(now - self.at, 1.0)
            for key, total in totals.items():
                rate = max(0, round((total - self.last.get(key, total)) / elapsed))
                self.current[key] = rate
                if rate > self.maximum.get(key, 0):
                    self.maximum[key] = rate
        self.last = dict(totals)
        self.at = now

    def rates(self) -> Rates:
        return Rates(dict(self.current), dict(self.maximum))


@dataclass(frozen=True, slots=True)
class Rates:
    current: Mapping[Key, int] = field(default_factory=dict)
    maximum: Mapping[Key, int] = field(default_factory=dict)

    def fill(self, row: stats.Row, key: Key) -> None:
        row["rate"] = self.current.get(key, 0)
        row["rate_max"] = self.maximum.get(key, 0)


def counters(view: stats.View) -> dict[Key, int]:
    """The cumulative session counters the rates are measured on."""
    totals: dict[Key, int] = {PROCESS: view.cum_conns}
    for fe in view.frontends.values():
        totals["F", fe.name, ""] = fe.cum_conn
    for be in view.backends.values():
        totals["B", be.name, ""] = be.cum_sess
        for server in be.servers:
            totals["S", be.name, server.name] = server.total_sess
    return totals


@dataclass(frozen=True, slots=True)
class Filter:
    """What a reader shows: `stats scope` names (empty: every proxy), `up`, `no-maint`,
    the legend fields of `stats show-legends`, the page URI's `scope=` (`search`): only
    the proxies whose name contains it, whatever the case (HAProxy's strnistr); and
    `show stat <iid> <type> <sid>` (-1: all; `types` is a bit mask of 1 << row type).
    The runtime API shows servers' addresses but no cookies (`cookies=False`)."""

    scope: tuple[str, ...] = ()
    hide_down: bool = False
    hide_maint: bool = False
    legends: bool = True
    search: str = ""
    iid: int = -1
    types: int = -1
    sid: int = -1
    cookies: bool = True

    @property
    def frontends(self) -> bool:
        return bool(self.types & (1 << stats.TYPE_FRONTEND))

    @property
    def backends(self) -> bool:
        return bool(self.types & (1 << stats.TYPE_BACKEND))

    @property
    def servers(self) -> bool:
        return bool(self.types & (1 << stats.TYPE_SERVER))

    @property
    def sockets(self) -> bool:
        return bool(self.types & (1 << stats.TYPE_SOCKET))


SHOW_STAT = Filter(cookies=False)  # the runtime API's `show stat`, everything


@dataclass(frozen=True, slots=True)
class Section:
    """One proxy's rows: its frontend row, its servers' rows and its backend row (a
    `listen` section has all three)."""

    proxy: model.Proxy
    frontend: stats.Row | None
    servers: list[tuple[ServerState, stats.Row]]
    backend: stats.Row | None
    model: Backend | None
    sockets: list[stats.Row] = field(default_factory=list)  # `option socket-stats`

    def rows(self) -> list[stats.Row]:
        """In `show stat` order: frontend, listeners, servers, backend."""
        found = [self.frontend] if self.frontend is not None else []
        found.extend(self.sockets)
        found.extend(row for _, row in self.servers)
        if self.backend is not None:
            found.append(self.backend)
        return found


def report(
    view: stats.View, rates: Rates | None = None, wanted: Filter = Filter()
) -> list[Section]:
    """Every enabled proxy in declaration order, as `show stat` lists them."""
    sections: list[Section] = []
    for proxy in view.proxies():
        if proxy.disabled or wanted.iid not in (-1, proxy.id):
            continue
        if wanted.scope and proxy.name not in wanted.scope:
            continue
        if wanted.search and wanted.search.lower() not in proxy.name.lower():
            continue
        fe = view.frontends.get(proxy.name) if proxy.is_frontend else None
        be = view.backends.get(proxy.name) if proxy.is_backend else None
        frontend = stats.frontend_row(view, fe) if fe is not None and wanted.frontends else None
        if frontend is not None and rates is not None:
            key: Key = ("F", proxy.name, "")
            rates.fill(frontend, key)
            frontend["rate_lim"] = 0  # `rate-limit sessions` is not supported: no limit
            frontend["conn_rate"] = frontend["rate"]
            frontend["conn_rate_max"] = frontend["rate_max"]
        sockets: list[stats.Row] = []
        if fe is not None and wanted.sockets:
            sockets = [stats.socket_row(view, fe, sock) for sock in fe.sockets]
            if not wanted.legends:  # the address is a legend, as a server's
                for row in sockets:
                    row.pop("addr", None)
        servers: list[tuple[ServerState, stats.Row]] = []
        backend: stats.Row | None = None
        if be is not None and wanted.servers:
            for server in be.servers:
                if wanted.sid not in (-1, server.id):
                    continue
                # HAProxy's SRV_ADMF_MAINT: by the operator's word or for want of an address.
                maint = server.in_maint
                if (wanted.hide_maint and maint) or (wanted.hide_down and (maint or not server.up)):
                    continue
                row = stats.server_row(view, be, server)
                if rates is not None:
                    rates.fill(row, ("S", be.name, server.name))
                legends(row, be, server, wanted)
                servers.append((server, row))
        if be is not None and wanted.backends:
            backend = stats.backend_row(view, be)
            if wanted.hide_down or wanted.hide_maint:  # HAProxy then counts those running
                running = sum(1 for s in be.servers if s.up and not s.in_maint)
                backend["status"] = f"{backend['status']} ({running}/{len(be.servers)})"
            if rates is not None:
                rates.fill(backend, ("B", be.name, ""))
            if wanted.legends and wanted.cookies and proxy.cookie is not None:
                backend["cookie"] = proxy.cookie.name
        sections.append(Section(proxy, frontend, servers, backend, be, sockets))
    if view.others:  # several workers: the balancer's figures (admin/stats_merge.py)
        for section in sections:
            for row in section.rows():
                row.update(stats_merge.merge_rows(row, view.others.get(stats_merge.key(row), ())))
    return sections


def legends(row: stats.Row, be: Backend, server: ServerState, wanted: Filter) -> None:
    """`stats show-legends`: a server's address and cookie; without it the address is not
    shown (HAProxy shows it on the page only then)."""
    if not wanted.legends:
        row.pop("addr", None)
    elif wanted.cookies and server.cookie is not None and be.proxy.cookie is not None:
        row["cookie"] = server.cookie


def all_rows(sections: Iterable[Section]) -> list[stats.Row]:
    return [row for section in sections for row in section.rows()]


def csv(sections: Iterable[Section]) -> str:
    """The `;csv` export: `show stat`'s header and lines."""
    lines = [stats.HEADER, *(stats.csv_line(row) for row in all_rows(sections))]
    return "".join(f"{line}\n" for line in lines)


def show_stat(view: stats.View, wanted: Filter = SHOW_STAT) -> str:
    """The runtime API's `show stat [<iid|proxy> <type> <sid>] [up] [no-maint]`."""
    return csv(report(view, None, wanted))
