"""The statistics page in HTML: plain server-rendered markup, no script, so that it works
in any browser (and in a text one). It refreshes itself through the `Refresh` header
(`stats refresh`), which the HTTP side sends.

Laid out as operators know HAProxy's page: the process first (pid, uptime, limits), the
colour legend and the display options, then one table per proxy with its frontend row,
its servers and its backend row, under HAProxy's column groups (queue, session rate,
sessions, bytes, denied, errors, warnings, server). Every value comes from the stats
report's rows (admin/stats_report.py), the same rows as the CSV and JSON exports. In admin
mode (`stats admin`) each backend's table is a form: tick servers, choose an action,
Apply; the form posts what HAProxy's does (`s`, `action`, `b`).

Pure.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from poise.admin import stats
from poise.admin.stats_report import Section
from poise.config.model import StatsPage
from poise.core.server import ServerState

if TYPE_CHECKING:
    from poise.admin.stats_http import Options

# The messages of an admin action's result (`;st=`): (row class, text).
RESULT_MESSAGES = {
    "DONE": ("up", "Action processed successfully."),
    "NONE": ("going", "Nothing has changed."),
    "PART": (
        "going",
        "Action partially processed.<br>Some server names are probably unknown or ambiguous "
        "(duplicated names in the backend).",
    ),
    "ERRP": (
        "down",
        "Action not processed because of invalid parameters.<ul><li>The action is maybe "
        "unknown.</li><li>Invalid key parameter (empty or too long).</li><li>The backend "
        "name is probably unknown or ambiguous (duplicated names).</li><li>Some server names "
        "are probably unknown or ambiguous (duplicated names in the backend).</li></ul>",
    ),
    "EXCD": (
        "down",
        "<b>Action not processed : the buffer couldn't store all the data.<br>You should "
        "retry with less servers at a time.</b>",
    ),
    "DENY": ("down", "<b>Action denied.</b>"),
    "IVAL": ("down", "<b>Invalid requests (unsupported method or chunked encoded request).</b>"),
    "UNKN": ("nocheck", "Unexpected result."),
}
ACTION_CHOICES = (
    ("", "Choose an action"),
    ("ready", "Set state to READY"),
    ("drain", "Set state to DRAIN"),
    ("maint", "Set state to MAINT"),
    ("weight", "Set weight to"),
)
LEGEND = (
    ("up", "active UP"),
    ("backup up", "backup UP"),
    ("down", "active or backup DOWN"),
    ("nocheck", "not checked"),
    ("maint", "DOWN for maintenance (MAINT)"),
    ("drain", "SOFT STOPPED for maintenance (DRAIN)"),
)

STYLE = """
body { font-family: sans-serif; font-size: 13px; color: #1a1a1a; background: #fff;
       margin: 12px; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 0 0 8px 0; color: #3b2a7a; }
h3 { font-size: 14px; margin: 12px 0 4px 0; }
a { color: #1f4fa8; }
.info { border-collapse: collapse; margin-bottom: 12px; }
.info > tbody > tr > td { vertical-align: top; padding: 4px 16px 4px 0; }
.legend td { padding: 2px 6px; }
.legend .swatch { width: 18px; border: 1px solid #888; }
.msg { padding: 6px 10px; margin: 8px 0; border: 1px solid #888; }
table.px { border-collapse: collapse; margin: 14px 0 2px 0; width: 100%; }
table.px th, table.px td { border: 1px solid #9a9a9a; padding: 2px 4px; white-space: nowrap;
       font-size: 12px; }
table.px td { text-align: right; }
table.px td.name, table.px td.state, table.px td.check { text-align: left; }
table.px caption { text-align: left; font-weight: bold; font-size: 14px; padding: 2px 6px;
       background: #7a1f3d; color: #fff; caption-side: top; }
table.px caption span { font-weight: normal; font-size: 12px; margin-left: 12px; }
table.px thead th { background: #d7ecec; }
tr.frontend, tr.backend { background: #efefe2; font-weight: bold; }
tr.socket { background: #d0d0d0; }
tr.up { background: #c8f5c8; }
tr.backup.up { background: #c0d8ff; }
tr.down { background: #ffb3b3; }
tr.going { background: #fff3a8; }
tr.nocheck { background: #e6e6e6; }
tr.maint { background: #e0a86a; }
tr.drain { background: #8ccaff; }
.msg.up { background: #c8f5c8; } .msg.down { background: #ffb3b3; }
.msg.going { background: #fff3a8; } .msg.nocheck { background: #e6e6e6; }
.admin { margin: 2px 0 10px 0; }
.admin select, .admin input, .admin button { font-size: 12px; }
"""

GROUPS = (
    ("Queue", ("Cur", "Max", "Limit")),
    ("Session rate", ("Cur", "Max", "Limit")),
    ("Sessions", ("Cur", "Max", "Limit", "Total", "LbTot", "Last")),
    ("Bytes", ("In", "Out")),
    ("Denied", ("Req", "Resp")),
    ("Errors", ("Req", "Conn", "Resp")),
    ("Warnings", ("Retr", "Redis")),
    ("Server", ("Status", "LastChk", "Wght", "Act", "Bck", "Chk", "Dwn", "Dwntme", "Thrtle")),
)

# The modules of `stats show-modules`: the rows each counts on (Frontend, Listener,
# Backend, Server) and its columns of `show stat` (HAProxy 2.6's ssl, h2 and h1).
MODULES = {
    name: (kinds, tuple(c for c in stats.MODULE_COLUMNS if c.startswith(f"{name}_")))
    for name, kinds in (("ssl", "FLBS"), ("h2", "FB"), ("h1", "FB"))
}


def render(
    view: stats.View,
    sections: list[Section],
    page: StatsPage,
    wanted: Options,
    admin: bool,
) -> str:
    info = view.info
    title = "poise" if page.hide_version else f"poise version {info.version}"
    released = "" if page.hide_version else f", released {info.release_date}"
    node = page.show_node if page.show_node else info.node if page.show_node == "" else None
    on_node = f" on {escape(node)}" if node else ""
    description = page.show_desc if page.show_desc else info.description
    about = f": {escape(description)}" if page.show_desc is not None and description else ""
    out = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>Statistics Report for poise{on_node}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{STYLE}</style></head>\n<body>",
        f"<h1>{escape(title)}{escape(released)}</h1>",
        f"<h2>Statistics Report for pid {info.pid}{on_node}{about}</h2>",
        "<hr>",
    ]
    out.append(process_info(view, page, wanted))
    if wanted.result is not None and wanted.result in RESULT_MESSAGES:
        kind, text = RESULT_MESSAGES[wanted.result]
        out.append(
            f'<div class="msg {kind}" id="result"><a href="{escape(page.uri)}" '
            f'title="Remove this message">[X]</a> {text}</div>'
        )
    for section in sections:
        out.append(proxy_table(section, page, admin))
    out.append("</body></html>\n")
    return "\n".join(out)


def process_info(view: stats.View, page: StatsPage, wanted: Options) -> str:
    info = view.info
    up = max(0, int(view.now - info.started))
    uptime = f"{up // 86400}d {up % 86400 // 3600}h{up % 3600 // 60:02d}m{up % 60:02d}s"
    uri = escape(page.uri)
    up_flag = ";up" if wanted.hide_down else ""
    refresh_flag = ";norefresh" if wanted.norefresh else ""
    links = [
        (f"{uri}{refresh_flag}", "Show all servers")
        if wanted.hide_down
        else (f"{uri};up{refresh_flag}", "Hide 'DOWN' servers"),
    ]
    if page.refresh:
        if wanted.norefresh:
            links.append((f"{uri}{up_flag}", "Enable refresh"))
        else:
            links.append((f"{uri}{up_flag};norefresh", "Disable refresh"))
    links += [
        (f"{uri}{up_flag}{refresh_flag}", "Refresh now"),
        (f"{uri};csv;norefresh", "CSV export"),
        (f"{uri};json;norefresh", "JSON export"),
    ]
    legend = "".join(
        f'<tr class="{kind}"><td class="swatch"></td><td>{text}</td></tr>' for kind, text in LEGEND
    )
    options = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
    return (
        '<h3>&gt; General process information</h3>\n<table class="info"><tr><td>'
        f"<p><b>pid = </b>{info.pid} (process #1, nbproc = 1, nbthread = {info.nbthread})<br>"
        f"<b>uptime = </b>{uptime}<br>"
        f"<b>maxconn = </b>{view.maxconn}<br>"
        f"current conns = {view.actconn}; total conns = {view.cum_conns}</p></td>"
        f'<td><table class="legend">{legend}</table>'
        'Note: "DRAIN" = UP with load-balancing disabled.</td>'
        f"<td><b>Display option:</b><ul>{options}</ul></td></tr></table>"
    )


def cell(value: str | int, css: str = "", title: str = "") -> str:
    attrs = f' class="{css}"' if css else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return f"<td{attrs}>{escape(str(value))}</td>"


def get(row: stats.Row, name: str, empty: str | int = "") -> str | int:
    value = row.get(name, "")
    return empty if value == "" else value


def human(seconds: int) -> str:
    """A duration as HAProxy's page writes it: 4s, 2m10s, 3h5m, 1d2h."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def proxy_table(section: Section, page: StatsPage, admin: bool) -> str:
    proxy = section.proxy
    form = admin and section.backend is not None and bool(section.servers)
    caps = "frontend" if not proxy.is_backend else "backend" if not proxy.is_frontend else "listen"
    legend = (
        f"<span>cap: {caps}, mode: {proxy.mode.value}, id: {proxy.id}</span>"
        if page.show_legends
        else ""
    )
    name = escape(proxy.name)
    rows = [
        f'<table class="px" id="px-{name}"><caption><a id="{name}"></a>{name}{legend}</caption>',
        header(form, page.show_modules),
    ]
    modules = page.show_modules
    if section.frontend is not None:
        rows.append(with_modules(frontend_row(section.frontend, form), "F", modules))
    for row in section.sockets:  # `option socket-stats`
        rows.append(with_modules(socket_row(row, form), "L", modules))
    for server, row in section.servers:
        rows.append(with_modules(server_row(section, server, row, page, form), "S", modules))
    if section.backend is not None:
        html = backend_row(section.backend, proxy.balance.algorithm.value, form)
        rows.append(with_modules(html, "B", modules))
    rows.append("</tbody></table>")
    table = "\n".join(rows)
    if not form:
        return table
    choices = "".join(f'<option value="{v}">{t}</option>' for v, t in ACTION_CHOICES)
    return (
        f'<form method="post" class="admin" id="form-{name}">{table}\n'
        f'<div class="admin">Choose the action to perform on the checked servers: '
        f'<select name="action">{choices}</select> '
        f'<input name="weight" size="5" placeholder="weight" aria-label="weight"> '
        f'<input type="hidden" name="b" value="#{proxy.id}">'
        '<button type="submit">Apply</button></div></form>'
    )


def header(form: bool, modules: bool = False) -> str:
    first = '<th rowspan="2"></th>' if form else ""
    groups = (*GROUPS, ("Extra modules", tuple(MODULES))) if modules else GROUPS
    top = "".join(f'<th colspan="{len(cols)}">{group}</th>' for group, cols in groups)
    bottom = "".join(f"<th>{col}</th>" for _, cols in groups for col in cols)
    return f'<thead><tr>{first}<th rowspan="2"></th>{top}</tr>\n<tr>{bottom}</tr></thead><tbody>'


def sessions_to_errors(row: stats.Row) -> list[str]:
    """The cells a frontend's and a listener's rows share: sessions (current, max, limit,
    total; no lbtot or last), bytes and the denied and error counts."""
    names = ("scur", "smax", "slim", "stot", "", "", "bin", "bout", "dreq", "dresp", "ereq")
    return [cell(get(row, name) if name else "") for name in names]


def frontend_row(row: stats.Row, form: bool) -> str:
    cells = [
        '<td colspan="3"></td>',
        cell(get(row, "rate")),
        cell(get(row, "rate_max")),
        cell(get(row, "rate_lim", "-") or "-"),
        *sessions_to_errors(row),
        cell(""),
        cell(""),
        cell(""),
        cell(""),
        cell(get(row, "status"), "state"),
        '<td colspan="8"></td>',
    ]
    first = "<td></td>" if form else ""
    return f'<tr class="frontend">{first}<td class="name">Frontend</td>{"".join(cells)}</tr>'


def with_modules(row: str, kind: str, modules: bool) -> str:
    """`stats show-modules`: a row's "Extra modules" cells, one per module HAProxy 2.6
    builds in, for the kinds of rows (F, L, B, S) it counts on; its tip names the
    counters, which poise does not keep (the CSV leaves them empty too)."""
    if not modules:
        return row
    cells = "".join(
        cell(name, "module", f"{', '.join(fields)}: not counted by poise")
        if kind in kinds
        else "<td></td>"
        for name, (kinds, fields) in MODULES.items()
    )
    return row.removesuffix("</tr>") + cells + "</tr>"


def socket_row(row: stats.Row, form: bool) -> str:
    """A listener's row (`option socket-stats`), after its frontend's: its sessions, bytes
    and status, its address in the name's tip with `stats show-legends`."""
    cells = [
        '<td colspan="6"></td>',
        *sessions_to_errors(row),
        '<td colspan="4"></td>',
        cell(get(row, "status"), "state"),
        '<td colspan="8"></td>',
    ]
    first = "<td></td>" if form else ""
    name = cell(get(row, "svname"), "name", str(get(row, "addr")))
    return f'<tr class="socket">{first}{name}{"".join(cells)}</tr>'


def row_class(server: ServerState, row: stats.Row) -> str:
    status = str(row.get("status", ""))
    backup = "backup " if server.backup else ""
    if status.startswith("MAINT"):  # also "MAINT (resolution)"
        return "maint"
    if status.startswith("DRAIN"):
        return "drain"
    if status.startswith("DOWN"):  # also "DOWN 1/2", on its way up
        return "down"
    if status == "no check":
        return f"{backup}nocheck"
    return f"{backup}up"


def server_row(
    section: Section, server: ServerState, row: stats.Row, page: StatsPage, form: bool
) -> str:
    status = str(row.get("status", ""))
    shown_status = (
        status if status == "no check" else f"{human(int(get(row, 'lastchg', 0)))} {status}"
    )
    check = ""
    check_title = ""
    if row.get("check_status", ""):
        check = f"{row['check_status']}"
        if row.get("check_code", "") != "":
            check += f"/{row['check_code']}"
        if row.get("check_duration", "") != "":
            check += f" in {row['check_duration']}ms"
        check_title = str(row.get("check_desc", ""))
        if row.get("last_chk", ""):
            check_title += f": {row['last_chk']}"
    title = ""
    if page.show_legends:
        title = f"{row.get('addr', '')}, id: {server.id}"
        if row.get("cookie", ""):
            title += f", cookie: '{row['cookie']}'"
    cells = [
        *counter_cells(row, server=True),
        cell(shown_status, "state"),
        cell(check, "check", check_title),
        cell(f"{get(row, 'weight')}/{get(row, 'uweight')}"),
        cell("-" if server.backup else "Y"),
        cell("Y" if server.backup else "-"),
        cell(get(row, "chkfail")),
        cell(get(row, "chkdown")),
        cell(get(row, "downtime")),
        cell("-"),
    ]
    name = escape(server.name)
    first = ""
    if form:
        first = (
            f'<td><input type="checkbox" name="s" value="{name}" aria-label="select {name}"></td>'
        )
    name_cell = cell(server.name, "name", title)
    proxy = escape(section.proxy.name)
    return (
        f'<tr class="{row_class(server, row)}" id="sv-{proxy}-{name}">'
        f"{first}{name_cell}{''.join(cells)}</tr>"
    )


def counter_cells(row: stats.Row, server: bool) -> list[str]:
    """The queue, session, byte, denial and error cells a server row and a backend row
    share (HAProxy's columns); a server has a queue limit, a backend counts denials."""
    return [
        cell(get(row, "qcur")),
        cell(get(row, "qmax")),
        cell(get(row, "qlimit", "-") if server else ""),
        cell(get(row, "rate")),
        cell(get(row, "rate_max")),
        cell(""),
        cell(get(row, "scur")),
        cell(get(row, "smax")),
        cell(get(row, "slim", "-") if server else get(row, "slim")),
        cell(get(row, "stot")),
        cell(get(row, "lbtot")),
        cell(get(row, "lastsess")),
        cell(get(row, "bin")),
        cell(get(row, "bout")),
        cell("" if server else get(row, "dreq")),
        cell(get(row, "dresp")),
        cell(""),
        cell(get(row, "econ")),
        cell(get(row, "eresp")),
        cell(get(row, "wretr")),
        cell(get(row, "wredis")),
    ]


def backend_row(row: stats.Row, algorithm: str, form: bool) -> str:
    cells = [
        *counter_cells(row, server=False),
        cell(
            f"{human(int(row['lastchg']))} {row['status']}"
            if row.get("lastchg", "") != ""
            else get(row, "status"),
            "state",
        ),
        cell(""),
        cell(f"{get(row, 'weight')}/{get(row, 'uweight')}"),
        cell(get(row, "act")),
        cell(get(row, "bck")),
        cell(""),
        cell(get(row, "chkdown")),
        cell(get(row, "downtime")),
        cell(""),
    ]
    first = "<td></td>" if form else ""
    return (
        f'<tr class="backend">{first}'
        f"{cell('Backend', 'name', f'balancing: {algorithm}')}{''.join(cells)}</tr>"
    )
