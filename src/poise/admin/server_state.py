"""Server states saved by `show servers state` (format version 1, management.txt 9.3),
read back at start-up for the backends with `load-server-state-from-file global|local`,
as HAProxy 2.6 applies them (server_state.c, srv_state_srv_update): the operational
state (DOWN, NOLB, UP) with its health counter, the operator's maintenance and drain,
the weight set at run time (kept only while the configured weight is the one saved),
a health check disabled at run time, and the time of the last change.

Not applied: the saved address and port (poise resolves servers as its `init-addr`
says), and the check's last status (the first check sets it).

Pure: the shell (process/runtime.py) reads the file and hands over its text.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.core.server import AdminState, ServerState

VERSION = "1"
# show servers state's fields (admin/stats.py writes them), by position.
_BE_NAME, _SRV_NAME, _OP, _ADMIN, _UWEIGHT, _IWEIGHT, _SINCE, _CHECK_STATE = 1, 3, 5, 6, 7, 8, 9, 13
SRV_ST_STOPPED, SRV_ST_STARTING, SRV_ST_RUNNING, SRV_ST_STOPPING = 0, 1, 2, 3
ADMF_FMAINT, ADMF_CMAINT, ADMF_FDRAIN = 0x01, 0x04, 0x08
CHK_ST_CONFIGURED, CHK_ST_ENABLED = 0x02, 0x04
_ADMIN_STATES = {0, ADMF_FMAINT, ADMF_CMAINT, ADMF_CMAINT | ADMF_FMAINT,
                 ADMF_CMAINT | ADMF_FDRAIN, ADMF_FDRAIN}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SavedServer:
    """One server's line."""

    backend: str
    server: str
    op_state: int
    admin_state: int
    uweight: int
    iweight: int
    since_change: int  # seconds
    check_state: int


def parse(text: str) -> tuple[dict[tuple[str, str], SavedServer], list[str]]:
    """The saved servers by (backend, server) name, and HAProxy's warnings for what
    cannot be read (another version, a bad line: that server is left as configured)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != VERSION:
        return {}, ["Can't get version of the server state file"]
    saved: dict[tuple[str, str], SavedServer] = {}
    problems: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        try:
            entry = SavedServer(
                fields[_BE_NAME], fields[_SRV_NAME], int(fields[_OP]), int(fields[_ADMIN]),
                int(fields[_UWEIGHT]), int(fields[_IWEIGHT]), int(fields[_SINCE]),
                int(fields[_CHECK_STATE]),
            )  # fmt: skip
        except (IndexError, ValueError):
            problems.append(f"corrupted server state file at line {number}")
            continue
        if entry.op_state not in (0, 1, 2, 3) or entry.admin_state not in _ADMIN_STATES:
            problems.append(
                f"server-state application failed for server '{entry.backend}/"
                f"{entry.server}', invalid srv_op_state or srv_admin_state value"
            )
            continue
        saved[(entry.backend, entry.server)] = entry
    return saved, problems


def apply(server: ServerState, saved: SavedServer, now: float) -> None:
    """HAProxy's srv_state_srv_update on one server (`now`: the clock of last_change)."""
    config = server.config
    server.stopping = False
    if saved.op_state == SRV_ST_STOPPED or (
        saved.op_state == SRV_ST_STOPPING and config.check and config.fall == 1
    ):
        server.up = False
    else:  # running; starting (up: a `slowstart` ramp does not carry over); stopping: NOLB
        server.up = True
        server.stopping = saved.op_state == SRV_ST_STOPPING
    # Maintenance: the configuration's `disabled` wins when it changed, else the saved
    # forced maintenance.
    disabled = config.disabled
    if bool(saved.admin_state & ADMF_CMAINT) != disabled:
        server.admin = AdminState.MAINT if disabled else AdminState.READY
    elif saved.admin_state & ADMF_FMAINT and not disabled:
        server.admin = AdminState.MAINT
    elif not saved.admin_state & ADMF_FMAINT and disabled:
        server.admin = AdminState.READY
    # A saved drain, unless it came from a configured weight of 0 that is positive now.
    draining = saved.admin_state & ADMF_FDRAIN and (saved.iweight > 0 or config.weight == 0)
    if server.admin is not AdminState.MAINT and draining:
        server.admin = AdminState.DRAIN
    server.last_change = now - saved.since_change
    checks = saved.check_state
    if config.check and checks & CHK_ST_CONFIGURED and not checks & CHK_ST_ENABLED:
        server.check_enabled = False  # `disable health` before the reload
    if saved.iweight == config.weight:  # the configured weight did not change
        server.weight = saved.uweight
