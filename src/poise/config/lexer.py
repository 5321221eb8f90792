"""The lexer of haproxy.cfg: cuts each line into words, as HAProxy does, and remembers where
each line came from.

HAProxy's configuration.txt, sections 2.1 to 2.3:
- words are separated by spaces and tabs (and vertical tabs and form feeds, as C's
  isspace()); an unprotected `#` starts a comment, also right after an argument
  (`bind :443 #ssl` is `bind :443`); a CR ends the line, even inside quotes;
- a backslash outside single quotes escapes the next character (`\\ `, `\\#`, `\\\\`, `\\'`,
  `\\"`, `\\$`) or writes one (`\\n`, `\\r`, `\\t`, `\\xNN`); any other backslash stays as
  it is, as HAProxy keeps it; a bad `\\x` sequence is an error;
- single quotes protect everything; double quotes protect spaces, `#` and `'`, and expand
  environment variables: `$NAME`, `${NAME}`, `${NAME-default}` (the default replaces an
  unset variable, not an empty one) and `${NAME[*]}` (the value's space-separated parts
  become separate words); an unset variable expands to nothing; `$` outside double quotes
  is an ordinary character;
- the pseudo-variables `.FILE`, `.LINE` and `.SECTION` expand to where the line is;
- a line holds at most 64 words (HAProxy's MAX_LINE_ARGS: blanks after the 64th already
  count as one more).

A line that cannot be lexed (unterminated quote, bad escape, bad variable) is reported at
FILE:LINE and dropped; the other lines are still returned. A file whose last line has no
newline is an error, as in HAProxy 2.6 (the file may have been truncated), and that line
is still read; a NUL byte ends its line, and the file there, with HAProxy's "Stray NUL
character" error.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from poise.config.diagnostics import Diagnostic, error
from poise.config.model import Where

_SIMPLE_ESCAPES = {
    " ": " ",
    "\t": "\t",
    "#": "#",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "$": "$",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_HEX = frozenset("0123456789abcdefABCDEF")
MAX_LINE_ARGS = 64  # HAProxy's limit of words on one line (defaults.h)
_BLANKS = " \t\v\f"  # isspace() without CR and LF, which end a line


@dataclass(frozen=True, slots=True)
class Line:
    """One statement: its place and its words (quotes and escapes resolved)."""

    where: Where
    words: tuple[str, ...]


class LexError(ValueError):
    """A line that cannot be cut into words; the message says where in the line."""


def _is_name_start(char: str) -> bool:
    return char.isascii() and (char.isalpha() or char in "_.")


def _is_name_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


class _LineLexer:
    """Cuts one line; `words` collects the result."""

    def __init__(self, text: str, env: Mapping[str, str], pseudo: Mapping[str, str]) -> None:
        self.text = text
        self.env = env
        self.pseudo = pseudo
        self.words: list[str] = []
        self.current: list[str] = []
        self.started = False  # a quote opens a word even if it stays empty
        self.drop_if_empty = False  # the word is only an empty ${NAME[*]}
        self.pos = 0
        self.separators = 0  # HAProxy's argument count: one per run of blanks (and [*] part)

    def fail(self, message: str, column: int) -> LexError:
        return LexError(f"{message} at column {column + 1}")

    def end_word(self) -> None:
        if self.current or (self.started and not self.drop_if_empty):
            self.words.append("".join(self.current))
        self.current = []
        self.started = False
        self.drop_if_empty = False

    def run(self) -> list[str]:
        text = self.text
        self.pos = len(text) - len(text.lstrip(_BLANKS))
        while self.pos < len(text):
            char = text[self.pos]
            if char in _BLANKS:
                self.end_word()
                self.separators += 1
                while self.pos < len(text) and text[self.pos] in _BLANKS:
                    self.pos += 1
            elif char == "#":
                break
            elif char == "\\":
                self.escape()
            elif char == "'":
                self.single_quoted()
            elif char == '"':
                self.double_quoted()
            else:
                self.current.append(char)
                self.pos += 1
        self.end_word()
        if self.separators >= MAX_LINE_ARGS:
            raise self.too_many()
        return self.words

    def too_many(self) -> LexError:
        """HAProxy 2.6's error (cfgparse.c): it counts words as it cuts them, so blanks
        after the 64th word are already one too many; the position is the 64th word's in
        the line as cut (words joined by one byte)."""
        words = self.words[:MAX_LINE_ARGS]
        last = words[-1] if len(words) == MAX_LINE_ARGS else ""
        position = sum(len(w.encode("utf-8", "surrogatepass")) + 1 for w in words[:-1]) + 1
        return LexError(
            f"too many words, truncating after word {MAX_LINE_ARGS}, position {position}: <{last}>."
        )

    def escape(self) -> None:
        """A backslash at self.pos, outside single quotes."""
        text, start = self.text, self.pos
        following = text[start + 1 : start + 2]
        if following == "x":
            digits = text[start + 2 : start + 4]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise self.fail("truncated or invalid hexadecimal escape", start)
            self.current.append(chr(int(digits, 16)))
            self.pos = start + 4
        elif following and following in _SIMPLE_ESCAPES:
            self.current.append(_SIMPLE_ESCAPES[following])
            self.pos = start + 2
        else:
            # HAProxy keeps an unknown escape as written (`\q` stays `\q`).
            self.current.append("\\")
            self.pos = start + 1

    def single_quoted(self) -> None:
        start = self.pos
        end = self.text.find("'", start + 1)
        if end < 0:
            raise self.fail("unmatched quote", start)
        self.current.append(self.text[start + 1 : end])
        self.started = True
        self.pos = end + 1

    def double_quoted(self) -> None:
        start = self.pos
        self.started = True
        self.pos += 1
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\":
                self.escape()
            elif char == "$":
                self.variable()
            else:
                self.current.append(char)
                self.pos += 1
        raise self.fail("unmatched quote", start)

    def variable(self) -> None:
        """`$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` at self.pos."""
        text, start = self.text, self.pos
        braced = text[start + 1 : start + 2] == "{"
        name_start = start + 2 if braced else start + 1
        if name_start >= len(text) or not _is_name_start(text[name_start]):
            raise self.fail("forbidden first character in environment variable name", start)
        end = name_start + 1
        while end < len(text) and _is_name_char(text[end]):
            end += 1
        name = text[name_start:end]
        value = self.pseudo.get(name) if name.startswith(".") else self.env.get(name)
        if not braced:
            self.current.append(value or "")
            self.pos = end
            return
        close = text.find("}", end)
        if close < 0:
            raise self.fail("unmatched brace in environment variable name", start)
        suffix = text[end:close]
        self.pos = close + 1
        if suffix == "[*]":
            parts = (value or "").split()
            if not parts and not self.current:
                self.drop_if_empty = True
            for index, part in enumerate(parts):
                if index:
                    self.end_word()
                    self.separators += 1
                    self.started = True
                self.current.append(part)
        elif suffix.startswith("-"):
            self.current.append(suffix[1:] if value is None else value)
        elif suffix:
            raise self.fail(f"unexpected '{suffix}' in environment variable '{name}'", end)
        else:
            self.current.append(value or "")


def split_words(
    text: str, env: Mapping[str, str], pseudo: Mapping[str, str] | None = None
) -> list[str]:
    """The words of one line (raises LexError)."""
    return _LineLexer(text, env, pseudo or {}).run()


def lex(
    filename: str,
    text: str,
    env: Mapping[str, str],
    section_keywords: Collection[str] = (),
) -> tuple[list[Line], list[Diagnostic]]:
    """Every non-empty statement of one file. `section_keywords` lets `.SECTION` follow
    the section being read (its name, or its keyword when it has no name)."""
    lines: list[Line] = []
    diagnostics: list[Diagnostic] = []
    section = ""
    physical_lines = text.split("\n")
    if not physical_lines[-1]:
        physical_lines.pop()  # the file ends with a newline, as it should
        complete = True
    else:
        complete = False
    for number, physical in enumerate(physical_lines, start=1):
        # As HAProxy reads a line: a NUL ends it (C strings), so does a CR (parse_line).
        nul = physical.find("\0")
        head = physical if nul < 0 else physical[:nul]
        raw = head.split("\r", 1)[0]
        where = Where(filename, number)
        pseudo = {".FILE": filename, ".LINE": str(number), ".SECTION": section}
        try:
            words = split_words(raw, env, pseudo)
        except LexError as exc:
            diagnostics.append(error(where, str(exc)))
            words = []
        if words:
            if words[0] in section_keywords:
                section = words[1] if len(words) > 1 else words[0]
            lines.append(Line(where, tuple(words)))
        last = number == len(physical_lines)
        if last and (nul >= 0 or not complete):
            diagnostics.append(missing_lf(filename, number, head))
        elif nul >= 0:
            # HAProxy 2.6 stops reading the file there.
            position = len(head.encode("utf-8", "surrogatepass")) + 1
            diagnostics.append(error(where, f"Stray NUL character at position {position}."))
            break
    return lines, diagnostics


def expand_address(text: str, env: Mapping[str, str]) -> str:
    """HAProxy's second expansion, of the address of a `bind` or `server` (env_expand(),
    called by str2sa_range() on every address, quoted or not): `$NAME` and `${NAME}`,
    where NAME is letters, digits and `_` (possibly none), become the variable's value,
    or nothing when it is unset. So `server s1 127.0.0.1:${PORT}` with PORT unset is
    `127.0.0.1:`, a server without a port, as HAProxy 2.6 reads it."""
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (dollar := text.find("$", pos)) >= 0:
        out.append(text[pos:dollar])
        start = dollar + 1
        braced = text[start : start + 1] == "{"
        start += braced
        end = start
        while end < len(text) and _is_name_char(text[end]):
            end += 1
        out.append(env.get(text[start:end], "") if end > start else "")
        pos = end + 1 if braced and text[end : end + 1] == "}" else end
    out.append(text[pos:])
    return "".join(out)


def missing_lf(filename: str, number: int, last: str) -> Diagnostic:
    """HAProxy 2.6's error for a file that does not end with a newline, with the same
    position (one past the last line's length in bytes)."""
    position = len(last.encode("utf-8", "surrogatepass")) + 1
    return error(
        Where(filename, number),
        f"Missing LF on last line, file might have been truncated at position {position}.",
    )


def quote(word: str) -> str:
    """One word written so that the lexer gives it back unchanged (double-quoted, with
    backslash escapes for `\\`, `"`, `$` and control characters)."""
    out = ['"']
    for char in word:
        if char in '\\"$':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char != "\t" and (ord(char) < 0x20 or ord(char) == 0x7F):
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def join(words: Iterable[str]) -> str:
    """A line made of words, each quoted."""
    return " ".join(quote(word) for word in words)
