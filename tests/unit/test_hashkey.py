"""The keys of `balance uri`, `url_param`, `hdr(NAME)` and `source` in HTTP mode (taken as
HAProxy's backend.c takes them), and the balancer the factory builds for them: the same key
reaches the same server with either hash-type, and a request without a key is balanced
round robin.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.core.balancer import Balancer
from poise.core.balancer.factory import make_balancer
from poise.core.balancer.roundrobin import RoundRobin
from poise.core.balancer.source import HashBalancer
from poise.core.http.hashkey import (
    hash_key,
    header_key,
    main_domain,
    request_path,
    source_key,
    uri_key,
    url_param_key,
)
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.server import ServerState

A = model.Algorithm
HASH_TYPES = [model.HashType.MAP_BASED, model.HashType.CONSISTENT, model.HashType.MAGLEV]


def pick(
    balancer: Balancer, key: bytes | None, avoid: ServerState | None = None
) -> ServerState | None:
    """As Backend.take chooses: a request without a key goes to pick_without_key."""
    return balancer.pick(key, avoid) if key is not None else balancer.pick_without_key(avoid)


def aval(hash_type: model.HashType) -> bool:
    """`avalanche` as a bare `hash-type consistent` sets it (HAProxy's default)."""
    return hash_type is model.HashType.CONSISTENT


def make_servers(count: int = 4) -> list[ServerState]:
    address = model.Address("ipv4", "127.0.0.1", 8000)
    return [
        ServerState(model.Server(f"s{i + 1}", address, model.NOWHERE, i + 1), "be")
        for i in range(count)
    ]


def request(uri: str = "/", headers: list[tuple[str, str]] | None = None) -> Request:
    return Request("GET", uri, "1.1", Headers(headers or [("Host", "x")]), src="198.51.100.7")


# --- balance uri ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "options", "key"),
    [
        ("/a/b?x=1", {}, b"/a/b"),
        ("/a/b?x=1", {"whole": True}, b"/a/b?x=1"),
        ("/", {}, b"/"),
        ("/?x", {}, b"/"),
        ("/a/b/c?x", {"depth": 1}, b"/a"),
        ("/a/b/c?x", {"depth": 2}, b"/a/b"),
        ("/a/b/c?x", {"depth": 5}, b"/a/b/c"),
        ("/abcdef?x", {"length": 3}, b"/ab"),
        ("/a?bcdef", {"length": 5, "whole": True}, b"/a?bc"),
        ("/a/b/c", {"length": 3, "depth": 2}, b"/a/"),
        ("http://h.example/p/q?x", {}, b"http://h.example/p/q"),
        ("http://h.example/p/q?x", {"path_only": True}, b"/p/q"),
        ("http://h.example?x", {"path_only": True}, b""),
        ("*", {"path_only": True}, b""),
        ("/p?x", {"path_only": True}, b"/p"),
    ],
)
def test_uri_key(uri: str, options: dict[str, Any], key: bytes) -> None:
    assert uri_key(uri, **options) == key


def test_request_path() -> None:
    assert request_path("/p?q") == "/p?q"
    assert request_path("https://user@h:8443/p/q?x") == "/p/q?x"
    assert request_path("h.example:443") == ""  # authority form: no "://"
    assert request_path("") == ""
    assert request_path("*") == ""


@given(st.text(alphabet="/ab?=&", max_size=30))
def test_uri_key_is_a_prefix_up_to_the_query(uri: str) -> None:
    key = uri_key(uri).decode()
    assert uri.startswith(key)
    assert "?" not in key
    assert uri[len(key) :] == "" or uri[len(key)] == "?"


# --- balance url_param ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("/?id=42", b"42"),
        ("/p?a=1&id=42&b=2", b"42"),
        ("/p?xid=1&id=2", b"2"),  # a longer name is not the parameter
        ("/p?id=1&id=2", b"1"),  # the first one
        ("/p?id=", b""),  # present and empty: hashed (HAProxy hashes the empty value)
        ("/p?id=a%20b&c", b"a%20b"),  # not decoded
        ("/p?ID=1", None),  # names compare case-sensitively
        ("/p?id", None),
        ("/p?ida=1", None),
        ("/p", None),
        ("/p?", None),
        ("/p?a=1;id=2", None),  # only "&" separates parameters
    ],
)
def test_url_param_key(uri: str, key: bytes | None) -> None:
    assert url_param_key(uri, "id") == key


def test_url_param_without_a_name() -> None:
    assert url_param_key("/?=1", "") is None


# --- balance hdr(NAME) ---------------------------------------------------------------------


def test_header_key() -> None:
    headers = Headers([("Host", "www.example.com"), ("X-Id", " a , b"), ("X-Empty", "")])
    assert header_key(headers, "host") == b"www.example.com"
    assert header_key(headers, "HOST", domain_only=True) == b"example"
    assert header_key(headers, "x-id") == b"a"  # the first value
    assert header_key(headers, "x-empty") is None
    assert header_key(headers, "x-missing") is None
    quoted = Headers([("X-Q", '"a,b", c')])
    assert header_key(quoted, "x-q") == b'"a,b"'


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("haproxy.1wt.eu", "1wt"),  # configuration.txt's example
        ("www.example.com", "example"),
        ("example.com", "example"),
        ("example.com:8080", "example"),
        ("localhost", "localhost"),
        ("a.b.c.d", "c"),
        ("a..b", "a."),
    ],
)
def test_use_domain_only(value: str, domain: str) -> None:
    assert main_domain(value) == domain


# --- balance source ------------------------------------------------------------------------


def test_source_key() -> None:
    assert source_key("198.51.100.7") == bytes([198, 51, 100, 7])
    assert source_key("::1") == bytes(15) + b"\x01"
    assert source_key("/run/poise.sock") is None


# --- hash_key: the algorithm says what is hashed ----------------------------------------


def test_hash_key_per_algorithm() -> None:
    req = request("/a/b?id=7&x=1", [("Host", "www.example.com"), ("X-User", "u1")])
    assert hash_key(model.Balance(A.URI), req) == b"/a/b"
    assert hash_key(model.Balance(A.URL_PARAM, argument="id"), req) == b"7"
    assert hash_key(model.Balance(A.URL_PARAM, argument="nope"), req) is None
    assert hash_key(model.Balance(A.HDR, argument="x-user"), req) == b"u1"
    assert hash_key(model.Balance(A.HDR, argument="x-nope"), req) is None
    assert hash_key(model.Balance(A.SOURCE), req) == bytes([198, 51, 100, 7])
    assert hash_key(model.Balance(A.ROUNDROBIN), req) == b""


def test_hash_key_reads_the_balance_options() -> None:
    req = request("http://h/a/b/c?x=1", [("Host", "www.example.com")])
    options = model.BalanceOptions

    def key(algorithm: model.Algorithm, **kwargs: object) -> bytes | None:
        argument = "host" if algorithm is A.HDR else None
        balance = model.Balance(algorithm, argument=argument, options=options(**kwargs))  # type: ignore[arg-type]
        return hash_key(balance, req)

    assert key(A.URI, whole=True) == b"http://h/a/b/c?x=1"
    assert key(A.URI, path_only=True, depth=2) == b"/a/b"
    assert key(A.URI, length=6) == b"http:/"
    assert key(A.HDR, use_domain_only=True) == b"example"
    assert key(A.RDP_COOKIE) is None  # no RDP cookie in an HTTP request


# --- the balancer: deterministic with a key, round robin without ---------------------------


@pytest.mark.parametrize("algorithm", [A.URI, A.URL_PARAM, A.HDR])
@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_factory_builds_the_request_hash(
    algorithm: model.Algorithm, hash_type: model.HashType
) -> None:
    servers = make_servers()
    balancer = make_balancer(model.Balance(algorithm, hash_type=hash_type), servers, False)
    assert isinstance(balancer, HashBalancer)
    assert balancer.deterministic
    assert balancer.hash_type is hash_type


@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_the_same_key_reaches_the_same_server(hash_type: model.HashType) -> None:
    servers = make_servers()
    balance = model.Balance(
        A.URL_PARAM, hash_type=hash_type, argument="user", avalanche=aval(hash_type)
    )
    first = make_balancer(balance, servers, False)
    other = make_balancer(balance, make_servers(), False)  # another worker, same config
    chosen: Counter[str] = Counter()
    for user in range(400):
        req = request(f"/cart?user={user}")
        key = hash_key(balance, req)
        server = pick(first, key)
        assert server is not None
        chosen[server.name] += 1
        assert pick(first, key) is server
        again = pick(other, key)
        assert again is not None and again.name == server.name
    assert set(chosen) == {"s1", "s2", "s3", "s4"}


@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_no_key_is_round_robin(hash_type: model.HashType) -> None:
    servers = make_servers(3)
    balance = model.Balance(A.HDR, hash_type=hash_type, argument="x-user")
    balancer = make_balancer(balance, servers, False)
    key = hash_key(balance, request("/"))
    assert key is None
    # One lap: the map (s1 s2 s3), the ring (16 points per server), poise's round robin.
    lap = 48 if hash_type is model.HashType.CONSISTENT else 3
    names = [s.name for s in (pick(balancer, key) for _ in range(2 * lap)) if s is not None]
    assert names[:lap] == names[lap:]
    assert Counter(names[:lap]) == {"s1": lap // 3, "s2": lap // 3, "s3": lap // 3}
    if hash_type is not model.HashType.CONSISTENT:
        assert names[:3] == ["s1", "s2", "s3"]
    # `avoid` (a redispatch) and server state changes apply to the fallback too.
    avoided = pick(balancer, None, avoid=servers[0])
    assert avoided is not None and avoided is not servers[0]
    servers[1].up = False
    balancer.update()
    assert {s.name for s in (pick(balancer, None) for _ in range(4)) if s} == {"s1", "s3"}


def test_a_key_moves_only_when_its_server_leaves() -> None:
    servers = make_servers(5)
    balance = model.Balance(A.URI, hash_type=model.HashType.CONSISTENT, avalanche=True)
    balancer = make_balancer(balance, servers, False)
    keys = [f"/page/{i}".encode() for i in range(2000)]
    before = {key: pick(balancer, key) for key in keys}
    servers[2].up = False
    balancer.update()
    moved = 0
    for key in keys:
        now = pick(balancer, key)
        assert now is not None and now is not servers[2]
        if before[key] is not servers[2] and now is not before[key]:
            moved += 1
    assert moved < 0.15 * len(keys)


def test_pick_with_other_balancers() -> None:
    servers = make_servers(2)
    balancer = RoundRobin(servers)
    assert pick(balancer, None) is servers[0]
    assert pick(balancer, b"anything") is servers[1]
