"""The link pass for HTTP mode: resolves the ACL names of conditions, gathers a section's
rules (those of its named `defaults` section first) and settles the HTTP settings of a
proxy, with HAProxy's rules and warnings:

- an ACL is declared before the first rule that uses it, in the same section; the ACLs
  of a `defaults` section are only visible to that section's own rules; otherwise the
  name may be one of HAProxy's predefined ACLs (configuration.txt 7.4);
- a sample used where it cannot be known (`status` in an `http-request` rule, `path` in
  an `http-response` rule) makes its ACL never match, with HAProxy's warning;
- a `defaults` section with rules can only be inherited by proxies of one kind, and
  another `defaults` section cannot inherit from it;
- in `mode tcp`, rules, cookies and layer 7 hashing are ignored with a warning;
  `http-check` rules without `option httpchk` are ignored with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from poise.config.acl_parse import PREDEFINED, PREDEFINED_NOT_IMPLEMENTED
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import SectionDraft, Settings
from poise.config.keywords import did_you_mean
from poise.config.model import (
    Acl,
    AclTerm,
    Algorithm,
    Capability,
    Condition,
    ErrorFile,
    HttpCheck,
    HttpRule,
    Redirect,
    UseBackend,
    UseServer,
)
from poise.config.model_http import ErrorFilesRef, PersistRule
from poise.config.samples import Scope, check_scope

_L7_HASHES = (Algorithm.URI, Algorithm.URL_PARAM, Algorithm.HDR)


@dataclass(frozen=True, slots=True)
class SectionRules:
    """A section's rules with their conditions resolved."""

    acls: tuple[Acl, ...] = ()
    http_request: tuple[HttpRule, ...] = ()
    http_response: tuple[HttpRule, ...] = ()
    http_after_response: tuple[HttpRule, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    use_backends: tuple[UseBackend, ...] = ()
    use_servers: tuple[UseServer, ...] = ()
    persist_rules: tuple[PersistRule, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.http_request or self.http_response or self.http_after_response)


def _label(section: SectionDraft) -> str:
    return f"{section.kind} '{section.name}'"


def _keyword(criterion: str) -> str:
    return re.split(r"[(,]", criterion, maxsplit=1)[0]


def use_servers(
    section: SectionDraft, uses: tuple[UseServer, ...], diagnostics: list[Diagnostic]
) -> tuple[UseServer, ...]:
    """`use-server` rules naming a server of this section (HAProxy refuses others)."""
    names = {draft.name for draft in section.servers}
    for use in uses:
        if use.server not in names:
            diagnostics.append(
                error(
                    use.where,
                    f"{_label(section)}: unable to find server '{use.server}' referenced in "
                    "a 'use-server' rule",
                    "use-server",
                )
            )
    return tuple(use for use in uses if use.server in names)


class Resolver:
    """Resolves the conditions of one section's rules."""

    def __init__(self, section: SectionDraft, diagnostics: list[Diagnostic]) -> None:
        self.section = section
        self.diagnostics = diagnostics
        self.acls = {
            name: Acl(name, tuple(tests), section.acl_where[name])
            for name, tests in section.acls.items()
        }
        side = "frontend" if section.capabilities & Capability.FRONTEND else "backend"
        self.side = side

    def rules(self) -> SectionRules:
        section = self.section
        return SectionRules(
            acls=tuple(self.acls.values()),
            http_request=tuple(
                self.rule(rule, "http-request", "req") for rule in section.http_request_rules
            ),
            http_response=tuple(
                self.rule(rule, "http-response", "res") for rule in section.http_response_rules
            ),
            http_after_response=tuple(
                self.rule(rule, "http-after-response", "res")
                for rule in section.http_after_response_rules
            ),
            redirects=tuple(
                replace(r, condition=self.condition(r.condition, "redirect", "req"))
                for r in section.redirects
            ),
            use_backends=tuple(
                replace(u, condition=self.condition(u.condition, "use_backend", "req"))
                for u in section.use_backends
            ),
            use_servers=tuple(self.use_server(use) for use in section.use_servers),
            persist_rules=tuple(self.persist_rule(rule) for rule in section.persist_rules),
        )

    def use_server(self, use: UseServer) -> UseServer:
        condition = self.condition(use.condition, "use-server", "req")
        assert condition is not None  # a condition stays one once its ACLs are resolved
        return replace(use, condition=condition)

    def persist_rule(self, rule: PersistRule) -> PersistRule:
        keyword = "force-persist" if rule.force else "ignore-persist"
        condition = self.condition(rule.condition, keyword, "req")
        assert condition is not None  # a condition stays one once its ACLs are resolved
        return replace(rule, condition=condition)

    def rule(self, rule: HttpRule, keyword: str, scope: Scope) -> HttpRule:
        return replace(rule, condition=self.condition(rule.condition, keyword, scope))

    def condition(self, cond: Condition | None, keyword: str, scope: Scope) -> Condition | None:
        if cond is None:
            return None
        suites = tuple(
            tuple(self.term(term, cond, keyword) for term in suite) for suite in cond.suites
        )
        resolved = replace(cond, suites=suites)
        self.check_scopes(resolved, keyword, scope)
        return resolved

    def term(self, term: AclTerm, cond: Condition, keyword: str) -> AclTerm:
        acl = term.acl
        if acl.tests:  # anonymous: complete already
            return term
        name = acl.name
        found = self.acls.get(name)
        if found is not None and found.where.line <= cond.where.line:
            return replace(term, acl=found)
        if name in PREDEFINED:
            return replace(term, acl=PREDEFINED[name])
        if name in PREDEFINED_NOT_IMPLEMENTED:
            reason = f"predefined ACL '{name}' is not implemented yet in poise"
        elif found is not None:
            reason = (
                f"no such ACL '{name}' here: it is declared at {found.where}, after this "
                "line (an ACL must be declared before the rules that use it)"
            )
        else:
            hint = did_you_mean(name, [*self.acls, *PREDEFINED])
            reason = f"no such ACL '{name}'{hint}"
        self.diagnostics.append(error(cond.where, reason, keyword))
        return term

    def check_scopes(self, cond: Condition, keyword: str, scope: Scope) -> None:
        """HAProxy's warning for an ACL that cannot match where it is used."""
        context = {
            "http-request": "http-request header rule",
            "redirect": "http-request header rule",
            "http-response": "http-response header rule",
            "http-after-response": "http-response header rule",  # HAProxy's words
            "use_backend": "use-backend rule",
            "stats admin": "http-request header rule",
            "monitor fail": "http-request header rule",
            "use-server": "use-server, balance or stick-match rule",
            "stick on": "use-server, balance or stick-match rule",
            "stick match": "use-server, balance or stick-match rule",
            "stick store-request": "stick-store rule",
            "stick store-response": "stick-store rule",
            # HAProxy checks them where the backend's content rules run (SMP_VAL_BE_REQ_CNT).
            "force-persist": "tcp-request content rule",
            "ignore-persist": "tcp-request content rule",
        }[keyword]
        # A backend's checkpoint (HAProxy's SMP_CKP_BE_SET_SRV), in a `listen` section too.
        backend = keyword in ("use-server", "force-persist", "ignore-persist")
        backend = backend or keyword.startswith("stick ")
        context = f"{'backend' if backend else self.side} {context}"
        self.diagnostics.extend(scope_warnings(cond, keyword, scope, context))


def scope_warnings(
    cond: Condition, keyword: str, scope: Scope, context: str, *, say_where: bool = False
) -> list[Diagnostic]:
    """HAProxy's warning for each ACL of `cond` that cannot match where it is used
    (`say_where`: the words of the tcp-request/tcp-response rules, which name the
    keyword)."""
    found: list[Diagnostic] = []
    where = f" in '{keyword}'" if say_where else ""
    for suite in cond.suites:
        for term in suite:
            acl = term.acl
            bad = [t for t in acl.tests if check_scope(t.sample, scope)]
            if not bad:
                continue
            if not acl.name:
                message = (
                    f"anonymous acl will never match{where} because it uses keyword "
                    f"'{_keyword(bad[0].criterion)}' which is incompatible with '{context}'"
                )
            elif len(bad) == len(acl.tests):
                message = (
                    f"acl '{acl.name}' will never match{where} because it only involves "
                    f"keywords that are incompatible with '{context}'"
                )
            else:
                continue
            found.append(warning(cond.where, message, keyword))
    return found


class DefaultsRules:
    """The rules of `defaults` sections, resolved once each, and HAProxy's restrictions on
    who may inherit them."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        # Drafts are mutable (unhashable), so these are keyed by id(); each entry holds its
        # defaults section too, which keeps that id from being reused while the entry lives.
        self.resolved: dict[int, tuple[SectionDraft, SectionRules]] = {}
        self.users: dict[int, tuple[SectionDraft, Capability, SectionDraft]] = {}

    def of(self, defaults: SectionDraft) -> SectionRules:
        key = id(defaults)
        if key not in self.resolved:
            self.resolved[key] = (defaults, Resolver(defaults, self.diagnostics).rules())
        return self.resolved[key][1]

    def inherited(self, section: SectionDraft) -> SectionRules:
        """The rules `section` inherits from its defaults section (checking the rules)."""
        parent = section.parent
        if parent is None:
            return SectionRules()
        rules = self.of(parent)
        if not rules.any:
            return SectionRules()
        if section.kind == "defaults":
            self.diagnostics.append(
                error(
                    section.where,
                    "a defaults section cannot inherit from a defaults section defining "
                    f"TCP/HTTP rules (defaults section at {parent.where})",
                )
            )
            return SectionRules()
        caps = section.capabilities
        _, first_caps, first_user = self.users.setdefault(id(parent), (parent, caps, section))
        if first_caps != caps:
            self.diagnostics.append(
                error(
                    section.where,
                    "frontends and backends cannot inherit from the same defaults section "
                    f"if it defines TCP/HTTP rules (defaults section at {parent.where}, "
                    f"also used by {_label(first_user)})",
                )
            )
        return rules


def http_check(settings: Settings, owner: str, diagnostics: list[Diagnostic]) -> HttpCheck | None:
    """`option httpchk` with `http-check send` and `http-check expect` laid over it."""
    check = settings.httpchk
    if check is None:
        if settings.check_rules_where is not None:
            diagnostics.append(
                warning(
                    settings.check_rules_where,
                    f"{owner} uses http-check rules without 'option httpchk', so the rules "
                    "are ignored",
                    "http-check",
                )
            )
        return None
    send = settings.check_send
    if send is not None:
        check = replace(
            check,
            method=send.method or check.method,
            uri=send.uri or check.uri,
            version=send.version or check.version,
            headers=check.headers + send.headers,
            body=send.body if send.body is not None else check.body,
        )
    return replace(
        check, expect=settings.check_expect, disable_on_404=bool(settings.disable_on_404)
    )


def tcp_mode_warnings(
    owner: str,
    rules: SectionRules,
    settings: Settings,
    is_backend: bool,
    diagnostics: list[Diagnostic],
) -> None:
    """What a `mode tcp` proxy ignores of the HTTP settings, with HAProxy's warnings."""
    for keyword, found in (
        ("http-request", rules.http_request),
        ("http-response", rules.http_response),
        ("http-after-response", rules.http_after_response),
    ):
        if found:
            diagnostics.append(
                warning(
                    found[0].where,
                    f"'{keyword}' rules ignored for {owner} as they require HTTP mode",
                    keyword,
                )
            )
    if is_backend and settings.cookie is not None:
        diagnostics.append(
            warning(
                settings.cookie.where,
                f"cookie will be ignored for {owner} (needs 'mode http')",
                "cookie",
            )
        )
    if is_backend and settings.algorithm in _L7_HASHES and settings.balance_where:
        diagnostics.append(
            warning(
                settings.balance_where,
                f"Layer 7 hash not possible for {owner} (needs 'mode http'). "
                "Falling back to round robin",
                "balance",
            )
        )


def link_errorfiles(
    ops: list[ErrorFile | ErrorFilesRef],
    sections: dict[str, dict[int, ErrorFile]],
    proxy: str,
    diagnostics: list[Diagnostic],
) -> tuple[ErrorFile, ...]:
    """A proxy's error files: its `errorfile` and `errorfiles` lines (its defaults' first)
    in order, the last one for a status winning, as HAProxy's proxy_check_errors does."""
    chosen: dict[int, ErrorFile] = {}
    for op in ops:
        if isinstance(op, ErrorFile):
            chosen[op.status] = op
            continue
        files = sections.get(op.section)
        if files is None:
            message = f"{proxy}: unknown http-errors section '{op.section}'"
            diagnostics.append(error(op.where, message, "errorfiles"))
            continue
        for code in op.codes or sorted(files):
            if code in files:
                chosen[code] = files[code]
            else:
                message = (
                    f"{proxy}: status '{code}' not declared in http-errors section '{op.section}'"
                )
                diagnostics.append(warning(op.where, message, "errorfiles"))
    return tuple(chosen[code] for code in sorted(chosen))
