"""Where `poise vrrp` logs: the terminal in the foreground, syslog (/dev/log, facility
daemon) once detached, in Keepalived's words so that the lines people grep for
("(VI_1) Entering MASTER STATE") read the same.

Foreground lines carry Keepalived's console time stamp (`Sat Nov 21 10:53:28 2026: ...`).
A log line must never stall the daemon: writes are non-blocking and a line that cannot be
written now is dropped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time

SYSLOG_PATH = "/dev/log"
FACILITY_DAEMON = 3
LEVELS = {"err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


class Logger:
    def __init__(self, *, detail: bool = False, ident: str = "poise_vrrp") -> None:
        self.detail = detail
        self.ident = ident
        self.syslog: socket.socket | None = None
        self.console = True

    def use_syslog(self) -> None:
        """Detached: send to /dev/log from now on (dropped while no syslog listens)."""
        self.console = False
        with contextlib.suppress(OSError):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self.syslog = sock

    def info(self, message: str, *, detail: bool = False, level: str = "info") -> None:
        if detail and not self.detail:
            return
        if self.console:
            stamp = time.strftime("%a %b %d %H:%M:%S %Y")
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"{stamp}: {message}\n")
                sys.stderr.flush()
        if self.syslog is not None:
            priority = FACILITY_DAEMON * 8 + LEVELS.get(level, 6)
            stamp = time.strftime("%b %d %H:%M:%S")
            line = f"<{priority}>{stamp} {self.ident}[{os.getpid()}]: {message}"
            with contextlib.suppress(OSError):
                self.syslog.sendto(line.encode("utf-8", "replace"), SYSLOG_PATH)

    def error(self, message: str) -> None:
        self.info(message, level="err")

    def close(self) -> None:
        if self.syslog is not None:
            self.syslog.close()
            self.syslog = None
