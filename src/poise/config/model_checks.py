"""The protocol health checks of a backend as configured: `option tcp-check` with its
`tcp-check` rules, and the checks HAProxy builds from one option line (`option
redis-check`, `mysql-check`, `pgsql-check`, `smtpchk`, `ldap-check`, `ssl-hello-chk`).

These are data only; core/tcpcheck.py turns them into the steps a check runs and judges
(configuration.txt 4.2, "tcp-check connect|send|expect" and each option's description).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poise.config.where import Where

ExpectKind = Literal["string", "rstring", "binary", "rbinary"]
# HAProxy's check statuses a rule may name (ok-status, error-status, tout-status).
# L7OKC ("conditionally passed") is left out: poise has no such server state yet.
OK_STATUSES = ("L7OK", "L6OK", "L4OK")
ERROR_STATUSES = ("L7RSP", "L7STS", "L6RSP", "L4CON")
TIMEOUT_STATUSES = ("L7TOUT", "L6TOUT", "L4TOUT")


@dataclass(frozen=True, slots=True)
class CheckConnect:
    """`tcp-check connect [default] [port N] [addr A] [linger] [comment C]`: None = the
    server's own value (or its check port/addr)."""

    where: Where
    port: int | None = None
    addr: str | None = None
    linger: bool = False
    default: bool = False
    comment: str | None = None
    send_proxy: bool = False  # a PROXY header first, as the server's send-proxy* say


@dataclass(frozen=True, slots=True)
class CheckSend:
    """`tcp-check send STRING`, `send-binary HEX` or `send-lf FMT` (a format without
    any `%` sample, so its bytes are known)."""

    where: Where
    data: bytes
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class CheckExpect:
    """`tcp-check expect [min-recv N] [!] string|rstring|binary|rbinary PATTERN
    [ok-status S] [error-status S] [tout-status S] [on-success T] [on-error T]
    [comment C]`. Statuses are HAProxy's short names (L7OK, L7RSP, ...), None = the
    default; on-success/on-error are literal texts."""

    where: Where
    kind: ExpectKind
    pattern: str
    negate: bool = False
    min_recv: int = -1
    ok_status: str | None = None
    error_status: str | None = None
    tout_status: str | None = None
    on_success: str | None = None
    on_error: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class CheckComment:
    """`tcp-check comment TEXT`: counts as a step, and names the next rule's failures."""

    where: Where
    text: str


TcpCheckRule = CheckConnect | CheckSend | CheckExpect | CheckComment

Protocol = Literal[
    "tcp-check",
    "redis-check",
    "mysql-check",
    "pgsql-check",
    "smtpchk",
    "ldap-check",
    "ssl-hello-chk",
]


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """A backend's protocol check. `rules` are the `tcp-check` lines (tcp-check only);
    `user` is the user of mysql-check/pgsql-check, `variant` mysql-check's `post-41`
    or `pre-41`, `command` smtpchk's greeting ("HELO localhost" by default)."""

    where: Where
    protocol: Protocol
    rules: tuple[TcpCheckRule, ...] = ()
    user: str | None = None
    variant: str = "post-41"
    command: str = "HELO localhost"
