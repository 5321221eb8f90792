"""Runtime commands on frontends, backends, the process and the CLI session
(management.txt 9.3): `set maxconn frontend|global`, `disable|enable frontend`,
`enable|disable dynamic-cookie backend`, `set dynamic-cookie-key backend`, `clear counters
[all]`, `set timeout cli`, with HAProxy 2.6's answers.

A disabled frontend keeps its sockets and stops taking connections: new ones wait,
unread, as they wait at `maxconn`, until `enable frontend` (net/context.py). HAProxy 2.6
on Linux refuses them instead while the frontend is "PAUSED"; poise keeps them, so that a
short pause loses no client. Where HAProxy reads a bad number as 0 (`set maxconn frontend
F abc` would stop the frontend), poise refuses it with the message for a missing number.

Pure: the counters of servers and backends are cleared here; the frontends' limits,
pause and counters belong to the shell and change through effects.
"""

from __future__ import annotations

from poise.admin.commands_base import (
    Answer,
    ClearFrontends,
    Notice,
    Pause,
    Request,
    SetMaxconn,
    find_frontend,
)
from poise.config.units import parse_time
from poise.core import counters
from poise.core.backend import Backend


def integer(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    return int(text) if body.isascii() and body.isdigit() else None


def cmd_set_maxconn_frontend(req: Request) -> Answer:
    frontend = find_frontend(req.view, req.arg(3))
    if isinstance(frontend, str):
        return Answer(frontend)
    value = integer(req.arg(4))
    if value is None:
        return Answer("Integer value expected.\n")
    if value < 0:
        return Answer("Value out of range.\n")
    return Answer("", effects=(SetMaxconn(frontend.name, value),))


def cmd_set_maxconn_global(req: Request) -> Answer:
    """`set maxconn global N`, up to the configured maxconn; 0 (or less) restores it."""
    value = integer(req.arg(3))
    if value is None:
        return Answer("Expects an integer value.\n")
    hard = req.view.hard_maxconn or req.view.maxconn
    if value > hard:
        return Answer("Value out of range.\n")
    return Answer("", effects=(SetMaxconn(None, value if value > 0 else hard),))


def cmd_disable_frontend(req: Request) -> Answer:
    frontend = find_frontend(req.view, req.arg(2))
    if isinstance(frontend, str):
        return Answer(frontend)
    if frontend.paused:
        return Answer("All sockets are already disabled.\n")
    notice = Notice("WARNING", f"CLI : Paused frontend {frontend.name}.", frontend.name)
    return Answer("", effects=(Pause(frontend.name, True), notice))


def cmd_enable_frontend(req: Request) -> Answer:
    frontend = find_frontend(req.view, req.arg(2))
    if isinstance(frontend, str):
        return Answer(frontend)
    if not frontend.paused:
        return Answer("All sockets are already enabled.\n")
    notice = Notice("WARNING", f"CLI : Resumed frontend {frontend.name}.", frontend.name)
    return Answer("", effects=(Pause(frontend.name, False), notice))


def clear_counters(req: Request, every: bool) -> Answer:
    """The maxima (`clear counters`), or every counter (`clear counters all`, as if poise
    had just started); what is current (sessions, queues) stays."""
    for backend in req.view.backends.values():
        backend.max_sess = 0
        backend.max_queued = 0
        backend.traffic.clear_maxima()
        if every:
            backend.cum_sess = 0
            backend.requeued = 0
            counters.clear(backend)
        for server in backend.servers:
            server.max_sess = server.max_queued = 0
            server.traffic.clear_maxima()
            if every:
                server.total_sess = 0
                server.failed_conns = 0
    return Answer("", effects=(ClearFrontends(every),))


def cmd_clear_counters(req: Request) -> Answer:
    return clear_counters(req, every=False)


def cmd_clear_counters_all(req: Request) -> Answer:
    return clear_counters(req, every=True)


def cmd_set_timeout(req: Request) -> Answer:
    """`set timeout cli DELAY` (seconds unless a unit is given): this connection's idle
    timeout, in place of `stats timeout`."""
    if req.arg(2) != "cli":
        return Answer("'set timeout' only supports 'cli'.\n")
    if not req.arg(3):
        return Answer("Expects an integer value.\n")
    try:
        millis = parse_time(req.arg(3), "s")
    except ValueError:
        return Answer("Invalid timeout value.\n")
    if millis < 1:
        return Answer("Invalid timeout value.\n")
    req.session.timeout = millis / 1000.0
    return Answer("")


def _backend(req: Request) -> Backend | str:
    """The backend named in the 4th word, or HAProxy's cli_find_backend message."""
    name = req.arg(3)
    if not name:
        return "A backend name is expected.\n"
    backend = req.view.backend(name)
    return "No such backend.\n" if backend is None else backend


def cmd_enable_dynamic_cookie(req: Request) -> Answer:
    """`enable dynamic-cookie backend B`: servers without a `cookie VALUE` get one from
    the backend's key (none while it has no key), as HAProxy does."""
    backend = _backend(req)
    if isinstance(backend, str):
        return Answer(backend)
    backend.set_dynamic_cookies(True, backend.dyncookie_key)
    return Answer("")


def cmd_disable_dynamic_cookie(req: Request) -> Answer:
    backend = _backend(req)
    if isinstance(backend, str):
        return Answer(backend)
    backend.set_dynamic_cookies(False, backend.dyncookie_key)
    return Answer("")


def cmd_set_dynamic_cookie_key(req: Request) -> Answer:
    """`set dynamic-cookie-key backend B KEY`: the new key takes effect at once while
    dynamic cookies are on (the clients' old cookies then name no server)."""
    backend = _backend(req)
    if isinstance(backend, str):
        return Answer(backend)
    if not req.arg(4):
        return Answer("String value expected.\n")
    backend.set_dynamic_cookies(backend.dyncookie, req.arg(4))
    return Answer("")
