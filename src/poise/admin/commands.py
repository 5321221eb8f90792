"""The runtime API (HAProxy's "stats socket" CLI, management.txt 9.3): how a client's bytes
split into commands, how a command line splits into words, one table of keywords with the
level each needs, and the answer to each command in HAProxy 2.6's words, so that scripts
written for `socat ... /var/run/haproxy.sock` work against poise unchanged.

Pure: a command reads and changes the model (ServerState, Backend) and returns its answer;
a change of a server's state, weight or membership goes through the Backend, and the
waiting connections it lets go are handed to the shell in `Answer.goes`, which starts
them; what only the shell can do (end sessions, pause a frontend) comes back as effects
(commands_base.py). A command that fails changes nothing. Levels are HAProxy's: `user`
reads, `operator` also clears the maxima and lists sessions, `admin` changes state.

The table is here; the commands live in commands_servers.py (one server),
commands_dynamic.py (`add server`, `del server`), commands_proxies.py (frontends, the
process, the CLI session) and commands_show.py (`show ...`). A new command is one Keyword
and one function. `help` lists the commands of the session's level (HAProxy 2.6 lists
every command and refuses the ones above the level when they are run; poise does not show
what it refuses).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

from poise.admin import stats
from poise.admin.commands_base import (
    LEVELS,
    Answer,
    ClearFrontends,
    DropIdle,
    Effect,
    EndSession,
    EndSessions,
    Fingerprint,
    Keyword,
    Level,
    Notice,
    Pause,
    Request,
    Session,
    SetMaxconn,
    distance,
    fingerprint,
    word_length,
)
from poise.admin.commands_cache import cmd_show_cache
from poise.admin.commands_dynamic import cmd_add_server, cmd_del_server
from poise.admin.commands_maps import (
    cmd_add_acl,
    cmd_add_map,
    cmd_clear_acl,
    cmd_clear_map,
    cmd_del_acl,
    cmd_del_map,
    cmd_set_map,
    cmd_show_acl,
    cmd_show_map,
)
from poise.admin.commands_peers import cmd_show_peers
from poise.admin.commands_proxies import (
    cmd_clear_counters,
    cmd_clear_counters_all,
    cmd_disable_dynamic_cookie,
    cmd_disable_frontend,
    cmd_enable_dynamic_cookie,
    cmd_enable_frontend,
    cmd_set_dynamic_cookie_key,
    cmd_set_maxconn_frontend,
    cmd_set_maxconn_global,
    cmd_set_timeout,
)
from poise.admin.commands_servers import (
    cmd_disable_server,
    cmd_enable_server,
    cmd_get_weight,
    cmd_set_maxconn_server,
    cmd_set_server,
    cmd_set_weight,
    cmd_shutdown_sessions_server,
)
from poise.admin.commands_show import (
    cmd_show_backend,
    cmd_show_cli_level,
    cmd_show_info,
    cmd_show_servers_state,
    cmd_show_sess,
    cmd_show_stat,
    cmd_shutdown_session,
)
from poise.admin.commands_table import cmd_clear_table, cmd_set_table, cmd_show_table
from poise.config.tune import BUFSIZE, MAXREWRITE

__all__ = [
    "LEVELS",
    "SHARED",
    "TABLE",
    "Answer",
    "ClearFrontends",
    "Command",
    "DropIdle",
    "Effect",
    "EndSession",
    "EndSessions",
    "Keyword",
    "Level",
    "LineReader",
    "Notice",
    "Pause",
    "Request",
    "Session",
    "SetMaxconn",
    "distance",
    "execute",
    "fingerprint",
    "shared",
    "split_words",
]  # fmt: skip

MAX_ARGS = 64  # HAProxy's MAX_CLI_ARGS: further words are ignored
PREFIX_WORDS = 5  # CLI_PREFIX_KW_NB: a keyword has at most this many words
MAX_MATCHES = 5  # CLI_MAX_MATCHES: suggestions for a mistyped command
# HAProxy reads a command into a buffer of `tune.bufsize` (16384: poise has no
# `tune.bufsize`, so HAProxy's default holds), less `tune.maxrewrite` (1024) kept free.
# Measured against HAProxy 2.6.12 (also with tune.bufsize 32768, where both double): a
# command line of up to 15360 bytes with its LF is answered, a longer one never is (the
# connection is closed, or stalls with a full buffer until `stats timeout`: poise closes);
# a command with its payload (every line with its LF, the empty line that ends it
# included) must fit in 16383 bytes (the buffer less its NUL), else the connection is
# closed. So a client never makes poise hold more than that per connection.
MAX_LINE = BUFSIZE - MAXREWRITE  # a command line, its LF (or `;`) included
MAX_COMMAND = BUFSIZE - 1  # a command with its payload
PAYLOAD_MARK = "<<"

PERMISSION_DENIED = "Permission denied\n"
ALWAYS_LISTED = (
    "  help [<command>]                        : list matching or all commands\n"
    "  prompt                                  : toggle interactive mode with prompt\n"
    "  quit                                    : disconnect\n"
)


# -- bytes to commands to words -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    line: str
    payload: str | None = None  # the lines after a line ending in `<<`, up to an empty line


_COMMAND_END = re.compile(rb"[\n;\\]")  # LF, `;`, or a backslash escaping the next byte


class LineReader:
    """Splits a client's bytes into commands as HAProxy's CLI reads them: a command ends at
    an LF or at a `;`, either escaped by a backslash does not end it; a trailing CR is
    dropped. A line ending in `<<` starts a payload that ends at an empty line. A command
    longer than HAProxy's limits (MAX_LINE, MAX_COMMAND) sets `overflow`: the shell closes
    the connection, and nothing more is read. Each byte is looked at once (the scan goes
    on where the previous one stopped), so a line arriving in many pieces costs no more
    than one arriving whole."""

    __slots__ = ("buf", "head", "overflow", "payload", "scanned", "size")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.head: str | None = None  # the command line of a payload being read
        self.payload: list[str] = []
        self.size = 0  # bytes of the command being read: its line and payload so far
        self.scanned = 0  # bytes of `buf` known to hold no end of the current line
        self.overflow = False

    def feed(self, data: bytes) -> None:
        if not self.overflow:
            self.buf += data

    @property
    def pending(self) -> bool:
        """Bytes received and not consumed yet (HAProxy keeps a non-interactive
        connection open only while some are left)."""
        return bool(self.buf) or self.head is not None

    def next(self) -> Command | None:
        while not self.overflow:
            end = self._line_end()
            if end is None:
                limit = MAX_COMMAND - self.size if self.head is not None else MAX_LINE
                if len(self.buf) >= limit:  # its end can no longer fit
                    self._refuse()
                return None
            self.size += end + 1
            if self.size > (MAX_COMMAND if self.head is not None else MAX_LINE):
                self._refuse()
                return None
            raw = bytes(self.buf[:end])
            del self.buf[: end + 1]
            self.scanned = 0
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            line = raw.decode("utf-8", "surrogateescape")
            if self.head is not None:
                if line:
                    self.payload.append(line)
                    continue
                command = Command(self.head, "\n".join(self.payload))
                self.head, self.payload, self.size = None, [], 0
                return command
            if line.endswith(PAYLOAD_MARK):
                self.head = line[: -len(PAYLOAD_MARK)]
                continue
            self.size = 0
            return Command(line)
        return None

    def _refuse(self) -> None:
        self.overflow = True
        self.buf.clear()
        self.head, self.payload = None, []

    def _line_end(self) -> int | None:
        buf = self.buf
        if self.head is not None:  # a payload takes no escapes and no `;`
            end = buf.find(b"\n", self.scanned)
            if end < 0:
                self.scanned = len(buf)
                return None
            return end
        i = self.scanned
        while True:
            found = _COMMAND_END.search(buf, i)
            if found is None:
                self.scanned = i
                return None
            i = found.start()
            if buf[i] != 0x5C:  # not a backslash: LF or `;`
                return i
            if i + 1 >= len(buf):  # the escaped byte has not come yet
                self.scanned = i
                return None
            i += 2


_WORD = re.compile(r"(?:\\.|\\\Z|[^ \t\\])+", re.DOTALL)  # escapes stay in their word
_ESCAPE = re.compile(r"\\(.|\Z)", re.DOTALL)
_BLANKS = re.compile(r"[ \t]+")


def split_words(line: str) -> list[str]:
    """Words are separated by spaces and tabs; a backslash keeps the next character in the
    word (`\\ `, `\\;`) and `\\\\` is a backslash. Only the first MAX_ARGS words count."""
    if "\\" not in line:  # the common case, at C speed
        stripped = line.strip(" \t")
        return _BLANKS.split(stripped, MAX_ARGS)[:MAX_ARGS] if stripped else []
    words: list[str] = []
    for found in _WORD.finditer(line):
        word = found.group()
        words.append(_ESCAPE.sub(r"\1", word) if "\\" in word else word)
        if len(words) == MAX_ARGS:
            break
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
        payload = command.payload if isinstance(command, Command) else None
        answer = keyword.run(Request(tuple(args), session, view, payload))
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
        typed_fp, typed_len = fingerprint(typed), sum(map(word_length, typed))
        for keyword in visible:
            if matched_words(keyword, args, length) != length:
                continue
            rest = keyword.words[length:PREFIX_WORDS]
            total = typed_len + sum(map(len, rest))
            dist = distance(typed_fp, keyword_fingerprint(rest))
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


@cache
def keyword_fingerprint(words: tuple[str, ...]) -> Fingerprint:
    return fingerprint(words)


def matched_words(keyword: Keyword, args: Sequence[str], limit: int) -> int:
    """How many of the first `limit` words of `keyword` the typed words match."""
    n = 0
    for word, typed in zip(keyword.words[:limit], args, strict=False):
        if not typed or word != typed:
            break
        n += 1
    return n


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


# The first keyword whose words start the command runs it: a longer keyword comes before
# a shorter one it extends (`clear counters all` before `clear counters`).
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
    Keyword(("show", "info"), U, cmd_show_info, "show info [desc|json|typed|float]*",
            "report information about the running process"),
    Keyword(("show", "stat"), U, cmd_show_stat, "show stat [desc|json|no-maint|typed|up]*",
            "report counters for each proxy and server"),
    Keyword(("show", "servers", "state"), U, cmd_show_servers_state,
            "show servers state [<backend>]",
            "dump volatile server information (all or for a single backend)"),
    Keyword(("show", "backend"), U, cmd_show_backend, "show backend",
            "list backends in the current running config"),
    Keyword(("show", "cache"), U, cmd_show_cache, "show cache", "show cache status"),
    Keyword(("show", "sess"), OP, cmd_show_sess, "show sess [id]",
            "report the list of current sessions or dump this exact session"),
    Keyword(("show", "peers"), U, cmd_show_peers, "show peers [dict|-] [section]",
            "dump some information about all the peers or this peers section"),
    Keyword(("show", "table"), U, cmd_show_table, "show table <table> [<filter>]*",
            "report table usage stats or dump this table's contents (filter: data/key)"),
    Keyword(("clear", "table"), U, cmd_clear_table, "clear table <table> [<filter>]*",
            "remove an entry from a table (filter: data/key)"),
    Keyword(("set", "table"), U, cmd_set_table, "set table <table> key <k> [data.* <v>]*",
            "update or create a table entry's data"),
    Keyword(("get", "weight"), U, cmd_get_weight, "get weight <bk>/<srv>",
            "report a server's current weight"),
    Keyword(("set", "timeout"), U, cmd_set_timeout, "set timeout [cli] <delay>",
            "change a timeout setting"),
    Keyword(("clear", "counters", "all"), A, cmd_clear_counters_all),
    Keyword(("clear", "counters"), OP, cmd_clear_counters, "clear counters [all]",
            "clear max statistics counters (or all counters)"),
    Keyword(("disable", "server"), A, cmd_disable_server, "disable server (DEPRECATED)",
            "disable a server for maintenance (use 'set server' instead)"),
    Keyword(("enable", "server"), A, cmd_enable_server, "enable server  (DEPRECATED)",
            "enable a disabled server (use 'set server' instead)"),
    Keyword(("set", "server"), A, cmd_set_server, "set server <bk>/<srv> [opts]",
            "change a server's state, weight or address"),
    Keyword(("set", "weight"), A, cmd_set_weight, "set weight <bk>/<srv>  (DEPRECATED)",
            "change a server's weight (use 'set server' instead)"),
    Keyword(("set", "maxconn", "frontend"), A, cmd_set_maxconn_frontend,
            "set maxconn frontend <frontend> <value>", "change a frontend's maxconn setting"),
    Keyword(("set", "maxconn", "global"), A, cmd_set_maxconn_global,
            "set maxconn global <value>", "change the per-process maxconn setting"),
    Keyword(("set", "maxconn", "server"), A, cmd_set_maxconn_server,
            "set maxconn server <bk>/<srv>", "change a server's maxconn setting"),
    Keyword(("add", "server"), A, cmd_add_server, "add server <bk>/<srv>",
            "create a new server"),
    Keyword(("del", "server"), A, cmd_del_server, "del server <bk>/<srv>",
            "remove a dynamically added server"),
    Keyword(("disable", "frontend"), A, cmd_disable_frontend, "disable frontend <frontend>",
            "temporarily disable specific frontend"),
    Keyword(("disable", "dynamic-cookie", "backend"), A, cmd_disable_dynamic_cookie,
            "disable dynamic-cookie backend <bk>", "disable dynamic cookies on a specific backend"),
    Keyword(("enable", "dynamic-cookie", "backend"), A, cmd_enable_dynamic_cookie,
            "enable dynamic-cookie backend <bk>", "enable dynamic cookies on a specific backend"),
    Keyword(("set", "dynamic-cookie-key", "backend"), A, cmd_set_dynamic_cookie_key,
            "set dynamic-cookie-key backend <bk> <k>",
            "change a backend secret key for dynamic cookies"),
    Keyword(("enable", "frontend"), A, cmd_enable_frontend, "enable frontend <frontend>",
            "re-enable specific frontend"),
    Keyword(("add", "acl"), OP, cmd_add_acl, "add acl [@<ver>] <acl> <pattern>",
            "add an acl entry"),
    Keyword(("add", "map"), OP, cmd_add_map, "add map [@<ver>] <map> <key> <val>",
            "add a map entry (payload supported instead of key/val)"),
    Keyword(("clear", "acl"), OP, cmd_clear_acl, "clear acl [@<ver>] <acl>",
            "clear the contents of this acl"),
    Keyword(("clear", "map"), OP, cmd_clear_map, "clear map [@<ver>] <map>",
            "clear the contents of this map"),
    Keyword(("del", "acl"), OP, cmd_del_acl, "del acl <acl> [<key>|#<ref>]",
            "delete acl entries matching <key>"),
    Keyword(("del", "map"), OP, cmd_del_map, "del map <map> [<key>|#<ref>]",
            "delete map entries matching <key>"),
    Keyword(("set", "map"), OP, cmd_set_map, "set map <map> [<key>|#<ref>] <value>",
            "modify a map entry"),
    Keyword(("show", "acl"), U, cmd_show_acl, "show acl [@<ver>] <acl>]",
            "report available acls or dump an acl's contents"),
    Keyword(("show", "map"), U, cmd_show_map, "show map [@ver] [map]",
            "report available maps or dump a map's contents"),
    Keyword(("shutdown", "session"), A, cmd_shutdown_session, "shutdown session [id]",
            "kill a specific session"),
    Keyword(("shutdown", "sessions", "server"), A, cmd_shutdown_sessions_server,
            "shutdown sessions server <bk>/<srv>", "kill sessions on a server"),
)  # fmt: skip

# The commands that change the balancer's state: with several workers (`nbthread`), the
# worker that answers one has every other worker run it too (net/admin_socket.py).
# `shutdown session` names a session of the worker that lists it, `set timeout cli` the
# client's own connection: neither goes to the others.
SHARED = frozenset({
    ("clear", "counters"), ("clear", "counters", "all"), ("disable", "server"),
    ("enable", "server"), ("set", "server"), ("set", "weight"),
    ("set", "maxconn", "frontend"), ("set", "maxconn", "global"), ("set", "maxconn", "server"),
    ("add", "server"), ("del", "server"), ("disable", "frontend"), ("enable", "frontend"),
    ("disable", "dynamic-cookie", "backend"), ("enable", "dynamic-cookie", "backend"),
    ("set", "dynamic-cookie-key", "backend"), ("add", "acl"), ("add", "map"),
    ("clear", "acl"), ("clear", "map"), ("del", "acl"), ("del", "map"), ("set", "map"),
    ("clear", "table"), ("set", "table"), ("shutdown", "sessions", "server"),
})  # fmt: skip


def shared(line: str) -> bool:
    """Does this command line change what every worker must agree on?"""
    keyword = find_keyword(split_words(line))
    return keyword is not None and keyword.words in SHARED
