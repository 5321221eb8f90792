"""`slowstart T` on a server (configuration.txt 5.2): a server that comes back UP after it
was seen DOWN, or leaves maintenance, takes its traffic gradually over T; never at
start-up. Pure: the time comes in as an argument (net's one-second tick calls `step`).

HAProxy 2.6's arithmetic (server.c server_recalc_eweight, queue.c srv_dynamic_maxconn),
in whole seconds as HAProxy counts them, T rounded up to a second:
- a dynamic algorithm's effective weight is weight x w / 16, with
  w = (16 x elapsed + T) // T: a sixteenth of the weight at once, all of it after T;
- the connection limit (`maxconn`, or the dynamic one of `minconn`/`fullconn`) is
  max(1, limit x (100 x elapsed // T) // 100), with any algorithm.
The dynamic balancers read weight x ServerState.ramp (w; 16, HAProxy's BE_WEIGHT_SCALE,
when no ramp runs), which keeps their proportions exact with a ramp or without one; the
static ones (static-rr, map-based hashing) keep their configured weights, as HAProxy's.
"""

from __future__ import annotations

from poise.core.server import WEIGHT_SCALE, ServerState

__all__ = ["WEIGHT_SCALE", "begin", "end", "shown_weight", "step", "throttle"]


def _seconds(server: ServerState) -> int:
    return -(-server.config.slowstart // 1000)  # HAProxy keeps whole seconds, rounded up


def begin(server: ServerState, now: float) -> None:
    """The server just came UP (or left maintenance): its ramp starts at `now`."""
    if server.config.slowstart > 0:
        server.warm_since = now
        step(server, now)


def end(server: ServerState) -> None:
    """No ramp (the server went down, or into maintenance): full weight when it counts."""
    server.warm_since = None
    server.ramp, server.ramp_ratio = WEIGHT_SCALE, 100


def step(server: ServerState, now: float) -> bool:
    """The ramp at `now`; whether the weight changed (the balancer must update)."""
    since = server.warm_since
    if since is None:
        return False
    total = _seconds(server)
    elapsed = int(now - since)
    before = server.ramp
    if elapsed >= total or elapsed < 0:
        end(server)
    else:
        server.ramp = (WEIGHT_SCALE * elapsed + total) // total
        server.ramp_ratio = 100 * elapsed // total
    return server.ramp != before


def shown_weight(server: ServerState, dynamic: bool) -> int:
    """The weight the stats show (HAProxy's eweight scaled back, rounded up): the
    configured or `set weight` one, a fraction of it while a dynamic balancer ramps."""
    if not dynamic or server.warm_since is None:
        return server.weight
    return -(-server.weight * server.ramp // WEIGHT_SCALE)


def throttle(server: ServerState) -> int | None:
    """The stats' `throttle` column: the percentage of its weight a ramping server gets
    (HAProxy's server_throttle_rate), None when no ramp runs."""
    if server.warm_since is None:
        return None
    weight = server.weight
    if not weight:
        return 100
    return (100 * weight * server.ramp + WEIGHT_SCALE - 1) // (WEIGHT_SCALE * weight)
