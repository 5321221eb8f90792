"""The arguments of the `http-request` / `http-response` actions that change how a
transaction is handled rather than the message (configuration.txt 4.2, HAProxy 2.6):

- `set-timeout server|tunnel TIMEOUT|EXPR` (http-request, in a section with a backend:
  HAProxy 2.6 has no `client` here): the server or tunnel timeout of this transaction,
  a duration, or a sample giving milliseconds;
- `set-log-level LEVEL|silent`: the syslog level of this transaction's log line, or none.

HAProxy's own messages for bad arguments. core/http/rules.py runs them.
"""

from __future__ import annotations

from dataclasses import replace

from poise.config.haproxy_draft import Problem
from poise.config.keywords import LOG_LEVELS
from poise.config.model import HttpRule
from poise.config.samples import Scope, check_scope, parse_sample
from poise.config.units import parse_time

TIMEOUT_TARGETS = ("server", "tunnel")


def timing_rule(rule: HttpRule, args: list[str], scope: Scope, section_kind: str) -> HttpRule:
    if rule.action == "set-log-level":
        level = args[0] if args else ""
        if level not in LOG_LEVELS and level != "silent":
            raise Problem("expects exactly 1 argument (log level name or 'silent').")
        return replace(rule, name=level)
    if len(args) < 2:
        raise Problem("expects exactly 2 arguments.")
    target, value = args
    if target not in TIMEOUT_TARGETS:
        raise Problem(f"'set-timeout' rule supports 'server'/'tunnel' (got '{target}').")
    if section_kind == "frontend":
        raise Problem("this proxy has no backend capability.")
    if value[:1].isdigit():
        try:
            return replace(rule, name=target, status=parse_time(value))
        except ValueError as exc:
            bad = str(exc).split("'")[1] if "unexpected character" in str(exc) else value
            raise Problem(f"unexpected character '{bad}' in rule 'set-timeout {target}'.") from exc
    sample = parse_sample(value, scope)
    if needs := check_scope(sample, scope):
        raise Problem(f"fetch method '{value}' extracts information from '{needs}'.")
    return replace(rule, name=target, sample=sample)
