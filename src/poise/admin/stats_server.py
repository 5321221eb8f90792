"""The cells of a `show stat` row that say how a server is doing (admin/stats.py builds
the rows): its status as HAProxy words it, on its way up or down too; its last health
check; and, for a backend as for a server, what core/traffic.py measures (lbtot, rates,
lastsess, the average and highest times, connections opened and reused). Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poise.core import traffic
from poise.core.server import AdminState, ServerState

if TYPE_CHECKING:
    from poise.admin.stats import Row, View

__all__ = ["check_fields", "server_status", "traffic_fields"]


def server_status(server: ServerState) -> str:
    """HAProxy's status column: the weight plays no part, an unchecked server that is up
    says "no check", and a checked one on its way down or up says how far it is, as
    HAProxy's stats_fill_sv_stats_computestate does: "UP 1/3" (one failed check of three
    more to go DOWN counted), "DOWN 1/2" (one good check of the two it needs)."""
    if server.resolution_maint:
        return "MAINT (resolution)"
    if server.admin is AdminState.MAINT:
        return "MAINT"
    checker = server.health if server.check_enabled else None
    if not server.up:
        if checker is None or not checker.health:
            return "DOWN"
        return f"DOWN {checker.health}/{checker.rise}"
    # How far a running server is from DOWN: HAProxy's "health - rise + 1" of "fall".
    going = (
        f" {checker.health - checker.rise + 1}/{checker.fall}"
        if checker is not None and checker.health < checker.rise + checker.fall - 1
        else ""
    )
    if server.stopping:
        return f"NOLB{going}"
    if server.admin is AdminState.DRAIN:
        return f"DRAIN{going}"
    if going:
        return f"UP{going}"
    return "UP" if server.check_enabled else "no check"


def check_fields(row: Row, server: ServerState) -> None:
    """The last health check of a checked server: its short status (L4OK, L7STS...),
    the HTTP code of a layer-7 check, its duration, its detail and description, and the
    rise/fall counter (core/health.py), as HAProxy's stats show them."""
    checker = server.health
    if checker is None:
        return
    last = checker.last
    row["check_status"] = last.status
    if last.code is not None:
        row["check_code"] = last.code
    if last.duration_ms >= 0:
        row["check_duration"] = last.duration_ms
    if last.info:
        row["last_chk"] = last.info
    row["check_desc"] = last.reason
    row["check_health"] = checker.health


def traffic_fields(
    view: View, row: Row, counted: traffic.Traffic, sessions: int, samples: int
) -> None:
    """What a backend and a server share of core/traffic.py: lbtot, sessions per second
    (`sessions`: their count now), lastsess, the average and highest times, connections
    opened and reused."""
    row["lbtot"] = counted.lbconn
    row["rate"] = counted.rate.read(sessions, view.now)
    row["rate_max"] = counted.rate.highest(sessions, view.now)
    row["lastsess"] = traffic.last_session(counted, sessions, view.now)
    row["qtime"], row["ctime"], row["rtime"], row["ttime"] = traffic.averages(counted, samples)
    row["qtime_max"] = counted.q_max
    row["ctime_max"] = counted.c_max
    row["rtime_max"] = counted.d_max
    row["ttime_max"] = counted.t_max
    row["connect"] = counted.connects
    row["reuse"] = counted.reuses
