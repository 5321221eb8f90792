"""Layer-4 rules, compiled and evaluated (configuration.txt 4.2 `tcp-request` and
`tcp-response`): HAProxy's three-valued conditions and its content inspection.

A content rule's condition is PASS, FAIL or MISS: MISS when a fetch found the bytes too
short to tell and they may still change (core/payload.py sets `held.missing`). An ACL that
fails while its sample may change is MISS; a suite (terms ANDed) is FAIL if any term fails,
else MISS if any misses; the condition (suites ORed) is PASS if any suite passes, else MISS
if any misses (HAProxy's acl_exec_cond). A content rule whose condition misses makes the
rules wait for more bytes, until inspect-delay ends; then they run once more with the
bytes as final, where nothing misses. Rules with no condition, or whose condition
passes, act: `accept`, `reject` and `close` end the rules, set-var/unset-var, capture and
set-log-level act and the next rule is evaluated. No rule deciding means accept.

The connection and session rules run once, on what the connection alone tells. Pure: the
session (net/tcp.py, net/http.py) holds the bytes and the timer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from poise.config.model import Condition, Mode, Proxy, TcpRule
from poise.config.samples import Scope
from poise.core import sticktrack
from poise.core.acl import compile_acl
from poise.core.http.message import Request
from poise.core.http.rules import _variable_step
from poise.core.http.txn_rules import capture_step, timing_step

# A condition's value: True (PASS), False (FAIL), None (MISS).
Tri = bool | None
Condition3 = Callable[[Request], Tri]


class Decision(enum.Enum):
    ACCEPT = "accept"  # an `accept` rule matched, or no rule decided
    REJECT = "reject"
    CLOSE = "close"  # tcp-response content close
    WAIT = "wait"  # a condition needs more bytes: evaluate again when they come


def condition3(cond: Condition, scope: Scope) -> Condition3:
    """`if|unless COND` in three values."""
    suites = [
        [(compile_acl(term.acl, scope), term.negate) for term in suite] for suite in cond.suites
    ]
    unless = cond.unless

    def holds(req: Request) -> Tri:
        conn = req.conn
        held = conn.held if conn is not None else None
        result: Tri = False
        for suite in suites:
            passes: Tri = True
            for acl, negate in suite:
                if held is not None:
                    held.missing = False
                value: Tri = acl(req, None)
                if not value and held is not None and held.missing:
                    value = None
                elif negate:
                    value = not value
                if value is False:
                    passes = False
                    break
                if value is None:
                    passes = None
            if passes:
                result = True
                break
            if passes is None:
                result = None
        if result is None or not unless:
            return result
        return not result

    return holds


Step = Callable[[Request], None]
Compiled = tuple[Condition3 | None, Decision | None, Step | None]


def _compile(rule: TcpRule, scope: Scope, per_request: bool = False) -> Compiled:
    test = condition3(rule.condition, scope) if rule.condition is not None else None
    if rule.variable is not None and rule.variable.stick is not None:
        # A content rule of an HTTP proxy tracks for its request (HAProxy's stream), the
        # others for the connection.
        track = sticktrack.step(rule.variable.stick, scope, connection=not per_request)

        def stick(req: Request) -> None:
            track(req, None, False)

        return test, None, stick
    if rule.variable is not None:
        step = _variable_step
        if rule.variable.action == "capture":
            step = capture_step
        elif rule.variable.action == "set-log-level":  # read by the log line
            step = timing_step
        run = step(rule.variable, "any" if scope == "conn" else scope)

        def act(req: Request) -> None:
            run(req, None, False)

        return test, None, act
    if rule.action == "expect-proxy":  # acted on at accept (net/accept.py): nothing here
        return test, None, _nothing
    return test, Decision(rule.action), None


def _nothing(req: Request) -> None:
    pass


def expects_proxy(rules: Sequence[Compiled], req: Request) -> bool:
    """`tcp-request connection expect-proxy layer4 [if|unless COND]`: whether a rule whose
    condition holds for this connection (as it reached the socket) asks for a PROXY
    header; the rules before it that would end the connection run after the header, with
    the others (a reject still refuses it then)."""
    return any(step is _nothing and (test is None or test(req)) for test, _, step in rules)


def run_rules(rules: Sequence[Compiled], req: Request, start: int = 0) -> tuple[Decision, int]:
    """Evaluate `rules` from the `start`-th: the decision, and the rule to start from when
    it is WAIT (the rules before it have acted already)."""
    for index in range(start, len(rules)):
        test, decision, step = rules[index]
        if test is not None:
            value = test(req)
            if value is None:
                return Decision.WAIT, index
            if not value:
                continue
        if decision is not None:
            return decision, index
        assert step is not None
        step(req)
    return Decision.ACCEPT, len(rules)


class TcpRuleSets:
    """A proxy's layer-4 rules, compiled once, and its inspect delays in seconds."""

    __slots__ = (
        "connection",
        "content",
        "expect_proxy",
        "inspect",
        "response",
        "response_inspect",
        "session",
    )

    def __init__(self, proxy: Proxy) -> None:
        rules = proxy.tcp_rules
        self.connection = [_compile(rule, "conn") for rule in rules.connection]
        self.expect_proxy = any(rule.action == "expect-proxy" for rule in rules.connection)
        self.session = [_compile(rule, "conn") for rule in rules.session]
        http = proxy.mode is Mode.HTTP
        self.content = [_compile(rule, "req", http) for rule in rules.content]
        self.response = [_compile(rule, "res") for rule in rules.response]
        self.inspect = (proxy.timeouts.inspect or 0) / 1000.0
        self.response_inspect = (proxy.timeouts.response_inspect or 0) / 1000.0


def compile_rules(proxy: Proxy) -> TcpRuleSets | None:
    """None for a proxy without layer-4 rules: its sessions skip them at the cost of one
    test."""
    return TcpRuleSets(proxy) if proxy.tcp_rules.any else None
