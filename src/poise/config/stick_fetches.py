"""The stick-table fetches poise knows (configuration.txt 7.3.3), their arguments, and
the table each one reads: `sc_X(N[,T])`, `scN_X([T])`, `src_X([T])`, `table_avl([T])`,
`table_cnt([T])`. A table that is not named is, for `src_*` and `table_*`, the one of the
proxy the fetch is used in (HAProxy resolves it there; in a `defaults` section it must be
named); for `sc*_`, the table the counter tracks in. Pure; core/stickfetch.py runs them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from poise.config.haproxy_draft import Problem

# What scN_X, sc_X and src_X read (X), as HAProxy 2.6 names it.
_DATA = [
    "bytes_in_rate",
    "bytes_out_rate",
    "clr_gpc0",
    "clr_gpc1",
    "conn_cnt",
    "conn_cur",
    "conn_rate",
    "get_gpc0",
    "get_gpc1",
    "get_gpt0",
    "gpc0_rate",
    "gpc1_rate",
    "http_err_cnt",
    "http_err_rate",
    "http_fail_cnt",
    "http_fail_rate",
    "http_req_cnt",
    "http_req_rate",
    "inc_gpc0",
    "inc_gpc1",
    "kbytes_in",
    "kbytes_out",
    "sess_cnt",
    "sess_rate",
]
# name -> (output type, least and most arguments)
SPECS: dict[str, tuple[str, int, int]] = {"table_avl": ("int", 0, 1), "table_cnt": ("int", 0, 1)}
for _what in [*_DATA, "tracked", "trackers"]:
    _type = "bool" if _what == "tracked" else "int"
    SPECS[f"sc_{_what}"] = (_type, 1, 2)
    for _n in range(3):
        SPECS[f"sc{_n}_{_what}"] = (_type, 0, 1)
    if _what not in {"tracked", "trackers"}:
        SPECS[f"src_{_what}"] = (_type, 0, 1)
SPECS["src_updt_conn_cnt"] = ("int", 0, 1)
_OWN_TABLE = re.compile(r"src_.*|table_avl|table_cnt")


def table_argument(name: str, args: Sequence[str]) -> str | None:
    """The table a stick fetch names (None: the tracked one, for sc fetches)."""
    at = 1 if name.startswith("sc_") else 0
    return args[at] if len(args) > at and args[at] else None


def check_stick_args(name: str, args: tuple[str, ...], proxy: str | None) -> tuple[str, ...]:
    """The arguments of a stick fetch, with the table of `proxy` (the section it is used
    in; None: a `defaults` section) where one is implied."""
    if name.startswith("sc_"):
        if args[0] not in ("0", "1", "2"):
            raise Problem(
                f"invalid args in fetch method '{name}' : invalid stick counter '{args[0]}' "
                "(0, 1 or 2)."
            )
        return args
    if _OWN_TABLE.fullmatch(name) and not (args and args[0]):
        if proxy is None:
            raise Problem(f"table name must be set in arg 1 of sample fetch keyword '{name}'.")
        return (proxy,)
    return args
