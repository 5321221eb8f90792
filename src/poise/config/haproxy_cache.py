"""The `cache NAME` section (configuration.txt 6.2: HAProxy's small RAM cache) and the
check of the rules that name a cache (`http-request cache-use NAME`, `http-response
cache-store NAME`). `total-max-size` is required (megabytes, at most 4095), `max-age`
defaults to 60 seconds, `max-object-size` to a 256th of the total and at most half of it,
`process-vary` to off, `max-secondary-entries` to 10. The messages are `haproxy -c` 2.6's.
The cache itself is core/http/cache.py.
"""

from __future__ import annotations

from dataclasses import replace

from poise.config.diagnostics import Diagnostic, error
from poise.config.model import Config, Where
from poise.config.model_global import Cache

MAX_TOTAL_MB = 4095  # UINT_MAX >> 20
BLOCK = 1024  # HAProxy's cache counts its memory in blocks of 1 kB


class CacheParser:
    """The lines of one `cache` section."""

    def __init__(self, name: str, where: Where, diagnostics: list[Diagnostic]) -> None:
        self.value = Cache(name, where)
        self.diagnostics = diagnostics

    def feed(self, where: Where, words: tuple[str, ...]) -> None:
        keyword, args = words[0], words[1:]
        value = args[0] if args else ""
        cache = self.value
        if keyword not in _KEYWORDS:
            self.problem(where, f"unknown keyword '{keyword}' in 'cache' section", keyword)
        elif len(args) > 1:
            self.problem(
                where, f"'{keyword}' cannot handle unexpected argument '{args[1]}'.", keyword
            )
        elif keyword == "total-max-size":
            if not value.isdigit():
                self.problem(where, f"total-max-size wrong value '{value}'", keyword)
            elif int(value) > MAX_TOTAL_MB:
                self.problem(
                    where,
                    f'"total-max-size" ({value}) must not be greater than {MAX_TOTAL_MB}',
                    keyword,
                )
            else:
                self.value = replace(cache, total_max_size=int(value) * 1024 * 1024)
        elif keyword == "max-age":
            if not value.isdigit():
                self.problem(where, "'max-age' expects an age parameter in seconds.", keyword)
            else:
                self.value = replace(cache, max_age=int(value))
        elif keyword == "max-object-size":
            if not value.isdigit():
                self.problem(
                    where,
                    "'max-object-size' expects a maximum file size parameter in bytes.",
                    keyword,
                )
            else:
                self.value = replace(cache, max_object_size=int(value))
        elif keyword == "process-vary":
            if value not in ("on", "off"):
                self.problem(
                    where,
                    '\'process-vary\' expects "on" or "off" (enable or disable vary processing).',
                    keyword,
                )
            else:
                self.value = replace(cache, process_vary=value == "on")
        elif not value.isdigit() or int(value) == 0:
            self.problem(where, f"'{keyword}' expects a strictly positive number.", keyword)
        else:
            self.value = replace(cache, max_secondary_entries=int(value))

    def problem(self, where: Where, message: str, keyword: str) -> None:
        self.diagnostics.append(error(where, message, keyword))

    def finish(self) -> Cache:
        """The section once read, with HAProxy's checks of the whole."""
        cache = self.value
        if not cache.total_max_size:
            self.problem(cache.where, f"Size not specified for cache '{cache.name}'", "cache")
            return cache
        half = cache.total_max_size // 2
        if not cache.max_object_size:
            cache = replace(cache, max_object_size=cache.total_max_size // 256)
        elif cache.max_object_size > half:
            self.problem(
                cache.where,
                f'"max-object-size" is limited to an half of "total-max-size" => {half}',
                "cache",
            )
        return cache


_KEYWORDS = (
    "total-max-size",
    "max-age",
    "max-object-size",
    "process-vary",
    "max-secondary-entries",
)


def check_rules(config: Config, caches: tuple[Cache, ...]) -> list[Diagnostic]:
    """A rule naming a cache that no `cache` section defines."""
    names = {cache.name for cache in caches}
    found: list[Diagnostic] = []
    for proxy in config.proxies:
        kind = "frontend" if proxy.is_frontend and not proxy.is_backend else "backend"
        if proxy.is_frontend and proxy.is_backend:
            kind = "proxy"
        for rule in (*proxy.http_request_rules, *proxy.http_response_rules):
            if rule.action in ("cache-use", "cache-store") and rule.name not in names:
                found.append(
                    error(
                        rule.where,
                        f"{kind} '{proxy.name}': unable to find the cache '{rule.name}' "
                        "referenced by the filter 'cache'.",
                        rule.action,
                    )
                )
    return found
