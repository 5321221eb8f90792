"""The lexer of keepalived.conf: cuts the files into words and braces and builds the tree of
blocks, following `include` lines, as Keepalived reads them (keepalived.conf(5), DESCRIPTION
and "Quoted strings").

- `#` and `!` start a comment anywhere outside quotes;
- words are separated by spaces and tabs; `{` and `}` are words of their own, so a block may
  open on the keyword's line, on the next line, or hold its items on one line;
- `"..."` and `'...'` make one word of what they hold (spaces included); inside them a
  backslash escapes as in the shell (`\\n`, `\\t`, `\\xXX`, `\\nnn` octal, `\\cC`, `\\C`);
- a line ending with a backslash goes on with the next line;
- `include PATTERN` (and the variants `includer`, `includem`, `includew`, `includeb`,
  `includea`) reads the files matching a glob with csh-style braces, in name order, relative
  to the including file's directory; it may stand at any level.

Pure: the files are read through a `Source` that the caller gives (load.py's counterpart
for keepalived.conf lives in poise.vrrp.system), so the whole is tested without a disk.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.model import Where

INCLUDE_KEYWORDS = frozenset(
    ("include", "includer", "includem", "includew", "includeb", "includea")
)
MAX_INCLUDE_DEPTH = 32  # includes nested deeper are an error
# Bounds on the work one configuration may ask for: without them, two files that include
# each other twice, or one `{a,b}{a,b}...` pattern, grow exponentially (Keepalived itself
# recurses until it runs out of file descriptors).
MAX_INCLUDED_FILES = 1000
MAX_PATTERNS = 1000
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES["v"] = "\v"
_HEX = "0123456789abcdefABCDEF"
_WILDCARDS = frozenset("*?[")


class Source(Protocol):
    """Where the files come from: the disk in the shell, a dict in the tests."""

    def read(self, path: str) -> str:
        """The text of a file; raises OSError when it cannot be read."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """The paths matching a glob pattern (without braces), sorted."""
        ...


@dataclass(frozen=True, slots=True)
class Node:
    """One statement: its words and, for a block, the statements inside it."""

    where: Where
    words: tuple[str, ...]
    children: tuple[Node, ...] | None = None
    opened: Where | None = None  # where the block's `{` is (the keyword's line or a later one)

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""


class LexError(ValueError):
    """A line that cannot be cut into words."""


_OPEN = object()  # the `{` token
_CLOSE = object()  # the `}` token
Token = str | object


def _escape(text: str, pos: int) -> tuple[str, int]:
    """The character a backslash at `pos` stands for, and where the text goes on."""
    nxt = text[pos + 1 : pos + 2]
    if not nxt:
        return "\\", pos + 1
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], pos + 2
    if nxt == "x":
        end = pos + 2
        while end < len(text) and text[end] in _HEX:
            end += 1
        if end == pos + 2:
            raise LexError(f"'\\x' without hexadecimal digits at column {pos + 1}")
        return chr(int(text[pos + 2 : end], 16) & 0xFF), end
    if nxt in "01234567":
        end = pos + 1
        while end < len(text) and end < pos + 4 and text[end] in "01234567":
            end += 1
        return chr(int(text[pos + 1 : end], 8) & 0xFF), end
    if nxt == "c" and pos + 2 < len(text):
        return chr(ord(text[pos + 2].upper()) ^ 0x40), pos + 3
    return nxt, pos + 2


def split_line(text: str, braces: bool = True) -> list[Token]:
    """The words and braces of one line (raises LexError). `braces=False` keeps braces
    inside words (an `include` pattern's csh-style braces)."""
    tokens: list[Token] = []
    current: list[str] = []
    started = False  # a quote opens a word even if it stays empty
    pos = 0

    def end_word() -> None:
        nonlocal started
        if current or started:
            tokens.append("".join(current))
        current.clear()
        started = False

    while pos < len(text):
        char = text[pos]
        if char in " \t\r\n":
            end_word()
            pos += 1
        elif char in "#!":
            break
        elif char in "{}" and braces:
            end_word()
            tokens.append(_OPEN if char == "{" else _CLOSE)
            pos += 1
        elif char in "\"'":
            start = pos
            started = True
            pos += 1
            while True:
                if pos >= len(text):
                    raise LexError(f"unmatched quote at column {start + 1}")
                inner = text[pos]
                if inner == char:
                    pos += 1
                    break
                if inner == "\\":
                    value, pos = _escape(text, pos)
                    current.append(value)
                else:
                    current.append(inner)
                    pos += 1
        else:
            current.append(char)
            pos += 1
    end_word()
    return tokens


def expand_braces(pattern: str, limit: int = MAX_PATTERNS + 1) -> list[str]:
    """csh-style brace expansion: `a{b,c}d` -> `abd`, `acd` (nested braces too); at most
    `limit` names (the expansion of `{a,b}` repeated grows exponentially)."""
    depth = 0
    start = -1
    for index, char in enumerate(pattern):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : index]
                parts = _split_top(inner)
                if len(parts) < 2:
                    continue
                head, tail = pattern[:start], pattern[index + 1 :]
                out: list[str] = []
                for part in parts:
                    if len(out) >= limit:
                        break
                    out.extend(expand_braces(head + part + tail, limit - len(out)))
                return out[:limit]
    return [pattern]


def _split_top(text: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[last:index])
            last = index + 1
    parts.append(text[last:])
    return parts


class _Builder:
    """Feeds tokens into the tree of blocks; one instance reads all the files."""

    def __init__(self, source: Source, diagnostics: list[Diagnostic]) -> None:
        self.source = source
        self.diagnostics = diagnostics
        root: list[_Pending] = []
        self.stack: list[tuple[Where | None, list[_Pending]]] = [(None, root)]
        self.root = root
        self.words: list[str] = []
        self.where: Where | None = None
        self.reading: list[str] = []  # the chain of files being read, outermost first
        self.included = 0

    def read_file(self, path: str, text: str, depth: int) -> None:
        self.reading.append(path)
        try:
            self.read_lines(path, text, depth)
        finally:
            self.reading.pop()

    def read_lines(self, path: str, text: str, depth: int) -> None:
        physical = text.split("\n")
        number = 0
        while number < len(physical):
            first = number
            line = physical[number].removesuffix("\r")
            number += 1
            while line.endswith("\\") and number < len(physical):
                line = line[:-1] + " " + physical[number].removesuffix("\r")
                number += 1
            where = Where(path, first + 1)
            head = line.split(None, 1)
            include = bool(head) and head[0] in INCLUDE_KEYWORDS
            try:
                tokens = split_line(line, braces=not include)
            except LexError as exc:
                self.diagnostics.append(error(where, str(exc)))
                continue
            if tokens and tokens[0] in INCLUDE_KEYWORDS:
                self.include(where, path, tokens, depth)
                continue
            for token in tokens:
                self.feed(where, token)
            self.end_statement()

    def feed(self, where: Where, token: Token) -> None:
        if isinstance(token, str):
            if not self.words:
                self.where = where
            self.words.append(token)
        elif token is _OPEN:
            self.open_block(where)
        else:
            self.close_block(where)

    def end_statement(self) -> None:
        if self.words and self.where is not None:
            self.stack[-1][1].append(_Pending(self.where, tuple(self.words)))
        self.words = []
        self.where = None

    def open_block(self, where: Where) -> None:
        siblings = self.stack[-1][1]
        if self.words:
            self.end_statement()
        elif not siblings or siblings[-1].children is not None:
            # What an unrendered template (`{{ x }}`) leaves: reported here, and the block
            # it opens is read (for its braces) and left out of the tree.
            self.diagnostics.append(
                error(where, "'{' without a keyword before it: the block it opens is ignored")
            )
            self.stack.append((where, []))
            return
        node = siblings[-1]
        node.children = []
        node.opened = where
        self.stack.append((where, node.children))

    def close_block(self, where: Where) -> None:
        self.end_statement()
        if len(self.stack) == 1:
            self.diagnostics.append(error(where, "'}' without a block to close"))
            return
        self.stack.pop()

    def include(self, where: Where, path: str, tokens: list[Token], depth: int) -> None:
        keyword = str(tokens[0])
        words = [t for t in tokens[1:] if isinstance(t, str)]
        if len(words) != 1 or len(words) != len(tokens) - 1:
            self.diagnostics.append(error(where, "expects one file name or pattern", keyword))
            return
        if depth >= MAX_INCLUDE_DEPTH:
            self.diagnostics.append(
                error(where, f"includes nested deeper than {MAX_INCLUDE_DEPTH}", keyword)
            )
            return
        self.end_statement()
        base = posixpath.dirname(path)
        patterns = expand_braces(words[0])
        if len(patterns) > MAX_PATTERNS:
            self.diagnostics.append(
                error(where, f"'{words[0]}' expands to more than {MAX_PATTERNS} names", keyword)
            )
            return
        for pattern in patterns:
            full = posixpath.normpath(posixpath.join(base, pattern))
            if _WILDCARDS & set(pattern):
                matches = self.source.glob(full)
                if not matches:
                    report: Callable[..., Diagnostic] = (
                        error if keyword in ("includew", "includea") else warning
                    )
                    self.diagnostics.append(report(where, f"no file matches '{full}'", keyword))
            else:
                matches = [full]
            for match in matches:
                if match in self.reading:
                    self.diagnostics.append(
                        error(where, f"include loop: '{match}' is already being read", keyword)
                    )
                    continue
                self.included += 1
                if self.included > MAX_INCLUDED_FILES:
                    if self.included == MAX_INCLUDED_FILES + 1:
                        message = (
                            f"more than {MAX_INCLUDED_FILES} files included: the rest are not read"
                        )
                        self.diagnostics.append(error(where, message, keyword))
                    return
                try:
                    text = self.source.read(match)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    self.diagnostics.append(
                        error(where, f"cannot read '{match}': {reason}", keyword)
                    )
                    continue
                self.read_file(match, text, depth + 1)


class _Pending:
    """A Node being built (its children list grows while its block is open)."""

    __slots__ = ("children", "opened", "where", "words")

    def __init__(self, where: Where, words: tuple[str, ...]) -> None:
        self.where = where
        self.words = words
        self.children: list[_Pending] | None = None
        self.opened: Where | None = None

    def freeze(self) -> Node:
        children = None if self.children is None else tuple(c.freeze() for c in self.children)
        return Node(self.where, self.words, children, self.opened)


def read_tree(path: str, source: Source) -> tuple[list[Node], list[Diagnostic]]:
    """The top-level statements of `path` and of the files it includes, and every problem
    met while lexing (an unmatched quote drops its line; an unclosed block is closed at the
    end of the files)."""
    diagnostics: list[Diagnostic] = []
    builder = _Builder(source, diagnostics)
    try:
        text = source.read(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [], [error(Where(path, 0), f"cannot read '{path}': {reason}")]
    builder.read_file(path, text, 0)
    builder.end_statement()
    while len(builder.stack) > 1:
        opened, _ = builder.stack.pop()
        if opened is not None:
            diagnostics.append(error(opened, "block not closed: '}' missing"))
    return [node.freeze() for node in builder.root], diagnostics
