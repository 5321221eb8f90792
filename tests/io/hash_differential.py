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
import random
import selectors
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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

HOST = "127.0.0.1"
DEADLINE = 120.0  # seconds any single socket operation may take before the run fails


Round = tuple[tuple[int, ...], tuple[tuple[int, int], ...]]


@dataclass
class Case:
    """One configuration: a `listen` section and the keys sent through it."""

    name: str
    balance: str  # the `balance` line's arguments
    hash_type: str | None  # the `hash-type` line's arguments, None for none
    weights: Sequence[int]
    keys: str  # uri | url_param | hdr | host | source | rdp
    count: int
    backups: Sequence[int] = ()  # indexes of backup servers
    extra: Sequence[str] = ()  # more lines for the section
    # Rounds of keys, each after setting the servers' states: the indexes of the servers
    # in maintenance, and runtime weights (index, weight) for `set weight`.
    rounds: Sequence[Round] = (((), ()),)
    later: int = 0  # keys sent in the rounds after the first (0: all of them)
    port: int = 0
    ports: list[int] = field(default_factory=list)  # rdp: the servers' own listeners

    @property
    def mode(self) -> str:
        return "tcp" if self.keys == "rdp" else "http"


def config_text(cases: Sequence[Case], sockdir: Path, sink: int, tagged: bool = True) -> str:
    """haproxy's configuration; without `tagged`, poise's: the same but for the lines that
    only serve to observe haproxy (x-srv) or that poise lacks (tcp-request)."""
    lines = [
        "global",
        f"    stats socket {sockdir}/admin.sock level admin",
        "    maxconn 4000",
        "    noreuseport",  # a port taken meanwhile fails the start, never shares a port
        "defaults",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 60s",
        "frontend sink",
        "    mode http",
        f"    bind {HOST}:{sink}",
        "    http-request return status 200",
    ]
    for case in cases:
        lines += [f"listen {case.name}", f"    mode {case.mode}", f"    bind {HOST}:{case.port}"]
        lines.append(f"    balance {case.balance}")
        if case.hash_type is not None:
            lines.append(f"    hash-type {case.hash_type}")
        if case.mode == "http" and tagged:
            lines += ["    http-reuse always", "    http-response set-header x-srv %[srv_name]"]
        if case.mode == "tcp" and tagged:
            lines += [
                "    tcp-request inspect-delay 10s",
                "    tcp-request content accept if RDP_COOKIE",
            ]
        lines += [f"    {line}" for line in case.extra]
        for i, weight in enumerate(case.weights):
            port = case.ports[i] if case.ports else sink
            backup = " backup" if i in case.backups else ""
            lines.append(f"    server s{i + 1} {HOST}:{port} weight {weight}{backup}")
    return "\n".join(lines) + "\n"


# -- keys ------------------------------------------------------------------------------------

_SEGMENT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$'()*+,;:@"
_TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789-._~"


def _word(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def make_uri(rng: random.Random) -> str:
    """An origin-form or absolute-form URI with 0-6 directories and maybe a query."""
    path = "".join("/" + _word(rng, _SEGMENT, 0, 12) for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.1:
        path += "/"
    if rng.random() < 0.5:
        path += "?" + "&".join(
            f"{_word(rng, _TOKEN, 1, 5)}={_word(rng, _SEGMENT, 0, 8)}"
            for _ in range(rng.randint(1, 3))
        )
        if rng.random() < 0.2:
            path += "/x/?y"
    if rng.random() < 0.15:
        return f"http://{_word(rng, _TOKEN, 1, 10)}.example:8080{path}"
    return path


def make_param_uri(rng: random.Random, name: str) -> str:
    params = [f"{_word(rng, _TOKEN, 1, 6)}={_word(rng, _TOKEN, 0, 6)}" for _ in range(3)]
    value = _word(rng, _SEGMENT.replace("&", "").replace("%", ""), 0, 20)
    params.insert(rng.randint(0, 3), f"{name}={value}")
    if rng.random() < 0.2:
        params.insert(0, f"{name}x=decoy")
    return "/" + _word(rng, _TOKEN, 0, 10) + "?" + "&".join(params)


def make_header(rng: random.Random) -> str:
    """A header value: a token, a host name, or a comma-separated list."""
    kind = rng.random()
    if kind < 0.4:
        return _word(rng, _TOKEN, 1, 24)
    if kind < 0.8:
        return ".".join(_word(rng, _TOKEN.replace(".", ""), 1, 8) for _ in range(rng.randint(1, 4)))
    return ", ".join(_word(rng, _TOKEN, 1, 8) for _ in range(rng.randint(2, 3)))


def make_source(rng: random.Random) -> str:
    return f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def make_rdp(rng: random.Random, name: str) -> bytes:
    """An X.224 Connection Request with a routing cookie (MS-RDPBCGR 2.2.1.1)."""
    cookie = f"Cookie: {name}={_word(rng, _TOKEN, 1, 16)}\r\n".encode()
    body = b"\xe0\x00\x00\x00\x00\x00" + cookie + b"\x01\x00\x08\x00\x03\x00\x00\x00"
    size = 4 + 1 + len(body)
    return b"\x03\x00" + size.to_bytes(2, "big") + bytes([len(body)]) + body


def make_keys(case: Case, seed: int) -> list[str]:
    rng = random.Random(f"{case.name}-{seed}")
    if case.keys == "uri":
        return [make_uri(rng) for _ in range(case.count)]
    if case.keys == "url_param":
        name = case.balance.split()[1]
        return [make_param_uri(rng, name) for _ in range(case.count)]
    if case.keys == "keyless":
        return ["/" + _word(rng, _TOKEN, 0, 10) for _ in range(case.count)]
    if case.keys in ("hdr", "host"):
        return [make_header(rng) for _ in range(case.count)]
    if case.keys == "source":
        return sorted({make_source(rng) for _ in range(case.count)})
    assert case.keys == "rdp"
    return [make_rdp(rng, "mstshash").decode("latin-1") for _ in range(case.count)]


def request_bytes(case: Case, key: str) -> bytes:
    if case.keys in ("uri", "url_param", "keyless"):
        # haproxy refuses an absolute URI whose authority is not the Host header.
        host = key.split("/")[2] if key.startswith("http://") else "h"
        return f"GET {key} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode("latin-1")
    # A header follows the hashed one: with use_domain_only, haproxy reads the byte after
    # the value (one past its end), which is then that header's name, not stale data.
    if case.keys == "hdr":
        return f"GET / HTTP/1.1\r\nhost: h\r\nx-key: {key}\r\nx-after: 1\r\n\r\n".encode()
    if case.keys == "host":
        return f"GET / HTTP/1.1\r\nhost: {key}\r\nx-after: 1\r\n\r\n".encode()
    return b"GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n"


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

    def __init__(self, text: str, sockdir: Path) -> None:
        path = sockdir / "haproxy.cfg"
        path.write_text(text)
        self.socket = sockdir / "admin.sock"
        pidfile = sockdir / "haproxy.pid"
        started = subprocess.run(
            ["haproxy", "-D", "-p", str(pidfile), "-f", str(path)],
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
    sink, *ports = free_ports(1 + len(cases))
    name_servers: list[NameServers] = []
    for case in cases:
        case.port = ports.pop()
        if case.mode == "tcp":
            listeners = NameServers(len(case.weights))
            name_servers.append(listeners)
            case.ports = listeners.ports
    poise = PoiseModel(config_text(cases, sockdir, sink, tagged=False))
    haproxy = HAProxy(config_text(cases, sockdir, sink), sockdir)
    outcomes = []
    try:
        for case in cases:
            keys = make_keys(case, seed)
            for number, state in enumerate(case.rounds):
                if number == 1 and case.later:
                    keys = keys[: case.later]
                down, weights = state
                changed = dict(weights)
                for i, weight in enumerate(case.weights):
                    server = f"{case.name}/s{i + 1}"
                    admin = "maint" if i in down else "ready"
                    haproxy.command(f"set server {server} state {admin}")
                    answer = haproxy.command(f"set weight {server} {changed.get(i, weight)}")
                    assert not answer.strip(), answer
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
        haproxy.close()
        for listeners in name_servers:
            listeners.close()
    return outcomes


def ask(case: Case, keys: Sequence[str]) -> list[str]:
    if case.keys == "source":
        payload = request_bytes(case, "")
        return ask_one_by_one(case.port, keys, [payload] * len(keys))
    if case.keys == "rdp":
        return ask_one_by_one(case.port, [HOST] * len(keys), [k.encode("latin-1") for k in keys])
    # Requests without a key are balanced round robin: in order, on one connection.
    connections = 1 if case.keys == "keyless" else 8
    return ask_pipelined(case.port, [request_bytes(case, key) for key in keys], connections)


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all held open while they are chosen (a port chosen
    and closed may come again, and haproxy would bind two listeners to it)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            socks.append(sock)
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


# -- the configurations ------------------------------------------------------------------------

MIXED = (1, 2, 3, 10, 256)  # weights: gcd 1, a heavy server
# Down and back: one server, two, all but one, then all up again.
DOWN_AND_BACK: tuple[Round, ...] = (
    ((), ()),
    ((0,), ()),
    ((0, 3), ()),
    ((1, 2, 3, 4), ()),
    ((), ()),
)


def matrix(main: int, other: int, sources: int, rdp: int) -> list[Case]:
    """Every configuration compared: `main` keys for the two main ones (balance uri, both
    hash types; then `other` keys in each round of servers going down and back), `other`
    for the other HTTP ones, `sources` client addresses for `balance source` and `rdp`
    connections for `rdp-cookie`."""
    cases = [
        Case(name, "uri", hash_type, MIXED, "uri", main, rounds=DOWN_AND_BACK, later=other)
        for name, hash_type in (("uri_map", None), ("uri_consistent", "consistent"))
    ]
    for method in ("map-based", "consistent"):
        short = "map" if method == "map-based" else "cons"
        for function in ("sdbm", "djb2", "wt6", "crc32"):
            for avalanche in ("", " avalanche"):
                name = f"fn_{short}_{function}{'_aval' if avalanche else ''}"
                hash_type = f"{method} {function}{avalanche}"
                cases.append(Case(name, "uri whole", hash_type, MIXED, "uri", other))
        cases += [
            Case(f"w_equal_{short}", "uri", method, (1, 1, 1, 1), "uri", other),
            Case(f"w_gcd_{short}", "uri", method, (5, 10, 15, 20), "uri", other),
            Case(f"w_heavy_{short}", "uri", method, (256, 255, 7, 1), "uri", other),
            Case(f"w_zero_{short}", "uri", method, (1, 0, 2), "uri", other),
            Case(f"uri_len_{short}", "uri len 8", method, MIXED, "uri", other),
            Case(f"uri_depth_{short}", "uri depth 2", method, MIXED, "uri", other),
            Case(f"uri_path_{short}", "uri path-only", method, MIXED, "uri", other),
            Case(
                f"uri_all_{short}",
                "uri path-only whole len 20 depth 3",
                method,
                MIXED,
                "uri",
                other,
            ),
            Case(f"param_{short}", "url_param id", method, MIXED, "url_param", other),
            Case(f"hdr_{short}", "hdr(x-key)", method, MIXED, "hdr", other),
            Case(f"hdr_dom_{short}", "hdr(x-key) use_domain_only", method, MIXED, "hdr", other),
            Case(f"host_dom_{short}", "hdr(host) use_domain_only", method, MIXED, "host", other),
            Case(
                f"source_{short}", "source", method, MIXED, "source", sources, rounds=DOWN_AND_BACK
            ),
            Case(
                f"source_aval_{short}",
                "source",
                f"{method} crc32 avalanche",
                (1, 1, 2),
                "source",
                sources,
            ),
            Case(f"rdp_{short}", "rdp-cookie", method, MIXED, "rdp", rdp),
            Case(f"rdp_named_{short}", "rdp-cookie(mstshash)", method, (1, 2), "rdp", rdp),
        ]
        # Backups: used when every active server is down; the first one alone, or all of
        # them with `option allbackups`.
        backups = (1, 2, 3, 4, 5)
        all_down: tuple[Round, ...] = (((), ()), ((0, 1), ()), ((0, 1, 2), ()), ((), ()))
        for extra, tag in (((), ""), (("option allbackups",), "_all")):
            cases.append(
                Case(f"backup{tag}_{short}", "uri", method, backups, "uri", other,
                     backups=(2, 3, 4), extra=extra, rounds=all_down)
            )  # fmt: skip
    # Requests without a key: round robin over the map or the ring, in order.
    for method in ("map-based", "consistent"):
        short = "map" if method == "map-based" else "cons"
        cases.append(
            Case(f"keyless_{short}", "url_param id", method, MIXED, "keyless", other,
                 rounds=DOWN_AND_BACK)
        )  # fmt: skip
    # Runtime weights (consistent hashing is dynamic; map-based takes only 0 and 100%).
    cases.append(
        Case("set_weight_cons", "uri", "consistent", MIXED, "uri", other,
             rounds=(((), ()), ((), ((0, 7), (4, 3))), ((2,), ((1, 0),)), ((), ())))
    )  # fmt: skip
    return cases
