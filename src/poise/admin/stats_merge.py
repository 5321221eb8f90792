"""One balancer's statistics from the rows of its workers (`nbthread N`, issue 17): each
worker reports its own `show stat` rows (admin/stats_report.py); the worker that answers
merges them, row by row (a frontend, listener, backend or server is the same row on every
worker: same type, proxy and name), column by column:

- counters and current figures (sessions, bytes, requests, errors, responses by status,
  connections, rates over the last second) are summed: what the whole balancer did;
- the maxima of counts (`qmax`, `smax`, `rate_max`, `req_rate_max`, `conn_rate_max`) are
  summed too: HAProxy with threads has one true maximum, poise knows each worker's, and
  their sum is an upper bound of the balancer's (the largest of them would be a lower
  bound; the sum is the one that never says a limit was not approached when it was);
- the maxima of times (`qtime_max`, `ctime_max`, `rtime_max`, `ttime_max`) are the
  largest: exactly the balancer's; the average times (`qtime`, `ctime`, `rtime`,
  `ttime`) are averaged weighted by each worker's total sessions (`stot`);
- `lastsess` is the most recent (the smallest number of seconds, -1 if none had one);
- everything else (status, weights, limits, health-check columns, decided once for the
  balancer: checks/shared.py) is the answering worker's.

A field a worker left empty (not tracked) does not count; all empty stays empty.

Pure: rows in, rows out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from poise.admin.stats import MODULE_COLUMNS, Row

__all__ = ["MERGED", "SUMMED", "compact", "key", "merge", "merge_rows"]

SUMMED = frozenset({
    "qcur", "qmax", "scur", "smax", "stot", "bin", "bout", "dreq", "dresp", "ereq", "econ",
    "eresp", "wretr", "wredis", "lbtot", "rate", "rate_max", "hrsp_1xx", "hrsp_2xx",
    "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "req_rate", "req_rate_max", "req_tot",
    "cli_abrt", "srv_abrt", "comp_in", "comp_out", "comp_byp", "comp_rsp", "conn_rate",
    "conn_rate_max", "conn_tot", "intercepted", "dcon", "dses", "wrew", "connect", "reuse",
    "cache_lookups", "cache_hits", "srv_icur", "eint", "idle_conn_cur", "safe_conn_cur",
    "used_conn_cur", "need_conn_est", *MODULE_COLUMNS,
})  # fmt: skip
LARGEST = frozenset({"qtime_max", "ctime_max", "rtime_max", "ttime_max"})
AVERAGED = frozenset({"qtime", "ctime", "rtime", "ttime"})
Key = tuple[object, object, object]


def key(row: Row) -> Key:
    """What names a row on every worker: its type, proxy and name."""
    return row.get("type"), row.get("pxname"), row.get("svname")


def _ints(values: Iterable[str | int]) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def merge_rows(own: Row, others: Sequence[Row]) -> Row:
    """One row of the balancer: this worker's (`own`) with the other workers' same row."""
    if not others:
        return own
    rows = [own, *others]
    merged: Row = dict(own)
    for column, value in own.items():
        values = [row.get(column, 0 if column in SUMMED else "") for row in rows]
        numbers = _ints(values)
        if not numbers:
            continue
        if column in SUMMED:
            merged[column] = sum(numbers)
        elif column in LARGEST:
            merged[column] = max(numbers)
        elif column in AVERAGED:
            merged[column] = _weighted(rows, column, value)
        elif column == "lastsess":
            seen = [n for n in numbers if n >= 0]
            merged[column] = min(seen) if seen else value
    return merged


def _weighted(rows: Sequence[Row], column: str, value: str | int) -> str | int:
    pairs = [
        (row[column], row.get("stot", 0))
        for row in rows
        if isinstance(row.get(column), int) and not isinstance(row.get(column), bool)
    ]
    weights = [w for _, w in pairs if isinstance(w, int) and w > 0]
    total = sum(weights)
    if not pairs:
        return value
    if total == 0:  # no sessions anywhere: the plain average
        return sum(int(v) for v, _ in pairs) // len(pairs)
    return sum(int(v) * w for v, w in pairs if isinstance(w, int) and w > 0) // total


def merge(own: Sequence[Row], others: Sequence[Sequence[Row]]) -> list[Row]:
    """The balancer's rows, in this worker's order; a row only another worker has (an
    object this worker does not know, e.g. not added yet) is left out."""
    theirs: dict[Key, list[Row]] = {}
    for rows in others:
        for row in rows:
            theirs.setdefault(key(row), []).append(row)
    return [merge_rows(row, theirs.get(key(row), [])) for row in own]


MERGED = SUMMED | LARGEST | AVERAGED | {"lastsess"}


def compact(row: Row) -> Row:
    """What another worker needs of a row to merge it: its name and its figures that are
        merged (the rest is the answering worker's); a count of 0 is left out (a missing
    count is 0)."""
    kept: Row = {"type": row.get("type", ""), "pxname": row.get("pxname", "")}
    kept["svname"] = row.get("svname", "")
    kept.update(
        (c, v) for c, v in row.items() if c in MERGED and v != "" and (v != 0 or c not in SUMMED)
    )
    return kept
