"""Protocol health checks, the deciding part: the steps a check runs (connect, send,
expect), and the verdict on what the server sent, with HAProxy 2.6's texts (src/tcpcheck.c
and chk_report_conn_err() in src/check.c, checked against haproxy 2.6.12 on the same
configurations and servers, see tests/io/test_tcp_checks.py).

A check is a Program: its steps in order, numbered as HAProxy numbers them in its
messages (each `tcp-check` line is a step, comments included, from 1; the connection
HAProxy adds when the rules do not start with one is step 0). The shell
(checks/tcpcheck.py) runs the steps and asks `expect()` after every read; the received
bytes stay until the next `send`, so two expects in a row look at the same answer.

An expect rule waits while a match may still come (HAProxy's rules, tcpcheck_eval_expect):
a string or binary pattern waits for at least its length, `min-recv N` for N bytes; a
mismatch waits for more unless `min-recv` is set or the server closed. Its verdict:
- match (or no match with `!`): the next step; after the last step, "Layer7 check
  passed" (or its `ok-status`) with the `on-success` text, "(tcp-check)" for
  `option tcp-check`;
- otherwise its `error-status` ("Layer7 invalid response" by default) with the `on-error`
  text, or for `option tcp-check` "TCPCHK did not match content 'X' at step N" (or
  "matched unwanted content"), then " comment: C";
- nothing at all before the close: "TCPCHK got an empty response at step N".
Failures of the connection are the system's error text followed, for `option
tcp-check`, by where it happened (" at step 2 of tcp-check (expect string '+PONG')").
HAProxy shows "code: 0" on layer-7 results of these checks (no HTTP code to show).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from poise.core import health

# HAProxy's statuses by short name (check_statuses[] in src/check.c).
DESCRIPTIONS = {short: long for long, short in health.STATUS_NAMES.items()}
# Statuses at or above HCHK_STATUS_L57DATA carry a code in the logs.
_CODED = frozenset({"L7OK", "L7STS"})

# What a check reads at most: tune.bufsize (16384 by default), as for HTTP checks.
CHECK_BUFFER_BYTES = 16384

Next = Literal["next"]
NEXT: Next = "next"
Info = Callable[[bytes], str | None]


@dataclass(frozen=True, slots=True)
class Connect:
    step: int
    port: int | None = None
    addr: str | None = None
    linger: bool = False
    default: bool = True  # the server's check settings (check-ssl, its check port)
    implicit: bool = False
    comment: str | None = None
    send_proxy: bool = False  # `tcp-check connect send-proxy`


@dataclass(frozen=True, slots=True)
class Send:
    step: int
    data: Callable[[float], bytes]  # of the time (Unix seconds): ssl-hello-chk's hello
    comment: str | None = None


Custom = Callable[["Expect", bytes, bool, bool, int], "health.CheckResult | Next | None"]


@dataclass(frozen=True, slots=True)
class Expect:
    step: int
    kind: Literal["string", "rstring", "binary", "rbinary", "custom"]
    text: bytes = b""  # string, binary
    regex: re.Pattern[bytes] | None = None  # rstring, rbinary
    negate: bool = False
    min_recv: int = -1
    ok: str = "L7OK"
    error: str = "L7RSP"
    timeout: str = "L7TOUT"
    on_success: Info | None = None
    on_error: Info | None = None
    comment: str | None = None
    custom: Custom | None = None
    code: Callable[[bytes], int] | None = None  # the code to report (smtpchk's status)

    def matches(self, data: bytes) -> bool:
        if self.kind in ("string", "binary"):
            return self.text in data
        assert self.regex is not None
        subject = data.hex().upper().encode() if self.kind == "rbinary" else data
        return self.regex.search(subject) is not None

    @property
    def pattern_text(self) -> str:
        """How the failure message names the pattern (after "did not match content")."""
        return {
            "string": f" '{self.text.decode('utf-8', 'replace')}'",
            "binary": " (binary)",
            "rstring": " (regex)",
            "rbinary": " (binary regex)",
        }.get(self.kind, " (custom function)")

    @property
    def waiting_for(self) -> str:
        """What the step was doing, in a connection error's message."""
        return {
            "string": f" (expect string '{self.text.decode('utf-8', 'replace')}')",
            "binary": f" (expect binary '{self.text.hex().upper()}')",
            "rstring": " (expect regex)",
            "rbinary": " (expect binary regex)",
        }.get(self.kind, " (expect custom function)")


Step = Connect | Send | Expect


def result(
    status: str, info: str | None, duration_ms: int, code: int | None = None
) -> health.CheckResult:
    """A check result from HAProxy's short status name."""
    passed = status in ("L4OK", "L6OK", "L7OK", "L7OKC")
    if code is None and status in _CODED:
        code = 0
    return health.CheckResult(passed, DESCRIPTIONS[status], info or None, duration_ms, code)


@dataclass(frozen=True, slots=True)
class Program:
    """One backend's check. `plain` is `option tcp-check` (whose messages say where they
    failed); the protocol checks (redis-check, ...) have their own texts."""

    steps: tuple[Step, ...]
    plain: bool = True

    # -- expect ----------------------------------------------------------------------------

    def expect(
        self, rule: Expect, data: bytes, closed: bool, duration_ms: int
    ) -> health.CheckResult | Next | None:
        """The verdict of an expect step on `data`, NEXT to go on, or None to read more.
        `closed`: nothing more will come (the server closed, or the buffer is full)."""
        if not data and closed:
            empty = f"TCPCHK got an empty response at step {rule.step}"
            if rule.comment:
                empty += f" comment: '{rule.comment}'"
            return result(rule.error, empty, duration_ms)
        if rule.custom is not None:
            return rule.custom(rule, data, closed, self.is_last(rule), duration_ms)
        if not closed:
            if rule.kind in ("string", "binary") and len(data) < len(rule.text):
                return None
            if rule.min_recv > 0 and len(data) < rule.min_recv:
                return None
        match = rule.matches(data)
        if not match and not closed and rule.min_recv == -1:
            return None
        if match != rule.negate:
            return NEXT
        info: str | None = None
        if rule.on_error is not None:
            info = rule.on_error(data)
        elif self.plain:
            what = "matched unwanted content" if match else "did not match content"
            info = f"TCPCHK {what}{rule.pattern_text} at step {rule.step}"
        if rule.comment:
            info = f"{info or ''} comment: {rule.comment}"
        code = rule.code(data) if rule.code is not None else None
        return result(rule.error, info, duration_ms, code)

    def is_last(self, rule: Step) -> bool:
        return self.steps[-1] is rule

    def finish(
        self, last: Step | None, data: bytes, tls: bool, duration_ms: int
    ) -> health.CheckResult:
        """All the steps passed: the result is named after the last one."""
        tag = "(tcp-check)" if self.plain else None
        if isinstance(last, Expect):
            info = last.on_success(data) if last.on_success is not None else tag
            code = last.code(data) if last.code is not None else None
            return result(last.ok, info, duration_ms, code)
        if isinstance(last, Connect):
            return result(
                "L6OK" if tls else "L4OK", None if last.implicit else "(tcp-check)", duration_ms
            )
        return result("L7OK", "(tcp-check)", duration_ms)

    # -- failures of the connection --------------------------------------------------------

    def where(self, step: Step) -> str:
        """chk_report_conn_err(): where `option tcp-check` was when the connection failed."""
        if not self.plain:
            return ""
        if isinstance(step, Connect) and step.implicit:
            return " at initial connection step of tcp-check"
        text = f" at step {step.step} of tcp-check"
        if isinstance(step, Connect):
            text += f" (connect port {step.port})" if step.port else " (connect)"
        elif isinstance(step, Expect):
            text += step.waiting_for
        else:
            text += " (send)"
        if step.comment:
            text += f" comment: '{step.comment}'"
        return text

    def connect_failed(self, step: Connect, error: str, duration_ms: int) -> health.CheckResult:
        return result("L4CON", error + self.where(step), duration_ms)

    def connect_timeout(self, step: Connect, duration_ms: int) -> health.CheckResult:
        return result("L4TOUT", self.where(step), duration_ms)

    def io_failed(self, step: Step, error: str, duration_ms: int) -> health.CheckResult:
        """The connection broke (a reset) before the step had anything to judge."""
        return health.CheckResult(False, "Socket error", error + self.where(step), duration_ms)

    def timed_out(self, step: Step, duration_ms: int) -> health.CheckResult:
        status = step.timeout if isinstance(step, Expect) else "L7TOUT"
        return result(status, self.where(step), duration_ms)


def first_line(data: bytes, offset: int = 0, ltrim: bool = False) -> str | None:
    """`res.payload(offset,0)` read as HAProxy's texts read it: a C string (up to a NUL),
    left-trimmed of spaces with `ltrim(' ')`, cut at the first CR or LF (cut_crlf)."""
    text = data[offset:].split(b"\0", 1)[0]
    if ltrim:
        text = text.lstrip(b" ")
    text = re.split(rb"[\r\n]", text, maxsplit=1)[0]
    return text.decode("utf-8", "replace") or None
