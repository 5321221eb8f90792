"""The runtime API's `show` commands (management.txt 9.3): `show info`, `show stat`,
`show servers state`, `show backend`, `show sess`, `show cli level`; and `shutdown
session`, which takes the ids `show sess` prints.

`show sess` prints HAProxy's one line per session with its keys in HAProxy's order, so
that tools reading them find `src=`, `fe=`, `be=`, `srv=`, `age=` where they look. The
keys that describe HAProxy's internals (stream flags, analysers, call counts, CPU) have
no counterpart in poise and read 0 or empty. `show sess <id>` is HAProxy's "intentionally
undocumented" detailed dump: poise prints what it knows in the same layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from poise.admin import stats, stats_info, stats_json, stats_report
from poise.admin.commands_base import Answer, EndSession, Request, atoi
from poise.core.backend import Backend

_STRTOUL = re.compile(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
SECOND, MINUTE, HOUR, DAY = 1, 60, 3600, 86400


def cmd_show_cli_level(req: Request) -> Answer:
    return Answer(f"{req.session.level.name.lower()}\n")


def formats(words: Sequence[str]) -> tuple[str, bool, bool]:
    """`typed` or `json` (the last one said wins, as in HAProxy), `desc`, `float`."""
    form = ""
    for word in words:
        if word in ("typed", "json"):
            form = word
    return form, "desc" in words, "float" in words


def cmd_show_info(req: Request) -> Answer:
    form, desc, use_float = formats(req.args[2:])
    # HAProxy's descriptions of its fields are not written for poise's: refused where
    # they would show (`json` has none).
    if desc and form != "json":
        return Answer("Option 'desc' is not supported yet.\n")
    return Answer(stats_info.show_info(req.view, form, use_float))


def cmd_show_stat(req: Request) -> Answer:
    view = req.view
    wanted = stats_report.SHOW_STAT
    first = 2
    if req.arg(2) == "domain":  # `proxy` is the one domain poise has statistics for
        if req.arg(3) != "proxy":
            return Answer("Invalid statistics domain.\n")
        first = 4
    if req.arg(first) and req.arg(first + 1) and req.arg(first + 2):
        name = req.arg(first)
        proxy = next((p for p in view.proxies() if p.name == name), None)
        iid = proxy.id if proxy is not None else atoi(name)
        if not iid:
            return Answer("No such proxy.\n")
        types, sid = atoi(req.arg(first + 1)), atoi(req.arg(first + 2))
        wanted = replace(wanted, iid=iid, types=types, sid=sid)
        first += 3
    words = req.args[first:]
    form, desc, _ = formats(words)  # `float` changes no field of `show stat` in 2.6
    if desc and form == "typed":
        return Answer("Option 'desc' is not supported yet.\n")
    if "no-maint" in words:
        wanted = replace(wanted, hide_maint=True)
    if "up" in words:
        wanted = replace(wanted, hide_down=True)
    if not form:
        return Answer(stats_report.show_stat(view, wanted))
    sections = stats_report.report(view, None, wanted)
    if form == "json":
        return Answer(stats_json.json_rows(sections))
    return Answer(stats_json.typed_rows(sections))


def backends_in_order(view: stats.View) -> list[Backend]:
    return [view.backends[p.name] for p in view.proxies() if p.name in view.backends]


def cmd_show_servers_state(req: Request) -> Answer:
    if req.arg(3):
        backend = req.view.backends.get(req.arg(3))
        if backend is None:
            return Answer("Can't find backend.\n")
        return Answer(stats.show_servers_state(req.view, [backend]))
    return Answer(stats.show_servers_state(req.view, backends_in_order(req.view)))


def cmd_show_backend(req: Request) -> Answer:
    names = "".join(f"{b.name}\n" for b in backends_in_order(req.view))
    return Answer(f"# name\n{names}")


# -- sessions -----------------------------------------------------------------------------


def session_id(text: str) -> int:
    """C's strtoul(text, NULL, 0): `0x` hexadecimal, `0` octal, else decimal; 0 when
    nothing reads as a number (the ids are never 0)."""
    match = _STRTOUL.match(text)
    if match is None:
        return 0
    digits = match.group(1)
    if digits[:2] in ("0x", "0X"):
        return int(digits[2:], 16)
    return int(digits, 8) if digits.startswith("0") else int(digits)


def human_time(seconds: float) -> str:
    """HAProxy's human_time(): at most two units, `0s`, `42s`, `3m5s`, `2h10m`, `1d4h`."""
    t = max(0, int(seconds))
    parts: list[str] = []
    if t >= DAY:
        parts.append(f"{t // DAY}d")
    if len(parts) < 2 and t % DAY // HOUR:
        parts.append(f"{t % DAY // HOUR}h")
    if len(parts) < 2 and t % HOUR // MINUTE:
        parts.append(f"{t % HOUR // MINUTE}m")
    if (len(parts) < 2 and t % MINUTE) or not t:
        parts.append(f"{t % MINUTE // SECOND}s")
    return "".join(parts)


def timer(seconds: float | None) -> str:
    return "" if seconds is None else human_time(seconds)


def session_line(info: stats.SessionInfo) -> str:
    expires = timer(info.expires)
    server_rx = expires if info.backend is not None else ""
    return (
        f"0x{info.id:x}: proto={info.proto} src={info.source} fe={info.frontend} "
        f"be={info.backend or '<NONE>'} srv={info.server or '<none>'} ts=00 epoch=0 "
        f"age={human_time(info.age)} calls=0 rate=0 cpu=0 lat=0 "
        f"rq[f=0h,i=0,an=00h,rx={expires},wx=,ax=] "
        f"rp[f=0h,i=0,an=00h,rx={server_rx},wx=,ax=] "
        f"scf=[8,0h,fd={info.client_fd}] scb=[8,1h,fd={info.server_fd}] "
        f"exp={expires} rc=0 c_exp=\n"
    )


def session_detail(view: stats.View, info: stats.SessionInfo) -> str:
    frontend = view.frontends.get(info.frontend)
    if frontend is not None:
        fe = f"{info.frontend} (id={frontend.proxy.id} mode={frontend.proxy.mode.value})"
    else:
        fe = f"{info.frontend} (id=0 mode=tcp)"  # a stats socket connection
    backend = view.backends.get(info.backend) if info.backend is not None else None
    be, srv = "<NONE> (id=-1 mode=-)", "<NONE> (id=-1)"
    if backend is not None:
        be = f"{backend.name} (id={backend.proxy.id} mode={backend.proxy.mode.value})"
        server = backend.server(info.server) if info.server is not None else None
        if server is not None:
            srv = f"{server.name} (id={server.id}) addr={stats.server_addr(server)}"
    return (
        f"0x{info.id:x}: proto={info.proto} source={info.source}\n"
        f"  frontend={fe}\n"
        f"  backend={be}\n"
        f"  server={srv}\n"
        f"  age={human_time(info.age)} exp={timer(info.expires) or '<NEVER>'} "
        f"client fd={info.client_fd} server fd={info.server_fd}\n"
    )


def cmd_show_sess(req: Request) -> Answer:
    sessions = req.view.sessions()
    if req.arg(2) == "all":
        return Answer("".join(session_detail(req.view, s) for s in sessions))
    wanted = session_id(req.arg(2))
    if not wanted:
        return Answer("".join(session_line(s) for s in sessions))
    for info in sessions:
        if info.id == wanted:
            return Answer(session_detail(req.view, info))
    return Answer("Session not found.\n")


def cmd_shutdown_session(req: Request) -> Answer:
    wanted = session_id(req.arg(2))
    if not wanted:
        return Answer("Session pointer expected (use 'show sess').\n")
    if not any(info.id == wanted for info in req.view.sessions()):
        return Answer("No such session (use 'show sess').\n")
    return Answer("", effects=(EndSession(wanted),))
