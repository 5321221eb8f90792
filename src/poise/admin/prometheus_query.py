"""The Prometheus exporter's query string, read as HAProxy 2.6's promex_parse_uri reads it
(addons/promex/service-prometheus.c), odd values included, so that a scraper gets the
same status from poise as from HAProxy:

- the query is cut into `key[=value]` at `&`, and stops at a `#`; each key and value is
  URL-decoded (`%XX`, `+` is a space) and then read as a C string, so it ends at its first
  NUL: `scope=%00` is an empty scope, `scope=global%00junk` is `global`;
- a malformed `%` escape anywhere (`x=%`, `scope=%zz`), a second `=` in a value
  (`scope=global=x`, `scope==global`) or `scope` without `=` is a bad request (400);
- `scope=` empties the list of scopes; a value starting with `*` selects them all (2.6
  looks at the first character only); `global`, `frontend`, `listener` (the listeners of
  `option socket-stats`), `backend`, `server` add one; `sticktable` is HAProxy's and
  has nothing to show here; any other
  value is a bad request. The scopes are read in order; without any, all are shown;
- `no-maint` (with or without a value) leaves out the servers in maintenance.

Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCOPES = ("global", "frontend", "listener", "backend", "server")
OTHER_SCOPES = ("sticktable",)  # HAProxy's, with nothing to show in poise
_ESCAPE = re.compile(r"%(..)?", re.DOTALL)
_HEX = re.compile(r"[0-9A-Fa-f]{2}")


class BadQuery(ValueError):
    """A query string HAProxy's exporter answers with 400."""


@dataclass(frozen=True, slots=True)
class Query:
    scopes: frozenset[str] = frozenset(SCOPES)
    no_maint: bool = False


EVERYTHING = Query()  # no query string


def url_decode(text: str) -> str:
    """HAProxy's url_decode(text, in_form=1), then read up to the first NUL as C does;
    BadQuery for a `%` not followed by two hexadecimal digits."""

    def one(found: re.Match[str]) -> str:
        digits = found.group(1)
        if digits is None or not _HEX.fullmatch(digits):
            raise BadQuery(text)
        return chr(int(digits, 16))

    decoded = _ESCAPE.sub(one, text.replace("+", " ")) if "%" in text else text.replace("+", " ")
    return decoded.partition("\0")[0]


def parse_query(query: str | None) -> Query:
    scopes: set[str] | None = None  # None: no scope given, all of them
    no_maint = False
    text = (query or "").partition("#")[0].partition("\0")[0]
    for part in text.split("&") if text else ():
        key, has_value, value = part.partition("=")
        if has_value and "=" in value:
            raise BadQuery(part)
        name = url_decode(key)
        wanted = url_decode(value) if has_value else None
        if name == "scope":
            if wanted is None:
                raise BadQuery(part)
            scopes = set() if scopes is None else scopes
            if wanted == "":
                scopes = set()
            elif wanted.startswith("*"):
                scopes = set(SCOPES)
            elif wanted in SCOPES:
                scopes.add(wanted)
            elif wanted not in OTHER_SCOPES:
                raise BadQuery(part)
        elif name == "no-maint":
            no_maint = True
    return Query(frozenset(SCOPES if scopes is None else scopes), no_maint)
