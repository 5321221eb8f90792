"""The configurations and keys of the differential test against haproxy
(hash_differential.py): a `listen` section per configuration, and the keys sent through
it, drawn from a seeded generator (the same keys on every run).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"

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
    ids: Sequence[int] = ()  # the servers' `id` settings (0: none, numbered by haproxy)
    port: int = 0
    ports: list[int] = field(default_factory=list)  # rdp: the servers' own listeners

    @property
    def mode(self) -> str:
        return "tcp" if self.keys == "rdp" else "http"


def config_text(
    cases: Sequence[Case],
    sockdir: Path,
    sink: int,
    tagged: bool = True,
    fds: Mapping[int, int] | None = None,
) -> str:
    """haproxy's configuration; without `tagged`, poise's: the same but for the lines that
    only serve to observe haproxy (x-srv) or that poise lacks (tcp-request). With `fds`
    (port -> descriptor), each listener is the socket the caller bound and passes on."""

    def bind(port: int) -> str:
        return f"    bind fd@{fds[port]}" if fds is not None else f"    bind {HOST}:{port}"

    lines = [
        "global",
        f"    stats socket {sockdir}/admin.sock level admin",
        "    maxconn 4000",
        "defaults",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 60s",
        "frontend sink",
        "    mode http",
        bind(sink),
        "    http-request return status 200",
    ]
    for case in cases:
        lines += [f"listen {case.name}", f"    mode {case.mode}", bind(case.port)]
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
            server_id = f" id {case.ids[i]}" if case.ids and case.ids[i] else ""
            lines.append(f"    server s{i + 1} {HOST}:{port} weight {weight}{backup}{server_id}")
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
        sources: set[str] = set()
        while len(sources) < case.count:  # distinct addresses, as many as asked
            sources.add(make_source(rng))
        return sorted(sources)
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
    # Servers numbered by hand, and around those numbers (the ring's points follow the ids).
    for method in ("map-based", "consistent"):
        short = "map" if method == "map-based" else "cons"
        cases.append(
            Case(f"ids_{short}", "uri", method, MIXED, "uri", other, ids=(7, 0, 2, 0, 300))
        )
    # Runtime weights (consistent hashing is dynamic; map-based takes only 0 and 100%).
    cases.append(
        Case("set_weight_cons", "uri", "consistent", MIXED, "uri", other,
             rounds=(((), ()), ((), ((0, 7), (4, 3))), ((2,), ((1, 0),)), ((), ())))
    )  # fmt: skip
    return cases
