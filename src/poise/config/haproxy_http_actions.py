"""The arguments of the `http-request` / `http-response` actions that change how a
transaction is handled rather than the message (configuration.txt 4.2, HAProxy 2.6):

- `set-timeout server|tunnel TIMEOUT|EXPR` (http-request, in a section with a backend:
  HAProxy 2.6 has no `client` here): the server or tunnel timeout of this transaction,
  a duration, or a sample giving milliseconds;
- `set-log-level LEVEL|silent`: the syslog level of this transaction's log line, or none;
- `set-map(FILE) KEY VALUE`, `del-map(FILE) KEY`, `add-acl(FILE) KEY`, `del-acl(FILE)
  KEY`: the entries of a map or ACL file at run time;
- `normalize-uri NAME [full|strict]` (experimental in HAProxy 2.6: the configuration
  must say `expose-experimental-directives` in `global` first);
- `wait-for-body time T [at-least N]`: the following rules see the body;
- `capture EXPR len N|id N` and `declare capture request|response len N`: values for the
  log's `{...}` blocks and the `capture.req.hdr(N)`/`capture.res.hdr(N)` fetches, in the
  slots of the frontend's `capture ... header` lines, numbered in the order of the lines.

HAProxy's own messages for bad arguments. core/http/rules.py runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from poise.config.haproxy_draft import Problem, SectionDraft
from poise.config.keywords import LOG_LEVELS
from poise.config.model import Capture, HttpRule, Proxy, Where
from poise.config.samples import Scope, check_scope, parse_log_format, parse_sample
from poise.config.units import parse_time

TIMEOUT_TARGETS = ("server", "tunnel")
PATTERN_ACTIONS = frozenset({"set-map", "del-map", "add-acl", "del-acl"})
# `normalize-uri NAME [OPTION]` (core/http/normalize_uri.py), and the option each takes.
NORMALIZERS = frozenset(
    {
        "fragment-encode",
        "fragment-strip",
        "path-merge-slashes",
        "path-strip-dot",
        "path-strip-dotdot",
        "percent-decode-unreserved",
        "percent-to-uppercase",
        "query-sort-by-name",
    }
)
NORMALIZER_OPTIONS = {
    "path-strip-dotdot": "full",
    "percent-decode-unreserved": "strict",
    "percent-to-uppercase": "strict",
}
EXPERIMENTAL = (
    "'normalize-uri' action is experimental, must be allowed via a global "
    "'expose-experimental-directives'"
)


def timing_rule(rule: HttpRule, args: list[str], scope: Scope, section: SectionDraft) -> HttpRule:
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
    if section.kind == "frontend":
        raise Problem(f"proxy '{section.name}' has no backend capability.")
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


# --- captures -------------------------------------------------------------------------------


def declare_capture(section: SectionDraft, args: Sequence[str], where: Where) -> None:
    """`declare capture request|response len N`: a slot that `http-request|http-response
    capture ... id N` fill, numbered with the `capture ... header` slots in the order of
    the lines (HAProxy's messages)."""
    if not args or args[0] not in ("request", "response"):
        raise Problem("requires a direction ('request' or 'response')")
    if args[1:2] != ["len"]:
        raise Problem("requires a capture length ('len')")
    if len(args) < 3:
        raise Problem("'len' requires a numeric value that represents the capture length")
    length = _length(args[2])
    slots = section.capture_request_headers
    if args[0] == "response":
        slots = section.capture_response_headers
    slots.append(Capture("", length, where))


def capture_rule(
    rule: HttpRule, args: list[str], scope: Scope, section: SectionDraft, where: Where
) -> HttpRule:
    """`http-request capture EXPR len N` (a new request slot of this frontend) or `... id
    N`, `http-response capture EXPR id N` (an existing slot: one that no frontend has is
    refused once the sections are read, config/link.py calls `check_capture_ids`)."""
    if len(args) < 3 or args[1] not in ("len", "id") or (scope == "res" and args[1] != "id"):
        if scope == "res" and args[1:2] == ["len"]:
            raise Problem("expects 'id', found 'len'.")
        raise Problem("expects <expression> [ 'len' <length> | id <idx> ].")
    sample = parse_sample(args[0], scope)
    if needs := check_scope(sample, scope):
        raise Problem(f"fetch method '{args[0]}' extracts information from '{needs}'.")
    number = _length(args[2])
    if args[1] == "id":
        return replace(rule, sample=sample, status=number, name="id")
    if section.kind not in ("frontend", "listen"):
        raise Problem(f"proxy '{section.name}' has no frontend capability.")
    section.capture_request_headers.append(Capture("", number, where))
    return replace(rule, sample=sample, status=len(section.capture_request_headers) - 1)


def check_capture_ids(proxy: Proxy) -> str | None:
    """A frontend's `capture ... id N` naming a slot it does not have: HAProxy's error."""
    if not proxy.is_frontend:
        return None
    for rules, slots, keyword in (
        (proxy.http_request_rules, proxy.capture_request_headers, "http-request"),
        (proxy.http_response_rules, proxy.capture_response_headers, "http-response"),
    ):
        for rule in rules:
            if rule.action == "capture" and rule.name == "id" and rule.status >= len(slots):
                return (
                    f"Proxy '{proxy.name}': unable to find capture id '{rule.status}' "
                    f"referenced by {keyword} capture rule."
                )
    return None


def _length(text: str) -> int:
    if not text.isdigit():
        raise Problem(f"cannot parse the length '{text}'.")
    return int(text)


# --- maps and ACL files -----------------------------------------------------------------


def pattern_rule(rule: HttpRule, args: list[str], scope: Scope, path: str) -> HttpRule:
    """`set-map(FILE) KEY VALUE`, `del-map(FILE) KEY`, `add-acl(FILE) KEY`, `del-acl(FILE)
    KEY` (log-format KEY and VALUE): the entries of the map or ACL file FILE as the
    runtime API changes them (core/http/txn_rules.py)."""
    key = parse_log_format(args[0], scope)
    value = parse_log_format(args[1], scope) if rule.action == "set-map" else None
    return replace(rule, name=path, value=key, map_value=value)


def normalize_rule(rule: HttpRule, args: list[str]) -> HttpRule:
    """`normalize-uri NAME [full|strict]`: NAME in `name`, the option as `status` 1."""
    if not args:
        raise Problem("expects a normalizer name.")
    if args[0] not in NORMALIZERS:
        raise Problem(f"unknown normalizer '{args[0]}'.")
    return replace(rule, name=args[0], status=int(len(args) > 1))


def wait_rule(rule: HttpRule, args: list[str]) -> HttpRule:
    """`wait-for-body time T [at-least N]`: the rules wait for the body, T at most (then
    408), N bytes being enough (core/http/body_wait.py); T in `status`, N in `name`."""
    found = dict(zip(args[::2], args[1::2], strict=False))
    for word in found:
        if word not in ("time", "at-least"):
            raise Problem(f"'wait-for-body' : unexpected argument '{word}'")
    if "time" not in found:
        raise Problem("'wait-for-body' expects a 'time' argument")
    try:
        wait = parse_time(found["time"])
    except ValueError as exc:
        raise Problem(f"'wait-for-body' : {exc}") from None
    at_least = found.get("at-least", "0")
    if not at_least.isdigit():
        raise Problem(f"'wait-for-body' : invalid value '{at_least}' for 'at-least'")
    return replace(rule, status=wait, name=at_least)
