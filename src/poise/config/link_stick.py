"""The stick tables that fetches and rules name, checked once every section is read
(HAProxy's smp_resolve_args and its check of `track-sc` rules): the proxy must exist and
hold a `stick-table`. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.config.diagnostics import Diagnostic, error
from poise.config.model import Config, Where


def missing_tables(refs: Sequence[tuple[str, str, Where]], config: Config) -> list[Diagnostic]:
    """HAProxy's messages for the tables named (keyword, table, line) that do not exist."""
    tables = {table.name for table in config.tables}
    proxies = {proxy.name for proxy in config.proxies}
    found = []
    for keyword, name, where in refs:
        if name in tables:
            continue
        what = "rule" if " " in keyword else "sample fetch keyword"
        if name in proxies:
            message = f"no table in proxy '{name}' referenced in {what} '{keyword}'."
        else:
            message = f"unable to find table '{name}' referenced in {what} '{keyword}'."
        found.append(error(where, message))
    return found
