"""sd_notify without libsystemd: tell the service manager how poise is doing.

systemd (`Type=notify`) passes the path of a datagram socket in $NOTIFY_SOCKET; a message
is one datagram of newline-separated assignments (sd_notify(3)): `READY=1` once poise
serves, `RELOADING=1` when a reload starts (with `MONOTONIC_USEC`, which systemd 253 and
later want with it) and `READY=1` again when it is over, `STOPPING=1`, `STATUS=...` for
`systemctl status`, `MAINPID=` for the master. A name starting with `@` is in the abstract
namespace. Without $NOTIFY_SOCKET (not under systemd) nothing is sent.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping

ENV = "NOTIFY_SOCKET"


def notify_address(env: Mapping[str, str] | None = None) -> str | None:
    """The socket address to notify, or None when there is nothing to notify."""
    path = (os.environ if env is None else env).get(ENV, "")
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # unset, or a kind of address poise does not speak (vsock)


def notify(fields: Iterable[str], env: Mapping[str, str] | None = None) -> bool:
    """Send one notification; True when it was sent. Never raises: a service manager
    that went away must not take poise down."""
    address = notify_address(env)
    if address is None:
        return False
    lines = list(fields)
    if "RELOADING=1" in lines:
        lines.append(f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
    data = "\n".join(lines).encode("utf-8", "replace") + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(data)
    except OSError:
        return False
    return True
