"""The layer-4 rule keywords of proxy sections (configuration.txt 4.2): `tcp-request
connection|session|content ACTION [if|unless COND]`, `tcp-request inspect-delay`,
`tcp-response content ACTION [if|unless COND]` and `tcp-response inspect-delay`.

Actions poise runs: `accept`, `reject`, `set-var(...)`, `set-var-fmt(...)`, `unset-var(...)`
(each hook), `close` (tcp-response content), and the stick counters' `track-sc*`,
`sc-inc-gpc0|1`, `sc-set-gpt0` (haproxy_stick.py). The others HAProxy has are errors that
say they are not implemented yet, never ignored. Texts
follow `haproxy -c` 2.6.12 where it says something (the misplaced-rule warnings, the
anonymous `defaults` refusal). Pure; ACL names are resolved by the link pass (link_tcp.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import Problem, SectionDraft, one_arg
from poise.config.haproxy_http import HttpKeywords
from poise.config.haproxy_stick import is_stick_action
from poise.config.keywords import did_you_mean
from poise.config.model import Where
from poise.config.model_tcp import TcpAction, TcpHook, TcpRule
from poise.config.samples import Scope
from poise.config.units import parse_time

Handler = Callable[[Sequence[str], Where], None]

# Where each hook's rules are evaluated, for the samples they may use.
SCOPES: dict[TcpHook, Scope] = {
    "connection": "conn",
    "session": "conn",
    "content": "req",
    "response": "res",
}
KEYWORDS: dict[TcpHook, str] = {
    "connection": "tcp-request connection",
    "session": "tcp-request session",
    "content": "tcp-request content",
    "response": "tcp-response content",
}
_VARIABLES = ("set-var", "set-var-fmt", "unset-var")
_IMPLEMENTED: dict[TcpHook, tuple[str, ...]] = {
    "connection": ("accept", "reject", "expect-proxy", *_VARIABLES),
    "session": ("accept", "reject", *_VARIABLES),
    "content": ("accept", "reject", "capture", "set-log-level", *_VARIABLES),
    "response": ("accept", "reject", "close", "set-log-level", *_VARIABLES),
}
# HAProxy 2.6's other actions for each hook (configuration.txt 4.2).
_SC = ("sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt", "sc-set-gpt0")
_TRACK = ("track-sc0", "track-sc1", "track-sc2")
_OTHERS: dict[TcpHook, tuple[str, ...]] = {
    "connection": (
        *_SC, *_TRACK, "expect-netscaler-cip", "set-dst", "set-dst-port",
        "set-mark", "set-src", "set-src-port", "set-tos", "silent-drop",
    ),
    "session": (
        *_SC, *_TRACK, "set-dst", "set-dst-port", "set-mark", "set-src", "set-src-port",
        "set-tos", "silent-drop",
    ),
    "content": (
        *_SC, *_TRACK, "do-resolve", "send-spoe-group", "set-dst", "set-dst-port",
        "set-mark", "set-nice", "set-priority-class", "set-priority-offset",
        "set-src", "set-src-port", "set-tos", "silent-drop", "switch-mode", "use-service",
    ),
    "response": (
        *_SC, "send-spoe-group", "set-mark", "set-nice", "set-tos",
        "silent-drop",
    ),
}  # fmt: skip
# Which later hooks a rule's hook runs before, for HAProxy's misplaced-rule warning.
_LATER: dict[TcpHook, tuple[TcpHook, ...]] = {
    "connection": ("session", "content"),
    "session": ("content",),
    "content": (),
    "response": (),
}


class TcpKeywords:
    """The handlers of the layer-4 rule keywords for one section."""

    def __init__(
        self, section: SectionDraft, diagnostics: list[Diagnostic], http: HttpKeywords
    ) -> None:
        self.section = section
        self.diagnostics = diagnostics
        self.http = http

    def handlers(self) -> dict[str, Handler]:
        return {
            "tcp-request connection": lambda a, w: self.rule("connection", a, w),
            "tcp-request session": lambda a, w: self.rule("session", a, w),
            "tcp-request content": lambda a, w: self.rule("content", a, w),
            "tcp-response content": lambda a, w: self.rule("response", a, w),
            "tcp-request inspect-delay": lambda a, w: self.delay("tcp-request", "inspect", a),
            "tcp-response inspect-delay": lambda a, w: self.delay(
                "tcp-response", "response_inspect", a
            ),
        }

    def delay(self, keyword: str, field: str, args: Sequence[str]) -> None:
        if self.section.kind == "defaults" and not self.section.name:
            raise Problem(
                f"{keyword} inspect-delay is not allowed in anonymous 'defaults' sections"
            )
        self.section.settings.timeouts[field] = parse_time(one_arg(args, "a delay"))

    def rule(self, hook: TcpHook, args: Sequence[str], where: Where) -> None:
        keyword = KEYWORDS[hook]
        self.http.anonymous_defaults(keyword)
        if not args:
            raise Problem(f"expects an action ({', '.join(_IMPLEMENTED[hook])}, ...)")
        written = args[0]
        base = written.split("(", 1)[0]
        if is_stick_action(written) and (hook != "response" or not written.startswith("track")):
            self.misplaced(hook, where)
            stick = self.http.stick_rule(keyword, args, where, SCOPES[hook])
            self.section.tcp_rules.append(TcpRule(hook, "variable", where, stick.condition, stick))
            return
        if base not in _IMPLEMENTED[hook]:
            raise Problem(_refusal(hook, base, written))
        self.misplaced(hook, where)
        scope = SCOPES[hook]
        if base == "capture":  # a request capture slot of this frontend (config/haproxy_http)
            if len(args) < 4 or args[2] != "len" or not args[3].isdigit() or args[3] == "0":
                raise Problem(
                    "'tcp-request content capture' : a positive 'len' argument is mandatory"
                )
            if self.section.kind not in ("frontend", "listen"):
                raise Problem(
                    f"'tcp-request content capture' : proxy '{self.section.name}' has no "
                    "frontend capability"
                )
        if base in _VARIABLES or base in ("capture", "set-log-level"):
            variable = self.http.rule(args, where, scope)
            self.section.tcp_rules.append(
                TcpRule(hook, "variable", where, variable.condition, variable)
            )
            return
        if "(" in written:
            raise Problem(f"action '{base}' takes no argument in parentheses")
        rest = list(args[1:])
        if base == "expect-proxy":
            layer = rest.pop(0) if rest else ""
            if layer != "layer4":
                raise Problem(
                    f"'{keyword} expect-proxy' only supports 'layer4' in "
                    f"{self.section.kind} '{self.section.name}' (got '{layer}')"
                )
            if rest and rest[0] not in ("if", "unless"):
                raise Problem(
                    f"'{keyword} expect-proxy' only accepts 'if' or 'unless', in "
                    f"{self.section.kind} '{self.section.name}' (got '{rest[0]}')"
                )
        if rest and rest[0] not in ("if", "unless"):
            raise Problem(
                f"'{keyword} {base}' expects either 'if' or 'unless' followed by a condition "
                f"but found '{rest[0]}'"
            )
        condition = self.http.condition(rest, where, keyword) if rest else None
        action: TcpAction = "accept" if base == "accept" else "reject"
        if base == "close":
            action = "close"
        elif base == "expect-proxy":
            action = "expect-proxy"
        self.section.tcp_rules.append(TcpRule(hook, action, where, condition))

    def misplaced(self, hook: TcpHook, where: Where) -> None:
        """HAProxy's warning: a rule written after one of a later hook still runs first."""
        later = {rule.hook for rule in self.section.tcp_rules}
        for other in _LATER[hook]:
            if other in later:
                self.diagnostics.append(
                    warning(
                        where,
                        f"a 'tcp-request' rule placed after a '{KEYWORDS[other]}' rule will "
                        "still be processed before.",
                        KEYWORDS[hook],
                    )
                )
                return


def _refusal(hook: TcpHook, base: str, written: str) -> str:
    if base == "expect-proxy":  # HAProxy 2.6's message
        return f"'expect-proxy layer4' is not allowed in '{KEYWORDS[hook]}' rules"
    if base.startswith("lua."):
        return f"action '{base}' is a Lua action: Lua is not implemented in poise"
    if base in _OTHERS[hook]:
        return f"action '{base}' is not implemented yet in poise"
    hint = did_you_mean(base, [*_IMPLEMENTED[hook], *_OTHERS[hook]])
    return f"unknown action '{written}'{hint}"
