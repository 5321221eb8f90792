"""Cookie persistence: HAProxy's `cookie` keyword (configuration.txt 4.2) and the server's
`cookie VALUE` option (5.2), on both sides of one HTTP transaction. Pure: time comes in as
`now` (Unix seconds), the headers are edited in place.

Request side (`request_cookie`, HAProxy's manage_client_side_cookies): every Cookie header
is read in order; the persistence cookie is `NAME=SERVER[|LAST[|FIRST]]` (insert, rewrite
and passive modes) or `NAME=SERVER~APPVALUE` (prefix mode). Its dates are checked against
`maxlife` then `maxidle` (a date more than one day in the future is expired too); the first
server in declaration order whose `cookie` equals the value is chosen when it is not down
(a down or maintenance server is skipped, unless `option persist`). `insert indirect`
removes the cookie before the request goes to the server; prefix mode removes `SERVER~`.

Response side (`response_cookie`, manage_server_side_cookies and the insertion code of
http_process_res_common): the server's own Set-Cookie for NAME is kept (`preserve`),
deleted (insert mode, or indirect when the client came with a valid cookie), rewritten to
the server's value (rewrite) or prefixed with `SERVER~` (prefix); then insert mode adds
`NAME=SERVER[|LAST[|FIRST]]; path=/...` when the client had no valid cookie for this server
or its dates need a refresh, and `nocache` adds `cache-control: private` when the response
would otherwise be cacheable.

Both return HAProxy's cookie status characters for the log (configuration.txt 8.5: the
third and fourth characters of the termination state; `cookie_flags` gives the pair).

Everything here was compared with HAProxy 2.6.12 on 127.0.0.1, including the quirks that
come from its C code: spaces around `=` are removed from every cookie of a header it
parses, a later cookie of the same name does not turn a valid status into another one
(HAProxy's status field is a value tested with a bit mask), and the dates are counted in
4-second units written as 5 characters of base64 (s30tob64 / b64tos30 in base64.c).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from poise.config import model
from poise.core.http.headers import Headers, split_values
from poise.core.server import ServerState

# --- the cookie dates (HAProxy's base64.c) -----------------------------------------------

BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64_VALUE = {char: index for index, char in enumerate(BASE64)}
S30_MASK = (1 << 30) - 1
DATE_DELIM = "|"  # between the server's value and the dates (COOKIE_DELIM_DATE)
PREFIX_DELIM = "~"  # between the server's value and the application's (COOKIE_DELIM)
FUTURE_LIMIT = 86400  # a date further in the future than this is expired (4.2 maxidle)


def s30tob64(value: int) -> str:
    """The low 30 bits of `value` as 5 base64 characters, most significant first."""
    return "".join(BASE64[(value >> shift) & 0x3F] for shift in (24, 18, 12, 6, 0))


def b64tos30(text: str) -> int:
    """The value of the first 5 characters of `text` (from `s30tob64`), or -1 when one of
    them is not a base64 character or there are fewer than 5."""
    if len(text) < 5:
        return -1
    value = 0
    for char in text[:5]:
        digit = _BASE64_VALUE.get(char)
        if digit is None:
            return -1
        value = (value << 6) | digit
    return value


def encode_date(now: float) -> str:
    """The date HAProxy writes in a cookie at time `now`: (seconds + 3) / 4, so that the
    date read back is never earlier than `now`."""
    return s30tob64(((int(now) + 3) >> 2) & S30_MASK)


def decode_date(text: str) -> int:
    """The Unix time (a multiple of 4 seconds) of a cookie date, 0 when it is invalid or
    zero (HAProxy then treats the cookie as having no date)."""
    value = b64tos30(text)
    return value << 2 if value > 0 else 0


def _signed32(value: int) -> int:
    """`value` as a C `int` after the `(signed)` casts of HAProxy's date comparisons."""
    return ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# --- status characters (configuration.txt 8.5) --------------------------------------------

# Request: N no cookie, I invalid, D down, V valid, E expired (maxidle), O old (maxlife),
# U unused. Response: N none, I inserted, U updated (dates), P provided by the server and
# passed, R rewritten, D deleted.
REQUEST_STATUSES = "NIDVEOU"
RESPONSE_STATUSES = "NIUPRD"

# The names of the lines poise adds, as HAProxy 2.6 writes them on the wire (its HTTP/1
# output lowercases every header name).
SET_COOKIE = "set-cookie"
CACHE_CONTROL = "cache-control"
EXPIRED_COOKIE = "=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"

# RFC 7231 6.1: the status codes cacheable by default, as HAProxy lists them.
CACHEABLE_STATUSES = frozenset((200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501))
# RFC 7231 4.2.1: safe methods (HAProxy marks their transactions cacheable).
CACHEABLE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
NOT_CACHEABLE = frozenset(("private", "no-cache", "no-store", "max-age=0", "s-maxage=0"))

_SPACE = " \t"
_VALUE_END = re.compile(r'[,;"]')  # a cookie value ends at , or ; outside quotes
_SPACE_AT_EQUAL = re.compile(r"[ \t]=|=[ \t]")


@dataclass(slots=True)
class CookieMatch:
    """What the request's persistence cookie said, for the balancer and the response.

    `server` is set when the cookie designates a server that takes the request (HAProxy's
    SF_DIRECT): valid, or down with `option persist`. The balancer is then skipped; with
    `redispatch` (`option redispatch`) a failed connection may go to another server, and
    the session must call `redispatched()` when it does; without it, retries stay on this
    server and end in 503. `status` is the log character. The dates are what the cookie
    carried (Unix seconds, multiples of 4; 0 = none, or cleared because it expired).
    """

    server: ServerState | None = None
    status: str = "N"
    first_date: int = 0
    last_date: int = 0
    redispatch: bool = False
    # `force-persist` held: a down server named by the cookie is taken (HAProxy's
    # SF_FORCE_PRST); `ignore-persist` held: the cookie names no server and the response
    # is left alone, no cookie inserted (SF_IGNORE_PRST).
    force: bool = False
    ignore: bool = False

    @property
    def direct(self) -> bool:
        """The client reaches `server` because of its cookie."""
        return self.server is not None

    def redispatched(self) -> None:
        """The session left the cookie's server (redispatch after a failed connection or a
        full queue): as HAProxy clears SF_DIRECT, the response inserts a new cookie."""
        self.server = None


# --- request side -------------------------------------------------------------------------


def request_cookie(
    cfg: model.Cookie,
    headers: Headers,
    servers: Sequence[ServerState],
    now: float,
    *,
    persist: bool,
    redispatch: bool,
    force: bool = False,
    ignore: bool = False,
    assigned: ServerState | None = None,
) -> CookieMatch:
    """Read the persistence cookie of a request and strip what the server must not see.

    `servers` are the backend's servers in declaration order; `persist` is
    `option persist`, `redispatch` whether `option redispatch` is on (any interval);
    `force` and `ignore` what `force-persist` and `ignore-persist` said (CookieMatch);
    `assigned` the server a `use-server` rule chose, which HAProxy runs first: the cookie
    then names no server (status U) and the response inserts none.
    `headers` is edited in place: in `insert indirect` mode the cookie is removed (the
    whole Cookie header when nothing else is left), in prefix mode `SERVER~` is removed
    from its value; the other cookies keep their bytes (HAProxy only removes spaces
    around their `=`).
    """
    match = CookieMatch(assigned, redispatch=redispatch, force=force, ignore=ignore)
    reader = _ClientCookies(cfg, servers, int(now), persist or force, match)
    items = headers.items
    changed = False
    kept: list[tuple[str, str]] = []
    for name, value in items:
        if name.lower() == "cookie" and (cfg.name in value or _SPACE_AT_EQUAL.search(value)):
            new = reader.header(value)
            if new != value:
                changed = True
                if not new:
                    continue  # nothing left: the header goes
                kept.append((name, new))
                continue
        kept.append((name, value))
    if changed:
        headers.items = kept
        headers.modified = True
    return match


class _ClientCookies:
    """The request side of one transaction: what every Cookie header is checked against,
    and the match it fills."""

    __slots__ = ("cfg", "match", "now", "persist", "servers")

    def __init__(
        self,
        cfg: model.Cookie,
        servers: Sequence[ServerState],
        now: int,
        persist: bool,
        match: CookieMatch,
    ) -> None:
        self.cfg = cfg
        self.servers = servers
        self.now = now
        self.persist = persist
        self.match = match

    def header(self, value: str) -> str:
        """One Cookie header value after HAProxy's processing ("" to remove the header).

        Positions follow manage_client_side_cookies: `prev` is the delimiter before a
        cookie (0 for the first), `del_from` the delimiter before a cookie to remove once
        the next cookie to keep is found (or the end of the line), so that a run of removed
        cookies and the `$` attributes after them (RFC 2109) go together.
        """
        cfg = self.cfg
        prefix = cfg.mode == "prefix"
        strip = cfg.mode == "insert" and cfg.indirect
        del_from: int | None = None
        preserve = False
        prev = 0
        first = True
        while prev < len(value):
            att_beg = prev if first else prev + 1
            first = False
            end = len(value)
            while att_beg < end and value[att_beg] in _SPACE:
                att_beg += 1
            equal = att_end = att_beg
            while equal < end:
                char = value[equal]
                if char in "=,;":
                    break
                equal += 1
                if char not in _SPACE:
                    att_end = equal
            if equal < end and value[equal] == "=":
                val_beg = equal + 1
                while val_beg < end and value[val_beg] in _SPACE:
                    val_beg += 1
                nxt = _cookie_value_end(value, val_beg)
                val_end = nxt
                while val_end > val_beg and value[val_end - 1] in _SPACE:
                    val_end -= 1
            else:
                val_beg = val_end = nxt = equal
            if att_beg < end and value[att_beg] == "$":
                prev = nxt  # an RFC 2109 attribute: goes with the cookie before it
                continue
            if equal == nxt:  # no "=": not a cookie we know, kept
                preserve = True
                if del_from is not None:
                    value, delta = _delete_values(value, del_from, prev)
                    nxt += delta
                    del_from = None
                prev = nxt
                continue
            if att_end != equal or val_beg > equal + 1:  # spaces around "=": removed
                value = value[:att_end] + "=" + value[val_beg:]
                shift = att_end + 1 - val_beg
                equal, val_beg = att_end, att_end + 1
                val_end += shift
                nxt += shift
            if value[att_beg:att_end] != cfg.name:
                preserve = True
                if del_from is not None:
                    value, delta = _delete_values(value, del_from, prev)
                    nxt += delta
                    del_from = None
                prev = nxt
                continue
            delim = self.persistence_value(value, val_beg, val_end)
            if prefix and delim != val_end:
                # NAME=SERVER~APP: the server gets NAME=APP.
                value = value[:val_beg] + value[delim + 1 :]
                nxt += val_beg - (delim + 1)
                del_from = None
                preserve = True
            elif del_from is None and strip:
                del_from = prev
            prev = nxt
        if del_from is not None:
            value = value[:del_from] if preserve else ""
        return value

    def persistence_value(self, value: str, val_beg: int, val_end: int) -> int:
        """Decode one persistence cookie into the match; return where its server part
        ends (`val_beg` when it is to be ignored)."""
        cfg, match, now = self.cfg, self.match, self.now
        if cfg.mode == "prefix":
            delim = value.find(PREFIX_DELIM, val_beg, val_end)
            if delim < 0:
                delim = val_end
        else:
            delim = val_end
            bar = value.find(DATE_DELIM, val_beg, val_end)
            if bar >= 0:
                delim = bar
                bar += 1
                if val_end - bar >= 5 and (last := decode_date(value[bar : bar + 5])):
                    match.last_date = last
                bar2 = value.find(DATE_DELIM, bar, val_end)
                if bar2 >= 0 and val_end - bar2 > 5 and (first := decode_date(value[bar2 + 1 :])):
                    match.first_date = first
        maxlife = cfg.maxlife or 0
        maxidle = cfg.maxidle or 0
        if match.first_date and maxlife and _expired(match.first_date, now, maxlife):
            match.status = "O"
            delim = val_beg  # as if there were no cookie
            match.first_date = match.last_date = 0
        elif match.last_date and maxidle and _expired(match.last_date, now, maxidle):
            match.status = "E"
            delim = val_beg
            match.first_date = match.last_date = 0
        found = False
        if delim != val_beg and match.server is None and not match.ignore:
            wanted = value[val_beg:delim]
            for server in self.servers:
                if server.cookie is None or server.cookie != wanted:
                    continue
                if server.serves_persistent or self.persist:
                    match.status = "V" if server.serves_persistent else "D"
                    match.server = server
                    found = True
                    break
                match.status = "D"  # down: another server may share the value
        # HAProxy keeps the status in a field tested with a mask, so only "no cookie" and
        # "invalid" give way here: a valid, down, expired or old status from an earlier
        # cookie stays.
        if not found and match.status in ("N", "I"):
            match.status = "U" if match.server is not None or match.ignore else "I"
        return delim


def _expired(date: int, now: int, limit: int) -> bool:
    return _signed32(now - date) > limit or _signed32(date - now) > FUTURE_LIMIT


def _cookie_value_end(value: str, start: int) -> int:
    """Where a cookie value starting at `start` ends: the first , or ; outside a quoted
    string (a backslash escapes the next character inside one), or the end."""
    found = _VALUE_END.search(value, start)
    if found is None:
        return len(value)
    if found.group() != '"':
        return found.start()
    quoted = escaped = False
    for index in range(found.start(), len(value)):
        char = value[index]
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in ",;":
            return index
    return len(value)


def _delete_values(value: str, start: int, nxt: int) -> tuple[str, int]:
    """Remove the cookies between the delimiter at `start` (or the line's start) and the
    delimiter at `nxt` (HAProxy's http_del_hdr_value); return the value and how far what
    followed moved. The delimiter before the next cookie is kept, with one space after it
    when there was room."""
    end = len(value)
    if start == 0:
        if nxt < end:
            nxt += 1
        while nxt < end and value[nxt] in _SPACE:
            nxt += 1
        return value[nxt:], -nxt
    while start > 0 and value[start - 1] in _SPACE:
        start -= 1
    keep = ""
    if nxt < end:
        keep = value[nxt]
        nxt += 1
        if start + 2 < nxt:
            keep += " "
        while nxt < end and value[nxt] in _SPACE:
            nxt += 1
    return value[:start] + keep + value[nxt:], start + len(keep) - nxt


# --- response side ------------------------------------------------------------------------


def response_cookie(
    cfg: model.Cookie,
    match: CookieMatch,
    server: ServerState,
    resp_headers: Headers,
    now: float,
    *,
    request_method: str,
    status: int = 200,
) -> str:
    """Apply the persistence rules to the response of `server` (the server that answered)
    and return the response cookie status character for the log.

    `status` is the response's status code: pass it. With the method and the caching
    headers it decides whether `nocache` adds `cache-control: private` (HAProxy does not
    for a 302, say); 200 is assumed when it is left out. Call it for final responses and
    for 101 (HAProxy skips the other 1xx).
    """
    if (status < 200 and status != 101) or match.ignore:
        return "N"  # `ignore-persist`: the server's own cookie is not even looked at
    mode = cfg.mode
    direct = match.server is not None and match.server is server
    own = server.cookie
    result = "N"
    items = resp_headers.items
    changed = False
    kept: list[tuple[str, str]] = []
    for name, value in items:
        if name.lower() != "set-cookie":
            kept.append((name, value))
            continue
        new, seen = _server_set_cookie(value, cfg)
        if seen:
            result = "P"
            if cfg.preserve:
                pass
            elif mode == "insert" or (direct and cfg.indirect):
                result = "D"
                changed = True
                continue
            elif own is not None and mode in ("rewrite", "prefix"):
                new = _rewrite_set_cookie(new, own, mode == "prefix")
                result = "R"
        if new != value:
            changed = True
        kept.append((name, new))
    if changed:
        resp_headers.items = kept
        resp_headers.modified = True
    if mode != "insert" or (result == "P" and cfg.preserve):
        return result
    if cfg.postonly and request_method != "POST":
        return result
    if not _needs_cookie(cfg, match, direct, int(now)):
        return result
    resp_headers.add(SET_COOKIE, set_cookie_value(cfg, own, now, match.first_date))
    result = "U" if own is not None and direct else "I"
    if cfg.nocache and _cacheable(request_method, status, resp_headers):
        resp_headers.add(CACHE_CONTROL, "private")
    return result


def _needs_cookie(cfg: model.Cookie, match: CookieMatch, direct: bool, now: int) -> bool:
    """Insert mode: does this response carry a new Set-Cookie?"""
    if not direct:
        return True  # the client has no valid cookie for this server
    maxidle = cfg.maxidle or 0
    maxlife = cfg.maxlife or 0
    last, first = match.last_date, match.first_date
    if (maxidle or last) and (not last or last < now):
        return True  # the idle date must be written or refreshed (or dropped)
    return bool((maxlife and not first) or (not maxlife and first))


def set_cookie_value(cfg: model.Cookie, server_cookie: str | None, now: float, first: int) -> str:
    """The value of the Set-Cookie that insert mode adds, byte for byte as HAProxy 2.6
    writes it: `NAME=VALUE[|LAST[|FIRST]]; path=/[; domain=D]...[; HttpOnly][; Secure]
    [; ATTR]...`, or an expired empty cookie for a server that has no `cookie` value.
    `first` is the first date the client's cookie carried (0: now)."""
    if server_cookie is None:
        text = cfg.name + EXPIRED_COOKIE
    else:
        text = f"{cfg.name}={server_cookie}"
        if cfg.maxidle or cfg.maxlife:
            text += DATE_DELIM + encode_date(now)
            if cfg.maxlife:
                text += DATE_DELIM + (s30tob64(first >> 2) if first else encode_date(now))
        text += "; path=/"
    text += "".join(f"; domain={domain}" for domain in cfg.domains)
    if cfg.httponly:
        text += "; HttpOnly"
    if cfg.secure:
        text += "; Secure"
    return text + "".join(f"; {attr}" for attr in cfg.attrs)


def _server_set_cookie(value: str, cfg: model.Cookie) -> tuple[str, bool]:
    """A server's Set-Cookie value with the spaces around its first `=` removed (as
    HAProxy does to every Set-Cookie it parses), and whether it sets the persistence
    cookie (the name compares case-sensitively)."""
    end = len(value)
    att_beg = 0
    while att_beg < end and value[att_beg] in _SPACE:
        att_beg += 1
    equal = att_end = att_beg
    while equal < end:
        char = value[equal]
        if char in "=;":
            break
        equal += 1
        if char not in _SPACE:
            att_end = equal
    if equal >= end or value[equal] != "=":
        return value, False  # no "=": ignored
    val_beg = equal + 1
    while val_beg < end and value[val_beg] in _SPACE:
        val_beg += 1
    if att_end != equal or val_beg > equal + 1:
        value = value[:att_end] + "=" + value[val_beg:]
    return value, value[att_beg:att_end] == cfg.name


def _rewrite_set_cookie(value: str, server_cookie: str, prefix: bool) -> str:
    """rewrite: NAME=VALUE becomes NAME=SERVER; prefix: NAME=SERVER~VALUE (the value ends
    at the first , or ; outside quotes and before trailing spaces)."""
    val_beg = value.index("=") + 1
    if prefix:
        return value[:val_beg] + server_cookie + PREFIX_DELIM + value[val_beg:]
    val_end = _cookie_value_end(value, val_beg)
    while val_end > val_beg and value[val_end - 1] in _SPACE:
        val_end -= 1
    return value[:val_beg] + server_cookie + value[val_end:]


def _cacheable(method: str, status: int, headers: Headers) -> bool:
    """Would a shared cache store this response (HAProxy 2.6's TX_CACHEABLE)?

    Safe methods only (RFC 7231 4.2.1), statuses cacheable by default (6.1); then
    `Pragma: no-cache` (the first Pragma line, whole) forbids it; `Cache-Control` values
    are read in order: `public` allows, `private`, `no-cache`, `no-store`, `max-age=0` and
    `s-maxage=0` forbid; and a response with neither freshness (`max-age`, `s-maxage`,
    `Expires`) nor a validator (`ETag`, `Last-Modified`) is not stored (RFC 7234 3).
    """
    if status < 200:
        return False  # interim responses are never stored
    cacheable = method in CACHEABLE_METHODS and status in CACHEABLE_STATUSES
    pragma = headers.get("pragma")
    if pragma is not None and pragma.strip(_SPACE).lower() == "no-cache":
        return False
    fresh = False
    for line in headers.get_all("cache-control"):
        for element in split_values(line):
            lowered = element.lower()
            if lowered == "public":
                cacheable = True
            elif lowered in NOT_CACHEABLE:
                cacheable = False
            elif lowered.startswith('no-cache="set-cookie'):
                pass
            elif lowered.startswith(("s-maxage", "max-age")):
                fresh = True
    if not fresh:
        fresh = headers.has("expires")
    if not fresh and not (headers.has("etag") or headers.has("last-modified")):
        return False
    return cacheable


# --- log ----------------------------------------------------------------------------------


def cookie_flags(cfg: model.Cookie | None, request_status: str, response_status: str) -> str:
    """The 3rd and 4th characters of the termination state (`%tsc`): the two statuses, or
    "--" when the backend has no cookie, or a passive one (a mode other than insert,
    rewrite and prefix without `indirect`: HAProxy's log tests PR_CK_ANY)."""
    if cfg is None:
        return "--"
    mode: str = cfg.mode
    if mode not in ("insert", "rewrite", "prefix") and not cfg.indirect:
        return "--"
    return request_status + response_status
