"""The http-request actions that rewrite the connection's addresses as the request sees
them (configuration.txt 4.2): `set-dst EXPR`, `set-dst-port EXPR` and `set-src-port
EXPR`. As in HAProxy 2.6 they change the addresses of this request's stream only (the
next request of a keep-alive connection starts from the connection's own again): the
`dst`, `dst_port` and `src_port` fetches, the log's `%fi`, `%fp` and `%cp`, and, for a
transparent server (`server s 0.0.0.0:0`, or a server without port), where poise
connects: HAProxy's way of making a forward proxy of a backend (`set-dst url_ip`,
`set-dst-port url_port`). A sample that gives nothing, or no address, changes nothing.
Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from poise.config.model import HttpRule
from poise.config.samples import Scope
from poise.core.fetch import sample_last, sample_values
from poise.core.http.message import Request, Response
from poise.core.values import Value, parse_ip, to_int

ADDRESS_ACTIONS = frozenset({"set-dst", "set-dst-port", "set-src-port"})
Edit = Callable[[Request, Response | None, bool], None]


def address_step(rule: HttpRule, scope: Scope) -> Edit:
    """The step of one of ADDRESS_ACTIONS (its expression in `rule.sample`)."""
    assert rule.sample is not None
    values = sample_values(rule.sample, scope)
    last = sample_last(rule.sample)
    action = rule.action

    def edit(req: Request, resp: Response | None, close: bool) -> None:
        found = values(req, resp)
        if not found:
            return
        value = found[-1] if last else found[0]
        if action == "set-dst":
            address = to_address(value)
            if address is not None:
                req.dst = address
                req.dst_set = True
            return
        port = to_int(value)
        if port is None:
            return
        port &= 0xFFFF  # a 16-bit field (htons)
        if action == "set-src-port":
            req.src_port = port
            return
        if parse_ip(req.dst) is None:  # not an IP socket: HAProxy makes it 0.0.0.0
            req.dst = "0.0.0.0"
        req.dst_port = port
        req.dst_set = True

    return edit


def to_address(value: Value) -> str | None:
    """A sample as an IP address (HAProxy's cast to `addr`): an address, a text that
    reads as one, or an integer (an IPv4 address); None: none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, tuple):
        version, number = value
        return str(IPv4Address(number) if version == 4 else IPv6Address(number))
    if isinstance(value, int):
        return str(IPv4Address(value & 0xFFFFFFFF))
    ip = parse_ip(value)
    if ip is None:
        return None
    return to_address(ip)
