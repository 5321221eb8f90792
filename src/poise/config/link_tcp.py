"""The link pass for layer-4 rules: resolves the ACL names of `tcp-request` and
`tcp-response` conditions (link_http.Resolver's rules: declared before use, in the same
section, or predefined) and puts the rules of a named `defaults` section before the
proxy's own, as HAProxy evaluates them. A sample that cannot be known where its rule runs
(`req.ssl_sni` in a `tcp-request connection` rule) makes its ACL never match, with HAProxy's
warning (its text, 2.6.12).
"""

from __future__ import annotations

from dataclasses import replace

from poise.config.diagnostics import Diagnostic, error
from poise.config.haproxy_draft import SectionDraft
from poise.config.haproxy_tcp import KEYWORDS, SCOPES
from poise.config.link_http import Resolver, scope_warnings
from poise.config.model import Condition, Mode, TcpRule, TcpRules


class TcpLinker:
    """Resolves the layer-4 rules of each section; a `defaults` section's once."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        # Keyed by id(): each entry holds its section, which keeps that id from being reused.
        self.defaults: dict[int, tuple[SectionDraft, tuple[TcpRule, ...]]] = {}

    def rules(self, section: SectionDraft, resolver: Resolver, side: str, mode: Mode) -> TcpRules:
        inherited: tuple[TcpRule, ...] = ()
        parent = section.parent
        if parent is not None and parent.tcp_rules:
            key = id(parent)
            if key not in self.defaults:
                own = Resolver(parent, self.diagnostics)
                self.defaults[key] = (parent, self.resolve(parent, own, "defaults"))
            inherited = self.defaults[key][1]
        rules = inherited + self.resolve(section, resolver, side)
        if mode is Mode.HTTP:
            for rule in rules:
                if rule.hook == "response":
                    self.diagnostics.append(
                        error(
                            rule.where,
                            f"{section.kind} '{section.name}': 'tcp-response content' rules "
                            "in mode http are not implemented yet in poise",
                            KEYWORDS[rule.hook],
                        )
                    )
        return TcpRules(
            connection=tuple(r for r in rules if r.hook == "connection"),
            session=tuple(r for r in rules if r.hook == "session"),
            content=tuple(r for r in rules if r.hook == "content"),
            response=tuple(r for r in rules if r.hook == "response"),
        )

    def resolve(self, section: SectionDraft, resolver: Resolver, side: str) -> tuple[TcpRule, ...]:
        found = []
        for rule in section.tcp_rules:
            condition = rule.condition
            if condition is not None:
                condition = self.condition(rule, condition, resolver, side)
            variable = rule.variable
            if variable is not None:
                variable = replace(variable, condition=condition)
            found.append(replace(rule, condition=condition, variable=variable))
        return tuple(found)

    def condition(self, rule: TcpRule, cond: Condition, resolver: Resolver, side: str) -> Condition:
        keyword = KEYWORDS[rule.hook]
        suites = tuple(
            tuple(resolver.term(term, cond, keyword) for term in suite) for suite in cond.suites
        )
        resolved = replace(cond, suites=suites)
        scope = SCOPES[rule.hook]
        context = f"{side} {keyword} rule"
        self.diagnostics.extend(scope_warnings(resolved, keyword, scope, context, say_where=True))
        return resolved
