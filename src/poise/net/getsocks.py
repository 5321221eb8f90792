"""HAProxy's transfer of listening sockets between processes: the `_getsocks` command of a
stats socket with `expose-fd listeners` (the old process gives), and `-x SOCKET` (the new
process takes). The new process then accepts on the very sockets the old one listened on,
so the connections waiting in their queues are served by whichever process accepts first,
and none is refused when the old process leaves.

The protocol is HAProxy's (src/cli.c `_getsocks`, src/sock.c sock_get_old_sockets()), so
either side may be a haproxy 2.6:
  new -> old   "_getsocks\\n"
  old -> new   the number of sockets, a native 32-bit int
  old -> new   batches of at most MAX_SEND_FD descriptors (SCM_RIGHTS), each with, per
               socket, <namespace length byte><namespace><interface length byte>
               <interface> and 4 zero bytes (listener options before HAProxy 2.3)
  new -> old   a 32-bit ack after each batch
A socket without `expose-fd listeners` answers nothing and closes. Both sides block with
a 1-second receive timeout, as HAProxy's do.
"""

from __future__ import annotations

import array
import contextlib
import socket
import struct
from collections.abc import Callable, Sequence

from poise.config import model
from poise.net.inherited import from_master, open_bind
from poise.net.listener import DEFAULT_BACKLOG, Listener

MAX_SEND_FD = 252  # HAProxy's batch (compat.h); the kernel allows 253 (SCM_MAX_FD)
TIMEOUT = 1.0  # seconds: HAProxy's SO_RCVTIMEO on both sides
_INT = struct.Struct("=i")
# Room for one socket's record: HAProxy's 1 + MAXPATHLEN + 1 + IFNAMSIZ + sizeof(int).
_RECORD_ROOM = 1 + 4096 + 1 + 16 + 4


class TransferError(OSError):
    """The sockets could not be taken over (HAProxy's warning text)."""


def give(conn: socket.socket, fds: Sequence[int]) -> None:
    """The old process's side, on the accepted connection `conn` (blocking): send the
    listening sockets `fds`. Raises OSError (TransferError) when the peer goes away."""
    conn.setblocking(True)
    conn.settimeout(TIMEOUT)
    conn.sendall(_INT.pack(len(fds)))
    for first in range(0, len(fds), MAX_SEND_FD):
        batch = fds[first : first + MAX_SEND_FD]
        # No namespace, no interface, the 4 bytes that used to be the options.
        records = b"\0\0\0\0\0\0" * len(batch)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", batch).tobytes())]
        if conn.sendmsg([records], rights) != len(records):
            raise TransferError("Failed to transfer sockets")
        if len(conn.recv(_INT.size)) == 0:  # the ack
            raise TransferError("Unexpected error while transferring sockets")


def take(path: str) -> list[socket.socket]:
    """The new process's side (`-x PATH`): the old process's listening sockets, as
    socket objects (to match with the `bind` lines by address, then close the rest).
    Raises TransferError with HAProxy's warning."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        raise TransferError(f"Failed to connect to the old process socket '{path}'") from None
    with conn:
        try:
            conn.settimeout(TIMEOUT)
            conn.connect(path)
        except OSError:
            raise TransferError(f"Failed to connect to the old process socket '{path}'") from None
        return _receive(conn)


def _receive(conn: socket.socket) -> list[socket.socket]:
    unable = "Failed to get the number of sockets to be transferred !"
    try:
        conn.sendall(b"_getsocks\n")
        head = _exactly(conn, _INT.size)
    except OSError:
        raise TransferError(unable) from None
    if len(head) != _INT.size:
        raise TransferError(unable)
    (count,) = _INT.unpack(head)
    fds: list[int] = []
    with contextlib.suppress(OSError):
        while len(fds) < count:
            room = min(MAX_SEND_FD, count) * _RECORD_ROOM
            space = socket.CMSG_SPACE(MAX_SEND_FD * 4)
            data, ancillary, _, _ = conn.recvmsg(room, space)
            if not data:
                break
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(payload[: len(payload) - len(payload) % 4])
                    fds.extend(got)
            # The ack (HAProxy 2.6 may have closed after its last batch: no matter).
            with contextlib.suppress(OSError):
                conn.sendall(_INT.pack(len(fds)))
    socks = [socket.socket(fileno=fd) for fd in fds]
    if len(fds) != count:
        for sock in socks:
            sock.close()
        raise TransferError(
            f"We didn't get the expected number of sockets (expecting {count} got {len(fds)})"
        )
    return socks


def _exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def same_address(sock: socket.socket, family: int, host: str, port: int) -> bool:
    """Is `sock` a listening TCP socket of `family` bound to host:port? (The new process
    uses a received socket for the `bind` line that would have bound the same.)"""
    with contextlib.suppress(OSError):
        if sock.family != family or sock.type != socket.SOCK_STREAM:
            return False
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return False
        name = sock.getsockname()
        return bool(name[1] == port and _ip(name[0]) == _ip(host))
    return False


def _ip(text: str) -> bytes:
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return socket.inet_pton(family, text)


def taking(
    taken: list[socket.socket],
) -> Callable[[model.Bind, str, int], Listener]:
    """Runtime.bind()'s opener with `-x`: the old process's socket bound to the same
    address when there is one (taken out of `taken`), else a socket bound here."""

    def opener(bind: model.Bind, frontend: str, maxconn: int) -> Listener:
        address = bind.address
        if address.family in ("ipv4", "ipv6"):
            family = (
                socket.AF_INET6
                if address.family == "ipv6" or ":" in address.host
                else (socket.AF_INET)
            )
            host = address.host or ("::" if family == socket.AF_INET6 else "0.0.0.0")
            for sock in taken:
                if same_address(sock, family, host, address.port or 0):
                    taken.remove(sock)
                    backlog = bind.backlog or max(maxconn, DEFAULT_BACKLOG)
                    return from_master(bind, frontend, sock.detach(), backlog)
        return open_bind(bind, frontend, maxconn)

    return opener
