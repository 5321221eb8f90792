"""HAProxy's conditional blocks and messages (configuration.txt 2.4): `.if COND`,
`.elif COND`, `.else`, `.endif`, and `.notice`, `.warning`, `.alert`, `.diag`.

A condition is the words after the directive joined by one space (so `streq(a, a)` compares
"a" with " a", as HAProxy says), then read as an expression: `0` is false, another integer
true, an empty condition false; predicates `defined(NAME)` (an environment variable
exists), `feature(NAME)` (a feature of this build, FEATURES below), `streq(A,B)`,
`strneq(A,B)`, `version_atleast(V)`, `version_before(V)` (against the HAProxy version poise
follows, 2.6.12), `openssl_version_atleast(V)`, `openssl_version_before(V)` (the OpenSSL
poise runs with, given by the loader); `!`, `&&` (binding tighter), `||` and parentheses.
Checked against haproxy 2.6.12 -c on the same files: the messages' texts are its own.

`.diag` lines are shown by HAProxy only in its diagnostic mode (-dD), which poise does not
have: they show nothing here either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from poise.config.diagnostics import Diagnostic, Severity, error, warning
from poise.config.where import Where

VERSION = (2, 6, 12)  # the HAProxy version whose behaviour poise follows
# What `haproxy -vv` would list with a '+' for poise: what it does of them.
FEATURES = frozenset({"OPENSSL", "GETADDRINFO", "PROMEX", "EPOLL", "POLL"})
DIRECTIVES = frozenset({".if", ".elif", ".else", ".endif", ".notice", ".warning", ".alert"})
DIRECTIVES |= {".diag"}


class ConditionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Facts:
    """What the predicates ask about the running program."""

    openssl: tuple[int, ...] | None = None  # ssl.OPENSSL_VERSION_INFO[:3], from the loader
    features: frozenset[str] = FEATURES


@dataclass(slots=True)
class _Level:
    where: Where
    parent: bool  # the enclosing block is active
    active: bool  # the lines of the current branch are read
    taken: bool  # a branch of this level was (or is) active
    seen_else: bool = False


def _version(text: str) -> tuple[int, ...]:
    numbers = re.match(r"\d+(?:\.\d+)*", text.strip())
    if numbers is None:
        raise ConditionError(f"unparsable version number '{text}'")
    return tuple(int(n) for n in numbers.group(0).split("."))


def _compare(have: tuple[int, ...], want: tuple[int, ...]) -> int:
    width = max(len(have), len(want))
    a = have + (0,) * (width - len(have))
    b = want + (0,) * (width - len(want))
    return (a > b) - (a < b)


class _Expression:
    """A recursive-descent reader of one condition."""

    def __init__(self, text: str, env: Mapping[str, str], facts: Facts, directive: str) -> None:
        self.text = text
        self.directive = directive
        self.pos = 0
        self.env = env
        self.facts = facts
        self.predicates: dict[str, tuple[int, Callable[[list[str]], bool]]] = {
            "defined": (1, lambda a: a[0] in self.env),
            "feature": (1, lambda a: a[0] in self.facts.features),
            "streq": (2, lambda a: a[0] == a[1]),
            "strneq": (2, lambda a: a[0] != a[1]),
            "version_atleast": (1, lambda a: _compare(VERSION, _version(a[0])) >= 0),
            "version_before": (1, lambda a: _compare(VERSION, _version(a[0])) < 0),
            "openssl_version_atleast": (1, lambda a: self.openssl(a[0]) >= 0),
            "openssl_version_before": (1, lambda a: self.openssl(a[0]) < 0),
        }

    def openssl(self, text: str) -> int:
        if self.facts.openssl is None:
            raise ConditionError("the OpenSSL version is not known here")
        return _compare(self.facts.openssl, _version(text))

    def fail(self) -> ConditionError:
        return ConditionError(
            f"unparsable conditional expression '{self.text}' in '{self.directive}' at "
            f"position {self.pos + 1}"
        )

    def blanks(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def value(self) -> bool:
        result = self.disjunction()
        self.blanks()
        if self.pos != len(self.text):
            raise ConditionError(
                f"unexpected character '{self.text[self.pos]}' at the end of conditional "
                f"expression '{self.text}'"
            )
        return result

    def disjunction(self) -> bool:
        result = self.conjunction()
        while self.take("||"):
            right = self.conjunction()
            result = result or right
        return result

    def conjunction(self) -> bool:
        result = self.term()
        while self.take("&&"):
            right = self.term()
            result = result and right
        return result

    def take(self, token: str) -> bool:
        self.blanks()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def term(self) -> bool:
        self.blanks()
        if self.take("!"):
            return not self.term()
        if self.take("("):
            result = self.disjunction()
            if not self.take(")"):
                raise self.fail()
            return result
        match = re.compile(r"-?\d+|[a-z_]+").match(self.text, self.pos)
        if match is None:
            raise self.fail()
        word = match.group(0)
        if word[-1].isdigit():
            self.pos = match.end()
            return int(word) != 0
        if word not in self.predicates or self.text[match.end() : match.end() + 1] != "(":
            raise self.fail()
        close = self.text.find(")", match.end())
        if close < 0:
            raise self.fail()
        args = self.text[match.end() + 1 : close].split(",")
        count, predicate = self.predicates[word]
        if len(args) != count:
            raise ConditionError(
                f"{word}() expects {count} argument{'s' if count > 1 else ''} in '{self.text}'"
            )
        self.pos = close + 1
        return predicate(args)


def evaluate(text: str, env: Mapping[str, str], facts: Facts, directive: str = ".if") -> bool:
    """The value of a condition (raises ConditionError with HAProxy's text)."""
    if not text:
        return False
    return _Expression(text, env, facts, directive).value()


@dataclass(slots=True)
class Conditions:
    """The open `.if` levels while a file is read; `active` says whether a line counts."""

    env: Mapping[str, str]
    facts: Facts
    diagnostics: list[Diagnostic]
    levels: list[_Level] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return not self.levels or self.levels[-1].active

    def feed(self, where: Where, words: tuple[str, ...]) -> None:
        """One directive line (words[0] in DIRECTIVES)."""
        directive, args = words[0], words[1:]
        try:
            self.apply(where, directive, args)
        except ConditionError as exc:
            self.diagnostics.append(error(where, str(exc)))

    def apply(self, where: Where, directive: str, args: tuple[str, ...]) -> None:
        levels = self.levels
        if directive == ".if":
            parent = self.active
            levels.append(_Level(where, parent, False, False))  # kept if the condition fails
            value = parent and evaluate(" ".join(args), self.env, self.facts)
            levels[-1].active = levels[-1].taken = value
        elif directive in (".elif", ".else", ".endif"):
            if not levels:
                raise ConditionError(f"lone '{directive}' with no matching '.if'.")
            level = levels[-1]
            if directive == ".endif":
                levels.pop()
            elif level.seen_else:
                raise ConditionError(f"'{directive}' after '.else' is not permitted.")
            elif directive == ".else":
                level.seen_else = True
                level.active = level.parent and not level.taken
                level.taken = True
            else:
                value = level.parent and not level.taken
                value = value and evaluate(" ".join(args), self.env, self.facts, directive)
                level.active = value
                level.taken = level.taken or value
        elif self.active:
            self.message(where, directive, args)

    def message(self, where: Where, directive: str, args: tuple[str, ...]) -> None:
        if len(args) > 1:
            raise ConditionError(
                f"Unexpected argument '{args[1]}' for '{directive}'. Use quotes if the "
                "message should contain spaces."
            )
        text = f"'{args[0] if args else ''}'."
        if directive == ".alert":
            self.diagnostics.append(error(where, text))
        elif directive == ".warning":
            self.diagnostics.append(warning(where, text))
        elif directive == ".notice":
            self.diagnostics.append(Diagnostic(Severity.NOTICE, where, text))

    def finish(self, last: Where) -> None:
        """At the end of a file: an open `.if` is an error."""
        if self.levels:
            self.diagnostics.append(error(last, "non-terminated '.if' block."))
            self.levels.clear()
