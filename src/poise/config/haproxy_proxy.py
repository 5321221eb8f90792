"""The keywords of `defaults`, `frontend`, `backend` and `listen` sections.

Each line is looked up in HAProxy's keywords matrix (configuration.txt 4.1, kept in
keywords.py) before anything else, and handled as HAProxy does:
- a keyword a `defaults` section may not carry is an error there;
- in a proxy without the needed capability (`balance` in a frontend, `bind` in a backend)
  it is a warning and the line is ignored; `server` and `default-server` are errors;
- `no` and `default` prefixes are only taken by the options marked (*) in the matrix, and
  by `no log`;
- keywords HAProxy knows and poise does not implement yet are errors saying so; unknown
  words are errors with the nearest known keyword.
The HTTP keywords (ACLs, rules, cookies, error files, HTTP checks) are in haproxy_http.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from poise.config import keywords, patterns
from poise.config.acl_parse import ReadFile
from poise.config.address import AddressError, parse_server
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import (
    LogClear,
    LogGlobal,
    Problem,
    SectionDraft,
    ServerDraft,
    no_args,
    one_arg,
)
from poise.config.haproxy_filters import FilterKeywords
from poise.config.haproxy_global import parse_log_target
from poise.config.haproxy_http import (
    REDIRECT_WIDTHS,
    HttpKeywords,
    keyword_arguments,
    parse_redirect,
)
from poise.config.haproxy_monitor import MonitorKeywords
from poise.config.haproxy_options import apply_option
from poise.config.haproxy_resolvers import template_range
from poise.config.haproxy_server import parse_bind, parse_server_options, parse_source
from poise.config.haproxy_stats import StatsKeywords
from poise.config.haproxy_stick import parse_stick_rule, parse_stick_table
from poise.config.haproxy_tcp import TcpKeywords
from poise.config.haproxy_tcpcheck import TcpCheckKeywords
from poise.config.lexer import Line, expand_address
from poise.config.model import (
    Algorithm,
    BalanceOptions,
    ErrorFile,
    HashFunction,
    HashType,
    Mode,
    UseBackend,
    UseServer,
    Where,
)
from poise.config.model_http import PersistRule
from poise.config.model_stick import STICK_KINDS, StickRuleKind
from poise.config.samples import parse_log_format
from poise.config.units import parse_int, parse_time

NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_RANDOM = re.compile(r"random\((\d+)\)")
_TIMEOUTS = {
    "connect": "connect",
    "client": "client",
    "client-fin": "client_fin",
    "server": "server",
    "server-fin": "server_fin",
    "queue": "queue",
    "tunnel": "tunnel",
    "check": "check",
    "http-request": "http_request",
    "http-keep-alive": "http_keep_alive",
    "tarpit": "tarpit",
}


def check_name(name: str, what: str) -> None:
    """HAProxy's rule for proxy and server names (configuration.txt 4)."""
    if not NAME.fullmatch(name):
        bad = next((c for c in name if not NAME.fullmatch(c)), "")
        reason = f"character '{bad}' is not permitted" if bad else "a name is required"
        raise Problem(f"{reason} in {what} name '{name}' (letters, digits, '-', '_', '.', ':')")


TCPKA_KEYWORDS = tuple(
    f"{side}tcpka-{what}" for side in ("cli", "srv") for what in ("cnt", "idle", "intvl")
)


class ProxyParser:
    """Applies the lines of one section to its SectionDraft."""

    def __init__(
        self,
        section: SectionDraft,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None = None,
        env: Mapping[str, str] | None = None,
        http_errors: dict[str, dict[int, ErrorFile]] | None = None,
    ) -> None:
        self.section = section
        self.settings = section.settings
        self.diagnostics = diagnostics
        self.env = env or {}
        self.http = HttpKeywords(section, diagnostics, read_file, http_errors)
        self.handlers: dict[str, Callable[[Sequence[str], Where], None]] = {
            "mode": self.mode,
            "bind": self.bind,
            "default_backend": self.default_backend,
            "use_backend": self.use_backend,
            "use-server": self.use_server,
            "force-persist": functools.partial(self.persist, True),
            "ignore-persist": functools.partial(self.persist, False),
            "maxconn": self.maxconn,
            "fullconn": self.fullconn,
            "load-server-state-from-file": self.load_server_state,
            "server-state-file-name": self.server_state_file_name,
            "backlog": self.backlog,
            "server": self.server,
            "default-server": self.default_server,
            "server-template": self.server_template,
            "balance": self.balance,
            "hash-type": self.hash_type,
            "retries": self.retries,
            **{name: functools.partial(self.tcpka, name) for name in TCPKA_KEYWORDS},
            "source": self.source,
            "log": self.log,
            "log-tag": self.log_tag,
            "disabled": self.disabled,
            "enabled": self.enabled,
            "redirect": self.redirect,
            "description": self.description,
            "id": self.id,
            "stick-table": self.stick_table,
            **{f"stick {kind}": functools.partial(self.stick, kind) for kind in STICK_KINDS},
            **self.http.handlers(),
            **StatsKeywords(section, diagnostics, read_file).handlers(),
            **MonitorKeywords(section, diagnostics, read_file).handlers(),
            **FilterKeywords(section, diagnostics).handlers(),
            **TcpCheckKeywords(section).handlers(),
            **TcpKeywords(section, diagnostics, self.http).handlers(),
        }

    @property
    def label(self) -> str:
        return f"{self.section.kind} '{self.section.name}'"

    # --- dispatch ------------------------------------------------------------------------

    def feed(self, line: Line) -> None:
        words = list(line.words)
        prefix = words.pop(0) if words[0] in ("no", "default") and len(words) > 1 else None
        name, args = self.lookup(words)
        keyword = f"{prefix} {name}" if prefix else name
        try:
            self.dispatch(prefix, name, args, line.where)
        except ValueError as exc:  # Problem, and the ValueErrors of units and addresses
            self.diagnostics.append(error(line.where, str(exc), keyword))

    def lookup(self, words: list[str]) -> tuple[str, list[str]]:
        """The matrix keyword a line starts with (1 to 3 words), and its arguments."""
        for size in (3, 2, 1):
            name = " ".join(words[:size])
            if len(words) >= size and name in keywords.PROXY_MATRIX:
                return name, words[size:]
        if len(words) >= 2 and words[1].startswith(("set-var(", "unset-var(")):
            # `tcp-check set-var(NAME) EXPR`: the variable's name is part of the word.
            name = f"{words[0]} {words[1].partition('(')[0]}"
            if name in keywords.PROXY_MATRIX:
                return name, words[1:]
        return words[0], words[1:]

    def dispatch(self, prefix: str | None, name: str, args: list[str], where: Where) -> None:
        if name in keywords.REMOVED_KEYWORDS:
            instead = keywords.REMOVED_KEYWORDS[name]
            if name == "monitor-net" and args:
                instead = instead.replace("NET", args[0])
            raise Problem(f"removed from HAProxy; use '{instead}' instead")
        if name not in keywords.PROXY_MATRIX:
            raise Problem(self.unknown(name, args))
        if not self.allowed(name, where):
            return
        first, _, rest = name.partition(" ")
        if first == "option":
            apply_option(self.settings, prefix, rest, args, where, diagnostics=self.diagnostics)
            return
        if prefix == "no" and name == "log":
            no_args(args)
            self.settings.log_ops.append(LogClear(where))
            return
        if prefix is not None:
            raise Problem(f"the '{prefix}' prefix is not supported for '{name}'")
        if first == "timeout" and rest in _TIMEOUTS:
            self.timeout(rest, args)
        elif name in self.handlers:
            self.handlers[name](args, where)
        elif name in keywords.HARMLESS_PROXY:
            reason = keywords.HARMLESS_PROXY[name]
            self.diagnostics.append(warning(where, f"ignored: {reason}", name))
        else:
            raise Problem("this HAProxy keyword is not implemented yet in poise")

    def unknown(self, name: str, args: Sequence[str]) -> str:
        section = self.section.kind
        subwords = sorted(
            n.split(" ", 1)[1] for n in keywords.PROXY_MATRIX if n.startswith(name + " ")
        )
        if subwords:
            if not args:
                return f"expects one of: {', '.join(subwords)}"
            hint = keywords.did_you_mean(args[0], subwords).replace("'", f"'{name} ", 1)
            return f"unknown '{name} {args[0]}' in '{section}' section{hint}"
        if name in keywords.GLOBAL_KEYWORDS:
            hint = " (it belongs in the 'global' section)"
        else:
            hint = keywords.did_you_mean(name, keywords.PROXY_FIRST_WORDS)
        return f"unknown keyword in '{section}' section{hint}"

    def allowed(self, name: str, where: Where) -> bool:
        """HAProxy's matrix: may this section carry this keyword?"""
        kind = self.section.kind
        if kind in keywords.PROXY_MATRIX[name]:
            return True
        if kind == keywords.DEFAULTS:
            raise Problem("not allowed in a 'defaults' section")
        missing = "backend" if kind == keywords.FRONTEND else "frontend"
        if name in ("server", "default-server", "server-template"):
            raise Problem(f"not allowed because {self.label} has no {missing} capability")
        self.diagnostics.append(
            warning(where, f"ignored because {self.label} has no {missing} capability", name)
        )
        return False

    # --- keywords ------------------------------------------------------------------------

    def timeout(self, name: str, args: Sequence[str]) -> None:
        self.settings.timeouts[_TIMEOUTS[name]] = parse_time(one_arg(args, "a duration"))

    def mode(self, args: Sequence[str], where: Where) -> None:
        value = one_arg(args, "tcp or http")
        if value not in ("tcp", "http"):
            raise Problem(f"unknown mode '{value}' (tcp or http)")
        self.settings.mode = Mode(value)

    def address(self, text: str) -> str:
        """A `bind` or `server` address after HAProxy's own `$VAR` expansion (lexer.py)."""
        expanded = expand_address(text, self.env)
        if not expanded:
            raise AddressError(
                f"'{text}' resolves to an empty address (environment variable missing?)"
            )
        return expanded

    def bind(self, args: Sequence[str], where: Where) -> None:
        written = args[0] if args else None
        if written is not None:
            args = [self.address(written), *args[1:]]
        self.section.binds.extend(parse_bind(args, where, self.diagnostics, written))

    def default_backend(self, args: Sequence[str], where: Where) -> None:
        name = one_arg(args, "a backend name")
        if "%[" in name:
            raise Problem("dynamic backend names (log-format) are not implemented yet in poise")
        self.settings.default_backend = UseBackend(name, where)

    def use_backend(self, args: Sequence[str], where: Where) -> None:
        name = one_arg(args[:1], "a backend name")
        words = list(args[1:])
        if words and words[0] not in ("if", "unless"):
            raise Problem(f"unexpected argument '{words[0]}'")
        name_format = parse_log_format(name, "req") if "%[" in name else None
        condition = self.http.condition(words, where, "use_backend") if words else None
        self.section.use_backends.append(UseBackend(name, where, condition, name_format))

    def use_server(self, args: Sequence[str], where: Where) -> None:
        """`use-server NAME if|unless COND` (a condition is required, as in HAProxy 2.6;
        the server is looked up once the section's servers are known: config/link.py)."""
        if not args or not args[0]:
            raise Problem("'use-server' expects a server name.")
        if len(args) < 2 or args[1] not in ("if", "unless"):
            raise Problem("'use-server' requires either 'if' or 'unless' followed by a condition.")
        condition = self.http.condition(list(args[1:]), where, "use-server")
        self.section.use_servers.append(UseServer(args[0], where, condition))

    def persist(self, force: bool, args: Sequence[str], where: Where) -> None:
        """`force-persist|ignore-persist if|unless COND` (a condition is required)."""
        keyword = "force-persist" if force else "ignore-persist"
        if not args or args[0] not in ("if", "unless"):
            raise Problem(f"'{keyword}' requires either 'if' or 'unless' followed by a condition.")
        condition = self.http.condition(list(args), where, keyword)
        self.section.persist_rules.append(PersistRule(force, where, condition))

    def maxconn(self, args: Sequence[str], where: Where) -> None:
        self.settings.maxconn = parse_int(one_arg(args, "a number"), 0)

    def fullconn(self, args: Sequence[str], where: Where) -> None:
        self.settings.fullconn = parse_int(one_arg(args, "a number"), 0)

    def load_server_state(self, args: Sequence[str], where: Where) -> None:
        value = one_arg(args, "global, local or none")
        if value not in ("global", "local", "none"):
            raise Problem(f"expects 'global', 'local' or 'none'. Got '{value}'")
        self.settings.load_server_state = value

    def server_state_file_name(self, args: Sequence[str], where: Where) -> None:
        name = one_arg(args, "a file name") if args else "use-backend-name"
        self.settings.server_state_file_name = "" if name == "use-backend-name" else name

    def backlog(self, args: Sequence[str], where: Where) -> None:
        self.settings.backlog = parse_int(one_arg(args, "a number"), 1)

    def server(self, args: Sequence[str], where: Where) -> None:
        if len(args) < 2:
            raise Problem("expects a name and an address: server NAME ADDRESS[:PORT] [options]")
        check_name(args[0], "server")
        own, server_id = parse_server_options(args[2:], where, self.diagnostics, "server")
        try:
            address = parse_server(self.address(args[1]))
        except AddressError as exc:
            raise Problem(f"server '{args[0]}': {exc}") from None
        self.section.servers.append(
            ServerDraft(args[0], address, where, own, self.settings.default_server, server_id)
        )

    def server_template(self, args: Sequence[str], where: Where) -> None:
        """`server-template PREFIX NUM|LOW-HIGH FQDN[:PORT] [options]`: servers PREFIX1..."""
        if len(args) < 3:
            raise Problem(
                "expects a prefix, a number or range and an address: "
                "server-template PREFIX NUM|LOW-HIGH FQDN[:PORT] [options]"
            )
        check_name(args[0], "server")
        numbers = template_range(args[1])
        own, server_id = parse_server_options(args[3:], where, self.diagnostics, "server")
        if server_id is not None:
            raise Problem("option 'id' is not allowed on a 'server-template' line")
        try:
            address = parse_server(self.address(args[2]))
        except AddressError as exc:
            raise Problem(f"server-template '{args[0]}': {exc}") from None
        if address.family == "unix":
            raise Problem(f"server-template '{args[0]}': expects a DNS name, not a unix socket")
        defaults = self.settings.default_server
        for number in numbers:
            name = f"{args[0]}{number}"
            draft = ServerDraft(name, address, where, own, defaults, None, template=args[0])
            self.section.servers.append(draft)

    def default_server(self, args: Sequence[str], where: Where) -> None:
        own, _ = parse_server_options(args, where, self.diagnostics, "default-server")
        self.settings.default_server = own.over(self.settings.default_server)

    def balance(self, args: Sequence[str], where: Where) -> None:
        if not args:  # HAProxy 2.6 reads a bare `balance` as roundrobin
            args = ["roundrobin"]
        word, draws, argument = args[0], 2, None
        rest = list(args[1:])
        options = BalanceOptions()
        match = _RANDOM.fullmatch(word)
        if match:
            word, draws = "random", int(match.group(1))
            if draws < 1:
                raise Problem("random(N) needs at least 1 draw")
        if word.startswith("hdr("):
            argument = _parenthesised(word[4:], "hdr requires an http header field name")
            word = "hdr"
            if rest:
                if rest.pop(0) != "use_domain_only":
                    raise Problem("hdr only accepts 'use_domain_only' modifier")
                options = BalanceOptions(use_domain_only=True)
        elif word == "hdr":
            raise Problem("'balance hdr' needs a header name: hdr(NAME)")
        elif word.startswith("rdp-cookie"):
            tail = word[len("rdp-cookie") :]
            if tail and not tail.startswith("("):
                raise Problem("rdp-cookie : missing cookie name.")
            argument = "mstshash"
            if tail:
                argument = _parenthesised(tail[1:], "rdp-cookie : missing cookie name.")
            word = "rdp-cookie"
        elif word == "url_param":
            if not rest:
                raise Problem("balance url_param requires an URL parameter name")
            argument = rest.pop(0)
            if rest and rest[0] == "check_post":
                raise Problem(
                    "'balance url_param' option 'check_post' is not implemented yet in poise"
                )
            if rest:
                raise Problem(f"url_param only accepts 'check_post' modifier (got '{rest[0]}')")
        elif word == "uri":
            options, rest = _uri_options(rest), []
        try:
            algorithm = Algorithm(word)
        except ValueError:
            base = word.split("(")[0]
            if base in keywords.BALANCE_ALGORITHMS:
                raise Problem(f"'balance {base}' is not implemented yet in poise") from None
            hint = keywords.did_you_mean(base, keywords.BALANCE_ALGORITHMS)
            raise Problem(f"unknown algorithm '{word}'{hint}") from None
        no_args(rest)
        self.settings.algorithm = algorithm
        self.settings.draws = draws
        self.settings.balance_argument = argument
        self.settings.balance_options = options
        self.settings.balance_where = where

    def hash_type(self, args: Sequence[str], where: Where) -> None:
        """`hash-type map-based|consistent [FUNCTION [avalanche]]` as HAProxy 2.6 reads it
        (cfgparse-listen.c): sdbm by default, and avalanche by default only for a bare
        `consistent`; `avalanche` must follow a function. `maglev` is poise's own method
        (a weighted Maglev table over a BLAKE2b hash of the key) and takes no function."""
        if not args:
            raise Problem("expects map-based or consistent")
        try:
            method = HashType(args[0])
        except ValueError:
            raise Problem(f"unknown method '{args[0]}' (map-based or consistent)") from None
        function, avalanche = HashFunction.SDBM, method is HashType.CONSISTENT
        rest = list(args[1:])
        if method is HashType.MAGLEV:
            no_args(rest)
        elif rest:
            try:
                function = HashFunction(rest.pop(0))
            except ValueError:
                raise Problem(
                    "only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions"
                ) from None
            avalanche = bool(rest) and rest.pop(0) == "avalanche"
            if not avalanche and len(args) > 2:
                raise Problem("only supports 'avalanche' as a modifier for hash functions")
            no_args(rest)
        self.settings.hash_type = method
        self.settings.hash_function = function
        self.settings.avalanche = avalanche

    def retries(self, args: Sequence[str], where: Where) -> None:
        self.settings.retries = parse_int(one_arg(args, "a number"), 0)

    def tcpka(self, name: str, args: Sequence[str], where: Where) -> None:
        """`clitcpka-cnt N`, `clitcpka-idle T`, `clitcpka-intvl T` and the `srvtcpka-*`
        ones: TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL (times in seconds by default, as
        HAProxy reads them)."""
        value = one_arg(args, "a number" if name.endswith("cnt") else "a time")
        if name.endswith("cnt"):
            self.settings.tcpka[name] = parse_int(value, 0)
        else:
            self.settings.tcpka[name] = parse_time(value, "s") // 1000

    def source(self, args: Sequence[str], where: Where) -> None:
        source, used = parse_source(args)
        if used < len(args):
            raise Problem(
                f"only supports optional keywords 'interface' and 'usesrc', not '{args[used]}'"
            )
        self.settings.source = source

    def log(self, args: Sequence[str], where: Where) -> None:
        if args[:1] == ["global"]:
            no_args(args[1:])
            self.settings.log_ops.append(LogGlobal(where))
        else:
            target = [expand_address(args[0], self.env), *args[1:]] if args else args
            self.settings.log_ops.append(parse_log_target(target, where))

    def log_tag(self, args: Sequence[str], where: Where) -> None:
        """`log-tag TAG`: this proxy's syslog tag, instead of the global one."""
        self.settings.log_tag = one_arg(args, "a tag for the log messages")

    def disabled(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.settings.disabled = True

    def enabled(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.settings.disabled = False

    def description(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("expects a text")
        self.section.description = " ".join(args)

    def id(self, args: Sequence[str], where: Where) -> None:
        self.section.id = parse_int(one_arg(args, "a number"), 1)
        self.section.id_where = where

    def stick_table(self, args: Sequence[str], where: Where) -> None:
        if self.section.stick_table is not None:
            raise Problem("only one stick-table per proxy allowed.")
        self.section.stick_table = parse_stick_table(self.section.name, args, where)

    def stick(self, kind: StickRuleKind, args: Sequence[str], where: Where) -> None:
        rule, rest = parse_stick_rule(kind, args, self.section.name, where)
        patterns.refer_to_table(f"stick {kind}", rule.table)
        condition = self.http.condition(rest, where, f"stick {kind}") if rest else None
        self.section.stick_rules.append(replace(rule, condition=condition))

    def redirect(self, args: Sequence[str], where: Where) -> None:
        own, words = keyword_arguments(args, REDIRECT_WIDTHS, 1)
        rule = parse_redirect(own, where)
        if words:
            condition = self.http.condition(words, where, "redirect")
            rule = replace(rule, condition=condition)
        if self.section.use_backends:
            self.diagnostics.append(
                warning(
                    where,
                    "a 'redirect' rule placed after a 'use_backend' rule will still be "
                    "processed before",
                    "redirect",
                )
            )
        self.section.redirects.append(rule)


def _parenthesised(text: str, message: str) -> str:
    """NAME from `NAME)` (HAProxy reads up to the first ")"; the name may not be empty)."""
    end = text.find(")")
    if end <= 0:
        raise Problem(message)
    return text[:end]


def _uri_options(args: Sequence[str]) -> BalanceOptions:
    """`balance uri [len N] [depth N] [whole] [path-only]`, in any order (backend.c)."""
    options = BalanceOptions()
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("len", "depth"):
            value = args[i + 1] if i + 1 < len(args) else ""
            number = _atoi(value)
            if number <= 0:
                raise Problem(f"uri : '{word}' expects a positive integer (got '{value}').")
            if word == "len":
                options = replace(options, length=number)
            else:
                options = replace(options, depth=number)
            i += 2
        elif word in ("whole", "path-only"):
            if word == "whole":
                options = replace(options, whole=True)
            else:
                options = replace(options, path_only=True)
            i += 1
        else:
            raise Problem(
                "uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' "
                f"(got '{word}')."
            )
    return options


def _atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then the leading digits (0 without any)."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0
