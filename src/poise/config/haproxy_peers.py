"""The `peers` section of haproxy.cfg (configuration.txt 3.5, HAProxy 2.6's cfg_parse_peers):
`peer NAME [ADDR:PORT]`, or the 2.x form `bind ADDR:PORT` + `server NAME [ADDR:PORT]`
(never both in one section), `default-bind`, `default-server`, `table NAME ...` (a stick
table named `SECTION/NAME`), `disabled` and `enabled`. Messages are `haproxy -c` 2.6's.
Which peer is this process is decided when poise starts (model_peers.py). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from poise.config.address import AddressError, parse_bind, parse_server
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem
from poise.config.haproxy_stick import parse_stick_table
from poise.config.model import Address
from poise.config.model_peers import Peer, Peers
from poise.config.where import Where

# Options of a `peer`/`server` line that HAProxy 2.6 accepts and ignores for peers.
IGNORED_SERVER_OPTIONS = {"check": 0, "agent-check": 0, "init-addr": 1, "resolvers": 1}
_INVALID = re.compile(r"[^A-Za-z0-9_.:-]")


def section_name(args: Sequence[str], where: Where, known: Sequence[Peers]) -> str:
    """The NAME of `peers NAME`, checked as HAProxy checks it."""
    if not args or not args[0]:
        raise Problem("missing name for peers section.")
    if len(args) > 1:
        raise Problem(f"'peers' cannot handle unexpected argument '{args[1]}'.")
    bad = _INVALID.search(args[0])
    if bad:
        raise Problem(f"character '{bad.group()}' is not permitted in 'peers' name '{args[0]}'.")
    for other in known:
        if other.name == args[0]:
            raise Problem(
                f"peers section '{args[0]}' has the same name as another peers section "
                f"declared at {other.where.file}:{other.where.line}."
            )
    return args[0]


class PeersParser:
    """The lines of one `peers` section; `value` is the section read so far."""

    def __init__(self, name: str, where: Where, diagnostics: list[Diagnostic]) -> None:
        self.value = Peers(name, where)
        self.diagnostics = diagnostics
        self.peer_line = False
        self.bind_line = False

    def feed(self, where: Where, words: Sequence[str]) -> None:
        keyword, args = words[0], words[1:]
        try:
            if keyword in ("peer", "server"):
                self.peer(keyword, args, where)
            elif keyword == "bind":
                self.bind(args, where)
            elif keyword in ("default-bind", "default-server"):
                if args:
                    raise Problem(f"option '{args[0]}' is not implemented yet in poise")
            elif keyword == "table":
                self.table(args, where)
            elif keyword == "disabled":
                self.value = replace(self.value, disabled=True)
            elif keyword == "enabled":
                self.value = replace(self.value, disabled=False)
            elif keyword == "log":
                raise Problem("logging peer sessions is not implemented yet in poise")
            else:
                raise Problem(f"unknown keyword '{keyword}' in 'peers' section")
        except (Problem, AddressError) as exc:
            self.diagnostics.append(error(where, str(exc), keyword))

    def peer(self, keyword: str, args: Sequence[str], where: Where) -> None:
        if keyword == "peer":
            if self.bind_line:
                raise Problem('mixing "peer" and "bind" line is forbidden')
            self.peer_line = True
        if not args:
            raise Problem(f"'{keyword}' expects <name> and [<addr>:<port>] as arguments.")
        name, rest = args[0], list(args[1:])
        address: Address | None = None
        if rest and rest[0] not in IGNORED_SERVER_OPTIONS:
            address = parse_server(rest.pop(0))
            if address.family == "unix" or address.port_offset:
                raise Problem(f"'{keyword} {name}' : a TCP address with a port is needed")
        ignored = False
        while rest:
            option = rest.pop(0)
            count = IGNORED_SERVER_OPTIONS.get(option)
            if count is None:
                raise Problem(
                    f"'{keyword} {name}' : option '{option}' is not implemented yet in poise"
                )
            if len(rest) < count:
                raise Problem(f"'{keyword} {name}' : '{option}' expects an argument")
            del rest[:count]
            ignored = True
        if ignored:
            self.diagnostics.append(
                warning(
                    where,
                    f"'{keyword} {name}' : init_addr, resolvers, check and agent are ignored "
                    "for peers.",
                    keyword,
                )
            )
        self.value = replace(self.value, peers=(*self.value.peers, Peer(name, address, where)))

    def bind(self, args: Sequence[str], where: Where) -> None:
        if self.peer_line:
            raise Problem('mixing "peer" and "bind" line is forbidden')
        if not args:
            raise Problem("'bind' expects <addr>:<port> as argument.")
        if len(args) > 1:
            raise Problem(
                f"'bind {args[0]}' in section 'peers': option '{args[1]}' is not implemented "
                "yet in poise"
            )
        if self.value.bind_where is not None:
            first = self.value.bind_where
            raise Problem(
                'One listener per "peers" section is authorized but another is already '
                f"configured at [{first.file}:{first.line}]."
            )
        addresses = parse_bind(args[0])
        if len(addresses) != 1 or addresses[0].family == "unix":
            raise Problem(f"'bind {args[0]}' : one TCP address with a port is needed")
        self.bind_line = True
        self.value = replace(self.value, bind=addresses[0], bind_where=where)

    def table(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("table: missing table name.")
        name = f"{self.value.name}/{args[0]}"
        if "peers" in args[1:]:
            raise Problem("table: unknown argument 'peers'.")
        try:
            table = parse_stick_table(name, list(args[1:]), where)
        except Problem as exc:
            text = str(exc)
            if text.startswith("stick-table: "):
                text = "table: " + text[len("stick-table: ") :]
            raise Problem(text) from None
        table = replace(table, peers=self.value.name)
        self.value = replace(self.value, tables=(*self.value.tables, table))
