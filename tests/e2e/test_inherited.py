"""Sockets inherited from the parent process (`fd@N`, `sockpair@N`), as systemd's socket
activation and test harnesses pass them: the test binds the sockets, starts the balancer
with them (`pass_fds`) and sends real traffic through each kind: a TCP socket bound but not
listening, one already listening, a unix socket, TLS on an inherited socket, a socketpair
over which the test passes a connected socket's descriptor, and the stats socket. The same
set-up runs under HAProxy 2.6 (where it is installed) and poise; then reloads in
master-worker mode, and the errors for descriptors that cannot be used.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import wait_haproxy_master
from tests.tlskit import Pki

pytestmark = pytest.mark.e2e

HAPROXY = shutil.which("haproxy")
POISE = [sys.executable, "-m", "poise.cli"]
BALANCERS = ["poise", pytest.param("haproxy", marks=pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed"))]  # fmt: skip

HEAD = """\
global
    stats socket fd@{stats} level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind fd@{bound}
    bind fd@{listening}
    bind fd@{unix}
    bind sockpair@{pair}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""
TLS = """\
frontend secure
    bind fd@{tls} ssl crt {cert}
    default_backend be
"""


@dataclass
class Setup:
    """The sockets the parent holds, and the other end of the socketpair."""

    tmp: Path
    backend: socket.socket
    bound: socket.socket
    listening: socket.socket
    unix: socket.socket
    pair: socket.socket  # ours
    pair_theirs: socket.socket
    stats: socket.socket
    tls: socket.socket
    unix_path: str
    extra: list[socket.socket] = field(default_factory=list)

    @property
    def fds(self) -> list[int]:
        socks = [self.bound, self.listening, self.unix, self.pair_theirs, self.stats, self.tls]
        return [s.fileno() for s in socks]

    def config(self, cert: Path | None) -> str:
        text = HEAD.format(
            stats=self.stats.fileno(),
            bound=self.bound.fileno(),
            listening=self.listening.fileno(),
            unix=self.unix.fileno(),
            pair=self.pair_theirs.fileno(),
            backend=self.backend.getsockname()[1],
        )
        if cert is not None:
            text += TLS.format(tls=self.tls.fileno(), cert=cert)
        return text

    def close(self) -> None:
        for sock in (self.backend, self.bound, self.listening, self.unix, self.pair,
                     self.pair_theirs, self.stats, self.tls, *self.extra):  # fmt: skip
            sock.close()


@contextmanager
def setup(tmp: Path) -> Iterator[Setup]:
    def tcp(listen: bool) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        if listen:
            sock.listen()
        return sock

    path = str(tmp / "in.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    ours, theirs = socket.socketpair()
    backend = tcp(True)
    backend.settimeout(5)
    made = Setup(tmp, backend, tcp(False), tcp(True), unix, ours, theirs, tcp(False),
                 tcp(False), path)  # fmt: skip
    try:
        yield made
    finally:
        made.close()


def poise(*args: str, fds: Sequence[int] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POISE, *args], pass_fds=fds, capture_output=True, text=True, timeout=20, check=False
    )


def start(argv: list[str], s: Setup, cfg: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*argv, *extra, "-f", str(cfg)],
        pass_fds=s.fds,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def relay(s: Setup, connect: Callable[[], socket.socket], word: bytes = b"ping") -> bytes:
    """One connection through the balancer to the test's backend and back."""
    client = connect()
    client.settimeout(5)
    server, _ = s.backend.accept()
    try:
        client.sendall(word)
        assert server.recv(len(word)) == word
        server.sendall(word.upper())
        return client.recv(len(word))
    finally:
        client.close()
        server.close()


def via_pair(s: Setup) -> socket.socket:
    """A connected socket whose other end's descriptor goes over the socketpair."""
    mine, given = socket.socketpair()
    socket.send_fds(s.pair, [b"\0"], [given.fileno()])
    given.close()
    return mine


def via_unix(s: Setup) -> socket.socket:
    client = socket.socket(socket.AF_UNIX)
    client.connect(s.unix_path)
    return client


def via_tls(s: Setup, ca: Path) -> socket.socket:
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(s.tls.getsockname(), timeout=5)
    return context.wrap_socket(raw, server_hostname="lb.test")


def wait_serving(s: Setup, proc: subprocess.Popen[str]) -> None:
    """Until the stats socket answers (the balancer listens on the inherited sockets)."""
    end = time.monotonic() + 15
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if b"Name:" in ask_stats(s, "show info"):
                return
        except OSError:
            pass
        assert time.monotonic() < end, "not serving"
        time.sleep(0.05)


def ask_stats(s: Setup, command: str) -> bytes:
    with socket.create_connection(s.stats.getsockname(), timeout=2) as conn:
        conn.sendall(command.encode() + b"\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def everything_relays(s: Setup, ca: Path) -> None:
    assert relay(s, lambda: socket.create_connection(s.bound.getsockname())) == b"PING"
    assert relay(s, lambda: socket.create_connection(s.listening.getsockname())) == b"PING"
    assert relay(s, lambda: via_unix(s)) == b"PING"
    assert relay(s, lambda: via_pair(s)) == b"PING"
    assert relay(s, lambda: via_tls(s, ca)) == b"PING"


@pytest.mark.parametrize("balancer", BALANCERS)
def test_inherited_sockets_carry_traffic(tmp_path: Path, balancer: str) -> None:
    pki = Pki(tmp_path)
    cert = pki.issue("lb.pem", ["lb.test"])
    argv = [HAPROXY or "haproxy", "-db"] if balancer == "haproxy" else [*POISE, "run", "-db"]
    with setup(tmp_path) as s:
        cfg = tmp_path / "lb.cfg"
        cfg.write_text(s.config(cert))
        proc = start(argv, s, cfg)
        try:
            wait_serving(s, proc)
            everything_relays(s, pki.ca_pem)
            if balancer == "poise":
                several_descriptors_in_one_message(s)
            assert b"Name:" in ask_stats(s, "show info")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


def several_descriptors_in_one_message(s: Setup) -> None:
    """Each is a connection (HAProxy reads one descriptor per message and loses the
    others; poise serves them all)."""
    clients, givens = zip(*(socket.socketpair() for _ in range(3)), strict=True)
    socket.send_fds(s.pair, [b"\0\0\0"], [g.fileno() for g in givens])
    for client, given in zip(clients, givens, strict=True):
        given.close()
        assert relay(s, lambda c=client: c) == b"PING"  # type: ignore[misc]


def test_poise_check_takes_inherited_descriptors_as_haproxy_c_does(tmp_path: Path) -> None:
    with setup(tmp_path) as s:
        cfg = tmp_path / "lb.cfg"
        cfg.write_text(s.config(None))
        ok = poise("check", "-f", str(cfg), fds=s.fds)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "Configuration file is valid"
        # Without the descriptors: each is named with its file, line and keyword.
        bad = poise("check", "-f", str(cfg))
        assert bad.returncode == 1
        assert f"lb.cfg:2: error: 'stats socket': cannot use file descriptor '{s.stats.fileno()}'" \
            " : Bad file descriptor." in bad.stderr  # fmt: skip
        assert f"lb.cfg:9: error: 'bind': cannot use file descriptor '{s.bound.fileno()}'" in (
            bad.stderr
        )
        assert "Traceback" not in bad.stderr


BAD_CONFIG = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind {address}
    default_backend be
backend be
    server s1 127.0.0.1:1
"""


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("closed", "cannot use file descriptor '{fd}' : Bad file descriptor."),
        ("file", "cannot use file descriptor '{fd}' : Socket operation on non-socket."),
        ("udp", "socket on file descriptor '{fd}' is of the wrong type."),
        ("pair-tcp", "socket on file descriptor '{fd}' is not a unix socket (socketpair)."),
    ],
)
def test_a_descriptor_that_cannot_be_used_is_refused_clearly(
    tmp_path: Path, kind: str, message: str
) -> None:
    holder: list[object] = []
    if kind == "closed":
        fd = os.open(os.devnull, os.O_RDONLY)
        os.close(fd)
        address, fds = f"fd@{fd}", []
    elif kind == "file":
        file = (tmp_path / "f").open("w")
        holder.append(file)
        fd = file.fileno()
        address, fds = f"fd@{fd}", [fd]
    else:
        sock = socket.socket(type=socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        holder.append(sock)
        fd = sock.fileno()
        address, fds = (f"fd@{fd}" if kind == "udp" else f"sockpair@{fd}"), [fd]
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(BAD_CONFIG.format(address=address))
    expected = "bad.cfg:7: error: 'bind': " + message.format(fd=fd)
    for command in (["check"], ["run", "-db"]):
        done = poise(*command, "-f", str(cfg), fds=fds)
        assert done.returncode == 1, (command, done.stderr)
        assert "Traceback" not in done.stderr
        if command == ["check"]:
            assert expected in done.stderr
        else:
            assert expected.replace(" error:", "") in done.stderr
    for item in holder:
        item.close()  # type: ignore[attr-defined]


def test_a_malformed_descriptor_number_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(BAD_CONFIG.format(address="fd@abc"))
    done = poise("check", "-f", str(cfg))
    assert done.returncode == 1
    assert "bad.cfg:7: error: 'bind'" in done.stderr
    assert "file descriptor 'abc' is not a valid integer in 'fd@abc'" in done.stderr


@pytest.mark.parametrize("balancer", BALANCERS)
def test_inherited_sockets_survive_reloads(tmp_path: Path, balancer: str) -> None:
    pki = Pki(tmp_path)
    cert = pki.issue("lb.pem", ["lb.test"])
    argv = [HAPROXY or "haproxy", "-db"] if balancer == "haproxy" else [*POISE, "run", "-db"]
    with setup(tmp_path) as s:
        cfg = tmp_path / "lb.cfg"
        cfg.write_text(s.config(cert))
        master = str(tmp_path / "master.sock")
        proc = start(argv, s, cfg, "-W", *master_cli(balancer, master))
        try:
            wait_serving(s, proc)
            first = pid_of(s)
            everything_relays(s, pki.ca_pem)
            for reloads in range(2):
                old = pid_of(s)
                if balancer == "haproxy":
                    wait_haproxy_master(master, reloads)
                proc.send_signal(signal.SIGUSR2)
                wait_for(lambda old=old: pid_of(s) != old)  # type: ignore[misc]
                everything_relays(s, pki.ca_pem)
            assert pid_of(s) != first
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert "Loading success." in err
    assert "Traceback" not in err


def master_cli(balancer: str, path: str) -> list[str]:
    """HAProxy's master CLI, whose answer says its master acts on signals (poise's master
    handles them before it forks a worker)."""
    return ["-S", path] if balancer == "haproxy" else []


def pid_of(s: Setup) -> int:
    for line in ask_stats(s, "show info").decode().splitlines():
        if line.startswith("Pid: "):
            return int(line[5:])
    raise AssertionError("no Pid in show info")


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end
        time.sleep(0.05)


SERVER_CONFIG = """\
defaults
    mode {mode}
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 sockpair@{fd}
"""


def served_over_pair(ours: socket.socket, port: int, request: bytes, answer: bytes) -> bytes:
    """A client connects to the balancer; the server's end of the connection arrives as a
    descriptor on our end of the socketpair; we answer on it."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        client.sendall(request)
        ours.settimeout(5)
        _, fds, _, _ = socket.recv_fds(ours, 16, 1)
        assert len(fds) == 1
        with socket.socket(fileno=fds[0]) as server:
            server.settimeout(5)
            got = b""
            while not got.endswith(request[-4:]):
                chunk = server.recv(4096)
                assert chunk, f"the balancer closed the server connection after {got!r}"
                got += chunk
            assert got.split(b"\r\n")[0] == request.split(b"\r\n")[0]
            server.sendall(answer)
            server.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := client.recv(4096):
                reply += chunk
            return reply
    finally:
        client.close()


@pytest.mark.parametrize("balancer", BALANCERS)
@pytest.mark.parametrize("master", [False, True], ids=["single", "master-worker"])
def test_server_sockpair_sends_each_connection_over_the_pair(
    tmp_path: Path, balancer: str, master: bool
) -> None:
    from tests.support import free_port

    ours, theirs = socket.socketpair()
    port = free_port()
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(SERVER_CONFIG.format(mode="tcp", port=port, fd=theirs.fileno()))
    argv = [HAPROXY or "haproxy", "-db"] if balancer == "haproxy" else [*POISE, "run", "-db"]
    master_socket = str(tmp_path / "master.sock")
    if master:
        argv += ["-W", *master_cli(balancer, master_socket)]
    terminal = tmp_path / "err.txt"
    with terminal.open("w") as err:
        proc = subprocess.Popen([*argv, "-f", str(cfg)], pass_fds=[theirs.fileno()],
                                stdout=subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
    try:
        wait_for(lambda: listening(port, proc))
        drop_probe(ours)
        request = b"hello over a socketpair\r\n"
        assert served_over_pair(ours, port, request, b"HELLO") == b"HELLO"
        if master:
            if balancer == "haproxy":
                wait_haproxy_master(master_socket, 0)
            proc.send_signal(signal.SIGUSR2)  # the new worker gets the master's copy
            wait_for(lambda: terminal.read_text().count("Loading success.") == 2)
            for _ in range(3):
                assert served_over_pair(ours, port, request, b"AGAIN") == b"AGAIN"
    finally:
        proc.terminate()
        proc.wait(10)
        ours.close()
        theirs.close()
    assert "Traceback" not in terminal.read_text()


def drop_probe(ours: socket.socket) -> None:
    """The connection that found the port open went to the server too: its descriptor
    arrives on our end; close it."""
    ours.settimeout(5)
    _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    for fd in fds:
        os.close(fd)


def listening(port: int, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
