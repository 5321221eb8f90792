"""`poise ctl -S SOCKET COMMAND...`: send one runtime command to a stats socket and print
the answer, as `echo "COMMAND" | socat stdio SOCKET` does with HAProxy.

SOCKET is a unix path (`/run/poise.sock`, `unix@PATH`) or a TCP address (`ipv4@HOST:PORT`,
`ipv6@[HOST]:PORT`, `HOST:PORT`). The words are joined by spaces, so `;` separates
commands as on the socket. The answer is printed as received; the exit status is 1 when
the socket cannot be reached or gives no answer within `--timeout` seconds, 0 otherwise
(HAProxy's answers carry no status).

`poise ctl -S SOCKET --timeout 1 show info` is the health check a VRRP node runs on its own
balancer (keepalived.conf's `vrrp_script`, in place of `killall -0 haproxy`): it fails when
poise is gone and also when it is hung, since a hung poise does not answer in time.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

TIMEOUT = 30.0  # seconds without a byte from poise before giving up


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "ctl",
        help="send a command to a stats socket: poise ctl -S SOCKET CMD",
        description="Send a runtime command to a poise (or HAProxy) stats socket.",
    )
    parser.add_argument(
        "-S",
        "--socket",
        required=True,
        metavar="SOCKET",
        help="unix socket path, unix@PATH, ipv4@HOST:PORT or HOST:PORT",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"give up (exit status 1) without an answer after this long (default {TIMEOUT:g})",
    )
    parser.add_argument(
        "words",  # not `command`: the one parser names the subcommand so
        nargs="+",
        metavar="COMMAND",
        help="the command (e.g. show stat); several are separated by ';'",
    )


class TargetError(ValueError):
    """A --socket that names no stats socket."""


def main(args: argparse.Namespace) -> int:
    target = args.socket
    try:
        family, address = parse_target(target)
    except TargetError as exc:
        print(f"poise ctl: {exc}", file=sys.stderr)
        return 1
    line = " ".join(args.words) + "\n"
    if not args.timeout > 0:
        print("poise ctl: --timeout must be a positive number of seconds", file=sys.stderr)
        return 1
    try:
        answer = exchange(family, address, line.encode("utf-8"), args.timeout)
    except TimeoutError:
        print(f"poise ctl: no answer from {target} within {args.timeout:g}s", file=sys.stderr)
        return 1
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"poise ctl: cannot talk to the stats socket {target}: {reason}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    return 0


def parse_target(text: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    prefix, at, rest = text.partition("@")
    if not at:
        prefix, rest = "", text
    prefix = prefix.lower()
    if prefix in ("unix", "uxst"):
        return socket.AF_UNIX, rest
    if prefix not in ("", "ipv4", "ipv6", "tcp", "tcp4", "tcp6"):
        raise TargetError(f"unknown address prefix '{prefix}@' in '{text}'")
    if not prefix and (":" not in rest or rest.startswith(("/", "."))):
        return socket.AF_UNIX, rest
    # Imported here: the configuration's model is no part of asking a socket (start-up
    # time of the track scripts that run `poise ctl` every second, issue 16).
    from poise.config.address import AddressError, split_host_port

    try:
        host, port = split_host_port(rest)
    except AddressError as exc:
        raise TargetError(str(exc)) from None
    if not port or not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"'{text}' is neither a socket path nor HOST:PORT")
    v6 = prefix in ("ipv6", "tcp6") or ":" in host
    return (socket.AF_INET6 if v6 else socket.AF_INET), (host or "127.0.0.1", int(port))


def exchange(
    family: socket.AddressFamily,
    address: str | tuple[str, int],
    data: bytes,
    timeout: float = TIMEOUT,
) -> bytes:
    """Send the command line and read the answer until poise closes the connection; the
    whole exchange takes at most `timeout` seconds (TimeoutError)."""
    deadline = time.monotonic() + timeout
    if family == socket.AF_UNIX:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        assert isinstance(address, tuple)
        sock = socket.create_connection(address, timeout=timeout)
    with sock:
        sock.settimeout(timeout)
        if family == socket.AF_UNIX:
            sock.connect(address)
        sock.sendall(data)
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
