"""DNS in haproxy.cfg: the `resolvers` section (configuration.txt 5.3.2), the DNS options of
`server` and `default-server` lines (5.2: `init-addr`, `resolvers`, `resolve-prefer`,
`resolve-net`, `resolve-opts`) and the numbering of `server-template` (4.2).

Defaults, units and limits are HAProxy 2.6's (its resolvers.c parser): `hold valid 10s`,
`hold nx|timeout|refused|other 30s`, `hold obsolete 0s`, `timeout resolve 1s`,
`timeout retry 1s`, `resolve_retries 3`, `accepted_payload_size 512` (512 to 65535). A
`nameserver` needs an IP address and a port (HAProxy makes the port mandatory); `tcp@`
asks for DNS over TCP. `parse-resolv-conf` reads /etc/resolv.conf through the `read_file`
the loader gives (this module stays pure); each of its `nameserver` lines becomes a
nameserver named after its address, on port 53, as in HAProxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from poise.config.acl_parse import ReadFile
from poise.config.address import AddressError, is_hostname, split_host_port
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem, no_args, one_arg
from poise.config.keywords import did_you_mean
from poise.config.lexer import Line, expand_address
from poise.config.model import Nameserver, Resolvers, Where
from poise.config.units import parse_int, parse_time

RESOLV_CONF = "/etc/resolv.conf"
KEYWORDS = (
    "nameserver",
    "parse-resolv-conf",
    "resolve_retries",
    "timeout",
    "hold",
    "accepted_payload_size",
)
# Known to HAProxy 2.6 in a `resolvers` section, not implemented by poise.
UNIMPLEMENTED = ("resolution_pool_size",)
HOLD_EVENTS = ("nx", "other", "refused", "timeout", "valid", "obsolete")
PAYLOAD_LIMITS = (512, 65535)
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_UDP_PREFIXES = ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@")
_TCP_PREFIXES = ("tcp@", "tcp4@", "tcp6@")

# --- server options --------------------------------------------------------------------

SERVER_OPTIONS = frozenset(
    {"init-addr", "resolvers", "resolve-prefer", "resolve-net", "resolve-opts"}
)
INIT_METHODS = ("last", "libc", "none")
RESOLVE_OPTS = ("allow-dup-ip", "ignore-weight", "prevent-dup-ip")


def server_option(option: str, value: str) -> tuple[str, object]:
    """(ServerSettings field, value) for a DNS option of a server line."""
    if option == "init-addr":
        return "init_addr", parse_init_addr(value)
    if option == "resolvers":
        return "resolvers", value
    if option == "resolve-prefer":
        if value not in ("ipv4", "ipv6"):
            raise Problem(f"expects 'ipv4' or 'ipv6', not '{value}'")
        return "resolve_prefer", value
    if option == "resolve-net":
        return "resolve_net", parse_networks(value)
    if option == "resolve-opts":
        return "resolve_opts", parse_resolve_opts(value)
    raise AssertionError(option)


def preferred_family(value: str | None) -> Literal["ipv4", "ipv6"] | None:
    """`resolve-prefer` as the model types it."""
    return "ipv4" if value == "ipv4" else "ipv6" if value == "ipv6" else None


def parse_init_addr(value: str) -> tuple[str, ...]:
    """`last,libc,none,IP`: the methods in order; an IP is kept in its normal form."""
    methods: list[str] = []
    for word in value.split(","):
        if word in INIT_METHODS:
            method = word
        else:
            try:
                method = str(ipaddress.ip_address(word))
            except ValueError:
                raise Problem(
                    f"unknown method '{word}' (expects last, libc, none or an IP address)"
                ) from None
        if method in methods:
            raise Problem(f"method '{word}' given twice")
        methods.append(method)
    return tuple(methods)


def parse_networks(value: str) -> tuple[str, ...]:
    """`resolve-net NET[,NET...]`: the networks whose addresses are preferred."""
    networks: list[str] = []
    for word in value.split(","):
        try:
            networks.append(str(ipaddress.ip_network(word, strict=False)))
        except ValueError:
            raise Problem(f"invalid network '{word}'") from None
    return tuple(networks)


def parse_resolve_opts(value: str) -> frozenset[str]:
    opts = frozenset(value.split(","))
    for opt in sorted(opts):
        if opt not in RESOLVE_OPTS:
            raise Problem(f"unknown resolve option '{opt}' (expects {', '.join(RESOLVE_OPTS)})")
    if {"allow-dup-ip", "prevent-dup-ip"} <= opts:
        raise Problem("'allow-dup-ip' and 'prevent-dup-ip' contradict each other")
    return opts


def template_range(text: str) -> range:
    """`server-template`'s `<num>` (1 to num) or `<low>-<high>`."""
    low_text, dash, high_text = text.partition("-")
    try:
        if not dash:
            return range(1, parse_int(text, 1) + 1)
        low, high = parse_int(low_text, 1), parse_int(high_text, 1)
    except ValueError:
        raise Problem(f"invalid number or range '{text}'") from None
    if high < low:
        raise Problem(f"invalid range '{text}': {high} is lower than {low}")
    return range(low, high + 1)


# --- the section -------------------------------------------------------------------------


def parse_nameserver(name: str, text: str, where: Where) -> Nameserver:
    """`nameserver ID [udp@|tcp@]IP:PORT`."""
    lowered = text.lower()
    tcp = lowered.startswith(_TCP_PREFIXES)
    rest = text.split("@", 1)[1] if tcp or lowered.startswith(_UDP_PREFIXES) else text
    if "@" in rest:
        raise Problem(f"unsupported address prefix in '{text}' (udp@ or tcp@)")
    try:
        host, port = split_host_port(rest)
    except AddressError as exc:
        raise Problem(str(exc)) from None
    if port is None or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Problem(f"missing or invalid port in '{text}': expects <addr>:<port>")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not is_hostname(host):
            raise Problem(f"'{host}' is neither an IP address nor a host name") from None
        # A name: the loader resolves it once, at startup, as HAProxy does (load.py).
    return Nameserver(name, host, int(port), where, tcp)


class ResolversParser:
    """Applies the lines of one `resolvers` section; `section()` is the result so far."""

    def __init__(
        self,
        name: str,
        where: Where,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.value = Resolvers(name, where)
        self.diagnostics = diagnostics
        self.read_file = read_file
        self.env = env or {}  # for `$VAR` in nameserver addresses (lexer.expand_address)

    def feed(self, line: Line) -> None:
        keyword, args = line.words[0], list(line.words[1:])
        try:
            self.dispatch(keyword, args, line.where)
        except ValueError as exc:  # Problem, and the ValueErrors of units
            self.diagnostics.append(error(line.where, str(exc), keyword))

    def dispatch(self, keyword: str, args: list[str], where: Where) -> None:
        value = self.value
        if keyword == "nameserver":
            self.add(self.nameserver(args, where))
        elif keyword == "parse-resolv-conf":
            no_args(args)
            self.resolv_conf(where)
        elif keyword == "resolve_retries":
            retries = parse_int(one_arg(args, "a number"), 1)
            self.value = replace(value, resolve_retries=retries)
        elif keyword == "timeout":
            self.timeout(args)
        elif keyword == "hold":
            self.hold(args)
        elif keyword == "accepted_payload_size":
            low, high = PAYLOAD_LIMITS
            text = one_arg(args, "a size in bytes")
            try:
                size = parse_int(text, low, high)
            except ValueError:
                raise Problem(f"must be between {low} and {high} inclusive (was {text})") from None
            self.value = replace(value, accepted_payload_size=size)
        elif keyword in UNIMPLEMENTED:
            raise Problem("this HAProxy keyword is not implemented yet in poise")
        else:
            hint = did_you_mean(keyword, KEYWORDS)
            raise Problem(f"unknown keyword in 'resolvers' section{hint}")

    def nameserver(self, args: Sequence[str], where: Where) -> Nameserver:
        if len(args) != 2:
            raise Problem("expects <name> and <addr>:<port> as arguments")
        if not _NAME.fullmatch(args[0]):
            raise Problem(f"invalid nameserver name '{args[0]}'")
        return parse_nameserver(args[0], expand_address(args[1], self.env), where)

    def add(self, nameserver: Nameserver) -> None:
        for known in self.value.nameservers:
            if known.name == nameserver.name:
                raise Problem(
                    f"nameserver '{nameserver.name}' has same name as another nameserver "
                    f"(declared at {known.where})"
                )
        self.value = replace(self.value, nameservers=(*self.value.nameservers, nameserver))

    def resolv_conf(self, where: Where) -> None:
        if self.read_file is None:
            raise Problem(f"failed to open {RESOLV_CONF}")
        try:
            text = self.read_file(RESOLV_CONF).decode("utf-8", "replace")
        except OSError:
            raise Problem(f"failed to open {RESOLV_CONF}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            words = raw.split()
            if not words or words[0] != "nameserver":
                continue
            here = Where(RESOLV_CONF, number)
            if len(words) < 2:
                self.diagnostics.append(warning(here, "nameserver line is missing address"))
                continue
            try:
                ip = str(ipaddress.ip_address(words[1].split("%")[0]))
            except ValueError:
                self.diagnostics.append(
                    warning(
                        here,
                        f"address '{words[1]}' could not be recognized, "
                        "nameserver will be excluded",
                    )
                )
                continue
            if any(known.name == ip for known in self.value.nameservers):
                continue  # HAProxy: a duplicate, excluded with a warning
            self.add(Nameserver(ip, ip, 53, here))

    def timeout(self, args: Sequence[str]) -> None:
        if not args or args[0] not in ("resolve", "retry"):
            got = f" got '{args[0]}'" if args else ""
            raise Problem(f"expects 'retry' or 'resolve' and <time> as arguments{got}")
        millis = parse_time(one_arg(args[1:], "a duration"))
        if millis <= 0:
            raise Problem("must be greater than 0")
        if args[0] == "resolve":
            self.value = replace(self.value, timeout_resolve=millis)
        else:
            self.value = replace(self.value, timeout_retry=millis)

    def hold(self, args: Sequence[str]) -> None:
        if len(args) < 2:
            raise Problem(f"expects an <event> ({', '.join(HOLD_EVENTS)}) and a <time>")
        if args[0] not in HOLD_EVENTS:
            raise Problem(f"unknown <event> '{args[0]}', expects one of {', '.join(HOLD_EVENTS)}")
        millis = parse_time(one_arg(args[1:], "a duration"))
        self.value = replace(self.value, hold=replace(self.value.hold, **{args[0]: millis}))


def implicit_default(sections: Sequence[Resolvers], read_file: ReadFile | None) -> Resolvers | None:
    """The `resolvers default` section HAProxy 2.6 creates when none is declared
    (resolvers.c resolvers_create_default): /etc/resolv.conf's nameservers, the other
    settings the defaults of any section. Like HAProxy, it is silently left out when that
    file cannot be read or names no usable nameserver (a server that asks for `resolvers
    default` is then an error), and its own warnings are not shown."""
    if read_file is None or any(section.name == "default" for section in sections):
        return None
    parser = ResolversParser("default", Where("<internal>", 0), [], read_file)
    try:
        parser.resolv_conf(parser.value.where)
    except ValueError:
        return None
    return parser.value if parser.value.nameservers else None


def check_resolvers(sections: Sequence[Resolvers]) -> list[Diagnostic]:
    """Names are unique; a section without nameservers cannot resolve anything."""
    problems: list[Diagnostic] = []
    seen: dict[str, Resolvers] = {}
    for section in sections:
        first = seen.setdefault(section.name, section)
        if first is not section:
            problems.append(
                error(
                    section.where,
                    f"resolvers '{section.name}' has same name as another resolvers "
                    f"(declared at {first.where})",
                    "resolvers",
                )
            )
        if not section.nameservers:
            problems.append(
                error(
                    section.where,
                    f"resolvers '{section.name}' has no nameserver: add 'nameserver ID "
                    "ADDR:PORT' or 'parse-resolv-conf'",
                    "resolvers",
                )
            )
    return problems


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise Problem(f"invalid resolvers name '{name}' (letters, digits, '-', '_', '.', ':')")
