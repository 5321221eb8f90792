"""Variables as haproxy.cfg names them (configuration.txt `http-request set-var` and the
`var` fetch): `SCOPE.NAME`, the scopes, and the conditions of `set-var(NAME,COND...)`.

Checked as HAProxy 2.6 checks them, with its messages. Pure.
"""

from __future__ import annotations

import re

from poise.config.haproxy_draft import Problem

SCOPES = ("proc", "sess", "txn", "req", "res", "check")
# The conditions of set-var (at most four), each with its opposite.
CONDITIONS = frozenset(
    {"ifexists", "ifnotexists", "ifempty", "ifnotempty", "ifset", "ifnotset", "ifgt", "iflt"}
)
_NAME = re.compile(r"[A-Za-z0-9_.]+")


def check_var_name(name: str, after: str = "") -> str:
    """`SCOPE.NAME` as written, or HAProxy's error (`after`: what follows the name where
    it is written, which the message about a bad character shows)."""
    scope, dot, rest = name.partition(".")
    if not dot or scope not in SCOPES or not rest:
        raise Problem(
            f"invalid variable name '{name}'. A variable name must be start by its scope. "
            "The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'."
        )
    if not _NAME.fullmatch(rest):
        bad = re.search(r"[^A-Za-z0-9_.]", rest)
        assert bad is not None
        raise Problem(f"invalid syntax at char '{rest[bad.start() :]}{after}'")
    return name


def parse_var_action(inside: str) -> tuple[str, tuple[str, ...]]:
    """The inside of `set-var(NAME[,COND...])`: the name and its conditions."""
    name, *conditions = inside.split(",")
    check_var_name(name, inside[len(name) :] + ")")
    for condition in conditions:
        if condition not in CONDITIONS:
            raise Problem(f'unknown condition "{condition}".')
    if len(conditions) > 4:
        raise Problem("set-var takes at most four conditions")
    return name, tuple(conditions)
