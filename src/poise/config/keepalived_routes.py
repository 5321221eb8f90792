"""Route and rule lines of keepalived.conf (`virtual_routes`, `virtual_rules`, `static_routes`,
`static_rules`), read as Keepalived 2.2.7 reads them (vrrp_iproute.c, vrrp_iprule.c): the
words of `ip route add` / `ip rule add`, full names only. IPv4 or IPv6, by their addresses
(`default` and `all` are IPv4's, as Keepalived 2.2.7 takes them; one line mixing the two is
Keepalived's error); an option Keepalived knows that poise does not apply yet is an error
that names it, never dropped. Pure: a bad line raises Problem.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    NetmaskValueError,
    ip_network,
)
from typing import Any

from poise.config.keepalived_lexer import Node
from poise.config.keepalived_model import NextHop, Route, Rule
from poise.config.keepalived_values import Problem, integer, ip_address

# iproute2's built-in names (/etc/iproute2/rt_tables, rt_protos, rt_scopes; rtnetlink.h)
TABLES = {"default": 253, "main": 254, "local": 255}
PROTOCOLS = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
ROUTE_SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
RULE_ACTIONS = {"blackhole": 6, "unreachable": 7, "prohibit": 8}
UINT32 = 2**32 - 1


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ROUTE_UNIMPLEMENTED = _words(
    "inet6 as from tos dsfield encap expires mtu hoplimit advmss rtt rttvar reordering window "
    "cwnd ssthresh realms rto_min initcwnd initrwnd features quickack congctl pref "
    "ttl-propagate fastopen_no_cookie append track_group vrf"
)
RULE_UNIMPLEMENTED = _words(
    "inet6 realms goto l3mdev uidrange ip_proto sport dport suppress_prefixlength "
    "suppress_ifgroup sup_pl sup_group protocol ipproto tunnel-id nat map-to track_group "
    "nop type"
)


def network(text: str, what: str) -> IPv4Network | IPv6Network:
    """`ADDR[/LEN]` or `default`/`all` (0.0.0.0/0), host bits allowed as in `ip route`."""
    if text in ("default", "all"):
        return IPv4Network("0.0.0.0/0")
    address, slash, length = text.partition("/")
    ip = ip_address(address, what)
    if slash and not length.isdigit():
        raise Problem(f"bad prefix length in '{text}'")
    try:
        return ip_network(f"{ip}/{length if slash else ip.max_prefixlen}", strict=False)
    except (AddressValueError, NetmaskValueError, ValueError):
        raise Problem(f"bad prefix length in '{text}'") from None


def _one_family(
    found: list[IPv4Address | IPv6Address | IPv4Network | IPv6Network | None], problem: str
) -> None:
    if len({item.version for item in found if item is not None}) > 1:
        raise Problem(problem)


def _named(table: dict[str, int], limit: int, what: str) -> Callable[[str], int]:
    def read(text: str) -> int:
        if text in table:
            return table[text]
        if text.isdigit():
            return integer(text, 0, limit, what)
        raise Problem(f"{what} '{text}' not found (poise knows numbers and {', '.join(table)})")

    return read


_table = _named(TABLES, UINT32, "routing table")
_protocol = _named(PROTOCOLS, 255, "protocol")
_scope = _named(ROUTE_SCOPES, 255, "scope")


class _Cursor:
    def __init__(self, node: Node) -> None:
        self.words = list(node.words)
        self.index = 0

    def more(self) -> bool:
        return self.index < len(self.words)

    def take(self) -> str:
        word = self.words[self.index]
        self.index += 1
        return word

    def value(self, option: str) -> str:
        if not self.more():
            raise Problem(f"'{option}' expects a value")
        return self.take()


def parse_route(node: Node, notes: list[str]) -> Route:
    """`[src ADDR] [to] [TYPE] PREFIX [via|gw ADDR [or ADDR]] [dev IF] [table T] [metric N]
    [scope S] [protocol P] [onlink] [no_track] [add|prepend] [nexthop NEXTHOP ...]`; what
    Keepalived says of deprecated words goes to `notes`."""
    cursor = _Cursor(node)
    values: dict[str, Any] = {}
    while cursor.more():
        word = cursor.take()
        if word in ROUTE_UNIMPLEMENTED:
            raise Problem(f"'{word}' in a route is not implemented yet in poise")
        if word == "src":
            values["src"] = ip_address(cursor.value(word), "route src address")
        elif word in ("via", "gw"):
            if word == "gw":
                notes.append('"gw" for routes is deprecated. Please use "via"')
            values["via"] = ip_address(cursor.value(word), "route via address")
        elif word == "or":
            notes.append('"or" for routes is deprecated. Please use "nexthop"')
            other = ip_address(cursor.value(word), "route or address")
            if "nexthops" in values:
                notes.append('"or" route already specified - ignoring subsequent')
                continue
            if "via" not in values:
                raise Problem('"or" needs a "via" before it')
            values["nexthops"] = (NextHop(values.pop("via")), NextHop(other))
        elif word == "nexthop":
            if "nexthops" in values:
                raise Problem('Cannot specify nexthops with "or" route')
            values["nexthops"] = _nexthops(cursor)
        elif word in ("dev", "oif"):
            values["dev"] = cursor.value(word)
        elif word == "table":
            values["table"] = _table(cursor.value(word))
        elif word in ("metric", "priority", "preference"):
            values["metric"] = integer(cursor.value(word), 0, UINT32, "metric")
        elif word == "scope":
            values["scope"] = _scope(cursor.value(word))
        elif word == "protocol":
            values["protocol"] = _protocol(cursor.value(word))
        elif word == "onlink":
            values["onlink"] = True
        elif word in ("no_track", "add", "prepend"):
            pass  # poise never re-adds a deleted route (no_track); prepend is the kernel's default
        else:
            if word == "to":
                word = cursor.value(word)
            if word in ROUTE_TYPES:
                values["kind"] = word
                word = cursor.value(word)
            if "destination" in values:
                raise Problem(f"unknown route keyword '{word}'")
            try:
                values["destination"] = network(word, "route destination")
            except Problem:
                raise Problem(f"unknown route keyword '{word}'") from None
    if "destination" not in values:
        raise Problem("a route needs a destination (PREFIX)")
    wanted = ("via", "dev", "nexthops")
    if values.get("kind", "unicast") == "unicast" and not any(w in values for w in wanted):
        raise Problem("a route needs 'via', 'dev' or 'nexthop'")
    hops = [hop.via for hop in values.get("nexthops", ())]
    _one_family(
        [values["destination"], values.get("via"), values.get("src"), *hops],
        "Cannot mix IPv4 and IPv6 addresses for route",
    )
    return Route(where=node.where, **values)


def _nexthops(cursor: _Cursor) -> tuple[NextHop, ...]:
    """`nexthop [via ADDR] [dev IF] [weight 1..256] [onlink]`, repeated to the end of the
    line (vrrp_iproute.c parse_nexthops)."""
    found: list[NextHop] = []
    values: dict[str, Any] = {}
    while cursor.more():
        word = cursor.take()
        if word == "nexthop":
            found.append(NextHop(**values))
            values = {}
        elif word == "via":
            values["via"] = ip_address(cursor.value(word), "nexthop address")
        elif word == "dev":
            values["dev"] = cursor.value(word)
        elif word == "weight":
            values["weight"] = integer(cursor.value(word), 1, 256, "nexthop weight")
        elif word == "onlink":
            values["onlink"] = True
        elif word in ("encap", "realms", "as"):
            raise Problem(f"'{word}' in a nexthop is not implemented yet in poise")
        else:
            raise Problem(f"unknown nexthop keyword '{word}'")
    found.append(NextHop(**values))
    return tuple(found)


def parse_rule(node: Node, _notes: list[str]) -> Rule:
    """`[from PREFIX] [to PREFIX] [table T] [preference N] [iif IF] [oif IF] [fwmark M[/MASK]]
    [tos N] [blackhole|unreachable|prohibit] [no_track]`."""
    cursor = _Cursor(node)
    values: dict[str, Any] = {}
    while cursor.more():
        word = cursor.take()
        if word in RULE_UNIMPLEMENTED:
            raise Problem(f"'{word}' in a rule is not implemented yet in poise")
        if word in ("from", "to"):
            values["source" if word == "from" else "destination"] = network(
                cursor.value(word), f"rule {word} address"
            )
        elif word in ("table", "lookup"):
            values["table"] = _table(cursor.value(word))
        elif word in ("preference", "priority", "order"):
            values["preference"] = integer(cursor.value(word), 0, UINT32, "preference")
        elif word in ("iif", "dev"):
            values["iif"] = cursor.value(word)
        elif word == "oif":
            values["oif"] = cursor.value(word)
        elif word == "fwmark":
            mark, _, mask = cursor.value(word).partition("/")
            values["fwmark"] = _number(mark, "fwmark")
            if mask:
                values["fwmask"] = _number(mask, "fwmark mask")
        elif word in ("tos", "dsfield"):
            values["tos"] = _number(cursor.value(word), "tos", 255)
        elif word in RULE_ACTIONS:
            values["action"] = word
        elif word == "no_track":
            pass  # poise never re-adds a deleted rule: what no_track asks for
        else:
            raise Problem(f"unknown rule keyword '{word}'")
    if "table" not in values and "action" not in values:
        raise Problem("a rule needs a 'table' (or blackhole|unreachable|prohibit)")
    _one_family(
        [values.get("source"), values.get("destination")],
        "rule specification has mixed IPv4 and IPv6",
    )
    return Rule(where=node.where, **values)


def _number(text: str, what: str, limit: int = UINT32) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise Problem(f"{what} '{text}' is not a number") from None
    if not 0 <= value <= limit:
        raise Problem(f"{what} {text} is out of range [0, {limit}]")
    return value


def read_block(
    node: Node,
    parse: Callable[[Node, list[str]], Any],
    report: Callable[[Node, Problem], None],
    note: Callable[[Node, str], None],
) -> list[Any]:
    """Every line of a routes/rules/addresses block that can be read; the others reported,
    and what Keepalived warns of noted."""
    found = []
    for child in node.children or ():
        notes: list[str] = []
        try:
            if child.children is not None:
                raise Problem("does not open a block")
            found.append(parse(child, notes))
        except Problem as exc:
            report(child, exc)
        for text in notes:
            note(child, text)
    return found
