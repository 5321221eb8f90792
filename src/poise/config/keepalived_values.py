"""Values of keepalived.conf statements: numbers with their ranges, booleans, addresses and
commands, each checked the way keepalived.conf(5) defines it. A bad value raises Problem,
which the parser reports at the statement's FILE:LINE and keyword, then goes on.
"""

from __future__ import annotations

import math
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    NetmaskValueError,
)

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.keepalived_keywords import BOOLEANS
from poise.config.keepalived_lexer import Node
from poise.config.keepalived_model import Command


class Problem(ValueError):
    """A statement that cannot be used; the message says why."""


def arity(node: Node, least: int, most: int | None = None) -> tuple[str, ...]:
    """The statement's arguments, when their count is within [least, most]."""
    args = node.words[1:]
    most = least if most is None else most
    if len(args) < least:
        raise Problem("expects an argument" if least == 1 else f"expects {least} arguments")
    if most >= 0 and len(args) > most:
        raise Problem(f"unexpected argument '{args[most]}'")
    return args


def integer(text: str, low: int, high: int, what: str = "value") -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise Problem(f"{what} '{text}' is not an integer") from None
    if not low <= value <= high:
        raise Problem(f"{what} {value} is out of range [{low}, {high}]")
    return value


def seconds(text: str, low: float, high: float, what: str = "value") -> float:
    """A Keepalived TIMER: seconds, fractions allowed (`0.1`, `4.12`)."""
    try:
        value = float(text)
    except ValueError:
        raise Problem(f"{what} '{text}' is not a number of seconds") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Problem(f"{what} {text} is out of range [{low:g}, {high:g}] seconds")
    return value


def boolean(node: Node) -> bool:
    """`KEYWORD [on|off|true|false|yes|no]`: alone it means on."""
    args = arity(node, 0, 1)
    if not args:
        return True
    value = BOOLEANS.get(args[0].lower())
    if value is None:
        raise Problem(f"'{args[0]}' is not one of on|off|true|false|yes|no")
    return value


def list_items(node: Node, what: str, diagnostics: list[Diagnostic]) -> list[Node]:
    """The lines of a list block (`virtual_ipaddress`, `unicast_peer`, `track_*`, a sync
    group's `group`). A line there that opens a block (`{` after an item, as an unrendered
    `{{ x }}` template leaves) is an error at its line and is left out, as Keepalived
    refuses `{` as an item."""
    items = []
    for child in node.children or ():
        if child.children is not None:
            diagnostics.append(
                error(
                    child.opened or child.where,
                    f"'{{' after {what} '{child.keyword}': a list item opens no block",
                    node.keyword,
                )
            )
        elif child.words:
            items.append(child)
    return items


def no_args(node: Node) -> None:
    arity(node, 0, 0)


def flag_args(node: Node, diagnostics: list[Diagnostic]) -> None:
    """A keyword that is a switch by itself (`nopreempt`, `enable_script_security`):
    Keepalived 2.2.7 ignores whatever follows it (`nopreempt 1`, even `nopreempt 0`) and
    says nothing; poise does the same, with a warning so that `0` is not misread."""
    if len(node.words) > 1:
        diagnostics.append(
            warning(
                node.where,
                f"takes no argument: '{' '.join(node.words[1:])}' is ignored and "
                f"{node.keyword} is on, as in Keepalived",
                node.keyword,
            )
        )


def ipv4(text: str, what: str = "address") -> IPv4Address:
    try:
        return IPv4Address(text)
    except AddressValueError:
        if ":" in text:
            raise Problem(f"IPv6 {what} '{text}': poise vrrp does IPv4 only here") from None
        raise Problem(f"'{text}' is not an IPv4 {what}") from None


def ip_address(text: str, what: str = "address") -> IPv4Address | IPv6Address:
    """An IPv4 or IPv6 address (an IPv6 one without a zone: `%eth0` is not taken)."""
    if ":" not in text:
        return ipv4(text, what)
    try:
        return IPv6Address(text)
    except AddressValueError:
        raise Problem(f"'{text}' is not an IPv6 {what}") from None


def ip_interface(text: str) -> tuple[IPv4Interface | IPv6Interface, bool]:
    """`ADDR[/PREFIX]` (Keepalived's default prefix is the whole address: /32, /128) and
    whether a prefix was given."""
    address, slash, prefix = text.partition("/")
    ip = ip_address(address)
    bits = 128 if ip.version == 6 else 32
    if not slash:
        return ip_interface_of(ip, bits), False
    if not prefix.isdigit() or int(prefix) > bits:
        raise Problem(f"bad prefix length in '{text}'")
    try:
        return ip_interface_of(ip, int(prefix)), True
    except NetmaskValueError:
        raise Problem(f"bad prefix length in '{text}'") from None


def ip_interface_of(ip: IPv4Address | IPv6Address, prefix: int) -> IPv4Interface | IPv6Interface:
    if ip.version == 6:
        return IPv6Interface(f"{ip}/{prefix}")
    return IPv4Interface(f"{ip}/{prefix}")


def split_command(text: str) -> tuple[str, ...]:
    """A script line as Keepalived splits it into the program and its arguments: spaces
    separate them, single (or double) quotes keep spaces inside one argument."""
    words: list[str] = []
    current: list[str] = []
    started = False
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "'\"":
            quote = char
            started = True
        elif char in " \t":
            if current or started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
    if quote:
        raise Problem(f"unmatched quote in script '{text}'")
    if current or started:
        words.append("".join(current))
    return tuple(words)


def script_command(node: Node) -> Command:
    """`script STRING|QUOTED-STRING`: every word after the keyword is part of the command."""
    args = arity(node, 1, -1)
    text = " ".join(args)
    argv = split_command(text)
    if not argv:
        raise Problem("empty script")
    return Command(text, argv, where=node.where)


def notify_command(node: Node) -> Command:
    """`notify_* STRING|QUOTED-STRING [username [groupname]]`."""
    args = arity(node, 1, 3)
    argv = split_command(args[0])
    if not argv:
        raise Problem("empty script")
    user = args[1] if len(args) > 1 else None
    group = args[2] if len(args) > 2 else None
    return Command(args[0], argv, user, group, node.where)


def weight(text: str) -> int:
    return integer(text, -253, 253, "weight")
