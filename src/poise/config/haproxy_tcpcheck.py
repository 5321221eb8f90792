"""`tcp-check` rules and the protocol check options (configuration.txt 4.2): `option
tcp-check`, `redis-check`, `mysql-check [user U [post-41|pre-41]]`, `pgsql-check user U`,
`smtpchk [HELO|EHLO domain]`, `ldap-check`, `ssl-hello-chk`, and `tcp-check connect`,
`send`, `send-binary`, `send-lf`, `expect` and `comment`.

Each line is checked as HAProxy 2.6 checks it, with its error texts where they say more
than ours would. The rules of a section replace those its defaults section had; the
check options choose one check type, the last one written winning (HAProxy's
PR_O2_CHK_ANY), which `option httpchk` shares.

What poise leaves out says so: `set-var`/`unset-var` in checks, log-format samples (`%[`)
in `send-lf` and in `on-success`/`on-error` texts, `status-code`, `ssl`, `sni`, `alpn`,
`send-proxy`, `via-socks4` and `proto` on `connect`, `expect custom` and the `-lf`
expects, the L7OKC status.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import Problem, SectionDraft, Settings
from poise.config.model_checks import (
    ERROR_STATUSES,
    OK_STATUSES,
    TIMEOUT_STATUSES,
    CheckComment,
    CheckConnect,
    CheckExpect,
    CheckSend,
    ExpectKind,
    TcpCheck,
    TcpCheckRule,
)
from poise.config.units import parse_int
from poise.config.where import Where

Handler = Callable[[Sequence[str], Where], None]

# The check options; `option httpchk` (haproxy_options.py) is the seventh kind.
PROTOCOL_OPTIONS = frozenset(
    {"tcp-check", "redis-check", "mysql-check", "pgsql-check", "smtpchk", "ldap-check"}
    | {"ssl-hello-chk"}
)
_EXPECT_KINDS: dict[str, ExpectKind] = {
    "string": "string",
    "rstring": "rstring",
    "binary": "binary",
    "rbinary": "rbinary",
}
_EXPECT_OPTIONS = frozenset(
    {"min-recv", "ok-status", "error-status", "tout-status", "on-success", "on-error"} | {"comment"}
)
_CONNECT_WORDS = (
    "expects 'comment', 'port', 'addr', 'send-proxy', 'ssl', 'sni', 'alpn' or 'via-socks4', "
    "'linger', 'default' but got '{}' as argument."
)
_EXPECT_WORDS = (
    "'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', '[!]string-lf'"
    "'[!]rbinary', '[!]binary-lf' or comment but got '{}' as argument."
)


def protocol_option(name: str, args: Sequence[str], where: Where) -> TcpCheck:
    """The check `option NAME args` makes (raises Problem)."""
    if name == "mysql-check":
        return _mysql(args, where)
    if name == "pgsql-check":
        if len(args) < 2:
            raise Problem("'option pgsql-check' expects 'user <username>' as argument.")
        if args[0] != "user":
            raise Problem("'option pgsql-check' only supports optional values: 'user'.")
        _at_most(name, args, 2)
        return TcpCheck(where, "pgsql-check", user=args[1])
    if name == "smtpchk":
        _at_most(name, args, 2)
        if len(args) == 2 and args[0] in ("HELO", "EHLO"):
            return TcpCheck(where, "smtpchk", command=f"{args[0]} {args[1]}")
        return TcpCheck(where, "smtpchk")
    _at_most(name, args, 0)
    if name == "tcp-check":
        return TcpCheck(where, "tcp-check")
    if name == "redis-check":
        return TcpCheck(where, "redis-check")
    if name == "ldap-check":
        return TcpCheck(where, "ldap-check")
    return TcpCheck(where, "ssl-hello-chk")


def _at_most(name: str, args: Sequence[str], count: int) -> None:
    if len(args) > count:
        raise Problem(f"'option {name}' cannot handle unexpected argument '{args[count]}'.")


def _mysql(args: Sequence[str], where: Where) -> TcpCheck:
    if not args:
        return TcpCheck(where, "mysql-check")
    _at_most("mysql-check", args, 3)
    if args[0] != "user":
        raise Problem(
            f"'option mysql-check' only supports optional values: 'user' (got '{args[0]}')."
        )
    if len(args) < 2 or not args[1]:
        raise Problem("'option mysql-check user' expects <username> as argument.")
    variant = args[2] if len(args) > 2 else "post-41"
    if variant not in ("post-41", "pre-41"):
        if variant == "post-80":
            raise Problem("keyword 'user' option 'post-80' is not implemented yet in poise")
        raise Problem(f"keyword 'user' only supports 'post-41' and 'pre-41' (got '{variant}').")
    return TcpCheck(where, "mysql-check", user=args[1], variant=variant)


class TcpCheckKeywords:
    """The handlers of the `tcp-check` lines of one section."""

    def __init__(self, section: SectionDraft) -> None:
        self.section = section
        self.settings = section.settings

    def handlers(self) -> dict[str, Handler]:
        return {
            "tcp-check connect": self.connect,
            "tcp-check send": self.send,
            "tcp-check send-binary": self.send_binary,
            "tcp-check send-lf": self.send_lf,
            "tcp-check send-binary-lf": self.send_binary_lf,
            "tcp-check expect": self.expect,
            "tcp-check comment": self.comment,
            "tcp-check set-var": self.variables,
            "tcp-check unset-var": self.variables,
        }

    def add(self, rule: TcpCheckRule) -> None:
        rules = self.settings.tcp_check_rules
        if rules is None:  # the first of this section: those of the defaults are replaced
            rules = self.settings.tcp_check_rules = []
        if isinstance(rule, CheckConnect):
            first = next((r for r in rules if not isinstance(r, CheckComment)), None)
            if first is not None and not isinstance(first, CheckConnect):
                raise Problem(
                    "first step MUST also be a 'connect', optionally preceded by a "
                    "'set-var', an 'unset-var' or a 'comment', when there is a 'connect' "
                    "step in the tcp-check ruleset."
                )
        rules.append(rule)

    def connect(self, args: Sequence[str], where: Where) -> None:
        values: dict[str, str] = {}
        flags: set[str] = set()
        index = 0
        while index < len(args):
            word = args[index]
            if word in ("sni", "alpn"):
                raise Problem(f"'tcp-check connect {word}' is not implemented yet in poise")
            if word in ("port", "addr", "comment"):
                if index + 1 >= len(args):
                    raise Problem(f"'{word}' expects a value as argument.")
                values[word] = args[index + 1]
                index += 2
                continue
            if word in ("linger", "default", "send-proxy"):
                flags.add(word)
            elif word in ("ssl", "via-socks4", "proto"):
                raise Problem(f"'tcp-check connect {word}' is not implemented yet in poise")
            else:
                raise Problem(_CONNECT_WORDS.format(word))
            index += 1
        port = None
        if "port" in values:
            port = parse_int(values["port"])
            if not 1 <= port <= 65535:
                raise Problem(f"expects a valid TCP port (from 1 to 65535) but got '{port}'")
        self.add(
            CheckConnect(
                where,
                port=port,
                addr=values.get("addr"),
                linger="linger" in flags,
                default="default" in flags,
                comment=values.get("comment"),
                send_proxy="send-proxy" in flags,
            )
        )

    def _send(self, args: Sequence[str], where: Where, kind: str, data: bytes | None) -> None:
        if not args or not args[0]:
            raise Problem(
                f"'{kind}' expects a {kind.removeprefix('send-') or 'string'} as argument."
            )
        comment = _comment(args[1:])
        assert data is not None
        self.add(CheckSend(where, data, comment))

    def send(self, args: Sequence[str], where: Where) -> None:
        data = args[0].encode("utf-8", "surrogateescape") if args else None
        self._send(args, where, "send", data)

    def send_binary(self, args: Sequence[str], where: Where) -> None:
        self._send(args, where, "send-binary", _hex(args[0]) if args else None)

    def send_lf(self, args: Sequence[str], where: Where) -> None:
        self._send(args, where, "send-lf", _literal(args[0]).encode("utf-8") if args else None)

    def send_binary_lf(self, args: Sequence[str], where: Where) -> None:
        self._send(args, where, "send-binary-lf", _hex(_literal(args[0])) if args else None)

    def comment(self, args: Sequence[str], where: Where) -> None:
        if len(args) != 1:
            raise Problem("expects a string as argument.")
        self.add(CheckComment(where, args[0]))

    def variables(self, args: Sequence[str], where: Where) -> None:
        raise Problem("variables in health checks are not implemented yet in poise")

    def expect(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("expects at least a matching pattern as arguments")
        options: dict[str, str] = {}
        kind: ExpectKind | None = None
        pattern = ""
        negate = False
        index = 0
        while index < len(args):
            word = args[index]
            bare = word.removeprefix("!")
            if bare in _EXPECT_KINDS or bare in ("string-lf", "binary-lf", "custom"):
                if kind is not None:
                    raise Problem(f"only on pattern expected ('{word}' found).")
                if bare not in _EXPECT_KINDS:
                    raise Problem(f"'tcp-check expect {bare}' is not implemented yet in poise")
                negate = negate or word.startswith("!")
                if index + 1 >= len(args):
                    raise Problem(f"'{bare}' expects a <pattern> as argument.")
                kind, pattern = _EXPECT_KINDS[bare], args[index + 1]
                index += 2
                continue
            if word == "!":
                negate = True
                index += 1
                continue
            if word in _EXPECT_OPTIONS:
                if index + 1 >= len(args):
                    raise Problem(f"'{word}' expects a string as argument")
                options[word] = args[index + 1]
            elif word == "status-code":
                raise Problem("'status-code' is not implemented yet in poise")
            else:
                raise Problem(_EXPECT_WORDS.format(word))
            index += 2
        if kind is None:
            raise Problem("expects at least a matching pattern as arguments")
        if kind in ("rstring", "rbinary"):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise Problem(f"regex '{pattern}' is invalid ({exc})") from None
        elif kind == "binary":
            _hex(pattern)
        min_recv = -1
        if "min-recv" in options:
            min_recv = parse_int(options["min-recv"])
            if min_recv < -1:
                raise Problem("'min-recv' expects -1 or an integer from 0 to INT_MAX")
        self.add(
            CheckExpect(
                where,
                kind,
                pattern,
                negate=negate,
                min_recv=min_recv,
                ok_status=_status(options, "ok-status", OK_STATUSES),
                error_status=_status(options, "error-status", ERROR_STATUSES),
                tout_status=_status(options, "tout-status", TIMEOUT_STATUSES),
                on_success=_text(options.get("on-success")),
                on_error=_text(options.get("on-error")),
                comment=options.get("comment"),
            )
        )


def _status(options: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    if value.upper() == "L7OKC":
        raise Problem(f"'{name} L7OKC' is not implemented yet in poise")
    if value.upper() not in allowed:
        listed = ", ".join(f"'{s}'" for s in allowed)
        raise Problem(f"'{name}' only supports {listed} status (got '{value}').")
    return value.upper()


def _comment(args: Sequence[str]) -> str | None:
    if not args:
        return None
    if args[0] != "comment":
        raise Problem(f"expects 'comment' but got '{args[0]}' as argument.")
    if len(args) < 2:
        raise Problem("'comment' expects a string as argument.")
    if len(args) > 2:
        raise Problem(f"unexpected argument '{args[2]}'")
    return args[1]


def _hex(text: str) -> bytes:
    bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        raise Problem(f"'{text}' invalid binary string (an hex digit is expected (found '{bad}')).")
    if len(text) % 2:
        raise Problem(f"'{text}' invalid binary string (odd number of hex digits).")
    return bytes.fromhex(text)


def _literal(text: str) -> str:
    """A log-format string without samples: its text (`%%` is a `%`)."""
    if re.search(r"%(?!%)", text.replace("%%", "")):
        raise Problem("log-format samples ('%') in health checks are not implemented yet in poise")
    return text.replace("%%", "%")


def _text(text: str | None) -> str | None:
    return None if text is None else _literal(text)


def link(settings: Settings, owner: str, diagnostics: list[Diagnostic]) -> TcpCheck | None:
    """The backend's protocol check, with its `tcp-check` rules for `option tcp-check`
    (HAProxy warns, and ignores them, when that option is not the check type)."""
    rules = tuple(settings.tcp_check_rules or ())
    check = settings.tcp_check
    if settings.check_kind not in PROTOCOL_OPTIONS or check is None:
        if rules:
            diagnostics.append(
                warning(
                    rules[0].where,
                    f"{owner} uses tcp-check rules without 'option tcp-check', so the rules "
                    "are ignored",
                    "tcp-check",
                )
            )
        return None
    if check.protocol != "tcp-check":
        return check
    return replace(check, rules=rules)
