"""The stats socket for real: unix and TCP sockets in a temporary directory, served under
both event loops, spoken to with a raw socket and through `poise ctl`; and, where HAProxy
is installed, the same commands sent to a real HAProxy 2.6 and to poise, byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from poise import __version__
from poise.cli import main as poise_main
from poise.config import model
from poise.core.backend import Backend, Outcome
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.server import ServerState
from poise.net.accept import Acceptor
from poise.net.admin_socket import admin_info, open_admin_sockets, serve_admin
from poise.net.context import Context
from poise.net.listener import BindError
from tests.support import eventually, free_port, run

T = TypeVar("T")
WHERE = model.Where("test.cfg", 3)
WAIT = 5.0  # seconds: deadline of every wait


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Short: a unix socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="pa", dir="/tmp") as name:
        yield Path(name)


def unix(path: Path, level: str, mode: int | None = None) -> model.StatsSocket:
    address = model.Address("unix", str(path), None)
    return model.StatsSocket(address, WHERE, mode=mode, level=level)  # type: ignore[arg-type]


def server(name: str, sid: int, port: int, **kw: object) -> model.Server:
    address = model.Address("ipv4", "127.0.0.1", port)
    return model.Server(name, address, WHERE, sid, **kw)  # type: ignore[arg-type]


# The proxies of HAPROXY_CFG below; ids as HAProxy 2.6 numbers them (its first is 2).
FE = model.Proxy("fe", model.Capability.FRONTEND, WHERE, id=2, default_backend="be")
BE = model.Proxy(
    "be", model.Capability.BACKEND, WHERE, id=3,
    servers=(
        server("s1", 1, 18081, weight=10),
        server("s2", 2, 18082, weight=20, backup=True),
        server("s3", 3, 18083, disabled=True),
    ),
)  # fmt: skip
ST = model.Proxy(
    "st", model.Capability.BACKEND, WHERE, id=4,
    balance=model.Balance(model.Algorithm.STATIC_RR),
    servers=(server("x", 1, 18084, weight=10),),
)  # fmt: skip
HAPROXY_CFG = """\
global
    stats socket {dir}/hap-admin.sock level admin
    stats socket {dir}/hap-user.sock level user
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:18081 weight 10
    server s2 127.0.0.1:18082 weight 20 backup
    server s3 127.0.0.1:18083 disabled
backend st
    balance static-rr
    server x 127.0.0.1:18084 weight 10
"""


def build_context(loop: asyncio.AbstractEventLoop) -> Context:
    ctx = Context(loop, 4096)
    for proxy in (BE, ST):
        states = [ServerState(s, proxy.name) for s in proxy.servers]
        backend = Backend(proxy, states, lambda st, p=proxy: make_balancer(p.balance, st, False))  # type: ignore[misc]
        ctx.add_backend(backend)
    ctx.frontends["fe"] = Frontend(FE, ctx.backends["be"], None, 4096)
    return ctx


@dataclass
class Admin:
    """poise's stats sockets served in the running loop."""

    ctx: Context
    servers: list[Acceptor]
    names: list[str | tuple[str, int]]  # where each socket listens

    def backend(self, name: str) -> Backend:
        return self.ctx.backends[name]

    def close(self) -> None:
        for srv in self.servers:
            srv.close()


async def start_admin(sockets: list[model.StatsSocket], timeout: float = 10.0) -> Admin:
    loop = asyncio.get_running_loop()
    ctx = build_context(loop)
    info = admin_info(model.Global(node="node1"), loop)
    socks = open_admin_sockets(sockets)
    names = [sock.getsockname() for sock in socks]
    return Admin(ctx, serve_admin(ctx, socks, info, timeout), names)


async def blocking(fn: Callable[..., T], *args: object) -> T:
    """Run a blocking client in a thread, so that the loop keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def connect(path: Path | tuple[str, int]) -> socket.socket:
    family = socket.AF_UNIX if isinstance(path, Path) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.connect(str(path) if isinstance(path, Path) else path)
    return sock


def exchange(path: Path | tuple[str, int], data: bytes) -> bytes:
    """Send, then read until the server closes (as `socat` does)."""
    with connect(path) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + WAIT
    while not data.endswith(end):
        assert time.monotonic() < deadline, data
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


# -- talking to poise ---------------------------------------------------------------------


def test_one_command_is_answered_then_the_connection_closes(sockdir: Path, loop_kind: str) -> None:
    path = sockdir / "admin.sock"

    async def main() -> None:
        admin = await start_admin([unix(path, "admin")])
        answer = await blocking(lambda: exchange(path, b"show info\n"))
        assert answer.startswith(f"Name: poise\nVersion: {__version__}\n".encode())
        assert f"\nPid: {os.getpid()}\n".encode() in answer
        assert b"\nnode: node1\n" in answer and answer.endswith(b"\n\n")
        admin.close()

    run(loop_kind, main)


def test_commands_separated_by_semicolons(sockdir: Path, loop_kind: str) -> None:
    path = sockdir / "admin.sock"

    async def main() -> None:
        admin = await start_admin([unix(path, "admin")])
        answer = await blocking(lambda: exchange(path, b"get weight be/s1;get weight be/s2\n"))
        assert answer == b"10 (initial 10)\n\n20 (initial 20)\n\n"
        answer = await blocking(lambda: exchange(path, b"show backend\nget weight st/x\n"))
        assert answer == b"# name\nbe\nst\n\n10 (initial 10)\n\n"
        admin.close()

    run(loop_kind, main)


def test_prompt_mode_keeps_the_connection_until_quit(sockdir: Path, loop_kind: str) -> None:
    path = sockdir / "admin.sock"

    def client() -> list[bytes]:
        with connect(path) as sock:
            sock.sendall(b"prompt\n")
            seen = [read_until(sock, b"\n> ")]
            sock.sendall(b"show cli level\n")
            seen.append(read_until(sock, b"\n> "))
            sock.sendall(b"get weight be/s1\n")
            seen.append(read_until(sock, b"\n> "))
            sock.sendall(b"quit\n")
            seen.append(sock.recv(65536))
            return seen

    async def main() -> None:
        admin = await start_admin([unix(path, "admin")])
        assert await blocking(client) == [b"\n> ", b"admin\n\n> ", b"10 (initial 10)\n\n> ", b""]
        admin.close()

    run(loop_kind, main)


def test_a_user_level_socket_refuses_admin_commands(sockdir: Path, loop_kind: str) -> None:
    admin_path, user_path = sockdir / "admin.sock", sockdir / "user.sock"

    async def main() -> None:
        admin = await start_admin([unix(admin_path, "admin"), unix(user_path, "user")])
        refused = await blocking(lambda: exchange(user_path, b"set server be/s1 weight 0\n"))
        assert refused == b"Permission denied\n\n"
        level = await blocking(lambda: exchange(user_path, b"show cli level\n"))
        assert level == b"user\n\n"
        assert admin.backend("be").servers[0].weight == 10
        done = await blocking(lambda: exchange(admin_path, b"set server be/s1 weight 0\n"))
        assert done == b"\n"
        assert admin.backend("be").servers[0].weight == 0
        admin.close()

    run(loop_kind, main)


def test_poise_ctl_changes_a_weight_that_the_balancer_follows(
    sockdir: Path, loop_kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sockdir / "admin.sock"
    tcp = model.StatsSocket(model.Address("ipv4", "127.0.0.1", 0), WHERE, level="admin")

    async def main() -> None:
        admin = await start_admin([unix(path, "admin"), tcp])
        name = admin.names[1]
        assert isinstance(name, tuple)
        port = name[1]
        ctl = ["-S", str(path), "set", "server", "st/x", "weight", "0;", "get", "weight", "st/x"]
        assert await blocking(lambda: poise_main(["ctl", *ctl])) == 0
        assert capsys.readouterr().out == "\n0 (initial 10)\n\n"
        backend = admin.backend("be")
        ctl = ["-S", f"ipv4@127.0.0.1:{port}", "set", "weight", "be/s1", "0"]
        assert await blocking(lambda: poise_main(["ctl", *ctl])) == 0
        assert capsys.readouterr().out == "\n"
        # s1 has no weight left: its backup s2 takes every new connection.
        assert {backend.balancer.pick().name for _ in range(5)} == {"s2"}  # type: ignore[union-attr]
        ctl = ["-S", f"127.0.0.1:{port}", "set", "server", "be/s1", "weight", "100%"]
        assert await blocking(lambda: poise_main(["ctl", *ctl])) == 0
        assert {backend.balancer.pick().name for _ in range(5)} == {"s1"}  # type: ignore[union-attr]
        admin.close()

    run(loop_kind, main)


def test_poise_ctl_without_a_socket_says_so(
    sockdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = sockdir / "absent.sock"
    assert poise_main(["ctl", "-S", str(absent), "show", "info"]) == 1
    err = capsys.readouterr().err
    assert str(absent) in err and "No such file or directory" in err


@dataclass
class Waiter:
    got: list[str]

    def dequeued(self, server: ServerState) -> None:
        self.got.append(server.name)


def test_a_state_change_starts_the_waiting_connections(sockdir: Path, loop_kind: str) -> None:
    path = sockdir / "admin.sock"

    async def main() -> None:
        admin = await start_admin([unix(path, "admin")])
        backend = admin.backend("be")
        backend.servers[0].maxconn = 1
        waiter = Waiter([])
        assert backend.take(Waiter([])).outcome is Outcome.ASSIGNED
        assert backend.take(waiter).outcome is Outcome.QUEUED
        answer = await blocking(lambda: exchange(path, b"set server be/s3 state ready\n"))
        assert answer == b"\n"
        await eventually(lambda: waiter.got == ["s3"], WAIT, "the queued connection to start")
        admin.close()

    run(loop_kind, main)


def test_an_idle_connection_is_closed_after_the_stats_timeout(
    sockdir: Path, loop_kind: str
) -> None:
    path = sockdir / "admin.sock"

    def idle() -> bytes:
        with connect(path) as sock:
            sock.sendall(b"prompt\n")
            read_until(sock, b"\n> ")
            return sock.recv(65536)  # nothing more is sent: poise closes

    async def main() -> None:
        admin = await start_admin([unix(path, "admin")], timeout=0.2)
        assert await blocking(idle) == b""
        admin.close()

    run(loop_kind, main)


# -- binding ------------------------------------------------------------------------------


def test_unix_socket_mode_and_a_stale_socket_file(sockdir: Path) -> None:
    path = sockdir / "admin.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a previous run's leftover
    socks = open_admin_sockets([unix(path, "admin", mode=0o600)])
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        for sock in socks:
            sock.close()


def test_binding_errors_name_the_path(sockdir: Path) -> None:
    missing = sockdir / "no" / "such" / "dir.sock"
    with pytest.raises(BindError) as err:
        open_admin_sockets([unix(missing, "admin")])
    assert str(err.value) == (
        "Binding [test.cfg:3] for frontend GLOBAL: cannot bind UNIX socket "
        f"(No such file or directory) [{missing}]"
    )
    regular = sockdir / "file"
    regular.write_text("not a socket")
    ok = sockdir / "ok.sock"
    with pytest.raises(BindError, match=str(regular)):
        open_admin_sockets([unix(ok, "admin"), unix(regular, "admin")])
    assert regular.read_text() == "not a socket"  # never replaced


# -- against HAProxy ----------------------------------------------------------------------

# Commands whose answers poise gives exactly as HAProxy 2.6 does, in order (some change
# state); `user:` sends to the user-level socket.
SAME_AS_HAPROXY = [
    "get weight be/s1", "get weight be/nope", "get weight nope/s1", "get weight be",
    "get weight /s1", "get weight be/", "get weight #3/#2", "get weight fe/s1",
    "show servers state", "show servers state nope", "show backend", "show cli level",
    "operator;show cli level;user;show cli level", "user:show cli level",
    "user:set server be/s1 weight 1", "user:disable server be/s1", "user:operator",
    "set server", "set server be/s1 state", "set server be/s1 state foo",
    "set server be/s1 weight", "set server be/s1 weight abc", "set server be/s1 weight %",
    "set server be/s1 weight 10abc", "set server be/s1 weight 300",
    "set server be/s1 weight -5%", "set server be/s1 weight 50%", "get weight be/s1",
    "set server be/s1 weight 3000%", "get weight be/s1", "set weight be/s1 +7",
    "get weight be/s1", "set weight be/s1", "set server st/x weight 5",
    "set server st/x weight 0%", "get weight st/x", "set server st/x weight 100%",
    "get weight be/s1;get weight be/s2", "  get   weight  be/s1  ", "get weight be/s1\r",
    "get\\ weight be/s1", "prompt\nget weight be/s2\nquit", "disable server be/s1",
    "show servers state be", "enable server be/s1", "set server be/s2 state drain",
    "set server be/s2 state maint", "set server be/s2 state ready", "quit",
]  # fmt: skip


def masked(answer: bytes) -> bytes:
    """`show servers state`: the seconds since the last change depend on when each
    process started."""
    lines = answer.split(b"\n")
    for i, line in enumerate(lines):
        fields = line.split(b" ")
        if len(fields) == 25 and not line.startswith(b"#"):
            fields[9] = b"T"
            lines[i] = b" ".join(fields)
    return b"\n".join(lines)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_answers_are_haproxys_byte_for_byte(sockdir: Path, loop_kind: str) -> None:
    cfg = sockdir / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(dir=sockdir, port=free_port()))
    haproxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + WAIT
        while not (sockdir / "hap-user.sock").exists():
            assert haproxy.poll() is None, haproxy.stderr.read() if haproxy.stderr else ""
            assert time.monotonic() < deadline, "haproxy did not create its stats socket"
            time.sleep(0.01)
        compare_with_haproxy(sockdir, loop_kind)
    finally:
        haproxy.terminate()
        haproxy.wait(WAIT)


def compare_with_haproxy(sockdir: Path, loop_kind: str) -> None:
    ours = {"admin": sockdir / "admin.sock", "user": sockdir / "user.sock"}
    theirs = {"admin": sockdir / "hap-admin.sock", "user": sockdir / "hap-user.sock"}

    async def main() -> None:
        admin = await start_admin([unix(ours["admin"], "admin"), unix(ours["user"], "user")])
        for line in SAME_AS_HAPROXY:
            level, _, command = line.partition(":") if line.startswith("user:") else ("", "", line)
            data = command.encode() + b"\n"
            want = await blocking(exchange, theirs[level or "admin"], data)
            got = await blocking(exchange, ours[level or "admin"], data)
            assert masked(got) == masked(want), line
        header = await blocking(lambda: exchange(ours["admin"], b"show stat\n"))
        want = await blocking(lambda: exchange(theirs["admin"], b"show stat\n"))
        assert header.split(b"\n")[0] == want.split(b"\n")[0]
        admin.close()

    run(loop_kind, main)
