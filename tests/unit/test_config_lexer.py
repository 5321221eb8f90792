"""The haproxy.cfg lexer: words, quotes, escapes, comments and environment expansion, as
HAProxy's configuration.txt 2.1-2.3 describes them (and HAProxy 2.6 behaves: each expected
value below was checked against `haproxy -c` where the doc is silent)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.diagnostics import Severity
from poise.config.lexer import LexError, Line, join, lex, quote, split_words
from poise.config.model import Where

ENV = {"FOO": "foo", "EMPTY": "", "LIST": "a  b c", "ADDR": "127.0.0.1:80"}


def words(text: str, env: dict[str, str] | None = None) -> list[str]:
    return split_words(text, ENV if env is None else env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bind :80", ["bind", ":80"]),
        ("  \tserver  s1\t1.2.3.4:80  ", ["server", "s1", "1.2.3.4:80"]),
        ("", []),
        ("   ", []),
        ("# a comment", []),
        ("bind 127.0.0.170:443 #ssl crt ./haproxy-cert.pem", ["bind", "127.0.0.170:443"]),
        ("global#the global section", ["global"]),
        ("a#b", ["a"]),
        ("a\\#b", ["a#b"]),
        ('"a # b"', ["a # b"]),
        ("'a # b'", ["a # b"]),
        ('"a"#x', ["a"]),
    ],
)
def test_words_and_comments(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\\ b", ["a b"]),
        ("a\\\tb", ["a\tb"]),
        ("a\\\\b", ["a\\b"]),
        ("a\\'b", ["a'b"]),
        ('a\\"b', ['a"b']),
        ("a\\$b", ["a$b"]),
        ("a\\nb\\rc\\td", ["a\nb\rc\td"]),
        ("a\\x41b", ["aAb"]),
        ('"a\\x41\\n"', ["aA\n"]),
        # HAProxy keeps an unknown escape, and a trailing backslash, as written.
        ("a\\qb", ["a\\qb"]),
        ('"a\\qb"', ["a\\qb"]),
        ("ab\\", ["ab\\"]),
    ],
)
def test_escapes(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'a\\b'", ["a\\b"]),
        ("'$FOO'", ["$FOO"]),
        ("'say \"hi\"'", ['say "hi"']),
        ('"it\'s"', ["it's"]),
        ('a"b c"d', ["ab cd"]),
        ("\"%{+Q}o %t\"' %s'\\ %{-Q}r", ["%{+Q}o %t %s %{-Q}r"]),
        ('""', [""]),
        ("''", [""]),
        ('x "" y', ["x", "", "y"]),
    ],
)
def test_quotes(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"$FOO"', ["foo"]),
        ('"${FOO}"', ["foo"]),
        ('"x${FOO}y"', ["xfooy"]),
        ('"$FOO$FOO"', ["foofoo"]),
        ('"$FOO.x"', ["foo.x"]),  # a dot ends a name (only pseudo-variables start with one)
        ('"$FOO-x"', ["foo-x"]),
        ('"${FOO}}"', ["foo}"]),
        ('"${ADDR}"', ["127.0.0.1:80"]),
        # Unset expands to nothing; the default replaces unset, not empty, variables.
        ('"${UNSET}"x', ["x"]),
        ('"${UNSET-def}"', ["def"]),
        ('"${UNSET-a b}"', ["a b"]),
        ('"${EMPTY-def}"', [""]),
        ('"${FOO-def}"', ["foo"]),
        # `[*]` makes each space-separated part a word; around it, text sticks to the ends.
        ('"${LIST[*]}"', ["a", "b", "c"]),
        ('x"${LIST[*]}"y', ["xa", "b", "cy"]),
        ('"${UNSET[*]}"', []),
        ('x"${UNSET[*]}"y', ["xy"]),
        # Outside double quotes `$` is an ordinary character.
        ("x$FOO", ["x$FOO"]),
        ("x${FOO}y", ["x${FOO}y"]),
        ('"a\\$b"', ["a$b"]),
    ],
)
def test_environment_expansion(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_pseudo_variables_say_where_the_line_is() -> None:
    text = (
        'global\n    node "${.SECTION}"\n'
        'listen web\n    description "${.FILE}:$.LINE ${.SECTION}"\n'
    )
    lines, problems = lex("x.cfg", text, {}, {"global", "listen"})
    assert problems == []
    assert lines[1].words == ("node", "global")
    assert lines[3].words == ("description", "x.cfg:4 web")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('bind "abc', "unmatched quote at column 6"),
        ("bind 'abc", "unmatched quote at column 6"),
        ("a\\xZZb", "truncated or invalid hexadecimal escape at column 2"),
        ("a\\x4", "truncated or invalid hexadecimal escape"),
        ('"${FOO"', "unmatched brace in environment variable name"),
        ('"$"', "forbidden first character in environment variable name"),
        ('"$1x"', "forbidden first character in environment variable name"),
        ('"${FOO:x}"', "unexpected ':x' in environment variable 'FOO'"),
    ],
)
def test_bad_lines_raise_with_the_column(text: str, message: str) -> None:
    with pytest.raises(LexError, match=re.escape(message)):
        words(text)


def test_lex_keeps_places_and_reports_bad_lines_then_goes_on() -> None:
    text = 'global\n\n    # comment\n    pidfile "/run/x\n    daemon\r\n'
    lines, problems = lex("f.cfg", text, {})
    assert lines == [
        Line(Where("f.cfg", 1), ("global",)),
        Line(Where("f.cfg", 5), ("daemon",)),
    ]
    assert [str(p) for p in problems] == ["f.cfg:4: error: unmatched quote at column 13"]
    assert problems[0].severity is Severity.ERROR


def test_quote_examples() -> None:
    assert quote("a b") == '"a b"'
    assert quote('$x"\\') == '"\\$x\\"\\\\"'
    assert quote("\n\x01") == '"\\n\\x01"'
    assert words(join(["a b", "", "#c", "$X"]), {"X": "no"}) == ["a b", "", "#c", "$X"]


@given(st.lists(st.text()))
def test_quoting_any_words_and_lexing_gives_them_back(original: list[str]) -> None:
    assert words(join(original), {"X": "not expanded"}) == original


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters=" \t\v\f\r\0#\\'\"\n"), min_size=1)
    )
)
def test_plain_words_need_no_quotes(original: list[str]) -> None:
    assert words(" ".join(original), {}) == original


@pytest.mark.parametrize(
    ("text", "line", "position"),
    [
        # Positions as `haproxy -c` 2.6 gives them: one past the last line's length in bytes.
        ("global\n    server s1 127.0.0.1:8080", 2, 29),
        ("global\n#comment", 2, 9),
        ("   ", 1, 4),
        ("global\n    node é", 2, 12),
        ("global\r", 1, 8),
    ],
)
def test_a_last_line_without_newline_is_an_error_as_in_haproxy(
    text: str, line: int, position: int
) -> None:
    lines, problems = lex("t.cfg", text, {})
    assert [str(p) for p in problems] == [
        f"t.cfg:{line}: error: Missing LF on last line, file might have been truncated "
        f"at position {position}."
    ]
    assert problems[0].severity is Severity.ERROR
    assert not lines or lines[0].words[0] == "global"


def test_a_last_line_without_newline_is_still_read() -> None:
    lines, _ = lex("t.cfg", "global\n    server s1 127.0.0.1:8080", {})
    assert lines[-1] == Line(Where("t.cfg", 2), ("server", "s1", "127.0.0.1:8080"))


@pytest.mark.parametrize("text", ["", "global\n", "\n", "global\n    daemon\n\n"])
def test_a_file_ending_with_a_newline_or_empty_is_complete(text: str) -> None:
    assert lex("t.cfg", text, {})[1] == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Each as `haproxy -c` 2.6 reports it: blanks after the 64th word are one too many.
        ("description" + " x" * 63 + " ", "position 137: <x>."),
        ("description" + " x" * 64, "position 137: <x>."),
        ("description" + " xy" * 63 + " #c", "position 199: <xy>."),
        ("  description" + " x" * 63 + "\t", "position 137: <x>."),
    ],
)
def test_more_than_64_words_is_an_error_as_in_haproxy(line: str, expected: str) -> None:
    lines, problems = lex("w.cfg", f"global\n{line}\n    daemon\n", {})
    assert [str(p) for p in problems] == [
        f"w.cfg:2: error: too many words, truncating after word 64, {expected}"
    ]
    assert [line.words for line in lines] == [("global",), ("daemon",)]


def test_64_words_are_fine() -> None:
    assert len(words("description" + " x" * 62 + "  y")) == 64


def test_nul_cr_and_other_blanks_as_haproxy_reads_them() -> None:
    # A NUL ends its line and the file ("Stray NUL character", haproxy -c 2.6); at the
    # last line it is a missing LF at the NUL.
    lines, problems = lex("n.cfg", "global\n    maxconn 10\0junk\n    bogus\n", {})
    assert [line.words for line in lines] == [("global",), ("maxconn", "10")]
    assert [str(p) for p in problems] == ["n.cfg:2: error: Stray NUL character at position 15."]
    _, problems = lex("n.cfg", "global\n    bogus a\0\n", {})
    assert [str(p) for p in problems] == [
        "n.cfg:2: error: Missing LF on last line, file might have been truncated at position 12."
    ]
    # A CR ends a line, even inside quotes; vertical tabs and form feeds separate words.
    assert lex("c.cfg", "global\n    maxconn 10\r0\n", {})[0][1].words == ("maxconn", "10")
    assert [str(p) for p in lex("c.cfg", 'global\n    maxconn "10\r0"\n', {})[1]] == [
        "c.cfg:2: error: unmatched quote at column 13"
    ]
    assert words("maxconn\v100\f \tx") == ["maxconn", "100", "x"]
