"""The stats page's `;json` and `;typed` exports (HAProxy's `show stat json` and `show stat
typed`), written from the same rows as the CSV (admin/stats_report.py).

Each field of a row that has a value becomes one entry with its position in the CSV
columns, its name, and HAProxy's tags: where the value comes from (origin), what kind of
value it is (nature), its scope, and its type. The tags differ between frontends,
backends and servers (a backend's `rate` is a gauge, a server's `act` is a status); the
table below records them as HAProxy 2.6 reports them, so that tools reading the typed
formats find what they expect.

Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from poise.admin import stats
from poise.admin.stats_report import Section

# Tag letters of the typed format, and their names in JSON.
ORIGINS = {"K": "Key", "C": "Config", "P": "Product", "M": "Metric", "S": "Status"}
NATURES = {
    "A": "Age",
    "a": "Avg",
    "C": "Counter",
    "D": "Duration",
    "G": "Gauge",
    "L": "Limit",
    "M": "Max",
    "m": "Min",
    "N": "Name",
    "O": "Output",
    "R": "Rate",
}
SCOPES = {"C": "Cluster", "P": "Process", "S": "Service", "s": "System"}
OBJECT_TYPES = {
    stats.TYPE_FRONTEND: ("F", "Frontend"),
    stats.TYPE_BACKEND: ("B", "Backend"),
    stats.TYPE_SERVER: ("S", "Server"),
    stats.TYPE_SOCKET: ("L", "Listener"),  # `option socket-stats`
}

# Per column: the tags and type for a frontend, a backend and a server row ("" where
# HAProxy never fills the column for that kind of row).
_TAGS = """
pxname KNS:str KNS:str KNS:str
svname KNS:str KNS:str KNS:str
qcur - MGP:u32 MGP:u32
qmax - MMP:u32 MMP:u32
scur MGP:u32 MGP:u32 MGP:u32
smax MMP:u32 MMP:u32 MMP:u32
slim CLP:u32 CLP:u32 CLP:u32
stot MCP:u64 MCP:u64 MCP:u64
bin MCP:u64 MCP:u64 MCP:u64
bout MCP:u64 MCP:u64 MCP:u64
dreq MCP:u64 MCP:u64 -
dresp MCP:u64 MCP:u64 MCP:u64
ereq MCP:u64 - -
econ - MCP:u64 MCP:u64
eresp - MCP:u64 MCP:u64
wretr - MCP:u64 MCP:u64
wredis - MCP:u64 MCP:u64
status SGP:str SGP:str SGP:str
weight - MaP:u32 MaP:u32
act - MGP:u32 SGP:u32
bck - MGP:u32 SGP:u32
chkfail - - MCP:u64
chkdown - MCP:u64 MCP:u64
lastchg - MAP:u32 MAP:u32
downtime - MCP:u32 MCP:u32
qlimit - - CGS:u32
pid KGP:u32 KGP:u32 KGP:u32
iid KGS:u32 KGS:u32 KGS:u32
sid KGS:u32 KGS:u32 KGS:u32
throttle - - MaP:u32
lbtot - MCP:u64 MCP:u64
tracked - - CNS:str
type CGS:u32 CGS:u32 CGS:u32
rate MRP:u32 MGP:u32 MRP:u32
rate_lim CLP:u32 - -
rate_max MMP:u32 MGP:u32 MMP:u32
check_status - - MOP:str
check_code - - MOP:u32
check_duration - - MDP:u64
hrsp_1xx MCP:u64 MCP:u64 MCP:u64
hrsp_2xx MCP:u64 MCP:u64 MCP:u64
hrsp_3xx MCP:u64 MCP:u64 MCP:u64
hrsp_4xx MCP:u64 MCP:u64 MCP:u64
hrsp_5xx MCP:u64 MCP:u64 MCP:u64
hrsp_other MCP:u64 MCP:u64 MCP:u64
hanafail - - MCP:u64
req_rate MRP:u32 - -
req_rate_max MMP:u32 - -
req_tot MCP:u64 MCP:u64 MCP:u64
cli_abrt - MCP:u64 MCP:u64
srv_abrt - MCP:u64 MCP:u64
comp_in MCP:u64 MCP:u64 -
comp_out MCP:u64 MCP:u64 -
comp_byp MCP:u64 MCP:u64 -
comp_rsp MCP:u64 MCP:u64 -
lastsess - MAP:s32 MAP:s32
last_chk - - MOP:str
last_agt - - MOP:str
qtime - MaP:u32 MaP:u32
ctime - MaP:u32 MaP:u32
rtime - MaP:u32 MaP:u32
ttime - MaP:u32 MaP:u32
agent_status - - MOP:str
agent_code - - MOP:u32
agent_duration - - MDP:u64
check_desc - - MOP:str
agent_desc - - MOP:str
check_rise - - CGS:u32
check_fall - - CGS:u32
check_health - - CGS:u32
agent_rise - - CGS:u32
agent_fall - - CGS:u32
agent_health - - CGS:u32
addr - - CGS:str
cookie - CNS:str CNS:str
mode CGS:str CGS:str CGS:str
algo - CGS:str -
conn_rate MRP:u32 - -
conn_rate_max MMP:u32 - -
conn_tot MCP:u64 - -
intercepted MCP:u64 - -
dcon MCP:u64 - -
dses MCP:u64 - -
wrew MCP:u64 MCP:u64 MCP:u64
connect - MCP:u64 MCP:u64
reuse - MCP:u64 MCP:u64
cache_lookups MCP:u64 MCP:u64 -
cache_hits MCP:u64 MCP:u64 -
srv_icur - - MGP:u32
src_ilim - - MGP:u32
qtime_max - MMP:u32 MMP:u32
ctime_max - MMP:u32 MMP:u32
rtime_max - MMP:u32 MMP:u32
ttime_max - MMP:u32 MMP:u32
eint MCP:u64 MCP:u64 MCP:u64
idle_conn_cur - - MGP:u32
safe_conn_cur - - MGP:u32
used_conn_cur - - MGP:u32
need_conn_est - - MGP:u32
uweight - MaP:u32 MaP:u32
agg_server_status - MGP:u32 -
agg_server_check_status - MGP:u32 -
agg_check_status - MGP:u32 -
"""


def _read_tags(text: str) -> dict[str, tuple[str, str, str]]:
    table: dict[str, tuple[str, str, str]] = {}
    for line in text.strip().splitlines():
        name, fe, be, sv = line.split()
        table[name] = (fe, be, sv)
    return table


TAGS = _read_tags(_TAGS)
POSITIONS = {name: pos for pos, name in enumerate(stats.COLUMNS)}
# A listener's fields are tagged as its frontend's, its address as a server's.
_KIND_INDEX = {stats.TYPE_FRONTEND: 0, stats.TYPE_BACKEND: 1, stats.TYPE_SERVER: 2,
               stats.TYPE_SOCKET: 0}  # fmt: skip


def fields(row: stats.Row) -> list[tuple[int, str, str, str, str | int]]:
    """(position, name, tags, type, value) of each field of `row` that has a value, in
    column order."""
    kind = _KIND_INDEX[int(row["type"])]
    found: list[tuple[int, str, str, str, str | int]] = []
    for name in stats.COLUMNS:
        value = row.get(name, "")
        if value == "":
            continue
        spec = TAGS.get(name, ("-", "-", "-"))[2 if name == "addr" else kind]
        tags, kind_of_value = spec.split(":") if spec != "-" else ("MGP", "u32")
        if kind_of_value == "str":
            value = str(value)
        found.append((POSITIONS[name], name, tags, kind_of_value, value))
    return found


def json_rows(sections: Iterable[Section]) -> str:
    """`;json`: a list with one list of field objects per row."""
    rows = []
    for section in sections:
        for row in section.rows():
            row_type = int(row["type"])
            _, object_type = OBJECT_TYPES[row_type]
            sid = int(row["sid"]) if row_type in (stats.TYPE_SERVER, stats.TYPE_SOCKET) else 0
            rows.append(
                [
                    {
                        "objType": object_type,
                        "proxyId": int(row["iid"]),
                        "id": sid,
                        "field": {"pos": pos, "name": name},
                        "processNum": 1,
                        "tags": {
                            "origin": ORIGINS[tags[0]],
                            "nature": NATURES[tags[1]],
                            "scope": SCOPES[tags[2]],
                        },
                        "value": {"type": kind_of_value, "value": value},
                    }
                    for pos, name, tags, kind_of_value, value in fields(row)
                ]
            )
    return json.dumps(rows, separators=(",", ":")) + "\n"


def typed_rows(sections: Iterable[Section]) -> str:
    """`;typed`: one line per field, `F.<iid>.<sid>.<pos>.<name>.1:<tags>:<type>:<value>`."""
    lines: list[str] = []
    for section in sections:
        for row in section.rows():
            row_type = int(row["type"])
            letter, _ = OBJECT_TYPES[row_type]
            sid = int(row["sid"]) if row_type in (stats.TYPE_SERVER, stats.TYPE_SOCKET) else 0
            prefix = f"{letter}.{row['iid']}.{sid}"
            for pos, name, tags, kind_of_value, value in fields(row):
                lines.append(f"{prefix}.{pos}.{name}.1:{tags}:{kind_of_value}:{value}\n")
    return "".join(lines)
