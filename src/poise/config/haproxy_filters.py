"""`filter NAME [PARAMS]` (configuration.txt 9): HAProxy's stream filters, and the link
pass's check of them. `filter compression` is what the `compression` keywords use: HAProxy
adds it by itself unless the proxy declares other filters, and then refuses compression
without it (poise checks the same). `filter trace` only prints HAProxy's internal stream
events for debugging, which poise has no equivalent of: a warning. `filter cache NAME`
names the cache the `cache-use` and `cache-store` rules use (poise needs no filter for
it). `spoe`, `fcgi-app`, `opentracing`, `bwlim-in` and `bwlim-out` are not implemented
yet. The errors
are `haproxy -c` 2.6's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem, SectionDraft
from poise.config.model import Where

Handler = Callable[[Sequence[str], Where], None]
KNOWN = ("cache", "compression", "fcgi-app", "opentracing", "spoe", "trace")
NOT_YET = ("fcgi-app", "opentracing", "spoe", "bwlim-in", "bwlim-out")
_TRACE_FLAGS = ("random-parsing", "random-forwarding", "hexdump")


class FilterKeywords:
    """The handler of `filter` for one section."""

    def __init__(self, section: SectionDraft, diagnostics: list[Diagnostic]) -> None:
        self.section = section
        self.diagnostics = diagnostics

    def handlers(self) -> dict[str, Handler]:
        return {"filter": self.filter}

    def filter(self, args: Sequence[str], where: Where) -> None:
        kind = args[0] if args else ""
        if kind == "compression":
            if len(args) > 1:
                raise Problem(f"'filter compression' : unknown keyword '{args[1]}'.")
            if "compression" in self.section.filters:
                raise Problem(f"'{self.section.name}: Proxy supports only one compression filter")
        elif kind == "trace":
            _trace(args[1:])
            self.diagnostics.append(
                warning(
                    where,
                    "ignored: the trace filter prints HAProxy's internal stream events for "
                    "debugging, which poise does not have",
                    "filter trace",
                )
            )
        elif kind == "cache":  # what cache-use/cache-store use anyway (core/http/cache.py)
            if len(args) < 2:
                raise Problem("cache : expects a <name> argument")
        elif kind in NOT_YET:
            raise Problem(f"the '{kind}' filter is not implemented yet in poise")
        else:
            raise Problem(f"unknown keyword '{kind}'. Registered keywords : {', '.join(KNOWN)}")
        self.section.filters.append(kind)


def _trace(args: Sequence[str]) -> None:
    """`filter trace [name NAME] [random-parsing] [random-forwarding] [hexdump]`."""
    index = 0
    while index < len(args):
        word = args[index]
        if word == "name":
            if index + 1 >= len(args):
                raise Problem("'trace' : 'name' option without value")
            index += 2
        elif word in _TRACE_FLAGS:
            index += 1
        else:
            raise Problem(f"'filter trace' : unknown keyword '{word}'.")


def check_compression(section: SectionDraft, compresses: bool, label: str) -> list[Diagnostic]:
    """HAProxy's refusal of compression in a proxy that declares filters but not
    `filter compression`."""
    if compresses and section.filters and "compression" not in section.filters:
        return [
            error(
                section.where,
                f"{label}: require an explicit filter declaration to use HTTP compression",
            )
        ]
    return []
