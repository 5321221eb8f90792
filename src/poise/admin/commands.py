"""The runtime API (HAProxy's "stats socket" CLI, management.txt 9.3): how a client's bytes
split into commands, how a command line splits into words, one table of keywords with the
level each needs, and the answer to each command in HAProxy 2.6's words, so that scripts
written for `socat ... /var/run/haproxy.sock` work against poise unchanged.

Pure: a command reads and changes the model (ServerState, Backend) and returns its answer;
a change of a server's state or weight goes through Backend.changed(), and the waiting
connections it lets go are handed to the shell in `Answer.goes`, which starts them. A
command that fails changes nothing. Levels are HAProxy's: `user` reads, `operator` also
lowers its own level, `admin` changes the state of servers.

The table grows with the command set: a new command is one Keyword and one function.
`help` lists the commands of the session's level (HAProxy 2.6 lists every command and
refuses the ones above the level when they are run; poise does not show what it refuses).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

from poise.admin import stats
from poise.config import model
from poise.core.backend import Backend, Go
from poise.core.server import AdminState, ServerState


class Level(IntEnum):
    USER = 1
    OPERATOR = 2
    ADMIN = 3


LEVELS = {"user": Level.USER, "operator": Level.OPERATOR, "admin": Level.ADMIN}

MAX_ARGS = 64  # HAProxy's MAX_CLI_ARGS: further words are ignored
PREFIX_WORDS = 5  # CLI_PREFIX_KW_NB: a keyword has at most this many words
MAX_MATCHES = 5  # CLI_MAX_MATCHES: suggestions for a mistyped command
MAX_LINE = 64 * 1024  # a line longer than this without its end closes the connection
PAYLOAD_MARK = "<<"

PERMISSION_DENIED = "Permission denied\n"
ALWAYS_LISTED = (
    "  help [<command>]                        : list matching or all commands\n"
    "  prompt                                  : toggle interactive mode with prompt\n"
    "  quit                                    : disconnect\n"
)


@dataclass(slots=True)
class Session:
    """One client connection's state: its level (it may lower it) and the prompt mode."""

    level: Level
    interactive: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    goes: tuple[Go, ...] = ()  # connections the shell must start (core.backend.start)
    close: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    args: tuple[str, ...]
    session: Session
    view: stats.View

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


# -- bytes to commands to words -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    line: str
    payload: str | None = None  # the lines after a line ending in `<<`, up to an empty line


class LineReader:
    """Splits a client's bytes into commands as HAProxy's CLI reads them: a command ends at
    an LF or at a `;`, either escaped by a backslash does not end it; a trailing CR is
    dropped. A line ending in `<<` starts a payload that ends at an empty line."""

    __slots__ = ("buf", "head", "payload")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.head: str | None = None  # the command line of a payload being read
        self.payload: list[str] = []

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def pending(self) -> bool:
        """Bytes received and not consumed yet (HAProxy keeps a non-interactive
        connection open only while some are left)."""
        return bool(self.buf) or self.head is not None

    @property
    def overflow(self) -> bool:
        return len(self.buf) > MAX_LINE

    def next(self) -> Command | None:
        while True:
            end = self._line_end()
            if end is None:
                return None
            raw = bytes(self.buf[:end])
            del self.buf[: end + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            line = raw.decode("utf-8", "surrogateescape")
            if self.head is not None:
                if line:
                    self.payload.append(line)
                    continue
                command = Command(self.head, "\n".join(self.payload))
                self.head, self.payload = None, []
                return command
            if line.endswith(PAYLOAD_MARK):
                self.head = line[: -len(PAYLOAD_MARK)]
                continue
            return Command(line)

    def _line_end(self) -> int | None:
        buf = self.buf
        if self.head is not None:  # a payload takes no escapes and no `;`
            end = buf.find(b"\n")
            return end if end >= 0 else None
        i = 0
        while i < len(buf):
            c = buf[i]
            if c == 0x5C:  # backslash
                i += 2
                continue
            if c in (0x0A, 0x3B):  # LF, ';'
                return i
            i += 1
        return None


def split_words(line: str) -> list[str]:
    """Words are separated by spaces and tabs; a backslash keeps the next character in the
    word (`\\ `, `\\;`) and `\\\\` is a backslash."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n and len(words) < MAX_ARGS:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        word: list[str] = []
        while i < n and line[i] not in " \t":
            if line[i] == "\\":
                if i + 1 < n:
                    word.append(line[i + 1])
                i += 2
            else:
                word.append(line[i])
                i += 1
        words.append("".join(word))
    return words


# -- running a command --------------------------------------------------------------------


def execute(command: Command | str, session: Session, view: stats.View) -> Answer:
    """Run one command; the answer ends with HAProxy's prompt: an empty line, or an empty
    line and `> ` in interactive mode."""
    line = command.line if isinstance(command, Command) else command
    args = split_words(line)
    keyword = find_keyword(args)
    if keyword is None:
        answer = Answer(usage_message(args, session.level))
    elif keyword.level > session.level:
        answer = Answer(PERMISSION_DENIED)
    else:
        answer = keyword.run(Request(tuple(args), session, view))
    if answer.close:
        return answer
    return replace(answer, text=answer.text + ("\n> " if session.interactive else "\n"))


def find_keyword(args: Sequence[str]) -> Keyword | None:
    for keyword in TABLE:
        words = keyword.words
        if len(args) >= len(words) and tuple(args[: len(words)]) == words:
            return keyword
    return None


def usage_message(args: Sequence[str], level: Level) -> str:
    """HAProxy's answer to `help [words]` and to an unknown command: the commands that
    start with the words that matched, or the closest ones by fingerprint distance."""
    help_asked = bool(args) and args[0] == "help"
    if help_asked:
        args = args[1:]

    def arg(i: int) -> str:
        return args[i] if i < len(args) else ""

    visible = [k for k in TABLE if k.syntax and k.level <= level]
    length = max((matched_words(k, args, PREFIX_WORDS) for k in visible), default=0)
    if help_asked:
        text = "The following commands are valid at this level:\n"
    elif length == 0 and not arg(0):
        text = "Unknown command. Please enter one of the following commands only:\n"
    else:
        text = "Unknown command, but maybe one of the following ones is a better match:\n"
    matches: list[tuple[int, Keyword]] = []  # best first; ties keep table order
    if arg(length):
        typed: list[str] = []
        for i in range(length, PREFIX_WORDS):
            if not arg(i):
                break
            typed.append(arg(i))
        for keyword in visible:
            if matched_words(keyword, args, length) != length:
                continue
            rest = keyword.words[length:PREFIX_WORDS]
            total = sum(map(len, typed)) + sum(map(len, rest))
            dist = distance(fingerprint(typed), fingerprint(rest))
            if dist < 5 * total // 2 and (len(matches) < MAX_MATCHES or dist < matches[-1][0]):
                matches.insert(bisect_right([d for d, _ in matches], dist), (dist, keyword))
                del matches[MAX_MATCHES:]
    if matches:
        best = matches[0][0]
        entries = [k for d, k in matches if d <= 5 * best // 2]
    else:
        entries = [k for k in visible if matched_words(k, args, length) == length]
    text += "".join(f"  {usage}\n" for usage in sorted(k.usage for k in entries))
    return text + ALWAYS_LISTED


def matched_words(keyword: Keyword, args: Sequence[str], limit: int) -> int:
    """How many of the first `limit` words of `keyword` the typed words match."""
    n = 0
    for word, typed in zip(keyword.words[:limit], args, strict=False):
        if not typed or word != typed:
            break
        n += 1
    return n


def fingerprint(words: Sequence[str]) -> dict[int, int]:
    """HAProxy's word fingerprint (tools.c): which character classes occur, and how often
    each class follows each other (a class is a letter, any digit, or anything else; the
    start and the end of a word count as "anything else")."""
    fp: dict[int, int] = {}
    for word in words:
        prev = 28
        for ch in word:
            low = ch.lower() if ch.isascii() else ch
            if "a" <= low <= "z":
                cur = ord(low) - ord("a") + 1
            elif "0" <= ch <= "9":
                cur = 27
            else:
                cur = 28
            fp[cur] = 1
            fp[32 * prev + cur] = fp.get(32 * prev + cur, 0) + 1
            prev = cur
        fp[32 * prev + 28] = fp.get(32 * prev + 28, 0) + 1
    return fp


def distance(a: dict[int, int], b: dict[int, int]) -> int:
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


# -- finding servers ----------------------------------------------------------------------


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


def set_admin(view: stats.View, backend: Backend, server: ServerState, admin: AdminState) -> Answer:
    if server.admin is admin:
        return Answer("")
    server.admin = admin
    server.last_change = view.now
    return Answer("", tuple(backend.changed()))


_STRTOL = re.compile(r"\s*[+-]?\d+")


def parse_weight(text: str, server: ServerState, dynamic: bool) -> int | str:
    """`N` (0..256) or `N%` of the initial weight, with HAProxy's messages (some of which
    end without a newline, as in HAProxy)."""
    if not text:
        return "Require <weight> or <weight%>.\n"
    match = _STRTOL.match(text)
    if match is None:
        return "Empty weight string empty or preceded by garbage"
    weight, rest = int(match.group()), text[match.end() :]
    if rest == "%":
        if weight < 0:
            return "Relative weight must be positive.\n"
        weight = min(server.initial_weight * min(weight, 25600) // 100, 256)
    elif not 0 <= weight <= 256:
        return "Absolute weight can only be between 0 and 256 inclusive.\n"
    elif rest:
        return "Trailing garbage in weight string"
    if weight and weight != server.initial_weight and not dynamic:
        return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
    return weight


def dynamic_weights(balance: model.Balance) -> bool:
    """Whether the algorithm takes weights changed at run time (HAProxy's BE_LB_PROP_DYN):
    not `static-rr`, not map-based hashing."""
    if balance.algorithm is model.Algorithm.STATIC_RR:
        return False
    hashing = balance.algorithm is model.Algorithm.SOURCE
    return not (hashing and balance.hash_type is model.HashType.MAP_BASED)


def set_weight(view: stats.View, backend: Backend, server: ServerState, text: str) -> Answer:
    weight = parse_weight(text, server, dynamic_weights(backend.proxy.balance))
    if isinstance(weight, str):
        return Answer(weight)
    if weight == server.weight:
        return Answer("")
    server.weight = weight
    return Answer("", tuple(backend.changed()))


# -- the commands -------------------------------------------------------------------------


def cmd_help(req: Request) -> Answer:
    return Answer(usage_message(req.args, req.session.level))


def cmd_prompt(req: Request) -> Answer:
    req.session.interactive = not req.session.interactive
    return Answer("")


def cmd_quit(req: Request) -> Answer:
    return Answer("", close=True)


def cmd_operator(req: Request) -> Answer:
    req.session.level = Level.OPERATOR
    return Answer("")


def cmd_user(req: Request) -> Answer:
    req.session.level = Level.USER
    return Answer("")


def cmd_show_cli_level(req: Request) -> Answer:
    return Answer(f"{req.session.level.name.lower()}\n")


UNSUPPORTED_FORMATS = ("desc", "json", "typed", "float")


def cmd_show_info(req: Request) -> Answer:
    for word in req.args[2:]:
        if word in UNSUPPORTED_FORMATS:
            return Answer(f"Option '{word}' is not supported yet.\n")
    return Answer(stats.show_info(req.view))


def cmd_show_stat(req: Request) -> Answer:
    view = req.view
    wanted = stats.StatFilter()
    first = 2
    if req.arg(2) and req.arg(3) and req.arg(4):
        proxy = next((p for p in view.proxies() if p.name == req.arg(2)), None)
        iid = proxy.id if proxy is not None else atoi(req.arg(2))
        if not iid:
            return Answer("No such proxy.\n")
        wanted = stats.StatFilter(iid, atoi(req.arg(3)), atoi(req.arg(4)))
        first = 5
    for word in req.args[first:]:
        if word in UNSUPPORTED_FORMATS:
            return Answer(f"Option '{word}' is not supported yet.\n")
        if word == "no-maint":
            wanted = replace(wanted, hide_maint=True)
        elif word == "up":
            wanted = replace(wanted, hide_down=True)
    return Answer(stats.show_stat(view, wanted))


def atoi(text: str) -> int:
    match = _STRTOL.match(text)
    return int(match.group()) if match else 0


def backends_in_order(view: stats.View) -> list[Backend]:
    return [view.backends[p.name] for p in view.proxies() if p.name in view.backends]


def cmd_show_servers_state(req: Request) -> Answer:
    if req.arg(3):
        backend = req.view.backends.get(req.arg(3))
        if backend is None:
            return Answer("Can't find backend.\n")
        return Answer(stats.show_servers_state(req.view, [backend]))
    return Answer(stats.show_servers_state(req.view, backends_in_order(req.view)))


def cmd_show_backend(req: Request) -> Answer:
    names = "".join(f"{b.name}\n" for b in backends_in_order(req.view))
    return Answer(f"# name\n{names}")


def cmd_get_weight(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    _, server = found
    return Answer(f"{server.weight} (initial {server.initial_weight})\n")


def cmd_disable_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_admin(req.view, *found, AdminState.MAINT)


def cmd_enable_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_admin(req.view, *found, AdminState.READY)


SERVER_STATES = {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT}


def cmd_set_server(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    backend, server = found
    what = req.arg(3)
    if what == "state":
        admin = SERVER_STATES.get(req.arg(4))
        if admin is None:
            return Answer("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        return set_admin(req.view, backend, server, admin)
    if what == "weight":
        return set_weight(req.view, backend, server, req.arg(4))
    return Answer("usage: set server <backend>/<server> state | weight\n")


def cmd_set_weight(req: Request) -> Answer:
    found = find_server(req.view, req.arg(2))
    if isinstance(found, str):
        return Answer(found)
    return set_weight(req.view, *found, req.arg(3))


U, OP, A = Level.USER, Level.OPERATOR, Level.ADMIN
TABLE: tuple[Keyword, ...] = (
    Keyword(("help",), U, cmd_help),
    Keyword(("prompt",), U, cmd_prompt),
    Keyword(("quit",), U, cmd_quit),
    Keyword(("operator",), OP, cmd_operator, "operator",
            "lower the level of the current CLI session to operator"),
    Keyword(("user",), U, cmd_user, "user", "lower the level of the current CLI session to user"),
    Keyword(("show", "cli", "level"), U, cmd_show_cli_level, "show cli level",
            "display the level of the current CLI session"),
    Keyword(("show", "info"), U, cmd_show_info, "show info",
            "report information about the running process"),
    Keyword(("show", "stat"), U, cmd_show_stat, "show stat [no-maint|up]*",
            "report counters for each proxy and server"),
    Keyword(("show", "servers", "state"), U, cmd_show_servers_state,
            "show servers state [<backend>]",
            "dump volatile server information (all or for a single backend)"),
    Keyword(("show", "backend"), U, cmd_show_backend, "show backend",
            "list backends in the current running config"),
    Keyword(("get", "weight"), U, cmd_get_weight, "get weight <bk>/<srv>",
            "report a server's current weight"),
    Keyword(("disable", "server"), A, cmd_disable_server, "disable server (DEPRECATED)",
            "disable a server for maintenance (use 'set server' instead)"),
    Keyword(("enable", "server"), A, cmd_enable_server, "enable server  (DEPRECATED)",
            "enable a disabled server (use 'set server' instead)"),
    Keyword(("set", "server"), A, cmd_set_server, "set server <bk>/<srv> [opts]",
            "change a server's state or weight"),
    Keyword(("set", "weight"), A, cmd_set_weight, "set weight <bk>/<srv>  (DEPRECATED)",
            "change a server's weight (use 'set server' instead)"),
)  # fmt: skip
