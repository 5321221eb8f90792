"""The judgement of `poise doctor`, continued: which server answered (the persistence cookie,
else a server header), whether a client's requests stay on it (`sticky`) and clients spread
over several (`spread`), and whether a WebSocket passes and stays open (`websocket`,
`websocket.idle`). The names are stable. Pure.

Seeds/000: sessions must be sticky, and WebSockets must be let through.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from poise.doctor.facts import (
    Idle,
    Persistence,
    Reply,
    Upgrade,
    parse_cookie_header,
    set_cookies,
)
from poise.doctor.judge import FAIL, HTTP_ADVICE, PASS, WARN, ms
from poise.doctor.report import Check

COOKIE_ADVICE = (
    "in the backend: `cookie SERVERID insert indirect nocache` (with `maxidle 1d` for a day), "
    "and `cookie VALUE` on each server line"
)


@dataclass(frozen=True, slots=True)
class Answered:
    """Who answered one request: `key` compares servers, `label` names one to a user."""

    key: str
    label: str
    known: bool = True  # with -f: the cookie value names a server of the configuration


def _cookie_server(name: str, value: str, persistence: Persistence) -> Answered | None:
    if persistence.cookie_servers and name not in persistence.cookie_servers:
        return None
    # insert/rewrite: SERVER|LAST|FIRST; prefix: SERVER~APPVALUE (configuration.txt 4.2)
    server_value = re.split(r"[|~]", value, maxsplit=1)[0]
    if not server_value:
        return None
    cookie = f"{name}={server_value}"
    mapped = persistence.cookie_servers.get(name, {}).get(server_value)
    label = mapped or cookie
    return Answered(cookie, label, known=mapped is not None or not persistence.cookie_servers)


def by_set_cookie(reply: Reply, persistence: Persistence) -> Answered | None:
    """The server named by the persistence cookie the balancer set on this reply."""
    for name, value in set_cookies(reply.all("set-cookie")).items():
        answered = _cookie_server(name, value, persistence)
        if answered is not None:
            return answered
    return None


def by_sent_cookie(reply: Reply, persistence: Persistence) -> Answered | None:
    for name, value in parse_cookie_header(reply.sent_cookie).items():
        answered = _cookie_server(name, value, persistence)
        if answered is not None:
            return answered
    return None


def by_header(reply: Reply, persistence: Persistence) -> Answered | None:
    for name in persistence.server_headers:
        value = reply.header(name)
        if value:
            return Answered(f"{name}: {value}", f"{name}: {value}")
    return None


def judge_server(reply: Reply, persistence: Persistence) -> Check | None:
    """`http.server`: which server answered, by the persistence cookie or a header."""
    if reply.error:
        return None
    cookie = by_set_cookie(reply, persistence)
    header = by_header(reply, persistence)
    also = f"; {header.label}" if header else ""
    if cookie is not None and not cookie.known:
        return Check(
            "http.server",
            WARN,
            f"{cookie.key}: no server of the configuration has this cookie value{also}",
            "is the configuration given with -f the one the balancer runs?",
        )
    if cookie is not None:
        named = (
            f"{cookie.label} (cookie {cookie.key})" if cookie.label != cookie.key else cookie.key
        )
        return Check("http.server", PASS, f"{named}{also}")
    if header is not None:
        return Check("http.server", PASS, f"{header.label} (no persistence cookie was set)")
    return Check(
        "http.server",
        WARN,
        "cannot tell which server answered: no persistence cookie (Set-Cookie) and no "
        "server header",
        f"{COOKIE_ADVICE}; or name the servers' own header with --server-header NAME",
    )


def _answered(
    replies: Sequence[Reply], persistence: Persistence, with_jar: bool
) -> list[Answered] | None:
    """Who answered each reply, compared by one source for all: a server header when every
    reply has one, else the persistence cookie (set on the reply, or, with a cookie jar,
    the one sent and honoured); None when some reply cannot be told. Named by the cookie
    when there is one (it says `backend/server` with -f)."""
    found: list[tuple[Answered | None, Answered | None]] = []
    for reply in replies:
        cookie = by_set_cookie(reply, persistence)
        if cookie is None and with_jar:
            cookie = by_sent_cookie(reply, persistence)
        found.append((by_header(reply, persistence), cookie))
    if all(header for header, _ in found):
        return [
            Answered(header.key, cookie.label if cookie else header.label)
            for header, cookie in found
            if header
        ]
    if all(cookie for _, cookie in found):
        return [cookie for _, cookie in found if cookie]
    return None


def _failed(name: str, replies: Sequence[Reply]) -> Check | None:
    for number, reply in enumerate(replies, 1):
        if reply.error or reply.status >= 500:
            what = reply.error or f"{reply.status} {reply.reason}"
            return Check(
                name,
                FAIL,
                f"request {number} failed: {what}",
                HTTP_ADVICE.get(reply.status, "look at the balancer's log (termination state)"),
            )
    return None


def _tally(answered: Sequence[Answered]) -> str:
    counts = Counter(a.label for a in answered)
    return ", ".join(f"{label} x{count}" for label, count in counts.items())


def judge_sticky(replies: Sequence[Reply], persistence: Persistence) -> Check:
    """`sticky`: requests with a cookie jar stay on one server (seed: sessions must be
    sticky). The first request goes without a cookie and gets one."""
    failed = _failed("sticky", replies)
    if failed is not None:
        return failed
    count = len(replies)
    cookie_set = any(by_set_cookie(reply, persistence) for reply in replies)
    answered = _answered(replies, persistence, with_jar=True)
    if answered is None:
        return Check(
            "sticky",
            WARN,
            f"cannot tell which server answered {count} requests: no persistence cookie "
            "and no server header",
            f"{COOKIE_ADVICE}; or name the servers' own header with --server-header NAME",
        )
    servers = {a.key for a in answered}
    if len(servers) > 1:
        unset = "" if cookie_set else " (the balancer set no persistence cookie)"
        return Check(
            "sticky",
            FAIL,
            f"{count} requests with the cookie went to {len(servers)} servers{unset}: "
            f"persistence is not working (seed: sessions must be sticky): {_tally(answered)}",
            COOKIE_ADVICE,
        )
    if not cookie_set:
        return Check(
            "sticky",
            WARN,
            f"all {count} requests went to {answered[0].label}, but the balancer set no "
            "persistence cookie: the same server by chance, by source address, or the only one",
            COOKIE_ADVICE,
        )
    return Check(
        "sticky", PASS, f"{count} requests with the cookie all went to {answered[0].label}"
    )


def judge_spread(replies: Sequence[Reply], persistence: Persistence) -> Check:
    """`spread`: requests without a cookie go to more than one server."""
    failed = _failed("spread", replies)
    if failed is not None:
        return failed
    count = len(replies)
    answered = _answered(replies, persistence, with_jar=False)
    if answered is None:
        return Check(
            "spread",
            WARN,
            f"cannot tell which server answered {count} requests without a cookie: no "
            "persistence cookie set and no server header",
            "name the servers' own header with --server-header NAME",
        )
    servers = {a.key for a in answered}
    if len(servers) == 1:
        return Check(
            "spread",
            WARN,
            f"all {count} requests without a cookie went to {answered[0].label}",
            "one server in the backend, `balance source`, or the others down or in "
            "maintenance? (poise ctl -S SOCKET show servers state)",
        )
    return Check(
        "spread",
        PASS,
        f"{count} requests without a cookie went to {len(servers)} servers: {_tally(answered)}",
    )


# --- WebSocket ----------------------------------------------------------------------------

WEBSOCKET_ADVICE = (
    "let `Upgrade: websocket` through: remove the `http-request deny` (or the ACL) that "
    "matches it, and set `timeout tunnel` (e.g. 1h) for the open connection"
)


def judge_websocket(upgrade: Upgrade, persistence: Persistence) -> Check:
    target = f"GET {upgrade.path} with Upgrade: websocket"
    if upgrade.error:
        return Check(
            "websocket",
            FAIL,
            f"{target}: {upgrade.error}: WebSockets are blocked",
            WEBSOCKET_ADVICE,
        )
    if upgrade.status != 101:
        header = by_header(Reply(headers=upgrade.headers), persistence)
        who = f"the server ({header.label})" if header else "the balancer or server"
        return Check(
            "websocket",
            FAIL,
            f"the upgrade got {upgrade.status} {upgrade.reason} from {who}: WebSockets are "
            "blocked".replace("  ", " "),
            WEBSOCKET_ADVICE,
        )
    done = f"101 Switching Protocols in {ms(upgrade.seconds)}"
    if upgrade.answer is not None:
        return Check(
            "websocket", PASS, f"{done}; a message made the round trip: {upgrade.answer!r}"
        )
    if upgrade.closed:
        return Check(
            "websocket",
            FAIL,
            f"{done}, then the connection was closed before a message came back",
            "the tunnel is cut after the upgrade: see `timeout tunnel` and the balancer's log",
        )
    return Check(
        "websocket",
        WARN,
        f"{done}, but no message came back (does the server answer messages?)",
        "send a message the application answers, or check it in the application's log",
    )


def judge_idle(idle: Idle, cause: str | None) -> Check:
    """`websocket.idle`: the connection stays open `wanted` seconds idle and still answers.
    `cause` is the configuration's likeliest closing timeout (with -f)."""
    if idle.error:
        return Check("websocket.idle", FAIL, f"could not test: {idle.error}", "")
    if idle.closed_after is not None:
        return Check(
            "websocket.idle",
            FAIL,
            f"closed after {idle.closed_after:.1f} s idle (wanted {idle.wanted:g} s)",
            cause
            or "a timeout of the balancer closed it: set `timeout tunnel` above the idle time "
            "(with -f CONFIG poise doctor names it), or have the client ping more often",
        )
    if idle.answer is None:
        return Check(
            "websocket.idle",
            WARN,
            f"still open after {idle.wanted:g} s idle, but no answer to a message",
            "see the application's log",
        )
    return Check(
        "websocket.idle",
        PASS,
        f"still open after {idle.wanted:g} s idle, and answered {idle.answer!r}",
    )
