"""The HTTP rules of proxy sections (configuration.txt 4.2 and 7): `acl`, `http-request`,
`http-response` and `redirect` (the other HTTP keywords are in haproxy_http_settings.py).

Each is checked as HAProxy checks it, with its errors at FILE:LINE (the texts follow
`haproxy -c` 2.6 where it says something useful). Files named by `errorfile`, `-f` and the
`file` of a reply are read through the `read_file` function the loader gives, so this
module stays pure. ACL names in conditions are resolved later, by the link pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

from poise.config import patterns, sample_names
from poise.config.acl_parse import ACL_NAME, ReadFile, parse_condition, parse_test
from poise.config.diagnostics import Diagnostic, warning
from poise.config.errorfile import HANDLED_STATUSES
from poise.config.haproxy_draft import Problem, SectionDraft
from poise.config.haproxy_http_actions import (
    NORMALIZER_OPTIONS,
    PATTERN_ACTIONS,
    capture_rule,
    normalize_rule,
    pattern_rule,
    timing_rule,
    wait_rule,
)
from poise.config.haproxy_http_settings import (
    HttpSettings,
    check_regex,
    read,
    response_file,
)
from poise.config.haproxy_stats import check_service
from poise.config.haproxy_stick import is_stick_action, parse_stick_action
from poise.config.keywords import did_you_mean
from poise.config.model import (
    Condition,
    ErrorFile,
    HeaderMatch,
    HttpAction,
    HttpReply,
    HttpRule,
    LogFormat,
    Redirect,
    RedirectKind,
    Where,
)
from poise.config.samples import Scope, check_scope, parse_log_format, parse_sample
from poise.config.units import parse_int
from poise.config.variables import parse_var_action

Handler = Callable[[Sequence[str], Where], None]
_REDIRECT_CODES = (301, 302, 303, 307, 308)
_REDIRECT_KINDS: dict[str, RedirectKind] = {
    "location": "location",
    "prefix": "prefix",
    "scheme": "scheme",
}
# How many words each keyword of a reply (deny, return) and of a redirect takes.
REPLY_WIDTHS = {"hdr": 3, "default-errorfiles": 1}
REDIRECT_WIDTHS = {
    "location": 2,
    "prefix": 2,
    "scheme": 2,
    "code": 2,
    "set-cookie": 2,
    "clear-cookie": 2,
}
_HEADER_MATCHES: dict[str, HeaderMatch] = {m: m for m in ("str", "beg", "end", "sub", "reg")}
# http-request and http-response actions poise implements, with their number of arguments
# (None: keyword arguments up to the condition).
_ARITY: dict[str, int | None] = {
    "set-header": 2,
    "add-header": 2,
    "del-header": None,
    "replace-header": 3,
    "replace-value": 3,
    "allow": 0,
    "deny": None,
    "return": None,
    "redirect": None,
    "use-service": 1,
    "set-var": 1,
    "set-var-fmt": 1,
    "unset-var": 0,
    "auth": None,
    "set-method": 1,
    "set-path": 1,
    "set-pathq": 1,
    "set-query": 1,
    "set-uri": 1,
    "replace-path": 2,
    "replace-pathq": 2,
    "replace-uri": 2,
    "set-status": None,
    "silent-drop": 0,
    "reject": 0,
    "set-dst": 1,
    "set-dst-port": 1,
    "set-src-port": 1,
    "cache-use": 1,
    "cache-store": 1,
    "tarpit": None,
    "set-timeout": 2,
    "set-log-level": 1,
    "capture": 3,
    "set-map": 2,
    "del-map": 1,
    "add-acl": 1,
    "del-acl": 1,
    "early-hint": 2,
    "normalize-uri": None,
    "wait-for-body": None,
}
# Each action's name as the model's HttpAction (the same words as _ARITY's).
_ACTIONS: dict[str, HttpAction] = {name: cast(HttpAction, name) for name in _ARITY}
_VAR_ACTIONS = frozenset({"set-var", "set-var-fmt", "unset-var"})
_RESPONSE_ACTIONS = frozenset(
    {"set-header", "add-header", "del-header", "replace-header", "replace-value", "allow", "deny"}
    | {"return", "set-status", "silent-drop", "set-log-level", "capture", "cache-store"}
    | PATTERN_ACTIONS
    | _VAR_ACTIONS
)
_RESPONSE_ONLY = frozenset({"set-status", "cache-store"})
AFTER_RESPONSE_ACTIONS = frozenset(
    {"add-header", "allow", "del-header", "replace-header", "replace-value", "set-header"}
    | {"set-status", "set-var", "set-var-fmt", "unset-var"}
)
_PAYLOADS = frozenset(
    {"default-errorfiles", "errorfile", "errorfiles", "file", "lf-file", "string", "lf-string"}
)


def set_status(rule: HttpRule, args: list[str]) -> HttpRule:
    """`http-response set-status CODE [reason TEXT]` (HAProxy's words for its errors)."""
    code = int(args[0]) if args and args[0].isdigit() else 0
    if not 100 <= code <= 999:
        raise Problem("expects an integer status code between 100 and 999")
    reason = ""
    if len(args) > 1:
        if args[1] != "reason" or len(args) != 3:
            raise Problem("expects only 'reason' keyword after the status code")
        reason = args[2]
    return _with(rule, status=code, name=reason)


def keyword_arguments(
    args: Sequence[str], widths: dict[str, int], default: int
) -> tuple[list[str], list[str]]:
    """(the keyword arguments of a rule, the condition after them): `if` or `unless` ends
    them only where a keyword is expected, so a value may be "if"."""
    index = 0
    while index < len(args) and args[index] not in ("if", "unless"):
        index += widths.get(args[index], default)
    return list(args[:index]), list(args[index:])


def parse_redirect(args: Sequence[str], where: Where, lf: Scope | None = None) -> Redirect:
    """`location|prefix|scheme TARGET [code N] [drop-query] [append-slash]` (the words
    before any condition). With `lf`, the target is a log-format string (as in
    `http-request redirect`)."""
    kind: RedirectKind | None = None
    target, code, drop_query, append_slash = "", 302, False, False
    index = 0
    while index < len(args):
        word = args[index]
        value = args[index + 1] if index + 1 < len(args) else None
        if word in ("location", "prefix", "scheme", "code"):
            if value is None:
                raise Problem(f"'{word}' expects a value")
            if word == "code":
                code = parse_int(value)
                if code not in _REDIRECT_CODES:
                    raise Problem(f"unsupported code {code} (301, 302, 303, 307 or 308)")
            else:
                kind, target = _REDIRECT_KINDS[word], value
            index += 2
            continue
        if word == "drop-query":
            drop_query = True
        elif word == "append-slash":
            append_slash = True
        elif word in ("set-cookie", "clear-cookie", "ignore-empty"):
            raise Problem(f"redirect option '{word}' is not implemented yet in poise")
        else:
            raise Problem(f"unexpected argument '{word}'")
        index += 1
    if kind is None:
        raise Problem("expects 'location', 'prefix' or 'scheme' and a target")
    target_format = None
    if lf is not None and "%" in target:
        target_format = parse_log_format(target, lf)
    return Redirect(
        kind, target, where, code, drop_query, append_slash, target_format=target_format
    )


class HttpKeywords:
    """The handlers of the HTTP keywords for one section."""

    def __init__(
        self,
        section: SectionDraft,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None,
        http_errors: dict[str, dict[int, ErrorFile]] | None = None,
    ) -> None:
        self.section = section
        self.settings = section.settings
        self.diagnostics = diagnostics
        self.read_file = read_file
        self.http_errors = http_errors if http_errors is not None else {}

    def handlers(self) -> dict[str, Handler]:
        settings = HttpSettings(self.section, self.diagnostics, self.read_file)
        return {
            "acl": self.acl,
            "http-request": self.http_request,
            "http-response": self.http_response,
            "http-after-response": self.http_after_response,
            **settings.handlers(),
        }

    # --- conditions and files ----------------------------------------------------------

    def condition(self, words: Sequence[str], where: Where, keyword: str) -> Condition:
        return parse_condition(words, where, self.diagnostics, self.read_file, keyword)

    def anonymous_defaults(self, keyword: str) -> None:
        if self.section.kind == "defaults" and not self.section.name:
            raise Problem(f"'{keyword}' not allowed in anonymous 'defaults' section")

    # --- acl -----------------------------------------------------------------------------

    def acl(self, args: Sequence[str], where: Where) -> None:
        self.anonymous_defaults("acl")
        if len(args) < 2:
            raise Problem("expects an ACL name and a criterion")
        name = args[0]
        if not ACL_NAME.fullmatch(name):
            bad = next(c for c in name if not ACL_NAME.fullmatch(c))
            raise Problem(f"character '{bad}' is not permitted in acl name '{name}'")
        test = parse_test(args[1:], where, self.diagnostics, self.read_file)
        self.section.acls.setdefault(name, []).append(test)
        self.section.acl_where.setdefault(name, where)

    # --- http-request / http-response ----------------------------------------------------

    def http_request(self, args: Sequence[str], where: Where) -> None:
        self.anonymous_defaults("http-request")
        rule = self.rule(args, where, "req")
        if self.section.redirects or self.section.use_backends:
            after = "redirect" if self.section.redirects else "use_backend"
            self.diagnostics.append(
                warning(
                    where,
                    f"a 'http-request' rule placed after a '{after}' rule will still be "
                    "processed before",
                    "http-request",
                )
            )
        self.section.http_request_rules.append(rule)

    def http_response(self, args: Sequence[str], where: Where) -> None:
        self.anonymous_defaults("http-response")
        self.section.http_response_rules.append(self.rule(args, where, "res"))

    def http_after_response(self, args: Sequence[str], where: Where) -> None:
        """`http-after-response ACTION ...`: the header and status actions (and variables)
        of http-response, on every response, poise's own included (HAProxy 2.6's list)."""
        self.anonymous_defaults("http-after-response")
        written = args[0] if args else ""
        if written.split("(")[0] not in AFTER_RESPONSE_ACTIONS:
            raise Problem(
                "'http-after-response' expects 'add-header', 'allow', 'del-header', "
                "'replace-header', 'replace-value', 'set-header', 'set-status', "
                f"'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', but got '{written}'."
            )
        self.section.http_after_response_rules.append(self.rule(args, where, "res"))

    def rule(self, args: Sequence[str], where: Where, scope: Scope) -> HttpRule:
        keyword = "http-request" if scope == "req" else "http-response"
        known = sample_names.HTTP_REQUEST_ACTIONS
        implemented: Sequence[str] = [a for a in _ARITY if a not in _RESPONSE_ONLY]
        if scope == "res":
            known, implemented = sample_names.HTTP_RESPONSE_ACTIONS, sorted(_RESPONSE_ACTIONS)
        if not args:
            raise Problem(f"expects an action ({', '.join(implemented)}, ...)")
        action = args[0]
        base = action.split("(")[0]
        if is_stick_action(action):
            return self.stick_rule(keyword, args, where, scope)
        if base not in implemented:
            if base in known or re.fullmatch(r"track-sc\d+|sc-.*", base):
                raise Problem(f"action '{base}' is not implemented yet in poise")
            hint = did_you_mean(base, known)
            raise Problem(f"unknown action '{action}'{hint}")
        variable: tuple[str, tuple[str, ...]] | None = None
        pattern_file: str | None = None
        if base in PATTERN_ACTIONS:  # set-map(FILE) ...: FILE may be empty, as in HAProxy
            inside = action.startswith(base + "(") and action.endswith(")")
            pattern_file, action = action[len(base) + 1 : -1] if inside else "", base
        elif base in _VAR_ACTIONS:
            if not action.startswith(base + "(") or not action.endswith(")"):
                raise Problem(
                    f"incomplete argument after action '{action}'. Expects "
                    "'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'."
                )
            variable = parse_var_action(action[len(base) + 1 : -1])
            if base == "unset-var" and variable[1]:
                raise Problem("'unset-var' takes no condition")
            action = base
        elif action != base:
            raise Problem(f"action '{base}' takes no argument in parentheses")
        arity = _ARITY[action]
        if action == "set-var" and len(args) < 2:
            raise Problem("missing fetch method.")
        if arity is not None:
            own, rest = list(args[1 : 1 + arity]), list(args[1 + arity :])
            if len(own) < arity and action != "set-var-fmt":
                raise Problem(f"'{action}' expects exactly {arity} arguments")
        elif action == "del-header":
            width = 3 if args[2:3] == ["-m"] else 1
            own, rest = list(args[1 : 1 + width]), list(args[1 + width :])
        elif action == "auth":
            own, rest = keyword_arguments(args[1:], {"realm": 2}, 1)
        elif action == "set-status":
            own, rest = keyword_arguments(args[1:], {"reason": 2}, 1)
        elif action == "wait-for-body":
            own, rest = keyword_arguments(args[1:], {"time": 2, "at-least": 2}, 2)
        elif action == "normalize-uri":  # NAME [OPTION]
            option = NORMALIZER_OPTIONS.get(args[1] if len(args) > 1 else "")
            width = 2 if option is not None and args[2:3] == [option] else 1
            own, rest = list(args[1 : 1 + width]), list(args[1 + width :])
        else:
            widths = REDIRECT_WIDTHS if action == "redirect" else REPLY_WIDTHS
            own, rest = keyword_arguments(args[1:], widths, 2 if action != "redirect" else 1)
        if rest and rest[0] not in ("if", "unless"):
            raise Problem(
                f"'{keyword} {args[0]}' expects either 'if' or 'unless' followed by a "
                f"condition but found '{rest[0]}'"
            )
        condition = self.condition(rest, where, keyword) if rest else None
        if pattern_file is not None:
            rule = HttpRule(_ACTIONS[action], where, condition)
            return pattern_rule(rule, own, scope, pattern_file)
        if variable is not None:
            name, conditions = variable
            rule = HttpRule(_ACTIONS[action], where, condition, name, var_conditions=conditions)
            return _variable_rule(rule, args[0], own, scope)
        return self.action(_ACTIONS[action], own, where, scope, condition)

    def stick_rule(self, keyword: str, args: Sequence[str], where: Where, scope: Scope) -> HttpRule:
        """track-sc0|1|2, sc-inc-gpc0|1, sc-set-gpt0 (config/haproxy_stick.py)."""
        stick, rest = parse_stick_action(keyword, args, scope)
        if stick.kind == "track":
            table = stick.table or patterns.current_proxy()
            if table is None:
                raise Problem(f"'{keyword} {args[0]}': the table must be named in 'defaults'")
            patterns.refer_to_table(f"{keyword} {args[0]}", table)
            stick = replace(stick, table=table)
        if rest and rest[0] not in ("if", "unless"):
            raise Problem(
                f"'{keyword} {args[0]}' expects either 'if' or 'unless' followed by a "
                f"condition but found '{rest[0]}'"
            )
        condition = self.condition(rest, where, keyword) if rest else None
        return HttpRule("stick", where, condition, stick=stick)

    def action(
        self,
        action: HttpAction,
        args: list[str],
        where: Where,
        scope: Scope,
        condition: Condition | None,
    ) -> HttpRule:
        rule = HttpRule(action, where, condition)
        if action in ("set-header", "add-header", "early-hint"):
            return _with(rule, name=args[0], value=parse_log_format(args[1], scope))
        if action in ("set-method", "set-path", "set-pathq", "set-query", "set-uri"):
            return _with(rule, value=parse_log_format(args[0], scope))
        if action in ("replace-path", "replace-pathq", "replace-uri"):
            check_regex(args[0])
            return _with(rule, regex=args[0], value=parse_log_format(args[1], scope))
        if action in ("replace-header", "replace-value"):
            check_regex(args[1])
            value = parse_log_format(args[2], scope)
            return _with(rule, name=args[0], regex=args[1], value=value)
        if action == "del-header":
            return self.del_header(rule, args)
        if action in ("deny", "return", "tarpit"):
            return _with(rule, reply=self.reply(action, args, where, scope))
        if action in ("set-timeout", "set-log-level"):
            return timing_rule(rule, args, scope, self.section)
        if action == "capture":
            return capture_rule(rule, args, scope, self.section, where)
        if action == "normalize-uri":
            return normalize_rule(rule, args)
        if action == "wait-for-body":
            return wait_rule(rule, args)
        if action == "redirect":
            return _with(rule, redirect=parse_redirect(args, where, lf=scope))
        if action == "use-service":
            return _with(rule, name=check_service(args[0]))
        if action in ("cache-use", "cache-store"):
            return _with(rule, name=args[0])
        if action in ("set-dst", "set-dst-port", "set-src-port"):
            return _with(rule, sample=parse_sample(args[0], scope))
        if action == "set-status":
            return set_status(rule, args)
        if action == "auth":
            if args and (args[0] != "realm" or len(args) != 2):
                raise Problem(f"'auth' expects 'realm' and a realm name, found '{args[0]}'")
            return _with(rule, name=args[1] if args else "")
        return rule  # allow

    def del_header(self, rule: HttpRule, args: list[str]) -> HttpRule:
        if not args:
            raise Problem("'del-header' expects a header name")
        match: HeaderMatch = "str"
        if len(args) >= 2 and args[1] == "-m":
            if len(args) < 3 or args[2] not in _HEADER_MATCHES:
                raise Problem("'-m' expects 'str', 'beg', 'end', 'sub' or 'reg'")
            match = _HEADER_MATCHES[args[2]]
            if match == "reg":
                check_regex(args[0])
            extra = args[3:]
        else:
            extra = args[1:]
        if extra:
            raise Problem(
                f"'del-header' expects either 'if' or 'unless' followed by a condition "
                f"but found '{extra[0]}'"
            )
        return _with(rule, name=args[0], match=match, regex=args[0] if match == "reg" else "")

    def errors_section(self, name: str) -> dict[int, ErrorFile]:
        """An `http-errors` section a reply names (it must come before the reply)."""
        if name not in self.http_errors:
            raise Problem(
                f"unknown http-errors section '{name}' (poise needs it declared before "
                "the rules that name it)"
            )
        return self.http_errors[name]

    def errors_file(
        self, section: dict[int, ErrorFile], status: int, where: Where, action: str
    ) -> tuple[bytes | None, bool]:
        """(the section's file for `status`, False), or (None, False) with HAProxy's
        warning: then the reply is the bare status, an empty body (as haproxy 2.6 sends)."""
        if status in section:
            return section[status].content, False
        name = next(n for n, files in self.http_errors.items() if files is section)
        message = (
            f"status '{status}' referenced by an http reply not declared in http-errors "
            f"section '{name}'"
        )
        self.diagnostics.append(warning(where, message, action))
        return None, False

    def reply(self, action: str, args: list[str], where: Where, scope: Scope) -> HttpReply:
        """The arguments of `deny` and `return` (configuration.txt `http-request return`)."""
        # HAProxy's defaults: a denied request gets 403, a denied response 502.
        status = 200 if action == "return" else 403 if scope == "req" else 502
        status = 500 if action == "tarpit" else status
        content_type: str | None = None
        payload: str | None = None
        body = b""
        body_format: LogFormat | None = None
        errorfile: bytes | None = None
        section: dict[int, ErrorFile] = {}  # `errorfiles NAME`
        headers: list[tuple[str, LogFormat]] = []
        index = 0
        while index < len(args):
            word = args[index]
            width = 3 if word == "hdr" else 1 if word == "default-errorfiles" else 2
            if index + width > len(args):
                raise Problem(f"'{word}' expects an argument")
            value = args[index + 1] if width > 1 else ""
            if word == "status" or (word == "deny_status" and action in ("deny", "tarpit")):
                status = parse_int(value)
                if not 200 <= status <= 599:
                    raise Problem(f"Unexpected status code '{status}'")
            elif word == "content-type":
                content_type = value
            elif word == "hdr":
                headers.append((value, parse_log_format(args[index + 2], scope)))
            elif word in _PAYLOADS:
                payload = self.payload_once(payload, word)
                if word == "errorfiles":
                    section = self.errors_section(value)
                if word == "errorfile":
                    errorfile = response_file(self.read_file, value)
                elif word == "file":
                    body = read(self.read_file, value)
                elif word == "lf-file":
                    text = read(self.read_file, value).decode("utf-8", errors="replace")
                    body_format = parse_log_format(text, scope)
                elif word == "string":
                    body = value.encode("utf-8", "surrogatepass")
                elif word == "lf-string":
                    body_format = parse_log_format(value, scope)
            else:
                raise Problem(f"unexpected argument '{word}'")
            index += width
        default = payload == "default-errorfiles" or (
            payload is None and action in ("deny", "tarpit")
        )
        if (default or errorfile is not None or payload == "errorfiles") and (
            status not in HANDLED_STATUSES
        ):
            raise Problem(
                f"status code '{status}' not handled by default with '{payload}' argument"
            )
        if payload == "errorfiles":  # the section's file, else an empty reply
            errorfile, default = self.errors_file(section, status, where, action)
        has_payload = bool(body) or (body_format is not None and bool(body_format.parts))
        if has_payload and content_type is None:
            raise Problem("a content type must be defined when non-empty payload is configured")
        if content_type is not None and not has_payload:
            self.diagnostics.append(
                warning(
                    where,
                    f"content-type '{content_type}' ignored by the http reply because "
                    "neither errorfile nor payload defined",
                    f"http-request {action}",
                )
            )
            content_type = None
        if headers and (default or errorfile is not None):
            self.diagnostics.append(
                warning(where, "'hdr' arguments are ignored with an error file", action)
            )
            headers = []
        return HttpReply(
            status,
            content_type,
            body,
            body_format,
            tuple(headers),
            errorfile,
            default,
        )

    @staticmethod
    def payload_once(current: str | None, word: str) -> str:
        if current is not None:
            raise Problem(f"unexpected '{word}' argument, '{current}' already defined")
        return word


def _variable_rule(rule: HttpRule, written: str, args: list[str], scope: Scope) -> HttpRule:
    """`set-var(NAME[,COND...]) EXPR`, `set-var-fmt(NAME[,COND...]) FMT`, `unset-var(NAME)`
    (`written`: the action as written, for the messages)."""
    if rule.action == "set-var-fmt":
        return _with(rule, value=parse_log_format(args[0] if args else "", scope))
    if rule.action == "unset-var":
        return rule
    sample = parse_sample(args[0], scope)
    needs = check_scope(sample, scope)
    if needs:
        raise Problem(
            f"fetch method '{written}' extracts information from '{needs}', none of which "
            "is available here."
        )
    return _with(rule, sample=sample)


def _with(rule: HttpRule, **changes: Any) -> HttpRule:
    return replace(rule, **changes)
