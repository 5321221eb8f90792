"""The health-check state machine of one server, and HAProxy's log lines about it.

One counter carries rise and fall, as in HAProxy's src/check.c (set_server_check_status):
`health` runs from 0 to rise + fall - 1 and the server is UP while health >= rise.
- A failed check takes one off; on dropping below `rise` the server goes DOWN and the
  counter falls to 0, so that `rise` consecutive passes are then needed to bring it back.
- A passed check adds one; at `rise` or above (UP) the counter jumps to its top, so that
  `fall` consecutive failures are then needed to take the server down.
A server starts as `init-state up` says by default: UP with health = rise, "up, but its
first failed check takes it down" (the other init-states are supported too).

The delay before the next check follows srv_getinter() in src/server.c: `inter` when the
counter is at its top (fully up), `downinter` when the server is down with the counter at 0
(fully down), `fastinter` in between (a transition either way, including the start);
an unset (None or 0) fastinter or downinter means `inter`.

The log texts are HAProxy's, built as in check_append_info() and set_server_check_status()
(src/check.c), srv_append_more() and _srv_update_status_op() (src/server.c), and
set_backend_down() (src/backend.c), with the syslog level each is sent at. They are data
for the shell: nothing here writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum

from poise.config import model
from poise.core.server import ServerState

# HAProxy keeps at most HCHK_DESC_LEN - 1 = 127 bytes of a check's description (defaults.h).
INFO_MAX_BYTES = 127


class Severity(IntEnum):
    """Syslog severities (RFC 5424, section 6.2.1), named as HAProxy's log levels."""

    EMERG = 0
    ALERT = 1
    CRIT = 2
    ERR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7

    @property
    def keyword(self) -> str:
        """The level as haproxy.cfg writes it ("notice"), for the log sink."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class LogMessage:
    """A log line to send, without its syslog header; `terminal` is the text for the
    terminal where HAProxy words it differently there (None: the same text)."""

    level: Severity
    text: str
    terminal: str | None = None

    @property
    def console(self) -> str:
        return self.text if self.terminal is None else self.terminal


class Transition(Enum):
    UP = "UP"
    DOWN = "DOWN"


class InitState(Enum):
    """A server's `init-state` (a recent HAProxy keyword; `up` is the historical behaviour)."""

    UP = "up"  # up; the first failed check takes it down
    FULLY_UP = "fully-up"  # up; `fall` failed checks take it down
    DOWN = "down"  # down; the first passed check brings it up
    FULLY_DOWN = "fully-down"  # down; `rise` passed checks bring it up


# HAProxy's check statuses (check_statuses[] in src/check.c): description -> short name,
# the name shown in the stats' check_status column.
STATUS_NAMES = {
    "Unknown": "UNK",
    "Initializing": "INI",
    "Socket error": "SOCKERR",
    "Layer4 check passed": "L4OK",
    "Layer4 timeout": "L4TOUT",
    "Layer4 connection problem": "L4CON",
    "Layer6 check passed": "L6OK",
    "Layer6 timeout": "L6TOUT",
    "Layer6 invalid response": "L6RSP",
    "Layer7 timeout": "L7TOUT",
    "Layer7 invalid response": "L7RSP",
    "Layer7 check passed": "L7OK",
    "Layer7 check conditionally passed": "L7OKC",
    "Layer7 wrong status": "L7STS",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check, as HAProxy reports it: `reason` is the status description
    ("Layer4 connection problem"), `info` the detail ("Connection refused"), `code` the
    HTTP status of a layer-7 check."""

    passed: bool
    reason: str
    info: str | None = None
    duration_ms: int = 0  # negative: unknown, not reported
    code: int | None = None
    # Passed, but the server asks for no new clients (`http-check disable-on-404`: NOLB).
    conditional: bool = False

    @property
    def status(self) -> str:
        """The short status name (L4OK, L4CON, ...)."""
        return STATUS_NAMES.get(self.reason, "UNK")


INITIALIZING = CheckResult(False, "Initializing", None, -1)


def disable_on_404(result: CheckResult, running: bool) -> CheckResult:
    """`http-check disable-on-404`: a 404 to a running server's check (UP or NOLB) passes
    conditionally (L7OKC, whatever `http-check expect` says); a DOWN server's 404 stays a
    failure, so that it stays DOWN (HAProxy's tcpcheck_eval_expect_http)."""
    if result.code != 404 or not running:
        return result
    return CheckResult(True, CONDITIONAL, None, result.duration_ms, 404, conditional=True)


CONDITIONAL = "Layer7 check conditionally passed"


def l4_passed(duration_ms: int) -> CheckResult:
    """The connection was accepted (L4OK)."""
    return CheckResult(True, "Layer4 check passed", None, duration_ms)


def l4_failed(info: str | None, duration_ms: int) -> CheckResult:
    """The connection failed (L4CON); `info` is the system's error text (strerror), such
    as "Connection refused" or "No route to host"."""
    return CheckResult(False, "Layer4 connection problem", info, duration_ms)


def l4_timeout(duration_ms: int, info: str | None = None) -> CheckResult:
    """No answer to the connection within `timeout check` (L4TOUT)."""
    return CheckResult(False, "Layer4 timeout", info, duration_ms)


def socket_error(info: str | None, duration_ms: int) -> CheckResult:
    """The check could not even start (SOCKERR)."""
    return CheckResult(False, "Socket error", info, duration_ms)


class Health:
    """The rise/fall counter of one server's health check."""

    __slots__ = ("failed_checks", "fall", "health", "init_state", "last", "report", "rise")

    def __init__(self, rise: int = 2, fall: int = 3, init_state: InitState = InitState.UP):
        if rise < 1 or fall < 1:
            raise ValueError(f"rise ({rise}) and fall ({fall}) must be at least 1")
        self.rise = rise
        self.fall = fall
        self.init_state = init_state
        self.health = 0
        self.failed_checks = 0  # failed checks counted (HAProxy's chkfail)
        self.last = INITIALIZING  # the previous result
        # Did the last record() change the status or the counter? HAProxy then logs
        # health_check_message() when `option log-health-checks` is set.
        self.report = False
        self.reset()

    @classmethod
    def for_server(cls, server: model.Server) -> Health:
        return cls(server.rise, server.fall)

    @property
    def top(self) -> int:
        return self.rise + self.fall - 1

    @property
    def is_up(self) -> bool:
        return self.health >= self.rise

    def reset(self) -> None:
        """Back to the initial state (HAProxy does so when a server leaves maintenance)."""
        self.health = {
            InitState.UP: self.rise,
            InitState.FULLY_UP: self.top,
            InitState.DOWN: self.rise - 1,
            InitState.FULLY_DOWN: 0,
        }[self.init_state]

    def record(self, result: CheckResult) -> Transition | None:
        """Count one check; return the server's change of state, if any."""
        was_up = self.is_up
        before = self.health
        if result.passed:
            if self.health < self.top:
                self.health += 1
                if self.health >= self.rise:
                    self.health = self.top
        elif self.health > 0:
            self.failed_checks += 1
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
        self.report = self.health != before or result.reason != self.last.reason
        self.last = result
        if self.is_up != was_up:
            return Transition.UP if self.is_up else Transition.DOWN
        return None

    def next_delay(
        self, inter: int, fastinter: int | None = None, downinter: int | None = None
    ) -> int:
        """Milliseconds until the next check (srv_getinter() in src/server.c)."""
        if self.health == self.top:
            return inter
        if self.health == 0 and not self.is_up:
            return downinter or inter
        return fastinter or inter

    def status(self, drain: bool = False) -> str:
        """HAProxy's counter as its logs show it: "N/fall UP" while up, N = health - rise + 1
        being the consecutive failures that would take it down, or "health/rise DOWN"
        while down (the consecutive passes it has). Weight 0 shows DRAIN instead of UP."""
        if self.is_up:
            return f"{self.health - self.rise + 1}/{self.fall} {'DRAIN' if drain else 'UP'}"
        return f"{self.health}/{self.rise} DOWN"


# -- log lines -----------------------------------------------------------------------------


def _ascii_encode(info: str) -> str:
    """chunk_asciiencode() with '"' as the quote: bytes outside printable ASCII and the
    characters < > " become <XX> (hex), as HAProxy writes them."""
    out = []
    for byte in info.encode("utf-8", "replace")[:INFO_MAX_BYTES]:
        if 0x20 <= byte < 0x7F and byte not in b'<>"':
            out.append(chr(byte))
        else:
            out.append(f"<{byte:02X}>")
    return "".join(out)


def check_info(result: CheckResult) -> str:
    """check_append_info(): ", reason: R[, code: C][, info: "I"][, check duration: Dms]"."""
    text = f", reason: {result.reason}"
    if result.code is not None:
        text += f", code: {result.code}"
    if result.info:
        text += f', info: "{_ascii_encode(result.info)}"'
    if result.duration_ms >= 0:
        text += f", check duration: {result.duration_ms}ms"
    return text


def health_check_message(
    backend: str,
    server: str,
    result: CheckResult,
    health: Health,
    *,
    backup: bool = False,
    drain: bool = False,
) -> LogMessage:
    """The report of one check that changed something (`option log-health-checks`):
    "Health check for server B/S failed, reason: ..., status: N/M DOWN." (NOTICE)."""
    outcome = "succeeded" if result.passed else "failed"
    if result.conditional:
        outcome = "conditionally succeeded"
    text = (
        f"Health check for {'backup ' if backup else ''}server {backend}/{server} {outcome}"
        f"{check_info(result)}, status: {health.status(drain)}."
    )
    return LogMessage(Severity.NOTICE, text)


def _more(active: int, backups: int, *, up: bool, sessions: int, requeued: int, queued: int) -> str:
    """srv_append_more(): what is left of the backend after the change."""
    running_on_backup = " Running on backup." if backups and not active else ""
    if up:
        return (
            f". {active} active and {backups} backup servers online.{running_on_backup}"
            f" {requeued} sessions requeued, {queued} total in queue"
        )
    return (
        f". {active} active and {backups} backup servers left.{running_on_backup}"
        f" {sessions} sessions active, {requeued} requeued, {queued} remaining in queue"
    )


def server_down_message(
    backend: str,
    server: str,
    *,
    active: int,
    backups: int,
    backup: bool = False,
    result: CheckResult | None = None,
    cause: str | None = None,
    sessions: int = 0,
    requeued: int = 0,
    queued: int = 0,
    was_draining: bool = False,
) -> LogMessage:
    """ "Server B/S is DOWN, reason: ... N active and M backup servers left. ..." (ALERT,
    NOTICE when the server was draining or stopping).

    `active`/`backups`: usable servers left after the change (see count_usable);
    `result`: the check that took it down, given unless `option log-health-checks` already
    reported it; `cause`: another origin ("changed from CLI"); `sessions`: the server's
    sessions; `requeued`: queued connections moved to other servers; `queued`: those left
    in its own queue.
    """
    text = f"{'Backup ' if backup else ''}Server {backend}/{server} is DOWN"
    text += _cause(result, cause)
    text += (
        _more(active, backups, up=False, sessions=sessions, requeued=requeued, queued=queued) + "."
    )
    return LogMessage(Severity.NOTICE if was_draining else Severity.ALERT, text)


def server_up_message(
    backend: str,
    server: str,
    *,
    active: int,
    backups: int,
    backup: bool = False,
    result: CheckResult | None = None,
    cause: str | None = None,
    requeued: int = 0,
    queued: int = 0,
) -> LogMessage:
    """ "Server B/S is UP, reason: ... N active and M backup servers online. ..." (NOTICE).
    `requeued`: connections it took from the backend queue; `queued`: its own queue."""
    text = f"{'Backup ' if backup else ''}Server {backend}/{server} is UP"
    text += _cause(result, cause)
    text += _more(active, backups, up=True, sessions=0, requeued=requeued, queued=queued) + "."
    return LogMessage(Severity.NOTICE, text)


def server_stopping_message(
    backend: str,
    server: str,
    *,
    active: int,
    backups: int,
    backup: bool = False,
    result: CheckResult | None = None,
    requeued: int = 0,
    queued: int = 0,
) -> LogMessage:
    """ "Server B/S is stopping, reason: ... N active and M backup servers online. ..."
    (NOTICE): the server went NOLB (`http-check disable-on-404`); `requeued`: its queue
    moved to other servers."""
    text = f"{'Backup ' if backup else ''}Server {backend}/{server} is stopping"
    text += _cause(result, None)
    text += _more(active, backups, up=True, sessions=0, requeued=requeued, queued=queued) + "."
    return LogMessage(Severity.NOTICE, text)


def _cause(result: CheckResult | None, cause: str | None) -> str:
    """srv_append_op_chg_cause(): the check's details, or another cause's name."""
    if result is not None:
        return check_info(result)
    return f", {cause}" if cause else ""


def backend_down_message(backend: str, kind: str = "backend") -> LogMessage:
    """ "backend B has no server available!" (EMERG), when the last server goes. `kind` is
    HAProxy's proxy_type_str(): "backend", or "proxy" for a `listen` section. HAProxy
    quotes the name on the terminal (ha_alert) but not in the log (send_log)."""
    return LogMessage(
        Severity.EMERG,
        f"{kind} {backend} has no server available!",
        f"{kind} '{backend}' has no server available!",
    )


def count_usable(servers: Iterable[ServerState]) -> tuple[int, int]:
    """(active, backup) usable servers: HAProxy's srv_act and srv_bck in the messages."""
    active = backups = 0
    for server in servers:
        if server.usable:
            if server.backup:
                backups += 1
            else:
                active += 1
    return active, backups
