"""The statistics of a balancer of several workers from each worker's rows
(admin/stats_merge.py): counters summed, maxima of counts summed (an upper bound), maxima
of times the largest, average times weighted by sessions, the rest the answering
worker's. Rows are the ones the stats build (tests/unit/stats_page_world.py's world)."""

from __future__ import annotations

import json

from poise.admin import stats_report
from poise.admin.stats import MODULE_COLUMNS, Row
from poise.admin.stats_merge import SUMMED, compact, merge, merge_rows
from tests.unit.stats_page_world import World


def server(**fields: str | int) -> Row:
    row: Row = {"type": 2, "pxname": "be", "svname": "s1", "status": "UP", "weight": 1}
    row.update(fields)
    return row


def test_counters_add_up_and_the_rest_is_the_answering_workers() -> None:
    one = server(stot=10, bin=100, scur=2, smax=5, status="UP", chkfail=1, lastsess=4)
    two = server(stot=30, bin=50, scur=1, smax=7, status="DOWN", chkfail=9, lastsess=2)
    merged = merge_rows(one, [two])
    assert (merged["stot"], merged["bin"], merged["scur"], merged["smax"]) == (40, 150, 3, 12)
    assert (merged["status"], merged["chkfail"], merged["weight"]) == ("UP", 1, 1)
    assert merged["lastsess"] == 2  # the most recent session of any worker


def test_times() -> None:
    one = server(stot=10, ttime=100, ttime_max=400, qtime=0)
    two = server(stot=30, ttime=20, ttime_max=900, qtime=0)
    idle = server(stot=0, ttime=0, ttime_max=0, qtime=0)
    merged = merge_rows(one, [two, idle])
    assert merged["ttime"] == (100 * 10 + 20 * 30) // 40  # by sessions; idle weighs nothing
    assert merged["ttime_max"] == 900  # the longest any worker saw: exact
    assert merge_rows(idle, [server(stot=0, ttime=6)])["ttime"] == 3


def test_empty_fields_do_not_count_and_stay_empty_when_all_are() -> None:
    merged = merge_rows(server(stot="", bin=5, lastsess=-1), [server(stot=3, bin="", lastsess=-1)])
    assert (merged["stot"], merged["bin"], merged["lastsess"]) == (3, 5, -1)
    assert merge_rows(server(stot=""), [server(stot="")])["stot"] == ""


def test_real_rows_every_counter_summed_the_rest_the_answering_workers() -> None:
    rows = stats_report.all_rows(stats_report.report(World().view()))
    assert len(rows) > 5

    def worker(k: int) -> list[Row]:
        """Worker k's rows: each counter k more than the world's, each status its own."""
        return [
            {c: v + k if c in SUMMED and isinstance(v, int) else v for c, v in row.items()}
            | {"status": f"W{k}"}
            for row in rows
        ]

    merged = merge(worker(0), [worker(1), worker(2)])  # three workers
    assert len(merged) == len(rows)
    summed = 0
    for before, after in zip(rows, merged, strict=True):
        assert after.keys() == before.keys() | {"status"}
        assert after["status"] == "W0"
        for column, value in before.items():
            if column in SUMMED and isinstance(value, int):
                assert after[column] == 3 * value + 3, column
                summed += 1
            elif column not in ("qtime", "ctime", "rtime", "ttime", "status"):
                assert after[column] == value, column
    assert summed > 100


def test_a_row_only_another_worker_has_is_left_out_and_one_alone_is_as_it_is() -> None:
    mine = [server(svname="s1", stot=1)]
    assert merge(mine, [[server(svname="s2", stot=5)]]) == mine
    assert merge(mine, []) == mine


def test_module_columns_are_summed() -> None:
    assert set(MODULE_COLUMNS) <= SUMMED


def test_a_compact_row_merges_as_the_whole_row() -> None:
    rows = stats_report.all_rows(stats_report.report(World().view()))
    other = [{**row, "stot": 4, "bin": 0, "lastsess": 0, "status": "X"} for row in rows]
    whole = merge(rows, [other])
    sent = json.loads(json.dumps([compact(row) for row in other]))  # as the bus carries it
    assert merge(rows, [sent]) == whole
