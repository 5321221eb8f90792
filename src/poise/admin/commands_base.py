"""The vocabulary of the runtime API's commands (admin/commands*.py): levels, a client
session's state, a request, an answer with the effects a command asks of the shell, and
the helpers that find HAProxy's objects by name or `#id` the way HAProxy's CLI does.

Pure. A command changes the pure model itself (ServerState, Backend: always through
Backend.changed(), add() or remove(), whose waiting connections go back in `goes`) and
hands back as values the changes only the shell can make: sessions to end, idle server
connections to drop, a frontend's limit or pause (net/context.py), lines to log.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

from poise.admin import stats
from poise.core import slowstart
from poise.core.backend import Backend, Go
from poise.core.server import AdminState, ServerState


class Level(IntEnum):
    USER = 1
    OPERATOR = 2
    ADMIN = 3


LEVELS = {"user": Level.USER, "operator": Level.OPERATOR, "admin": Level.ADMIN}


@dataclass(slots=True)
class Session:
    """One client connection's state: its level (it may lower it), the prompt mode, and
    its own idle timeout when `set timeout cli` changed it (seconds)."""

    level: Level
    interactive: bool = False
    timeout: float | None = None


# -- what a command asks of the shell -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndSessions:
    """End at once every session using `server` (`shutdown sessions server`)."""

    server: ServerState


@dataclass(frozen=True, slots=True)
class EndSession:
    """End one session, by its `show sess` id (`shutdown session`)."""

    session_id: int


@dataclass(frozen=True, slots=True)
class DropIdle:
    """Close the idle kept-alive connections to a server of `backend` (its address
    changed, or it is gone); `forget` also drops what the shell keeps under the server's
    id, since a server added later may take that id."""

    backend: str
    server_id: int
    forget: bool = False


@dataclass(frozen=True, slots=True)
class SetMaxconn:
    """A frontend's `maxconn`, or the process's (`frontend` None); the connections a
    higher limit lets in go ahead."""

    frontend: str | None
    value: int


@dataclass(frozen=True, slots=True)
class Pause:
    """`disable frontend` (True) / `enable frontend` (False)."""

    frontend: str
    paused: bool


@dataclass(frozen=True, slots=True)
class ClearFrontends:
    """`clear counters`: the frontends' maxima, or (`every`) all their counters."""

    every: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """A line for the terminal and the proxy's log, as HAProxy logs its CLI's actions."""

    level: str  # "NOTICE" or "WARNING"
    text: str
    proxy: str


Effect = EndSessions | EndSession | DropIdle | SetMaxconn | Pause | ClearFrontends | Notice


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    goes: tuple[Go, ...] = ()  # connections the shell must start (core.backend.start)
    close: bool = False
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    args: tuple[str, ...]
    session: Session
    view: stats.View
    payload: str | None = None  # the lines after `<<` (`add map MAP <<`)

    def arg(self, i: int) -> str:
        return self.args[i] if i < len(self.args) else ""


@dataclass(frozen=True, slots=True)
class Keyword:
    words: tuple[str, ...]
    level: Level
    run: Callable[[Request], Answer]
    syntax: str = ""  # "" = not listed by `help` (help, prompt and quit are always listed)
    summary: str = ""

    @property
    def usage(self) -> str:
        return f"{self.syntax:<40}: {self.summary}"


# -- numbers as HAProxy's CLI reads them --------------------------------------------------

_STRTOL = re.compile(r"\s*[+-]?\d+")


def atoi(text: str) -> int:
    """C's atoi: leading digits (after blanks and a sign), 0 when there are none."""
    match = _STRTOL.match(text)
    return int(match.group()) if match else 0


def strtol(text: str) -> tuple[int, str] | None:
    """(value, the rest) as C's strtol reads a decimal, or None without digits."""
    match = _STRTOL.match(text)
    if match is None:
        return None
    return int(match.group()), text[match.end() :]


# -- finding things -----------------------------------------------------------------------


def find_server(view: stats.View, arg: str) -> tuple[Backend, ServerState] | str:
    """`<backend>/<server>` (either may be `#<id>`), or HAProxy's error message."""
    slash = arg.find("/")
    if slash < 0 or slash == len(arg) - 1:
        return "Require 'backend/server'.\n"
    backend = view.backend(arg[:slash])
    if backend is None:
        return "No such backend.\n"
    name = arg[slash + 1 :]
    for server in backend.servers:
        if server.name == name or (name.startswith("#") and name[1:] == str(server.id)):
            break
    else:
        return "No such server.\n"
    if backend.proxy.disabled:
        return "Proxy is disabled.\n"
    return backend, server


def find_frontend(view: stats.View, arg: str) -> stats.FrontendView | str:
    """A frontend (a `listen` section too) by name or `#<id>`, or HAProxy's message."""
    if not arg:
        return "A frontend name is expected.\n"
    for frontend in view.frontends.values():
        proxy = frontend.proxy
        if proxy.name == arg or (arg.startswith("#") and arg[1:] == str(proxy.id)):
            return frontend
    return "No such frontend.\n"


def set_admin(view: stats.View, backend: Backend, server: ServerState, admin: AdminState) -> Answer:
    if server.admin is admin:
        return Answer("")
    leaves_maint = server.admin is AdminState.MAINT
    server.admin = admin
    server.last_change = view.now
    if admin is AdminState.MAINT:
        slowstart.end(server)
    elif leaves_maint and server.up:
        slowstart.begin(server, view.now)  # HAProxy ramps a server leaving maintenance
    return Answer("", tuple(backend.changed()))


# -- HAProxy's word fingerprints (tools.c), for "did you mean" ----------------------------


# Each byte's class: 1-26 a letter (either case), 27 a digit, 28 anything else.
_CLASSES = bytes(
    ord(c.lower()) - ord("a") + 1 if c.isascii() and c.isalpha() else 27 if c.isdigit() else 28
    for c in map(chr, range(128))
) + bytes([28] * 128)
_EDGE = 28  # the start and the end of a word count as "anything else"


Fingerprint = tuple[int, ...]  # HAProxy's 1024 counters: [32 * class + class] and [class]


def fingerprint(words: Sequence[str]) -> Fingerprint:
    """HAProxy's word fingerprint (tools.c, update_word_fingerprint) of the words' bytes:
    which classes occur, and how often each class follows each other, counted in a byte
    as HAProxy's uint8_t array counts (modulo 256). Linear, at C speed: a 15 KB word costs
    well under a millisecond, not the event loop's time."""
    pairs: Counter[tuple[int, int]] = Counter()
    fp = [0] * 1024
    for word in words:
        classes = word.encode("utf-8", "surrogateescape").translate(_CLASSES)
        for cls in set(classes):
            fp[cls] = 1
        framed = bytes((_EDGE,)) + classes + bytes((_EDGE,))
        pairs.update(pairwise(framed))
    for (prev, cur), count in pairs.items():
        fp[32 * prev + cur] = count % 256
    return tuple(fp)


def word_length(word: str) -> int:
    """A word's length as HAProxy's strlen() counts it: in bytes."""
    return len(word.encode("utf-8", "surrogateescape"))


def distance(a: Fingerprint, b: Fingerprint) -> int:
    return sum(map(abs, map(operator.sub, a, b)))


def closest_word(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to a mistyped word by fingerprint distance (the first of
    equals), or None when even that one is too far (more than twice either length)."""
    wanted = fingerprint([word])
    best: str | None = None
    best_distance = -1
    for candidate in candidates:
        dist = distance(wanted, fingerprint([candidate]))
        if best is None or dist < best_distance:
            best, best_distance = candidate, dist
    if best is None or best_distance > 2 * len(word) or best_distance > 2 * len(best):
        return None
    return best
