"""Persistence by stick table (configuration.txt 4.2 `stick on|match|store-request|
store-response`), as HAProxy 2.6's process_sticking_rules and process_store_rules do it:
- the request's rules run in order: a `match` (or `on`) whose key is in its table sends
  the request to the server stored there, if none is chosen yet and that server is not
  down or in maintenance (or `option persist`, `force-persist`): a draining server keeps
  its clients; a server that is gone or down is passed over and the balancer chooses;
- a `store-request` (or `on`) keeps its key to store, the first one of each table only;
  `store-response` rules add theirs when the response comes;
- once the server is known to serve (connected in TCP mode, its response in HTTP mode),
  each key kept gets its id and name (`server_id`, `server_key`), and the entry expires
  `expire` later. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from poise.config.model import Option, Proxy
from poise.config.model_stick import StickRule
from poise.config.samples import Scope
from poise.core.acl import Test, compile_condition
from poise.core.fetch import Values, sample_values
from poise.core.http.message import Request, Response
from poise.core.server import ServerState
from poise.core.sticktable import TABLES, Datum, Key, Table

Store = tuple[Table, Key]
_Compiled = tuple[StickRule, Test | None, Values]


def _compile(rule: StickRule) -> _Compiled:
    scope: Scope = "res" if rule.kind == "store-response" else "req"
    test = compile_condition(rule.condition, scope) if rule.condition is not None else None
    return rule, test, sample_values(rule.key, scope)


def _key(table: Table, values: Values, req: Request, resp: Response | None) -> Key | None:
    found = values(req, resp)
    return table.key(found[-1]) if found else None


class StickRules:
    """A backend's `stick` rules, compiled."""

    __slots__ = ("persist", "request_rules", "response_rules", "servers")

    def __init__(self, proxy: Proxy, servers: Sequence[ServerState]) -> None:
        self.request_rules = [_compile(r) for r in proxy.stick_rules if r.kind != "store-response"]
        self.response_rules = [_compile(r) for r in proxy.stick_rules if r.kind == "store-response"]
        self.persist = Option.PERSIST in proxy.options
        self.servers = servers  # the backend's own list: servers added later are in it

    def request(
        self, req: Request | None, stores: list[Store], assigned: bool, force: bool = False
    ) -> ServerState | None:
        """The server a `match` rule sends the request to (None: none, or `assigned`
        already); the keys to store are added to `stores`."""
        if req is None:
            return None
        chosen: ServerState | None = None
        for rule, test, values in self.request_rules:
            table = TABLES.get(rule.table)
            if table is None:
                continue
            if rule.stores and any(t is table for t, _ in stores):
                continue  # only the first store of each table
            if test is not None and not test(req, None):
                continue
            key = _key(table, values, req, None)
            if key is None:
                continue
            if rule.matches:
                entry = table.lookup(key)
                if entry is not None:
                    if chosen is None and not assigned:
                        chosen = self._target(entry.data, force)
                    table.touch(entry)
            if rule.stores and len(stores) < 8:  # HAProxy keeps at most 8 (s->store)
                stores.append((table, key))
        return chosen

    def response(self, req: Request, resp: Response, stores: list[Store]) -> None:
        """The `store-response` rules' keys."""
        for rule, test, values in self.response_rules:
            table = TABLES.get(rule.table)
            if table is None or any(t is table for t, _ in stores):
                continue
            if test is not None and not test(req, resp):
                continue
            key = _key(table, values, req, resp)
            if key is not None and len(stores) < 8:
                stores.append((table, key))

    def _target(self, data: Mapping[str, Datum], force: bool) -> ServerState | None:
        """sticking_rule_find_target(): the server by name, else by id."""
        name, number = data.get("server_key"), data.get("server_id")
        server = next((s for s in self.servers if name and s.name == name), None)
        if server is None:
            server = next((s for s in self.servers if s.id == number), None)
        if server is None:
            return None
        if (server.up and not server.in_maint) or self.persist or force:
            return server
        return None


def commit(stores: Sequence[Store], server: ServerState) -> None:
    """The server served: each key kept is stored with it (process_store_rules)."""
    for table, key in stores:
        entry = table.get(key)
        if entry is None:
            continue
        data = entry.data
        if "server_id" in data:
            data["server_id"] = server.id
        if "server_key" in data:
            data["server_key"] = server.name
        table.touch(entry)
