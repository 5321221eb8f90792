"""HAProxy's small RAM cache (configuration.txt 6: `cache` sections, `http-request
cache-use`, `http-response cache-store`), as HAProxy 2.6's cache.c decides. Pure: time
comes in as `now` (Unix seconds).

`cache-use` keys the request (SHA-1 of `https://` + Host + the target, or the absolute
target) for GET and HEAD requests in HTTP/1.1 that may use a cache (no Authorization, no
Cache-Control max-age/no-cache/max-stale/min-fresh, no Pragma no-cache alone) and, on a
fresh entry, answers with the stored head plus `age`, or `304 Not Modified` when the
request's If-None-Match matches the stored ETag (or, without it, If-Modified-Since is not
older than the entry). `cache-store` keeps a 200 to such a GET whose response may be
stored (not private, no-cache, no-store, max-age=0, s-maxage=0 nor Pragma no-cache; with
a max-age, s-maxage or Expires, or else an ETag or Last-Modified; an Age above 0 and not
beyond its max age; no Vary, or with `process-vary on` a Vary naming only
Accept-Encoding and Referer: then the entry also has a secondary key, the response's
content encoding and the request's Referer, and serves the requests whose
Accept-Encoding accepts that encoding and whose Referer is the same; as in HAProxy 2.6,
whose key always holds the response's encoding, a Vary on Referer alone is stored but
never matches) and whose head and body fit in `max-object-size`; it lives
for the smallest of the cache's `max-age` and the response's. A successful unsafe request
(POST, PUT, DELETE ...) drops the entry of its key. The memory is bounded by
`total-max-size`: the least recently used entries go first.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from poise.config.model import Cache as CacheConfig
from poise.core.http import reply
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response

MAX_AGE = 2**31 - 1  # CACHE_ENTRY_MAX_AGE
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
_NOT_STORED = frozenset(("private", "no-cache", "no-store", "max-age=0", "s-maxage=0"))
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection"))
_REQUEST_IGNORES = ("max-age", "no-cache", "max-stale", "min-fresh")
CACHES: dict[str, Cache] = {}  # by name, for the rules (install)
# The stats' cache_lookups and cache_hits: ("fe" or "be", proxy name) -> [lookups, hits].
COUNTS: dict[tuple[str, str], list[int]] = {}


def install(configs: tuple[CacheConfig, ...]) -> None:
    """The caches of a configuration (their entries start empty)."""
    CACHES.clear()
    COUNTS.clear()
    for config in configs:
        CACHES[config.name] = Cache(config)


def counts(side: str, proxy: str) -> tuple[int, int]:
    """A frontend's (`fe`) or backend's (`be`) cache lookups and hits."""
    found = COUNTS.get((side, proxy))
    return (found[0], found[1]) if found else (0, 0)


# The encodings HAProxy's Vary support knows (cache.c's vary_encoding bits).
GZIP, DEFLATE, BR, COMPRESS, AES128GCM, EXI, PACK200, ZSTD, IDENTITY, STAR, OTHER = (
    1 << n for n in range(11)
)
ALL = 0xFFFFFFFF
_ENCODINGS = {
    "aes128gcm": AES128GCM, "br": BR, "compress": COMPRESS, "deflate": DEFLATE, "exi": EXI,
    "gzip": GZIP, "identity": IDENTITY, "pack200-gzip": PACK200, "x-gzip": GZIP,
    "x-compress": COMPRESS, "zstd": ZSTD,
}  # fmt: skip
VARY_HEADERS = frozenset(("accept-encoding", "referer"))
Secondary = tuple[int, int]  # (the Accept-Encoding bitmap, the Referer's CRC32), 0: unused


@dataclass(slots=True)
class Entry:
    head: bytes  # the status line and header lines as stored (each ending CRLF)
    body: bytes
    expire: int
    validated: int  # when it was stored
    age: int  # the Age the server gave
    etag: str | None
    last_modified: int
    signature: frozenset[str] = frozenset()  # the Vary headers (process-vary on)
    secondary: Secondary = (0, 0)

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body)


@dataclass(slots=True)
class CacheState:
    """What the cache rules know of one transaction (Request.cache)."""

    key: bytes | None = None
    ignore: bool = False  # TX_CACHE_IGNORE: neither used nor stored
    cacheable: bool = True  # TX_CACHEABLE (and TX_CACHE_COOK: kept together here)
    hit: bool = False  # answered from the cache (the log's server is <CACHE>)
    secondary: Secondary | None = None  # the request's, for Vary (process-vary on)
    name: str = ""  # the cache that answered (res.cache_name)
    store: Store | None = None


@dataclass(slots=True)
class Store:
    """A response on its way into the cache: its body is added as it passes."""

    cache: Cache
    key: bytes
    entry: Entry
    limit: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0

    def feed(self, data: bytes) -> None:
        if self.size < 0:
            return
        self.size += len(data)
        if self.size + len(self.entry.head) > self.limit:
            self.size, self.parts = -1, []  # too big: given up
            return
        self.parts.append(data)

    def finish(self) -> None:
        if self.size >= 0:
            self.entry.body = b"".join(self.parts)
            self.cache.put(self.key, self.entry, self.entry.validated)


class Cache:
    """One `cache` section's entries."""

    __slots__ = ("config", "entries", "used")

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        # Each URL's entries: one, or one per secondary key under Vary.
        self.entries: OrderedDict[bytes, list[Entry]] = OrderedDict()
        self.used = 0

    def get(self, key: bytes, now: int) -> list[Entry] | None:
        """The entries of a URL, when its first one is fresh (HAProxy's entry_exist)."""
        entries = self.entries.get(key)
        if not entries:
            return None
        self.prune(key, entries, now)
        if not entries or entries[0] is not self.entries.get(key, [None])[0]:
            return None
        self.entries.move_to_end(key)
        return entries

    def prune(self, key: bytes, entries: list[Entry], now: int) -> None:
        for entry in [e for e in entries if e.expire <= now]:
            entries.remove(entry)
            self.used -= entry.size
        if not entries:
            del self.entries[key]

    def put(self, key: bytes, entry: Entry, now: int) -> None:
        entries = self.entries.get(key, [])
        if entries:
            self.prune(key, entries, now)
            entries = self.entries.get(key, [])
        same = [e for e in entries if not entry.signature or e.secondary == entry.secondary]
        for old in same[:1] if not entry.signature else same:
            entries.remove(old)
            self.used -= old.size
        if entry.signature and len(entries) >= self.config.max_secondary_entries:
            return
        total = self.config.total_max_size
        while self.entries and self.used + entry.size > total:
            oldest = next(iter(self.entries))
            if oldest == key:
                break
            self.drop(oldest)
        if self.used + entry.size > total:
            return
        entries.append(entry)
        self.entries[key] = entries
        self.entries.move_to_end(key)
        self.used += entry.size

    def drop(self, key: bytes) -> None:
        for entry in self.entries.pop(key, []):
            self.used -= entry.size


# --- http-request cache-use ----------------------------------------------------------------


def use(
    cache: Cache, req: Request, now: int, close: bool, counter: tuple[str, str] = ("fe", "")
) -> tuple[bytes, int, bool] | None:
    """`cache-use`: the answer from the cache, its status, and whether the connection
    closes after it (`close`: the session closes it anyway); None: the request goes on.
    `counter`: whose cache_lookups and cache_hits count it (the rule's proxy, as HAProxy
    counts it: its frontend's counters when it runs as the frontend)."""
    state = req.cache or CacheState()
    req.cache = state
    if req.version != "1.1" or req.method not in ("GET", "HEAD"):
        state.ignore = True
    _request_cacheability(req.headers, state)
    state.key = _key(req)
    if state.key is None or state.ignore:
        return None
    counted = COUNTS.setdefault(counter, [0, 0])
    counted[0] += 1
    entries = cache.get(state.key, now)
    vary = cache.config.process_vary
    if vary:
        state.secondary = _request_secondary(req.headers)
    if entries is None:
        return None
    entry: Entry | None = entries[0]
    if entries[0].signature:
        found = state.secondary
        entry = None
        if found is not None:
            wanted = _reduce(found, entries[0].signature)
            entry = next((e for e in entries if _matches(e.secondary, wanted)), None)
    if entry is None:
        return None
    state.hit, state.name = True, cache.config.name
    counted[1] += 1
    age = min(max(0, now - entry.validated) + entry.age, MAX_AGE)
    head = entry.head + b"age: %d\r\n" % age
    status, body = 200, entry.body
    if _not_modified(req.headers, entry):
        status, body = 304, b""
        head = b"HTTP/1.1 304 Not Modified\r\n" + head[head.index(b"\r\n") + 2 :]
    answer, closes = reply.finish(reply.Prepared(status, False, head, body), req, close)
    return answer, status, closes


def _request_cacheability(headers: Headers, state: CacheState) -> None:
    """http_check_request_for_cacheability."""
    pragma = headers.get_all("pragma")
    if headers.has("authorization"):
        state.cacheable, state.ignore = False, True
    found = False
    for value in headers.values("cache-control"):
        found = True
        lowered = value.lower()
        if lowered.startswith(_REQUEST_IGNORES):
            state.ignore = True
        elif lowered.startswith("no-store"):
            state.cacheable = False
    if not found and pragma and pragma[0].strip().lower() == "no-cache":
        state.ignore = True


def _key(req: Request) -> bytes | None:
    """sha1_hosturi: `https://` + Host + the target, or an absolute target as it is."""
    uri = req.uri
    if not uri:
        return None
    if "://" not in uri.split("?", 1)[0]:
        hosts = req.headers.values("host")
        if not hosts:
            return None
        uri = f"https://{hosts[0]}{uri}"
    return hashlib.sha1(uri.encode("latin-1", "replace")).digest()


def _not_modified(headers: Headers, entry: Entry) -> bool:
    """should_send_notmodified_response."""
    matches = headers.values("if-none-match")
    for value in matches:
        if value == "*":
            return True
        if entry.etag is None:
            break
        if _weak(value) == _weak(entry.etag):
            return True
    if matches:
        return False
    since = headers.get_all("if-modified-since")
    date = _http_date(since[0]) if since else None
    return date is not None and entry.last_modified <= date


def _weak(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


# --- http-response cache-store -------------------------------------------------------------


def store(cache: Cache, req: Request, resp: Response, now: int) -> None:
    """`cache-store`: start keeping `resp` (Request.cache.store takes its body), drop the
    entry a successful unsafe request changed, or nothing."""
    state = req.cache
    if state is None or state.hit or req.version != "1.1":
        return
    if req.method != "GET":
        if 200 <= resp.status < 400 and req.method not in SAFE_METHODS and state.key:
            cache.drop(state.key)
        return
    if state.key is None or resp.status != 200 or state.ignore or not state.cacheable:
        return
    headers = resp.headers
    head_size = 16 + sum(len(k) + len(v) + 4 for k, v in headers.items)
    length = headers.get_all("content-length")
    limit = cache.config.max_object_size
    if length and length[0].isdigit() and head_size + int(length[0]) > limit:
        return
    signature: frozenset[str] = frozenset()
    secondary: Secondary = (0, 0)
    if headers.has("vary"):
        if not cache.config.process_vary or state.secondary is None:
            return
        signature = frozenset(v.lower() for v in headers.values("vary"))
        if not signature <= VARY_HEADERS:
            return
        # HAProxy 2.6 writes the response's encoding whatever the Vary names
        # (set_secondary_key_encoding): a Vary on Referer alone then never matches.
        encoding = _response_encoding(headers)
        if encoding is None:
            return
        secondary = (encoding, _reduce(state.secondary, signature)[1])
    if not _response_cacheability(headers):
        return
    maxage, true_maxage = _max_age(headers, cache.config.max_age, now)
    age = 0
    ages = headers.get_all("age")
    if ages:
        value = ages[0].strip()
        if not value.isdigit() or int(value) <= 0:
            return
        age = min(int(value), MAX_AGE)
        if age > true_maxage:
            return
        headers.delete("age")
    etags = headers.get_all("etag")
    kept = Headers([(k, v) for k, v in headers.items if k.lower() not in _HOP_BY_HOP])
    line = f"HTTP/{resp.version} {resp.status} {resp.reason}\r\n".encode("latin-1")
    entry = Entry(
        line + kept.encode(),
        b"",
        now + maxage,
        now,
        age,
        etags[0].strip() if etags else None,
        _last_modified(headers, now),
        signature,
        secondary,
    )
    state.store = Store(cache, state.key, entry, limit)


def _response_cacheability(headers: Headers) -> bool:
    """http_check_response_for_cacheability, for a 200 to a GET that may be stored."""
    pragma = headers.get_all("pragma")
    if pragma and pragma[0].strip().lower() == "no-cache":
        return False
    cacheable, fresh = True, False
    for value in headers.values("cache-control"):
        lowered = value.lower()
        if lowered == "public":
            cacheable = True
        elif lowered in _NOT_STORED:
            cacheable = False
        elif lowered.startswith('no-cache="set-cookie'):
            cacheable = False  # TX_CACHE_COOK
        elif lowered.startswith(("s-maxage", "max-age")):
            fresh = True
    if not fresh:
        fresh = headers.has("expires")
    validator = headers.has("etag") or headers.has("last-modified")
    return cacheable and (fresh or validator)


def _max_age(headers: Headers, configured: int, now: int) -> tuple[int, int]:
    """http_calc_maxage: (how long the entry lives, the response's own max age)."""
    smaxage = maxage = expires = -1
    for value in headers.values("cache-control"):
        for word in ("s-maxage", "max-age"):
            if value[: len(word)].lower() == word and value[len(word) : len(word) + 1] == "=":
                digits = value[len(word) + 1 :].lstrip('"')
                number = _leading_int(digits)
                if number is None or number < 0:
                    return -1, -1
                if word == "s-maxage":
                    smaxage = number
                else:
                    maxage = number
    if maxage == -1 and smaxage == -1:
        found = headers.get_all("expires")
        if found:
            date = _http_date(found[0])
            expires = max(date - now, 0) if date is not None else 0
    for own in (smaxage, maxage):
        if own > 0:
            return min(own, configured), own
    if expires >= 0:
        return min(expires, configured), expires
    return configured, 0


def _leading_int(text: str) -> int | None:
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


def _last_modified(headers: Headers, now: int) -> int:
    for name in ("last-modified", "date"):
        found = headers.get_all(name)
        date = _http_date(found[0]) if found else None
        if date:
            return date
    return now


_MONTHS = {
    m: n
    for n, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_IMF = re.compile(r"[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT")
_RFC850 = re.compile(r"[A-Za-z]+, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT")
_ASCTIME = re.compile(r"[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})")


def _http_date(text: str) -> int | None:
    """An HTTP date (RFC 9110 5.6.7: IMF-fixdate, RFC 850, asctime, as HAProxy's
    parse_http_date reads them) as Unix seconds; None when it is none of them."""
    text = text.strip()
    if match := _IMF.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
    elif match := _RFC850.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
        year = str(int(year) + (2000 if int(year) < 70 else 1900))  # RFC 9110's 50 years, near
    elif match := _ASCTIME.fullmatch(text):
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    fields = (int(year), number, int(day), int(hour), int(minute), int(second))
    return calendar.timegm((*fields, 0, 0, 0))


# --- Vary (process-vary on) ------------------------------------------------------------------


def _encoding(value: str) -> tuple[int, bool] | None:
    """parse_encoding_value: an encoding's bit and whether its weight is q=0; None: an
    encoding HAProxy does not know (or a malformed one)."""
    if value.startswith("*"):
        bit, rest = STAR, value[1:]
    else:
        name = next((n for n in _ENCODINGS if value.startswith(n)), None)
        if name is None:
            return (0, False) if value[:1] in "abcdegipxz" and value else None
        bit, rest = _ENCODINGS[name], value[len(name) :]
    rest = rest.lstrip(" \t")
    if rest and not rest.startswith(";"):
        return None
    return bit, rest[1:].lstrip(" \t") == "q=0"


def _request_secondary(headers: Headers) -> Secondary | None:
    """The request's secondary key: its Accept-Encoding bitmap (accept_encoding_normalizer)
    and its Referer's CRC32; None when it has 16 Accept-Encoding values or more."""
    values = [v for line in headers.get_all("accept-encoding") for v in line.split(",")]
    bitmap, refused = IDENTITY, ALL
    for written in values[:16]:
        value = written.strip().lower()
        if not value:
            continue
        parsed = _encoding(value)
        if parsed is None:
            bitmap |= OTHER
        elif parsed[1]:
            refused &= ~parsed[0] & ALL
        else:
            bitmap |= parsed[0]
    if bitmap & STAR:
        bitmap = ALL
    bitmap &= refused
    if not values:
        bitmap = ALL
    if len(values) >= 16:
        return None
    referer = headers.get_all("referer")
    crc = zlib.crc32(referer[0].strip().encode("latin-1", "replace")) if referer else 0
    return bitmap, crc


def _reduce(secondary: Secondary, signature: frozenset[str]) -> Secondary:
    """The parts of a secondary key the Vary headers name (the others are 0)."""
    encoding, referer = secondary
    return (
        encoding if "accept-encoding" in signature else 0,
        referer if "referer" in signature else 0,
    )


def _matches(stored: Secondary, wanted: Secondary) -> bool:
    """secondary_key_cmp: the stored encoding is one the request accepts, the Referer
    the same."""
    encoding, referer = stored
    if encoding & OTHER:
        return False
    return (encoding & wanted[0]) == encoding and referer == wanted[1]


def _response_encoding(headers: Headers) -> int | None:
    """set_secondary_key_encoding: the response's Content-Encoding as a bitmap (identity
    when it has none); None for an encoding HAProxy does not know (not stored)."""
    bitmap = 0
    for value in headers.values("content-encoding"):
        parsed = _encoding(value.lower())
        if parsed is None:
            return None
        bitmap |= parsed[0]
    return bitmap or IDENTITY
