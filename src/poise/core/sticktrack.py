"""Stick counters (configuration.txt 4.2 `track-sc0|1|2`, `sc-inc-gpc0`, `sc-set-gpt0`):
which table entry a session or a request tracks, and what HAProxy 2.6 counts in it and
when (include/haproxy/stream.h, session.h, http_ana.c):
- tracking starts: conn_cur, conn_cnt and conn_rate count one (stream_start_counters);
  an `http-request track-sc` also counts the request (http_req_cnt, http_req_rate);
- each HTTP request counts in the counters the session tracks already
  (stream_inc_http_req_ctr); a 4xx answer (a deny included) counts an error, a 5xx other
  than 501 and 505 a failure; the bytes each way count at the end of the transaction;
- tracking ends with the request (the request's counters) or with the connection (those
  of `tcp-request` rules): conn_cur goes down by one and the entry expires `expire` later.
A `tcp-request connection|session` rule tracks for the whole connection; poise's
`tcp-request content` does too (HAProxy's does for the stream, which in TCP mode is the
connection). Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from poise.config.model_stick import StickAction
from poise.config.samples import Scope
from poise.core.fetch import sample_values
from poise.core.http.message import Request, Response
from poise.core.stickfetch import COUNTERS, Counter, Counters, counter
from poise.core.sticktable import TABLES, Entry, FreqCtr, Table
from poise.core.txn import Conn
from poise.core.values import to_int


def _start(table: Table, entry: Entry, now: int) -> Counter:
    """stream_track_stkctr(): one more tracker, one more connection."""
    entry.refs += 1
    data = entry.data
    current = data.get("conn_cur")
    if isinstance(current, int):
        data["conn_cur"] = current + 1
    table.add(entry, "conn", 1, now)
    table.touch(entry, now)
    return Counter(table, entry)


def _stop(found: Counters) -> None:
    """The end of tracking: conn_cur goes down, the entry expires from now."""
    for item in found:
        if item is not None:
            entry = item.entry
            current = entry.data.get("conn_cur")
            if isinstance(current, int) and current > 0:
                entry.data["conn_cur"] = current - 1
            entry.refs -= 1
            item.table.touch(entry)


def _each(req: Request) -> list[Counter]:
    """Every counter a request sees: for each of sc0..sc2, its own or its connection's."""
    found = []
    for index in range(COUNTERS):
        item = counter(req, index)
        if item is not None:
            found.append(item)
    return found


def _count(items: list[Counter], name: str, inc: int = 1) -> None:
    for item in items:
        item.table.add(item.entry, name, inc)


def session_started(conn: Conn) -> None:
    """The connection's rules accepted it: its counters count a session (sess_cnt,
    sess_rate: session_count_new)."""
    if conn.track is not None:
        _count([c for c in conn.track if c is not None], "sess")


def request_started(req: Request) -> None:
    """A new HTTP request on a connection whose rules track counters."""
    conn = req.conn
    if conn is not None and conn.track is not None:
        _count([c for c in conn.track if c is not None], "http_req")


def bad_request(conn: Conn) -> None:
    """A request too malformed to read (400): the connection's counters count it as a
    request and an error (http_wait_for_request's parsing errors)."""
    if conn.track is not None:
        items = [c for c in conn.track if c is not None]
        _count(items, "http_req")
        _count(items, "http_err")


def request_ended(
    req: Request, server_status: int, denied: bool, bytes_in: int, bytes_out: int
) -> None:
    """The end of an HTTP transaction: errors (a `deny` or `tarpit` whatever its status,
    a server's 4xx), failures (a server's 5xx but 501 and 505) and bytes counted, the
    request's own counters stopped. A `return` or poise's own error page counts neither,
    as in HAProxy."""
    if req.track is None and (req.conn is None or req.conn.track is None):
        return
    event = ""
    if denied or 400 <= server_status < 500:
        event = "http_err"
    elif server_status >= 500 and server_status not in (501, 505):
        event = "http_fail"
    for item in _each(req):
        table = item.table
        if table.counters:  # one look for the common case: nothing else to count
            entry = item.entry
            if event:
                table.add(entry, event)
            if bytes_in:
                table.add(entry, "bytes_in", bytes_in)
            if bytes_out:
                table.add(entry, "bytes_out", bytes_out)
    if req.track is not None:
        _stop(req.track)
        req.track = None


def connection_ended(conn: Conn, bytes_in: int = 0, bytes_out: int = 0) -> None:
    """The end of a connection: what it tracked stops (its bytes counted, in TCP mode)."""
    found = conn.track
    if found is None:
        return
    items = [c for c in found if c is not None]
    if bytes_in:
        _count(items, "bytes_in", bytes_in)
    if bytes_out:
        _count(items, "bytes_out", bytes_out)
    _stop(found)
    conn.track = None


# --- rule actions --------------------------------------------------------------------------

Step = Callable[[Request, Response | None, bool], None]


def step(action: StickAction, scope: Scope, *, connection: bool = False) -> Step:
    """A rule's stick action; `connection`: a `tcp-request` rule's, tracked for the whole
    connection."""
    if action.kind == "track":
        assert action.key is not None
        values = sample_values(action.key, scope)
        return _track(action, values, connection=connection, http=scope in ("req", "res"))
    index = action.counter
    if action.kind == "inc-gpc":
        name = f"gpc{action.index}"

        def inc_gpc(req: Request, resp: Response | None, close: bool) -> None:
            item = counter(req, index)
            if item is not None:
                increment_gpc(item.table, item.entry, name)

        return inc_gpc
    value = action.value
    expression = sample_values(action.key, scope) if action.key is not None else None

    def set_gpt(req: Request, resp: Response | None, close: bool) -> None:
        item = counter(req, index)
        if item is None or "gpt0" not in item.entry.data:
            return
        number: int | None = value
        if expression is not None:  # `sc-set-gpt0(N) EXPR`: nothing set without a value
            found = expression(req, resp)
            number = to_int(found[-1]) if found else None
        if number is not None:
            item.entry.data["gpt0"] = number & 0xFFFF_FFFF
            item.table.touch(item.entry)

    return set_gpt


def increment_gpc(table: Table, entry: Entry, name: str) -> int | None:
    """sc-inc-gpcN, sc_inc_gpcN: gpcN and gpcN_rate count one; gpcN's new value."""
    data = entry.data
    rate = data.get(name + "_rate")
    if isinstance(rate, FreqCtr):
        rate.add(table.clock(), table.periods[name + "_rate"])
    value = data.get(name)
    if isinstance(value, int):
        data[name] = (value + 1) & 0xFFFF_FFFF
    table.touch(entry)
    return table.read(entry, name)


def _track(
    action: StickAction,
    values: Callable[[Request, Response | None], object],
    *,
    connection: bool,
    http: bool,
) -> Step:
    index, name = action.counter, action.table

    def track(req: Request, resp: Response | None, close: bool) -> None:
        conn = req.conn
        holder = conn if connection and conn is not None else req
        found = holder.track
        if found is not None and found[index] is not None:
            return  # only the first tracking of each counter applies
        if not connection and conn is not None and conn.track and conn.track[index]:
            return  # HAProxy's stream starts with its session's counters: scN is taken
        table = TABLES.get(name)
        if table is None:
            return
        got = values(req, resp)
        if not got:
            return
        assert isinstance(got, (list, tuple))
        key = table.key(got[-1])
        entry = table.get(key) if key is not None else None
        if entry is None:
            return
        if found is None:
            found = holder.track = [None] * COUNTERS
        now = table.clock()
        found[index] = _start(table, entry, now)
        if http and not connection:
            table.add(entry, "http_req", 1, now)
            status = resp.status if resp is not None else 0
            if 400 <= status < 500:  # `http-response track-sc`: the answer so far counts
                table.add(entry, "http_err", 1, now)
            elif status >= 500 and status not in (501, 505):
                table.add(entry, "http_fail", 1, now)

    return track
