"""The runtime API's `show info [typed|json] [float]` (management.txt 9.3): the process's
fields in HAProxy 2.6's order, as `Name: value` lines, or typed or JSON with each field's
position in HAProxy's list and its tags (origin, nature, scope, type), as HAProxy 2.6
reports them. One list of fields feeds the three forms.

`float` writes the uptime and the start time with their microseconds, and the rates as
floats, as HAProxy does. FailedAccepts is poise's own field: it has no place in
HAProxy's list and takes the first one after it (72).

Pure.
"""

from __future__ import annotations

import json

from poise.admin import stats
from poise.admin.stats_json import NATURES, ORIGINS, SCOPES
from poise.core.peers import state as peers_state

# name: (position in HAProxy 2.6's list, tags, type); `float` turns the "flt?" types
# into floats.
_FIELDS = """
Name 0 POS str
Version 1 POS str
Release_date 2 POS str
Nbthread 3 CGS u32
Nbproc 4 CGS u32
Process_num 5 KGP u32
Pid 6 SGP u32
Uptime 7 MDP str
Uptime_sec 8 MDP flt?
Memmax_MB 9 CLP u32
Ulimit-n 13 CLP u32
Maxsock 14 CLP u32
Maxconn 15 CLP u32
Hard_maxconn 16 CLP u32
CurrConns 17 MGP u32
CumConns 18 MCP u32
Maxpipes 23 CLP u32
PipesUsed 24 MGP u32
PipesFree 25 MGP u32
CompressBpsIn 42 MRP flt?
CompressBpsOut 43 MRP flt?
CompressBpsRateLim 44 CLP u32
Tasks 47 MGP u32
Run_queue 48 MGP u32
node 50 COS str
description 51 COS str
Stopping 52 MGP u32
Listeners 55 MGP u32
ActivePeers 56 MGP u32
ConnectedPeers 57 MGP u32
FailedAccepts 72 MCP u32
TotalBytesOut 61 MGP u64
TotalSplicdedBytesOut 62 MGP u64
Memmax_bytes 67 CLP u32
Start_time_sec 70 MDP flt?
"""
SPECS = {
    name: (int(pos), tags, kind)
    for name, pos, tags, kind in (line.split() for line in _FIELDS.strip().splitlines())
}

# (position, name, tags, type, value as written)
Field = tuple[int, str, str, str, str]


def flt(value: float) -> str:
    """HAProxy's float: six decimals, then no trailing zeros nor a bare dot."""
    return f"{value:f}".rstrip("0").rstrip(".")


def info_fields(view: stats.View, use_float: bool = False) -> list[Field]:
    """The fields poise knows, in HAProxy 2.6's order. A field whose value poise does
    not know is left out, as HAProxy leaves out a field without a value; a field for a
    thing poise does not do (pipes, peers, compression) says 0, as HAProxy says when it
    does none. `hatop` needs Maxpipes, PipesUsed, Tasks and Run_queue: poise does not
    measure a run queue and reports 0."""
    info = view.info
    elapsed = max(0.0, view.now - info.started)
    up = int(elapsed)
    total_out = sum(fe.bytes_out for fe in view.frontends.values())
    values: list[tuple[str, str | int | float | None]] = [
        ("Name", "poise"),
        ("Version", info.version),
        ("Release_date", info.release_date),
        ("Nbthread", info.nbthread),
        ("Nbproc", 1),
        ("Process_num", 1),
        ("Pid", info.pid),
        ("Uptime", f"{up // 86400}d {up % 86400 // 3600}h{up % 3600 // 60:02d}m{up % 60:02d}s"),
        ("Uptime_sec", elapsed if use_float else up),
        ("Memmax_MB", 0),  # no memory limit
        ("Ulimit-n", view.ulimit_n or None),
        ("Maxsock", view.maxsock or None),
        ("Maxconn", view.maxconn),
        ("Hard_maxconn", view.hard_maxconn or view.maxconn),
        ("CurrConns", view.actconn),
        ("CumConns", view.cum_conns),
        ("Maxpipes", 0),  # poise never splices
        ("PipesUsed", 0),
        ("PipesFree", 0),
        ("CompressBpsIn", 0),  # nor compresses
        ("CompressBpsOut", 0),
        ("CompressBpsRateLim", 0),
        ("Tasks", view.tasks),
        ("Run_queue", 0),
        ("node", info.node),
        ("description", info.description),
        ("Stopping", int(view.stopping)),
        ("Listeners", view.listeners or None),
        ("ActivePeers", peers_state.active_peers()),
        ("ConnectedPeers", peers_state.connected_peers()),
        # poise's own field: accept() failures out of descriptors or memory (HAProxy only
        # logs them); each one left the connection waiting in the backlog, not closed.
        ("FailedAccepts", view.failed_accepts),
        ("TotalBytesOut", total_out),
        ("TotalSplicdedBytesOut", 0),  # sic: HAProxy's spelling
        ("Memmax_bytes", 0),
        ("Start_time_sec", info.start_time if use_float else int(info.start_time)),
    ]
    found: list[Field] = []
    for name, value in values:
        if value is None or value == "":
            continue
        pos, tags, kind = SPECS[name]
        if kind == "flt?":
            kind = "flt" if use_float else "u32"
        text = flt(value) if kind == "flt" and isinstance(value, float) else str(value)
        found.append((pos, name, tags, kind, text))
    return found


def show_info(view: stats.View, form: str = "", use_float: bool = False) -> str:
    """`show info`: `Name: value` lines, or `form` "typed" or "json"."""
    found = info_fields(view, use_float)
    if form == "typed":
        return "".join(f"{p}.{n}.1:{t}:{k}:{v}\n" for p, n, t, k, v in found)
    if form == "json":
        return "[" + ",".join(json_field(*field) for field in found) + "]\n"
    return "".join(f"{name}: {value}\n" for _, name, _, _, value in found)


def json_field(pos: int, name: str, tags: str, kind: str, value: str) -> str:
    head = json.dumps(
        {
            "field": {"pos": pos, "name": name},
            "processNum": 1,
            "tags": {
                "origin": ORIGINS[tags[0]],
                "nature": NATURES[tags[1]],
                "scope": SCOPES[tags[2]],
            },
        },
        separators=(",", ":"),
    )
    written = json.dumps(value) if kind == "str" else value  # numbers as HAProxy writes them
    return f'{head[:-1]},"value":{{"type":"{kind}","value":{written}}}}}'
