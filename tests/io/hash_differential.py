"""Which server does HAProxy 2.6 choose for a key, and does poise choose the same?

One haproxy process serves every configuration under test, each in a `listen` section of
its own port. In HTTP mode every server points at a `sink` frontend of the same process
that answers each request itself (`http-request return`), and the `listen` section tags the
response with the server HAProxy chose (`x-srv: %[srv_name]`): no real backends, and the
client reads HAProxy's real choice. Requests are pipelined over a few keep-alive
connections, so tens of thousands of keys take seconds. `balance source` needs a
connection per key from a distinct source address: the client binds each one to an
address of 127.0.0.0/8 before it connects. `rdp-cookie` (TCP mode) needs real listeners:
one per server, answering with its name.

poise's side is the pure core only: the same configuration text parsed by poise's parser,
the servers' states, the balancer the factory builds, the key hashkey.py takes. Servers
are set down (`set server L/S state maint` on haproxy's stats socket, the same admin state
in poise's model) and back between rounds. Traffic goes to 127.0.0.0/8 only.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from poise.config import model
from poise.config.haproxy import parse
from poise.core.balancer import Balancer
from poise.core.balancer.factory import make_balancer
from poise.core.http.hashkey import hash_key
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.rdp_cookie import rdp_cookie
from poise.core.server import AdminState, ServerState
from tests.io.hash_cases import HOST, Case, Round, config_text, make_keys, request_bytes

DEADLINE = 30.0  # seconds any single socket operation may take before the run fails


# -- haproxy's choices -------------------------------------------------------------------------


def server_name(head: bytes) -> str:
    """The x-srv value of a response head (no body: `http-request return` sends none)."""
    at = head.find(b"\r\nx-srv: ")
    assert head.startswith(b"HTTP/1.1 200") and at >= 0, head[:300]
    end = head.find(b"\r\n", at + 2)
    return head[at + 9 : end if end >= 0 else len(head)].decode()


class Pipeline:
    """One keep-alive connection with at most WINDOW requests in flight."""

    WINDOW = 64

    def __init__(self, port: int, indexes: list[int]) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=DEADLINE)
        self.sock.setblocking(False)
        self.indexes = indexes
        self.sent = 0  # requests written
        self.answered = 0  # responses read
        self.out = b""
        self.received = b""

    def fill(self, requests: Sequence[bytes]) -> None:
        """Queue requests up to the window."""
        if not self.out and self.sent - self.answered < self.WINDOW // 2:
            stop = min(len(self.indexes), self.answered + self.WINDOW)
            self.out = b"".join(requests[i] for i in self.indexes[self.sent : stop])
            self.sent = max(self.sent, stop)

    def read(self, names: list[str], requests: Sequence[bytes]) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            failed = requests[self.indexes[self.answered]]
            raise AssertionError(f"haproxy refused {failed!r}: {self.received[:300]!r}")
        heads = (self.received + data).split(b"\r\n\r\n")
        self.received = heads.pop()
        for head in heads:
            names[self.indexes[self.answered]] = server_name(head)
            self.answered += 1

    @property
    def done(self) -> bool:
        return self.answered == len(self.indexes)


def ask_pipelined(port: int, requests: Sequence[bytes], connections: int = 8) -> list[str]:
    """Send `requests` over `connections` keep-alive connections, pipelined; return the
    server each was given, in order."""
    names: list[str] = [""] * len(requests)
    selector = selectors.DefaultSelector()
    live = []
    try:
        for first in range(min(connections, len(requests))):
            pipe = Pipeline(port, list(range(first, len(requests), connections)))
            live.append(pipe)
            pipe.fill(requests)
            selector.register(pipe.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, pipe)
        while live:
            events = selector.select(DEADLINE)
            assert events, "haproxy stopped answering"
            for key, mask in events:
                pipe = key.data
                if mask & selectors.EVENT_READ:
                    pipe.read(names, requests)
                    if pipe.done:
                        selector.unregister(pipe.sock)
                        pipe.sock.close()
                        live.remove(pipe)
                        continue
                    pipe.fill(requests)
                if mask & selectors.EVENT_WRITE and pipe.out:
                    pipe.out = pipe.out[pipe.sock.send(pipe.out) :]
                wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if pipe.out else 0)
                if key.events != wanted:
                    selector.modify(pipe.sock, wanted, pipe)
    finally:
        for pipe in live:
            pipe.sock.close()
        selector.close()
    return names


def ask_one_by_one(
    port: int, sources: Sequence[str], payloads: Sequence[bytes], parallel: int = 32
) -> list[str]:
    """One connection per key, `parallel` at a time, each bound to its source address;
    the answer is either an HTTP response tagged x-srv or a server's bare name."""
    selector = selectors.DefaultSelector()
    names: list[str] = [""] * len(payloads)
    pending = iter(range(len(payloads)))
    live: dict[socket.socket, tuple[int, bytearray]] = {}

    def start(i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.bind((sources[i], 0))
        sock.settimeout(DEADLINE)
        sock.connect((HOST, port))
        sock.sendall(payloads[i])
        sock.setblocking(False)
        live[sock] = (i, bytearray())
        selector.register(sock, selectors.EVENT_READ)

    try:
        for i in pending:
            start(i)
            if len(live) >= parallel:
                break
        while live:
            events = selector.select(DEADLINE)
            assert events, "no answer"
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                i, received = live[sock]
                data = sock.recv(65536)
                received += data
                if data:
                    continue
                selector.unregister(sock)
                sock.close()
                del live[sock]
                if received.startswith(b"HTTP/"):
                    names[i] = server_name(bytes(received).split(b"\r\n\r\n")[0])
                else:
                    names[i] = received.decode()
                following = next(pending, None)
                if following is not None:
                    start(following)
    finally:
        for sock in live:
            sock.close()
        selector.close()
    return names


class NameServers:
    """Real listeners for TCP mode: each answers every connection with its name."""

    def __init__(self, count: int) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sock.listen(512)
            self.socks.append(sock)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.threads = [
            threading.Thread(target=self._serve, args=(s, f"s{i + 1}"), daemon=True)
            for i, s in enumerate(self.socks)
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _serve(sock: socket.socket, name: str) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(DEADLINE)
                conn.recv(65536)  # the client's first packet, forwarded by haproxy
                conn.sendall(name.encode())

    def close(self) -> None:
        for sock in self.socks:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class HAProxy:
    """A haproxy process over a configuration, with its stats socket. Started with `-D`:
    haproxy binds every listener before it forks into the background, so once the command
    returns, all of them accept connections (no waiting, no polling)."""

    def __init__(self, text: str, sockdir: Path, listeners: Sequence[socket.socket]) -> None:
        path = sockdir / "haproxy.cfg"
        path.write_text(text)
        self.socket = sockdir / "admin.sock"
        pidfile = sockdir / "haproxy.pid"
        started = subprocess.run(
            ["haproxy", "-D", "-p", str(pidfile), "-f", str(path)],
            pass_fds=[sock.fileno() for sock in listeners],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        self.pid = int(pidfile.read_text().split()[0])

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(DEADLINE)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def close(self) -> None:
        os.kill(self.pid, signal.SIGTERM)  # the haproxy this object started, by its pid


# -- poise's choices ---------------------------------------------------------------------------


class PoiseModel:
    """poise's pure balancers for every `listen` section of the same configuration text."""

    def __init__(self, text: str) -> None:
        config, diagnostics = parse([("hash.cfg", text)], {})
        errors = [str(d) for d in diagnostics if d.severity.value == "error"]
        assert config is not None and not errors, errors
        self.proxies = {p.name: p for p in config.backends}
        self.servers: dict[str, list[ServerState]] = {}
        self.balancers: dict[str, Balancer] = {}
        for name, proxy in self.proxies.items():
            states = [ServerState(s, name) for s in proxy.servers]
            allbackups = model.Option.ALLBACKUPS in proxy.options
            self.servers[name] = states
            self.balancers[name] = make_balancer(proxy.balance, states, allbackups)

    def set_round(self, name: str, state: Round) -> None:
        down, weights = state
        changed = dict(weights)
        for i, server in enumerate(self.servers[name]):
            server.admin = AdminState.MAINT if i in down else AdminState.READY
            server.weight = changed.get(i, server.initial_weight)
        self.balancers[name].update()

    def choose(self, case: Case, key: str) -> str:
        balancer = self.balancers[case.name]
        balance = self.proxies[case.name].balance
        hashed: bytes | None
        if case.keys == "source":
            hashed = socket.inet_aton(key)
        elif case.keys == "rdp":
            found = rdp_cookie(key.encode("latin-1"), balance.argument)
            hashed = found if isinstance(found, bytes) else None
        else:
            uri, headers = (
                (key, [("host", "h")]) if case.keys in ("uri", "url_param") else ("/", [])
            )
            if case.keys == "hdr":
                headers = [("host", "h"), ("x-key", key)]
            elif case.keys == "host":
                headers = [("host", key)]
            hashed = hash_key(balance, Request("GET", uri, "1.1", Headers(headers)))
        server = balancer.pick(hashed) if hashed is not None else balancer.pick_without_key()
        return server.name if server is not None else "-"


@dataclass
class Outcome:
    case: str
    round: int
    compared: int
    different: int
    examples: list[tuple[str, str, str]]  # (key, haproxy, poise), the first few


def run_cases(
    cases: Sequence[Case],
    sockdir: Path,
    seed: int = 0,
    report: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Start haproxy over `cases`, send every case's keys in every round, compare."""
    # haproxy's listeners are bound here and passed on (fd@): a port chosen, closed and
    # bound again later could be taken meanwhile by any connection on the machine.
    inherited = bound_listeners(1 + len(cases))
    fds = {sock.getsockname()[1]: sock.fileno() for sock in inherited}
    sink, *ports = fds
    name_servers: list[NameServers] = []
    haproxy: HAProxy | None = None
    outcomes: list[Outcome] = []
    try:
        for case in cases:
            case.port = ports.pop()
            if case.mode == "tcp":
                name_servers.append(NameServers(len(case.weights)))
                case.ports = name_servers[-1].ports
        poise = PoiseModel(config_text(cases, sockdir, sink, tagged=False))
        haproxy = HAProxy(config_text(cases, sockdir, sink, fds=fds), sockdir, inherited)
        for sock in inherited:  # haproxy holds its own copies now
            sock.close()
        for case in cases:
            keys = make_keys(case, seed)
            for number, state in enumerate(case.rounds):
                if number == 1 and case.later:
                    keys = keys[: case.later]
                set_round(haproxy, case, state)
                poise.set_round(case.name, state)
                theirs = ask(case, keys)
                names = {f"s{i + 1}" for i in range(len(case.weights))}
                assert set(theirs) <= names, f"{case.name}: answers from elsewhere"
                ours = [poise.choose(case, key) for key in keys]
                different = [
                    (k, t, o) for k, t, o in zip(keys, theirs, ours, strict=True) if t != o
                ]
                outcome = Outcome(case.name, number, len(keys), len(different), different[:5])
                outcomes.append(outcome)
                if report is not None:
                    report(outcome)
    finally:
        for sock in inherited:
            sock.close()
        if haproxy is not None:
            haproxy.close()
        for listeners in name_servers:
            listeners.close()
    return outcomes


def set_round(haproxy: HAProxy, case: Case, state: Round) -> None:
    """The servers' admin states and weights, on haproxy's stats socket."""
    down, weights = state
    changed = dict(weights)
    for i, weight in enumerate(case.weights):
        server = f"{case.name}/s{i + 1}"
        admin = "maint" if i in down else "ready"
        haproxy.command(f"set server {server} state {admin}")
        answer = haproxy.command(f"set weight {server} {changed.get(i, weight)}")
        assert not answer.strip(), answer


def ask(case: Case, keys: Sequence[str]) -> list[str]:
    if case.keys == "source":
        payload = request_bytes(case, "")
        return ask_one_by_one(case.port, keys, [payload] * len(keys))
    if case.keys == "rdp":
        return ask_one_by_one(case.port, [HOST] * len(keys), [k.encode("latin-1") for k in keys])
    # Requests without a key are balanced round robin: in order, on one connection.
    connections = 1 if case.keys == "keyless" else 8
    return ask_pipelined(case.port, [request_bytes(case, key) for key in keys], connections)


def bound_listeners(count: int) -> list[socket.socket]:
    """`count` listening sockets on distinct free ports of HOST, for haproxy to inherit."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        socks.append(sock)
        sock.bind((HOST, 0))
        sock.listen(512)
    return socks
