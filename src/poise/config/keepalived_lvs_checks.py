"""`real_server IP [PORT] { ... }` and the checkers inside it (TCP_CHECK, HTTP_GET, SSL_GET
with their `url { }`s, MISC_CHECK, DNS_CHECK, SMTP_CHECK), read as keepalived.conf(5)
defines them. Settings a virtual server or real server gives are the defaults below it;
values are read here into dicts and completed by keepalived_lvs.py once the whole virtual
server is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, ip_address
from typing import Any

from poise.config import keepalived_lvs_keywords as kw
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.keepalived_lexer import Node
from poise.config.keepalived_lvs_model import (
    DEFAULT_DELAY_LOOP,
    Checker,
    CheckerKind,
    IPAddress,
    RealServer,
    Url,
)
from poise.config.keepalived_values import (
    Problem,
    arity,
    boolean,
    integer,
    no_args,
    notify_command,
    script_command,
    seconds,
)
from poise.config.keywords import did_you_mean
from poise.config.model import Where

UINT_MAX = 4294967295
TIMER_MAX = 4294.967295  # Keepalived's TIMER: microseconds in an unsigned int
LONG_TIMER_MAX = 18446744073709.551614  # delay_loop and the like: in an unsigned long
TIMER_MIN = 0.000001
WEIGHT_MAX = 2147483647
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA")
HTTP_PROTOCOLS = ("1.0", "1.0C", "1.1")
OLD_NAMES = {"nb_get_retry": "retry"}  # Keepalived 1.x's names 2.2.7 no longer knows

Report = Callable[[Node, Problem], None]


def address(text: str, what: str = "address") -> IPAddress:
    try:
        return ip_address(text)
    except (AddressValueError, ValueError):
        raise Problem(f"'{text}' is not an IP {what}") from None


def port(text: str) -> int:
    return integer(text, 1, 65535, "port")


def timer(node: Node) -> float:
    return seconds(arity(node, 1)[0], TIMER_MIN, TIMER_MAX, node.keyword)


def unknown(keyword: str, block: str, known: frozenset[str]) -> Problem:
    if keyword in OLD_NAMES:
        return Problem(
            f"Keepalived 1.x's name of '{OLD_NAMES[keyword]}', which Keepalived 2.2 no "
            f"longer knows: write '{OLD_NAMES[keyword]}'"
        )
    return Problem(f"unknown keyword in {block}" + did_you_mean(keyword, known))


def inherited(node: Node, values: dict[str, Any]) -> None:
    """A setting that passes down (kw.INHERITED) into `values`."""
    keyword = node.keyword
    if keyword == "connect_timeout":
        values[keyword] = timer(node)
    elif keyword in ("delay_before_retry", "delay_loop"):
        values[keyword] = seconds(arity(node, 1)[0], TIMER_MIN, LONG_TIMER_MAX, keyword)
    elif keyword == "warmup":
        values[keyword] = seconds(arity(node, 1)[0], 0, LONG_TIMER_MAX, keyword)
    elif keyword == "retry":
        values[keyword] = integer(arity(node, 1)[0], 0, UINT_MAX, keyword)
    elif keyword == "virtualhost":
        values[keyword] = arity(node, 1)[0]
    else:  # inhibit_on_failure, alpha
        values[keyword] = boolean(node)


def nat_only(node: Node) -> None:
    """`lb_kind` / `lvs_method`: NAT is what poise does; DR and TUN need the kernel."""
    args = arity(node, 1, -1)
    method = args[0]
    if method == "NAT":
        arity(node, 1)
        return
    if method in kw.KERNEL_ONLY_METHODS:
        raise Problem(
            f"{method} ({kw.KERNEL_ONLY_METHODS[method]}) forwards packets inside the kernel "
            "(IPVS) with the client's own addresses, which a user-space balancer cannot do: "
            "poise relays each connection itself, as lb_kind NAT does (use lb_kind NAT, and "
            "make the real servers reach clients through this node), or run Keepalived's "
            "IPVS on a kernel that has it"
        )
    raise Problem(f"unknown forwarding method '{method}' (NAT, DR or TUN)")


@dataclass(slots=True)
class RealServerDraft:
    address: IPAddress
    port: int | None
    where: Where
    values: dict[str, Any] = field(default_factory=dict)
    checkers: list[tuple[CheckerKind, dict[str, Any], Where]] = field(default_factory=list)


def read_real_server(node: Node, diagnostics: list[Diagnostic]) -> RealServerDraft:
    args = arity(node, 1, 2)
    draft = RealServerDraft(
        address(args[0], "real server address"),
        port(args[1]) if len(args) > 1 else None,
        node.where,
    )
    if node.children is None:
        raise Problem("expects a block: real_server IP [PORT] { ... }")

    def report(child: Node, exc: Problem) -> None:
        diagnostics.append(error(child.where, str(exc), child.keyword))

    for child in node.children:
        keyword = child.keyword
        try:
            if keyword in kw.CHECKERS:
                no_args(child)
                if child.children is None:
                    raise Problem("expects a block: { ... }")
                values = read_checker(child, report, diagnostics)
                draft.checkers.append((CheckerKind(keyword), values, child.where))
                continue
            if child.children is not None:
                raise Problem(
                    "this Keepalived checker is not implemented yet in poise"
                    if keyword in kw.CHECKERS_UNIMPLEMENTED
                    else unknown(keyword, "real_server", kw.REAL_SERVER | kw.CHECKERS).args[0]
                )
            if keyword in kw.REAL_SERVER_MEANINGLESS:
                diagnostics.append(
                    warning(child.where, kw.REAL_SERVER_MEANINGLESS[keyword], keyword)
                )
            elif keyword in kw.REAL_SERVER_UNIMPLEMENTED or keyword in kw.CHECKERS_UNIMPLEMENTED:
                raise Problem("this Keepalived keyword is not implemented yet in poise")
            elif keyword not in kw.REAL_SERVER:
                raise unknown(keyword, "real_server", kw.REAL_SERVER | kw.CHECKERS)
            elif keyword in kw.INHERITED:
                inherited(child, draft.values)
            elif keyword == "weight":
                draft.values["weight"] = integer(arity(child, 1)[0], 0, WEIGHT_MAX, "weight")
            elif keyword in ("notify_up", "notify_down"):
                draft.values[keyword] = notify_command(child)
            else:  # lb_kind, lvs_method
                nat_only(child)
        except Problem as exc:
            report(child, exc)
    return draft


def read_checker(node: Node, report: Report, diagnostics: list[Diagnostic]) -> dict[str, Any]:
    kind = node.keyword
    own = kw.CHECKER_OWN[kind]
    common = kw.MISC_COMMON if kind == "MISC_CHECK" else kw.CHECKER_COMMON
    known = own | common
    values: dict[str, Any] = {}
    urls: list[Url] = []
    for child in node.children or ():
        keyword = child.keyword
        try:
            if keyword == "url" and keyword in own:
                no_args(child)
                if child.children is None:
                    raise Problem("expects a block: url { path ... }")
                urls.append(read_url(child, report))
                continue
            if child.children is not None:
                raise Problem("does not open a block")
            if keyword in kw.CHECKER_COMMON_UNIMPLEMENTED and kind != "MISC_CHECK":
                raise Problem("this Keepalived keyword is not implemented yet in poise")
            if keyword not in known:
                raise unknown(keyword, kind, known)
            if keyword in kw.INHERITED:
                inherited(child, values)
            elif keyword in ("connect_ip", "bindto"):
                values[keyword] = address(arity(child, 1)[0])
            elif keyword in ("connect_port", "bind_port"):
                values[keyword] = port(arity(child, 1)[0])
            elif keyword in ("log_all_failures", "fast_recovery"):
                values[keyword] = boolean(child)
            elif keyword in ("enable_sni", "misc_dynamic"):
                no_args(child)
                values[keyword] = True
            elif keyword == "http_protocol":
                value = arity(child, 1)[0]
                if value not in HTTP_PROTOCOLS:
                    raise Problem(f"'{value}' is not one of {', '.join(HTTP_PROTOCOLS)}")
                values[keyword] = value
            elif keyword == "helo_name":
                values[keyword] = arity(child, 1)[0]
            elif keyword == "type":
                value = arity(child, 1)[0].upper()
                if value not in DNS_TYPES:
                    raise Problem(f"DNS query type '{value}' is not one of {' '.join(DNS_TYPES)}")
                values["dns_type"] = value
            elif keyword == "name":
                values["dns_name"] = arity(child, 1)[0]
            elif keyword == "misc_path":
                values[keyword] = script_command(child)
            elif keyword == "misc_timeout":
                values[keyword] = float(integer(arity(child, 1)[0], 1, UINT_MAX, keyword))
            elif keyword == "user":
                args = arity(child, 1, 2)
                values["user"] = args
        except Problem as exc:
            report(child, exc)
    if kind in ("HTTP_GET", "SSL_GET"):
        if not urls:
            diagnostics.append(error(node.where, "no url { path ... } to check", kind))
        values["urls"] = tuple(urls)
    if kind == "MISC_CHECK" and "misc_path" not in values:
        diagnostics.append(error(node.where, "no misc_path: nothing to run", kind))
    return values


def read_url(node: Node, report: Report) -> Url:
    values: dict[str, Any] = {"where": node.where}
    for child in node.children or ():
        keyword = child.keyword
        try:
            if child.children is not None:
                raise Problem("does not open a block")
            if keyword in kw.URL_UNIMPLEMENTED:
                raise Problem("this Keepalived keyword is not implemented yet in poise")
            if keyword not in kw.URL:
                raise unknown(keyword, "url", kw.URL)
            if keyword == "path":
                values["path"] = arity(child, 1)[0]
            elif keyword == "virtualhost":
                values["virtualhost"] = arity(child, 1)[0]
            elif keyword == "digest":
                digest = arity(child, 1)[0]
                if len(digest) != 32 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                    raise Problem(
                        f"digest '{digest}' is not an MD5 in hex (32 characters), as genhash "
                        "prints it"
                    )
                values["digest"] = digest.lower()
            else:
                values["status_codes"] = tuple(status_range(text) for text in arity(child, 1, -1))
        except Problem as exc:
            report(child, exc)
    if "path" not in values:
        raise Problem("url without a path")
    return Url(**values)


def status_range(text: str) -> tuple[int, int]:
    low, dash, high = text.partition("-")
    first = integer(low, 100, 599, "status code")
    last = integer(high, 100, 599, "status code") if dash else first
    if last < first:
        raise Problem(f"status code range '{text}' is empty")
    return first, last


def complete_real_server(
    draft: RealServerDraft, defaults: dict[str, Any], vs_port: int, diagnostics: list[Diagnostic]
) -> RealServer:
    """The real server with the virtual server's settings under its own, and its checkers
    with both under theirs."""
    values = {**defaults, **draft.values}
    rs_port = draft.port if draft.port is not None else vs_port
    checkers = tuple(
        complete_checker(kind, {**values, **own}, (draft.address, rs_port), where, diagnostics)
        for kind, own, where in draft.checkers
    )
    return RealServer(
        draft.address,
        rs_port,
        weight=values.get("weight", 1),
        inhibit_on_failure=values.get("inhibit_on_failure", False),
        alpha=values.get("alpha", False),
        notify_up=values.get("notify_up"),
        notify_down=values.get("notify_down"),
        checkers=checkers,
        proxy_protocol=proxy_version(values),
        where=draft.where,
    )


def proxy_version(values: dict[str, Any]) -> str | None:
    """poise's send_proxy / send_proxy_v2: "v2" when both are on, as HAProxy's flags."""
    if values.get("send_proxy_v2"):
        return "v2"
    return "v1" if values.get("send_proxy") else None


_CHECKER_FIELDS = frozenset(Checker.__dataclass_fields__)


def complete_checker(
    kind: CheckerKind,
    values: dict[str, Any],
    real_server: tuple[IPAddress, int],
    where: Where,
    diagnostics: list[Diagnostic],
) -> Checker:
    rs_address, rs_port = real_server
    delay_loop = values.get("delay_loop", DEFAULT_DELAY_LOOP)
    retry_delay = {
        CheckerKind.HTTP_GET: 3.0,
        CheckerKind.SSL_GET: 3.0,
        CheckerKind.DNS_CHECK: delay_loop,
    }.get(kind, 1.0)
    fields = {k: v for k, v in values.items() if k in _CHECKER_FIELDS}
    fields.setdefault("retry", kind.default_retry)
    fields.setdefault("delay_before_retry", retry_delay)
    user = values.get("user")
    command = fields.get("misc_path")
    if user is not None and command is not None:
        fields["misc_path"] = type(command)(
            command.text, command.argv, user[0], user[1] if len(user) > 1 else None, command.where
        )
    connect_ip = fields.pop("connect_ip", rs_address)
    bindto = fields.get("bindto")
    if bindto is not None and _family(bindto) != _family(connect_ip):
        diagnostics.append(
            error(where, f"bindto {bindto} and the address checked, {connect_ip}, differ in family",
                  kind.value)
        )  # fmt: skip
    urls: tuple[Url, ...] = fields.get("urls", ())
    host = values.get("virtualhost")
    if host is not None:
        fields["urls"] = tuple(
            u if u.virtualhost is not None else _with_host(u, host) for u in urls
        )
    return Checker(kind, connect_ip, fields.pop("connect_port", rs_port), where=where, **fields)


def _with_host(url: Url, host: str) -> Url:
    return Url(url.path, url.digest, url.status_codes, host, url.where)


def _family(address: IPAddress) -> int:
    return 4 if isinstance(address, IPv4Address) else 6
