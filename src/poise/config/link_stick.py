"""The stick tables that fetches and rules name, checked once every section is read
(HAProxy's smp_resolve_args and its check of `track-sc` rules): the proxy must exist and
hold a `stick-table`. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from poise.config.diagnostics import Diagnostic, error
from poise.config.haproxy_draft import SectionDraft
from poise.config.model import Config, Where
from poise.config.model_peers import Peers
from poise.config.model_stick import DATA_TYPES, STICK_DATA, StickRule, StickTable

if TYPE_CHECKING:
    from poise.config.link_http import Resolver


def missing_tables(refs: Sequence[tuple[str, str, Where]], config: Config) -> list[Diagnostic]:
    """HAProxy's messages for the tables named (keyword, table, line) that do not exist."""
    tables = {table.name for table in config.tables}
    proxies = {proxy.name for proxy in config.proxies}
    found = []
    for keyword, name, where in refs:
        if name in tables:
            continue
        what = "rule" if " " in keyword else "sample fetch keyword"
        if keyword.startswith("table_") and keyword not in ("table_avl", "table_cnt"):
            what = "converter"
        if name in proxies:
            message = f"no table in proxy '{name}' referenced in {what} '{keyword}'."
        else:
            message = f"unable to find table '{name}' referenced in {what} '{keyword}'."
        found.append(error(where, message))
    return found


def stick_rules(section: SectionDraft, resolver: Resolver) -> tuple[StickRule, ...]:
    """A backend's `stick` rules with their conditions' ACLs resolved."""
    return tuple(
        replace(
            rule,
            condition=resolver.condition(
                rule.condition,
                f"stick {rule.kind}",
                "res" if rule.kind == "store-response" else "req",
            ),
        )
        for rule in section.stick_rules
    )


def stick_tables(
    sections: Sequence[SectionDraft], peers: Sequence[Peers], diagnostics: list[Diagnostic]
) -> tuple[StickTable, ...]:
    """The proxies' tables, then the `peers` sections'; one that `stick` rules use also
    stores the server's id and name (HAProxy adds server_id and server_key to it). A
    `peers NAME` that names no section is HAProxy's error."""
    used = {rule.table for section in sections for rule in section.stick_rules}
    names = {section.name for section in peers}
    tables = []
    declared = [section.stick_table for section in sections]
    for declared_table in [*declared, *(t for section in peers for t in section.tables)]:
        table = declared_table
        if table is None:
            continue
        if table.peers and table.peers not in names:
            message = f"Proxy '{table.name}': unable to find sync peers '{table.peers}'."
            diagnostics.append(error(table.where, message, "stick-table"))
        if table.name in used:
            store = dict(table.store)
            store.update((data, 0) for data in STICK_DATA)
            ordered = tuple((data, store[data]) for data in DATA_TYPES if data in store)
            table = replace(table, store=ordered)
        tables.append(table)
    return tuple(tables)
