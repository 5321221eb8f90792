"""How the runtime API reads a client's bytes: HAProxy 2.6's limits on a command line and on
a command with its payload (measured against HAProxy 2.6.12: a line of 15360 bytes with
its LF is answered, a command with its payload must fit in 16383 bytes), the cost of
reading a line that arrives in many pieces, and the cost of the "did you mean" answer to a
long unknown command.
"""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from poise.admin import commands
from poise.admin.commands import MAX_COMMAND, MAX_LINE, Command, LineReader
from tests.unit.admin_support import World


def read(data: bytes, piece: int | None = None) -> tuple[list[Command], LineReader]:
    reader = LineReader()
    found: list[Command] = []
    step = piece or max(len(data), 1)
    for i in range(0, len(data), step):
        reader.feed(data[i : i + step])
        while (command := reader.next()) is not None:
            found.append(command)
    return found, reader


def test_a_line_of_haproxys_limit_is_read_and_one_byte_more_overflows() -> None:
    found, reader = read(b"x" * (MAX_LINE - 1) + b"\n")
    assert [len(c.line) for c in found] == [MAX_LINE - 1]
    assert not reader.overflow
    found, reader = read(b"x" * MAX_LINE + b"\n")
    assert found == [] and reader.overflow


def test_a_line_without_its_end_overflows_once_its_end_can_no_longer_fit() -> None:
    _, reader = read(b"x" * (MAX_LINE - 1))
    assert not reader.overflow  # its LF may still come
    _, reader = read(b"x" * MAX_LINE, piece=1000)
    assert reader.overflow
    assert not reader.buf  # nothing more is kept, nor read
    reader.feed(b"y" * 100_000)
    assert not reader.buf and reader.next() is None


def test_a_long_pipeline_of_short_commands_is_not_a_long_line() -> None:
    data = b"show info\n" * 5000  # 50 KB
    found, reader = read(data, piece=4096)
    assert len(found) == 5000 and not reader.overflow


def test_a_payload_up_to_haproxys_limit_is_read_and_one_byte_more_overflows() -> None:
    head = b"add map m <<\n"
    body = (b"k" * 99 + b"\n") * 160  # 16000 bytes
    fill = MAX_COMMAND - len(head) - len(body) - 1  # the empty line ends it
    exact = head + body + b"v" * (fill - 1) + b"\n" + b"\n"
    assert len(exact) == MAX_COMMAND
    found, reader = read(exact, piece=512)
    assert len(found) == 1 and found[0].line == "add map m " and not reader.overflow
    found, reader = read(head + body + b"v" * fill + b"\n" + b"\n", piece=512)
    assert found == [] and reader.overflow


def test_a_payload_that_never_ends_overflows_at_haproxys_limit() -> None:
    reader = LineReader()
    head = b"set ssl cert x <<\n"
    reader.feed(head)
    fed = len(head)
    while not reader.overflow:
        reader.feed(b"A" * 63 + b"\n")
        fed += 64
        assert reader.next() is None
        assert fed < 2 * MAX_COMMAND
    assert MAX_COMMAND < fed <= MAX_COMMAND + 64  # the line that did not fit
    assert not reader.payload and not reader.buf  # what was held is let go


def test_a_line_in_one_byte_pieces_costs_no_more_than_a_line_whole() -> None:
    data = b"x" * (MAX_LINE - 3) + b"\\;\n"
    started = time.process_time()
    found, _ = read(data, piece=7)
    in_pieces = time.process_time() - started
    assert found and found[0].line.endswith("\\;")
    assert in_pieces < 0.5  # linear: a few ms (a rescan from the start would be seconds)


def test_an_escape_split_across_two_pieces_still_escapes() -> None:
    reader = LineReader()
    reader.feed(b"get weight a\\")
    assert reader.next() is None
    reader.feed(b";b/c\n")
    assert reader.next() == Command("get weight a\\;b/c")


def test_a_long_unknown_command_is_answered_cheaply() -> None:
    world = World()
    word = "".join("abcxyz0123/_-"[i * 7 % 13] for i in range(MAX_LINE - 1))
    world.text(word)  # warm the keyword fingerprints
    started = time.process_time()
    for _ in range(10):
        answer = world.text(word)
    spent = (time.process_time() - started) / 10
    assert answer.startswith("Unknown command")
    assert spent < 0.05  # was 165 ms for 60 KB: a few ms now, with room for a shared machine


def reference_split_words(line: str) -> list[str]:
    """The character-by-character split poise had before (and HAProxy's cli.c does)."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n and len(words) < commands.MAX_ARGS:
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


@given(st.text(alphabet=st.sampled_from(" \t\\;ab\n\x00é"), max_size=200))
def test_split_words_is_the_character_by_character_split(line: str) -> None:
    assert commands.split_words(line) == reference_split_words(line)


def test_split_words_keeps_the_first_64_words() -> None:
    line = " ".join(f"w{i}" for i in range(100))
    assert commands.split_words(line) == [f"w{i}" for i in range(64)]
    assert commands.split_words(line.replace(" ", "\\ ", 1)) == reference_split_words(
        line.replace(" ", "\\ ", 1)
    )
