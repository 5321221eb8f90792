"""Cookie persistence against HAProxy 2.6.12. The expected strings of the HAProxy cases
(Set-Cookie values, the Cookie headers the server received, `cache-control: private`, the
log's cookie characters) were captured from a real `haproxy -db` on 127.0.0.1 in front of
a raw backend that echoed the request head it got, with `now` the second in which HAProxy
answered; the few cases marked "derived" apply a captured rule at another instant. Then
the date codec (Hypothesis round trips), the exact maxidle/maxlife boundaries, every mode
and flag, down and maintenance servers with `option persist` and `redispatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.core.http.headers import Headers
from poise.core.http.persistence import (
    CookieMatch,
    b64tos30,
    cookie_flags,
    decode_date,
    encode_date,
    request_cookie,
    response_cookie,
    s30tob64,
    set_cookie_value,
)
from poise.core.server import AdminState, ServerState

DAY = 86400
PASSIVE: Any = "passive"  # `cookie NAME` with no mode (not in model.Cookie's Literal yet)


def cookie(name: str = "SRV", mode: Any = "insert", **flags: Any) -> model.Cookie:
    return model.Cookie(name, model.NOWHERE, mode, **flags)


def server(name: str, value: str | None, index: int = 1) -> ServerState:
    address = model.Address("ipv4", "127.0.0.1", 8000 + index)
    return ServerState(model.Server(name, address, model.NOWHERE, index, cookie=value), "be")


def farm(*names: str, values: dict[str, str | None] | None = None) -> list[ServerState]:
    values = values or {}
    return [server(name, values.get(name, name), i + 1) for i, name in enumerate(names)]


SEED = cookie("POISEID", indirect=True, nocache=True, maxidle=DAY, maxlife=DAY)


@dataclass
class Exchange:
    """One transaction through the persistence rules, as the HTTP session runs it."""

    match: CookieMatch
    forwarded: list[str]  # the Cookie header values the server receives
    response: list[str] = field(default_factory=list)  # set-cookie/cache-control lines
    response_status: str = ""

    @property
    def flags(self) -> str:
        return self.match.status + self.response_status


def exchange(
    cfg: model.Cookie,
    servers: list[ServerState],
    cookies: list[str],
    now: int,
    *,
    answered: str | None = None,
    server_sets: tuple[str, ...] = (),
    headers: tuple[tuple[str, str], ...] = (),
    method: str = "GET",
    status: int = 200,
    persist: bool = False,
    redispatch: bool = False,
) -> Exchange:
    """Request side, then the response of `answered` (by default the cookie's server, or
    the first server that takes new clients, as the balancer would), which sets the
    cookies `server_sets` and carries `headers`."""
    request = Headers([("Host", "x"), *(("Cookie", value) for value in cookies)])
    match = request_cookie(cfg, request, servers, now, persist=persist, redispatch=redispatch)
    forwarded = request.get_all("cookie")
    if answered is None:
        chosen = match.server or next(s for s in servers if s.usable)
    else:
        chosen = next(s for s in servers if s.name == answered)
        if match.server is not None and match.server is not chosen:
            match.redispatched()
    response = Headers([*(("Set-Cookie", value) for value in server_sets), *headers])
    result = response_cookie(
        cfg, match, chosen, response, now, request_method=method, status=status
    )
    lines = [
        f"{n.lower()}: {v}" for n, v in response if n.lower() in ("set-cookie", "cache-control")
    ]
    return Exchange(match, forwarded, lines, result)


# --- the date codec ---------------------------------------------------------------------


def test_dates_haproxy_wrote() -> None:
    # Set-Cookie: POISEID=ag1|awF7y|awF7y written by HAProxy 2.6 at 1795259336.
    assert encode_date(1795259336) == "awF7y"
    assert encode_date(1795259336.999) == "awF7y"
    assert decode_date("awF7y") == 1795259336
    # (seconds + 3) / 4: the date read back is never earlier than the date written.
    assert [encode_date(t) for t in range(1795259368, 1795259373)] == [
        "awF76",
        "awF77",
        "awF77",
        "awF77",
        "awF77",
    ]
    assert decode_date("awF77") == 1795259372


def test_invalid_dates_read_as_none() -> None:
    assert b64tos30("!!!!!") == -1
    assert b64tos30("abcd") == -1  # fewer than 5 characters
    assert b64tos30("abcd=") == -1  # no padding
    assert b64tos30("{D:no") == -1
    assert decode_date("AAAAA") == 0  # a zero date is no date
    assert decode_date("A") == 0
    assert b64tos30("awF7y|xyz") == b64tos30("awF7y")  # five characters are read


@given(st.integers(min_value=0, max_value=(1 << 30) - 1))
def test_s30_round_trip(value: int) -> None:
    text = s30tob64(value)
    assert len(text) == 5
    assert b64tos30(text) == value


@given(st.integers(min_value=1, max_value=(1 << 32) - 5))
def test_date_round_trip(now: int) -> None:
    date = decode_date(encode_date(now))
    assert date % 4 == 0
    assert now <= date <= now + 3


@given(st.integers(min_value=0, max_value=(1 << 40)))
def test_s30_keeps_30_bits(value: int) -> None:
    assert b64tos30(s30tob64(value)) == value & ((1 << 30) - 1)


# --- the seed: insert indirect nocache maxidle 1d maxlife 1d ------------------------------

NOW = 1795259371  # the second HAProxy answered these requests
SEED_CASES = [
    # name, cookies sent, answered by, expected flags, expected Set-Cookie
    ("no cookie", [], "ag2", "NI", "POISEID=ag2|awF77|awF77; path=/"),
    ("fresh", ["POISEID=ag1|awF76|awF76"], None, "VU", "POISEID=ag1|awF77|awF76; path=/"),
    ("idle refresh", ["POISEID=ag1|awF7h|awAqz"], None, "VU", "POISEID=ag1|awF77|awAqz; path=/"),
    ("idle expired", ["POISEID=ag1|awAqZ|awF7h"], "ag2", "EI", "POISEID=ag2|awF77|awF77; path=/"),
    ("life expired", ["POISEID=ag1|awF76|awAqZ"], "ag1", "OI", "POISEID=ag1|awF77|awF77; path=/"),
    ("future date", ["POISEID=ag1|awLNz|awF76"], "ag2", "EI", "POISEID=ag2|awF77|awF77; path=/"),
    ("no dates", ["POISEID=ag1"], None, "VU", "POISEID=ag1|awF77|awF77; path=/"),
    ("invalid", ["POISEID=zz"], "ag1", "II", "POISEID=ag1|awF77|awF77; path=/"),
    ("empty", ["POISEID="], "ag2", "II", "POISEID=ag2|awF77|awF77; path=/"),
    ("other server", ["POISEID=ag2|awF76|awF76"], None, "VU", "POISEID=ag2|awF77|awF76; path=/"),
    ("bad idle date", ["POISEID=ag1|!!!!!|awF76"], None, "VU", "POISEID=ag1|awF77|awF76; path=/"),
    ("short date", ["POISEID=ag1|abcd"], None, "VU", "POISEID=ag1|awF77|awF77; path=/"),
    ("name is case-sensitive", ["poiseid=ag1"], "ag1", "NI", "POISEID=ag1|awF77|awF77; path=/"),
]


@pytest.mark.parametrize(
    ("cookies", "answered", "flags", "set_cookie"),
    [case[1:] for case in SEED_CASES],
    ids=[case[0] for case in SEED_CASES],
)
def test_seed_cookie_as_haproxy(
    cookies: list[str], answered: str | None, flags: str, set_cookie: str
) -> None:
    result = exchange(SEED, farm("ag1", "ag2"), cookies, NOW, answered=answered)
    assert result.flags == flags
    assert result.response == [f"set-cookie: {set_cookie}"]


def test_seed_first_visit_with_cacheable_response() -> None:
    # The response carried `Cache-Control: max-age=60`: HAProxy added `private` after it.
    result = exchange(
        SEED,
        farm("ag1", "ag2"),
        [],
        NOW,
        answered="ag2",
        headers=(("Cache-Control", "max-age=60"),),
    )
    assert result.response == [
        "cache-control: max-age=60",
        "set-cookie: POISEID=ag2|awF77|awF77; path=/",
        "cache-control: private",
    ]
    # Without freshness nor validator HAProxy 2.6 counts the response as not cacheable.
    plain = exchange(SEED, farm("ag1", "ag2"), [], 1795259336, answered="ag1")
    assert plain.response == ["set-cookie: POISEID=ag1|awF7y|awF7y; path=/"]


def test_seed_valid_cookie_is_not_set_again_before_its_date() -> None:
    # Derived from the captured boundaries below: a last date at or after `now` is kept.
    servers = farm("ag1", "ag2")
    for now in (1795259369, 1795259372):  # the cookie's last date is 1795259372
        result = exchange(SEED, servers, ["POISEID=ag1|awF77|awF77"], now)
        assert (result.flags, result.response, result.forwarded) == ("VN", [], [])
    later = exchange(SEED, servers, ["POISEID=ag1|awF77|awF77"], 1795259373)
    assert later.response == ["set-cookie: POISEID=ag1|awF78|awF77; path=/"]


def test_server_set_cookie_of_the_same_name_is_replaced() -> None:
    servers = farm("ag1", "ag2")
    own = ("POISEID=mine; path=/",)
    new = exchange(SEED, servers, [], NOW, answered="ag2", server_sets=own)
    assert (new.flags, new.response) == ("NI", ["set-cookie: POISEID=ag2|awF77|awF77; path=/"])
    valid = exchange(SEED, servers, ["POISEID=ag1|awF76|awF76"], NOW, server_sets=own)
    assert (valid.flags, valid.response) == ("VU", ["set-cookie: POISEID=ag1|awF77|awF76; path=/"])


# --- indirect: what the server receives ----------------------------------------------------

D = "POISEID=ag1|awF76|awF76"
STRIP_CASES = [
    ("middle", [f"a=1; {D}; b=2"], ["a=1; b=2"], "V"),
    ("first", [f"{D}; a=1"], ["a=1"], "V"),
    ("last, no space", [f"a=1;{D}"], ["a=1"], "V"),
    ("spaces around", [f"a=1 ;  {D} ;   b=2"], ["a=1; b=2"], "V"),
    ("alone", [D], [], "V"),
    ("rfc2109 attributes", [f"$Version=1; {D}; $Path=/; a=1"], ["$Version=1; a=1"], "V"),
    ("attribute after it only", [f"{D}; $Path=/"], [], "V"),
    ("spaces at the equal signs", ["a = 1; POISEID = ag1|awF76|awF76; b= 2"], ["a=1; b=2"], "V"),
    ("commas", [f"a=1, {D}, b=2"], ["a=1, b=2"], "V"),
    ("a cookie without value", [f"{D}; flag; b=2"], ["flag; b=2"], "V"),
    ("quoted semicolon", [f'a="x;y"; {D}'], ['a="x;y"'], "V"),
    ("twice", [f"{D}; {D}"], [], "V"),
    ("twice around another", [f"{D}; c=3; POISEID=ag2"], ["c=3"], "V"),
    ("other name only", ["poiseid=ag1"], ["poiseid=ag1"], "N"),
    (
        "across headers",
        ["x=y; POISEID=ag2|awF76|awF76", "POISEID=ag1", "z=w"],
        ["x=y", "z=w"],
        "V",
    ),
]


@pytest.mark.parametrize(
    ("cookies", "forwarded", "status"),
    [case[1:] for case in STRIP_CASES],
    ids=[case[0] for case in STRIP_CASES],
)
def test_indirect_strips_like_haproxy(
    cookies: list[str], forwarded: list[str], status: str
) -> None:
    headers = Headers([("Host", "x"), *(("Cookie", c) for c in cookies), ("Accept", "*/*")])
    match = request_cookie(SEED, headers, farm("ag1", "ag2"), NOW, persist=False, redispatch=False)
    assert headers.get_all("cookie") == forwarded
    assert match.status == status
    assert headers.modified == (forwarded != cookies)
    # The other header lines keep their place.
    names = [n for n, _ in headers]
    assert (names[0], names[-1]) == ("Host", "Accept")


def test_the_first_cookie_naming_a_server_wins() -> None:
    servers = farm("ag1", "ag2")
    now = 1795259397
    cases = [
        (["POISEID=ag1; POISEID=zz"], "ag1", "VU"),
        (["POISEID=zz; POISEID=ag1"], "ag1", "VU"),
        (["POISEID=ag1; POISEID=ag2"], "ag1", "VU"),
        (["POISEID=ag2; POISEID=ag1"], "ag2", "VU"),
        # An expired cookie after a valid one marks the status, not the choice.
        (["POISEID=ag1; POISEID=ag1|awAqg|awF8B"], "ag1", "EU"),
        (["POISEID=ag1|awAqg|awF8B; POISEID=ag2"], "ag2", "VU"),
        (["POISEID=ag1", "POISEID=zz"], "ag1", "VU"),
    ]
    for cookies, chosen, flags in cases:
        result = exchange(SEED, servers, cookies, now)
        assert result.match.server is not None
        assert (result.match.server.name, result.flags) == (chosen, flags), cookies
        assert result.response == [f"set-cookie: POISEID={chosen}|awF8C|awF8C; path=/"]


@given(
    st.lists(
        st.tuples(
            st.text(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-", min_size=1, max_size=8
            ),
            st.text("abcdefghijklmnopqrstuvwxyz0123456789%/.:-_", max_size=12),
        ).filter(lambda kv: kv[0] != "POISEID"),
        max_size=6,
    ),
    st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=3),
)
def test_indirect_removes_only_the_persistence_cookie(
    others: list[tuple[str, str]], positions: list[int]
) -> None:
    pairs = [f"{k}={v}" for k, v in others]
    sent = list(pairs)
    for position in positions:
        sent.insert(min(position, len(sent)), "POISEID=ag2")
    headers = Headers([("Cookie", "; ".join(sent))])
    match = request_cookie(SEED, headers, farm("ag1", "ag2"), NOW, persist=False, redispatch=False)
    assert match.server is not None and match.server.name == "ag2"
    assert headers.get_all("cookie") == (["; ".join(pairs)] if pairs else [])


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_headers_without_the_cookie_are_untouched(value: str) -> None:
    value = value.replace("POISEID", "P").replace(" =", "=").replace("= ", "=")
    value = value.replace("\t", "")
    headers = Headers([("Cookie", value)])
    match = request_cookie(SEED, headers, farm("ag1", "ag2"), NOW, persist=False, redispatch=False)
    assert headers.items == [("Cookie", value)] and not headers.modified
    assert match.status == "N" and match.server is None


# --- modes and flags --------------------------------------------------------------------

T = 1795259411
S1 = ("s1",)
ETAG = (("ETag", "1"),)


def test_insert_indirect_nocache() -> None:
    plain = cookie(indirect=True, nocache=True)
    first = exchange(plain, farm(*S1), [], T, headers=ETAG)
    assert (first.flags, first.response) == (
        "NI",
        ["set-cookie: SRV=s1; path=/", "cache-control: private"],
    )
    valid = exchange(plain, farm(*S1), ["SRV=s1; a=b"], T, headers=ETAG)
    assert (valid.flags, valid.response, valid.forwarded) == ("VN", [], ["a=b"])
    # A valid client: the server's own cookie is deleted and nothing is inserted.
    deleted = exchange(plain, farm(*S1), ["SRV=s1"], T, server_sets=("SRV=x; path=/",))
    assert (deleted.flags, deleted.response) == ("VD", [])
    # A new client: the server's cookie is replaced, the others stay in place.
    replaced = exchange(
        plain, farm(*S1), [], T, server_sets=("SRV=x; path=/", "other=1"), headers=ETAG
    )
    assert (replaced.flags, replaced.response) == (
        "NI",
        ["set-cookie: other=1", "set-cookie: SRV=s1; path=/", "cache-control: private"],
    )
    # Spaces around "=" of every Set-Cookie are removed, as HAProxy does.
    spaced = exchange(
        plain, farm(*S1), ["SRV=s1"], T, server_sets=("other = v ; path=/", "SRV = x")
    )
    assert (spaced.flags, spaced.response) == ("VD", ["set-cookie: other=v ; path=/"])


def test_dates_sent_without_maxidle_or_maxlife_are_dropped() -> None:
    plain = cookie(indirect=True, nocache=True)
    last = exchange(plain, farm(*S1), ["SRV=s1|awF8E"], T)
    assert (last.flags, last.response) == ("VU", ["set-cookie: SRV=s1; path=/"])
    both = exchange(plain, farm(*S1), ["SRV=s1|awLN9|awAqj"], T)
    assert (both.flags, both.response) == ("VU", ["set-cookie: SRV=s1; path=/"])


def test_attributes_in_haproxy_order() -> None:
    flagged = cookie(
        httponly=True,
        secure=True,
        domains=(".example.com", "example.org"),
        attrs=("SameSite=Lax", "Partitioned"),
    )
    result = exchange(flagged, farm(*S1), [], T)
    assert (result.flags, result.response) == (
        "NI",
        [
            "set-cookie: SRV=s1; path=/; domain=.example.com; domain=example.org; HttpOnly; "
            "Secure; SameSite=Lax; Partitioned"
        ],
    )


def test_postonly() -> None:
    post = cookie(postonly=True, indirect=True)
    assert exchange(post, farm(*S1), [], T).flags == "NN"
    inserted = exchange(post, farm(*S1), [], T, method="POST")
    assert (inserted.flags, inserted.response) == ("NI", ["set-cookie: SRV=s1; path=/"])
    assert exchange(post, farm(*S1), ["SRV=s1"], T, method="POST").flags == "VN"


def test_preserve() -> None:
    keep = cookie(preserve=True, indirect=True, nocache=True)
    logout = "SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT"
    kept = exchange(keep, farm(*S1), [], T, server_sets=(logout,), headers=ETAG)
    assert (kept.flags, kept.response) == ("NP", [f"set-cookie: {logout}"])
    silent = exchange(keep, farm(*S1), [], T, headers=ETAG)
    assert (silent.flags, silent.response) == (
        "NI",
        ["set-cookie: SRV=s1; path=/", "cache-control: private"],
    )
    valid = exchange(keep, farm(*S1), ["a=1; SRV=s1"], T)
    assert (valid.flags, valid.forwarded) == ("VN", ["a=1"])


def test_insert_without_indirect_forwards_the_cookie() -> None:
    insert = cookie()
    valid = exchange(insert, farm(*S1), ["SRV=s1; x=1"], T)
    assert (valid.flags, valid.forwarded, valid.response) == ("VN", ["SRV=s1; x=1"], [])
    assert exchange(insert, farm(*S1), [], T).response == ["set-cookie: SRV=s1; path=/"]


def test_rewrite() -> None:
    rewrite = cookie(mode="rewrite")
    new = exchange(rewrite, farm(*S1), [], T, server_sets=("SRV=abc; path=/; HttpOnly",))
    assert (new.flags, new.response) == ("NR", ["set-cookie: SRV=s1; path=/; HttpOnly"])
    valid = exchange(rewrite, farm(*S1), ["SRV=s1"], T, server_sets=("SRV=abc",))
    assert (valid.flags, valid.response, valid.forwarded) == (
        "VR",
        ["set-cookie: SRV=s1"],
        ["SRV=s1"],
    )
    assert exchange(rewrite, farm(*S1), [], T).flags == "NN"
    # A server without a cookie value: its cookie passes as it is.
    bare = exchange(rewrite, farm("s1", values={"s1": None}), [], T, server_sets=("SRV=abc",))
    assert (bare.flags, bare.response) == ("NP", ["set-cookie: SRV=abc"])


def test_prefix() -> None:
    prefix = cookie("JSESSIONID", "prefix")
    new = exchange(prefix, farm(*S1), [], T, server_sets=("JSESSIONID=abc; path=/",))
    assert (new.flags, new.response) == ("NR", ["set-cookie: JSESSIONID=s1~abc; path=/"])
    valid = exchange(
        prefix, farm(*S1), ["a=1; JSESSIONID=s1~abc; b=2"], T, server_sets=("JSESSIONID=def",)
    )
    assert (valid.flags, valid.forwarded, valid.response) == (
        "VR",
        ["a=1; JSESSIONID=abc; b=2"],
        ["set-cookie: JSESSIONID=s1~def"],
    )
    cases = [
        ("JSESSIONID=s1", "VN", "JSESSIONID=s1"),  # no "~": the whole value names the server
        ("JSESSIONID=zz~abc", "IN", "JSESSIONID=abc"),
        ("JSESSIONID=~abc", "IN", "JSESSIONID=abc"),
        ("JSESSIONID=s1|awAqj~abc", "IN", "JSESSIONID=abc"),  # no dates in prefix mode
    ]
    for sent, flags, forwarded in cases:
        result = exchange(prefix, farm(*S1), [sent], T)
        assert (result.flags, result.forwarded) == (flags, [forwarded]), sent
    bare = exchange(prefix, farm("s1", values={"s1": None}), [], T, server_sets=("JSESSIONID=abc",))
    assert (bare.flags, bare.response) == ("NP", ["set-cookie: JSESSIONID=abc"])


def test_prefix_indirect() -> None:
    prefix = cookie("JSESSIONID", "prefix", indirect=True)
    valid = exchange(prefix, farm(*S1), ["JSESSIONID=s1~abc"], T, server_sets=("JSESSIONID=def",))
    assert (valid.flags, valid.forwarded, valid.response) == ("VD", ["JSESSIONID=abc"], [])
    new = exchange(prefix, farm(*S1), [], T, server_sets=("JSESSIONID=def",))
    assert (new.flags, new.response) == ("NR", ["set-cookie: JSESSIONID=s1~def"])


def test_passive() -> None:
    passive = cookie(mode=PASSIVE)
    valid = exchange(passive, farm(*S1), ["SRV=s1"], T, server_sets=("SRV=s1",))
    assert (valid.match.status, valid.forwarded, valid.response) == (
        "V",
        ["SRV=s1"],
        ["set-cookie: SRV=s1"],
    )
    # HAProxy logs "--" for a passive cookie (its log tests rewrite|insert|prefix|indirect).
    assert cookie_flags(passive, valid.match.status, valid.response_status) == "--"
    for flag in ({"nocache": True}, {"httponly": True}, {"domains": ("example.com",)}):
        assert cookie_flags(cookie(mode=PASSIVE, **flag), "V", "P") == "--"
    indirect = cookie(mode=PASSIVE, indirect=True)
    deleted = exchange(indirect, farm(*S1), ["SRV=s1"], T, server_sets=("SRV=s1",))
    assert (deleted.flags, deleted.forwarded, deleted.response) == ("VD", ["SRV=s1"], [])
    passed = exchange(indirect, farm(*S1), [], T, server_sets=("SRV=s1",))
    assert (passed.flags, passed.response) == ("NP", ["set-cookie: SRV=s1"])
    assert cookie_flags(indirect, "N", "P") == "NP"
    assert cookie_flags(None, "N", "N") == "--"
    assert cookie_flags(SEED, "V", "U") == "VU"


def test_server_without_cookie_value_gets_an_expired_cookie() -> None:
    nock = cookie(indirect=True, nocache=True)
    servers = farm("s1", values={"s1": None})
    expired = "set-cookie: SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"
    assert exchange(nock, servers, [], T).response == [expired]
    result = exchange(nock, servers, ["SRV=x"], T)
    assert (result.flags, result.response) == ("II", [expired])


# --- maxidle and maxlife: exact boundaries (HAProxy 2.6, one request per second) ------------


@pytest.mark.parametrize(
    ("now", "sent", "flags", "set_cookie"),
    [
        (T, None, "NI", "SRV=s1|awF8F; path=/"),
        (T, "SRV=s1|awF7/", "VU", "SRV=s1|awF8F; path=/"),
        (T, "SRV=s1|awF76", "EI", "SRV=s1|awF8F; path=/"),
        (T, "SRV=s1|{D:now+86400}|awF76", "VU", "SRV=s1|awF8F; path=/"),  # drops the first date
        (1795259426, "SRV=s1|awF8B", "VU", "SRV=s1|awF8J; path=/"),  # idle 30 s: kept
        (1795259427, "SRV=s1|awF8B", "EI", "SRV=s1|awF8J; path=/"),  # idle 31 s: expired
        (1795259428, "SRV=s1|awLNp", "VN", None),  # 86400 s in the future: kept
        (1795259431, "SRV=s1|awLNq", "EI", "SRV=s1|awF8K; path=/"),  # 86401 s: expired
        (1795259432, "SRV=s1|awF8K", "VN", None),  # dated now: no refresh
        (1795259435, "SRV=s1|awF8L", "VN", None),  # dated 1 s ahead
    ],
)
def test_maxidle(now: int, sent: str | None, flags: str, set_cookie: str | None) -> None:
    idle = cookie(indirect=True, maxidle=30)
    result = exchange(idle, farm(*S1), [sent] if sent else [], now)
    assert result.flags == flags
    assert result.response == ([f"set-cookie: {set_cookie}"] if set_cookie else [])
    assert result.forwarded == []


@pytest.mark.parametrize(
    ("now", "sent", "flags", "set_cookie"),
    [
        (T, None, "NI", "SRV=s1|awF8F|awF8F; path=/"),
        (T, "SRV=s1|{D:now+86400}|awF7/", "VN", None),
        (T, "SRV=s1|{D:now+86400}|awF76", "OI", "SRV=s1|awF8F|awF8F; path=/"),
        (T, "SRV=s1|awF76", "VU", "SRV=s1|awF8F|awF8F; path=/"),  # gets its first date
        (1795260030, "SRV=s1|awF+g|awF+Y", "VN", None),  # 30 s old: kept
        (1795260031, "SRV=s1|awF+g|awF+Y", "OI", "SRV=s1|awF+g|awF+g; path=/"),  # 31 s: old
        (1795260032, "SRV=s1|awF+g|awLQA", "VN", None),  # 86400 s in the future: kept
        (1795260035, "SRV=s1|awF+h|awLQB", "OI", "SRV=s1|awF+h|awF+h; path=/"),  # 86401 s
    ],
)
def test_maxlife(now: int, sent: str | None, flags: str, set_cookie: str | None) -> None:
    life = cookie(indirect=True, maxlife=30)
    result = exchange(life, farm(*S1), [sent] if sent else [], now)
    assert result.flags == flags
    assert result.response == ([f"set-cookie: {set_cookie}"] if set_cookie else [])


def test_maxlife_is_checked_before_maxidle() -> None:
    both = cookie(indirect=True, maxidle=30, maxlife=30)
    result = exchange(both, farm(*S1), ["SRV=s1|awF/G|awF/G"], 1795260225)
    assert (result.flags, result.response) == ("OI", ["set-cookie: SRV=s1|awF/R|awF/R; path=/"])
    assert (result.match.first_date, result.match.last_date) == (0, 0)


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=1, max_value=120))
def test_idle_expiry_is_strictly_after_maxidle(age: int, maxidle: int) -> None:
    now = 1_800_000_000 + (age % 4)  # any phase of the 4-second dates
    date = (now - age) & ~3
    real_age = now - date
    text = s30tob64(date >> 2)
    match = request_cookie(
        cookie(indirect=True, maxidle=maxidle),
        Headers([("Cookie", f"SRV=s1|{text}")]),
        farm(*S1),
        now,
        persist=False,
        redispatch=False,
    )
    assert match.status == ("E" if real_age > maxidle else "V")


# --- down servers, option persist, option redispatch ---------------------------------------


def down_farm() -> list[ServerState]:
    servers = farm("s1", "s2", "s3")
    servers[1].admin = AdminState.MAINT  # `disabled`
    servers[2].up = False  # failed its checks
    return servers


def test_a_down_server_is_ignored() -> None:
    plain = cookie(indirect=True, nocache=True)
    for sent in ("SRV=s3", "SRV=s2"):
        result = exchange(plain, down_farm(), [sent], T)
        assert result.match.server is None
        assert (result.flags, result.response) == ("DI", ["set-cookie: SRV=s1; path=/"])


def test_option_persist_sends_to_the_down_server() -> None:
    plain = cookie(indirect=True, nocache=True)
    maint = exchange(plain, down_farm(), ["SRV=s2"], T, persist=True)
    assert maint.match.server is not None and maint.match.server.name == "s2"
    assert (maint.flags, maint.response) == ("DN", [])  # served by s2, nothing inserted
    match = request_cookie(
        plain, Headers([("Cookie", "SRV=s3")]), down_farm(), T, persist=True, redispatch=False
    )
    # No redispatch: the connection to s3 fails and the client gets a 503 (HAProxy: SCDN).
    assert (match.status, match.direct, match.redispatch) == ("D", True, False)
    assert match.server is not None and match.server.name == "s3"


def test_persist_with_redispatch_goes_elsewhere_on_failure() -> None:
    result = exchange(
        cookie(indirect=True),
        down_farm(),
        ["SRV=s3"],
        T,
        persist=True,
        redispatch=True,
        answered="s1",
    )
    assert (result.flags, result.response) == ("DI", ["set-cookie: SRV=s1; path=/"])
    assert not result.match.direct and result.match.redispatch


def test_a_shared_value_picks_the_first_server_up() -> None:
    servers = [server("a", "x", 1), server("b", "x", 2)]
    servers[0].up = False
    result = exchange(cookie(indirect=True), servers, ["SRV=x"], T)
    assert result.match.server is servers[1]
    assert (result.flags, result.response) == ("VN", [])
    # Derived (HAProxy tests the operational state only): a draining server keeps its
    # persistent clients.
    servers[1].admin = AdminState.DRAIN  # draining servers keep their persistent clients
    match = request_cookie(
        cookie(), Headers([("Cookie", "SRV=x")]), servers, T, persist=False, redispatch=False
    )
    assert match.server is servers[1] and match.status == "V"


def test_first_date_survives_a_move_to_another_server() -> None:
    life = cookie(indirect=True, maxlife=DAY)
    servers = farm("s1", "s3")
    servers[1].up = False
    result = exchange(life, servers, ["SRV=s3|awF/Q|awF+3"], 1795260225)
    assert result.flags == "DI"
    assert result.response == ["set-cookie: SRV=s1|awF/R|awF+3; path=/"]


# --- nocache: when HAProxy 2.6 adds cache-control: private --------------------------------

CACHE_CASES: list[tuple[str, int, tuple[tuple[str, str], ...], bool]] = [
    ("GET", 200, (), False),
    ("GET", 200, (("Cache-Control", "public"),), False),
    ("GET", 200, (("Cache-Control", "max-age=60"),), True),
    ("GET", 200, (("Cache-Control", "public, max-age=60"),), True),
    ("GET", 200, (("Expires", "Thu, 01 Jan 2030 00:00:00 GMT"),), True),
    ("GET", 200, (("Expires", ""),), True),
    ("GET", 200, (("Last-Modified", "Thu, 01 Jan 2020 00:00:00 GMT"),), True),
    ("GET", 200, (("ETag", '"x"'),), True),
    ("GET", 200, (("Cache-Control", "no-cache"),), False),
    ("GET", 200, (("Cache-Control", "NO-CACHE"), ("ETag", "1")), False),
    ("GET", 200, (("Cache-Control", "no-store"), ("ETag", "1")), False),
    ("GET", 200, (("Cache-Control", "max-age=0"),), False),
    ("GET", 200, (("Cache-Control", "max-age=00"),), True),
    ("GET", 200, (("Cache-Control", "s-maxage=0"), ("ETag", "1")), False),
    ("GET", 200, (("Cache-Control", "s-maxage=1"),), True),
    ("GET", 200, (("Cache-Control", "Max-Age=1"),), True),
    ("GET", 200, (("Cache-Control", "max-agexyz"),), True),
    ("GET", 200, (("Cache-Control", "  max-age=60 "),), True),
    ("GET", 200, (("Cache-Control", 'no-cache="set-cookie"'), ("ETag", "1")), True),
    ("GET", 200, (("Cache-Control", "private, max-age=60"),), False),
    ("GET", 200, (("Cache-Control", "private, public, max-age=60"),), True),
    ("GET", 200, (("Cache-Control", "public, private, max-age=60"),), False),
    ("GET", 200, (("Cache-Control", "private"), ("Cache-Control", "max-age=60")), False),
    ("GET", 200, (("Cache-Control", "max-age=60"), ("Cache-Control", "private")), False),
    ("GET", 200, (("Cache-Control", "max-age=60, no-cache"),), False),
    ("GET", 200, (("Pragma", "no-cache"), ("Cache-Control", "max-age=60")), False),
    ("GET", 200, (("Pragma", "NO-CACHE"), ("Cache-Control", "max-age=60")), False),
    ("GET", 200, (("Pragma", "no-cache, x"), ("ETag", "1")), True),
    ("GET", 200, (("Pragma", "no-cachex"), ("ETag", "1")), True),
    ("GET", 200, (("Pragma", "x"), ("Pragma", "no-cache"), ("Cache-Control", "max-age=60")), True),
    ("HEAD", 200, (("ETag", "1"),), True),
    ("OPTIONS", 200, (("ETag", "1"),), True),
    ("TRACE", 200, (("ETag", "1"),), True),
    ("DELETE", 200, (("ETag", "1"),), False),
    ("PUT", 200, (("ETag", "1"),), False),
    ("POST", 200, (("Cache-Control", "max-age=60"),), False),
    ("POST", 200, (("Cache-Control", "public, max-age=60"),), True),
    ("POST", 200, (("Cache-Control", "public"), ("Expires", "1")), True),
    *[
        ("GET", code, (("Cache-Control", "max-age=60"),), True)
        for code in (203, 204, 206, 300, 301, 404, 405, 410, 414, 501)
    ],
    *[
        ("GET", code, (("Cache-Control", "max-age=60"),), False)
        for code in (201, 302, 304, 308, 500)
    ],
    ("GET", 302, (("Cache-Control", "public, max-age=60"),), True),
    ("GET", 503, (("Cache-Control", "public,max-age=60"),), True),
    ("GET", 101, (("Cache-Control", "public, max-age=60"),), False),
]


@pytest.mark.parametrize(("method", "status", "headers", "private"), CACHE_CASES)
def test_nocache_as_haproxy(
    method: str, status: int, headers: tuple[tuple[str, str], ...], private: bool
) -> None:
    result = exchange(
        cookie(indirect=True, nocache=True),
        farm(*S1),
        [],
        T,
        method=method,
        status=status,
        headers=headers,
    )
    added = result.response[len([h for h in headers if h[0].lower() == "cache-control"]) :]
    assert added == ["set-cookie: SRV=s1; path=/", *(["cache-control: private"] if private else [])]


def test_interim_responses_are_left_alone() -> None:
    headers = Headers([("Set-Cookie", "SRV=x")])
    match = CookieMatch()
    result = response_cookie(
        SEED, match, server("ag1", "ag1"), headers, NOW, request_method="GET", status=100
    )
    assert (result, headers.items, headers.modified) == ("N", [("Set-Cookie", "SRV=x")], False)


# --- the value builder -------------------------------------------------------------------


def test_set_cookie_value() -> None:
    assert set_cookie_value(SEED, "ag1", 1795259336, 0) == "POISEID=ag1|awF7y|awF7y; path=/"
    assert set_cookie_value(SEED, "ag1", 1795259371, 1795259368) == (
        "POISEID=ag1|awF77|awF76; path=/"
    )
    assert set_cookie_value(SEED, None, 0, 0) == (
        "POISEID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"
    )
    # Derived: the captured maxidle form with the captured attribute order.
    idle = cookie(maxidle=60, domains=("a.example",), secure=True)
    assert set_cookie_value(idle, "s1", 1795259411, 123456) == (
        "SRV=s1|awF8F; path=/; domain=a.example; Secure"
    )


def test_match_defaults_and_redispatch() -> None:
    match = CookieMatch()
    assert (match.server, match.status, match.direct) == (None, "N", False)
    match.server = server("s1", "s1")
    assert match.direct
    match.redispatched()
    assert match.server is None and not match.direct
