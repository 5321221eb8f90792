"""The runtime API's parser and commands under random input (issue 11.5): bytes cut into
commands by the LineReader, random command lines and payloads, binary bytes, long lines,
and every command of the table with random arguments. No exception may escape, every
answer ends with HAProxy's prompt, and at `level user` nothing changes (the model, the
frontends, the effects handed to the shell), whatever the client sends.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from poise.admin import commands
from poise.admin.commands import Command, Level, LineReader, Session, execute
from tests.unit.admin_support import World
from tests.unit.fuzzing import fuzz_settings

FUZZ = fuzz_settings(200)

NAMES = sorted({" ".join(k.words) for k in commands.TABLE})
# Words the commands look for, and their near misses.
WORDS = [
    "be/s1", "be/s2", "be/s3", "be/", "/s1", "be/nope", "nope/s1", "#3/#1", "#3/s1", "st/x",
    "hs/h", "li/a", "fe", "#2", "be", "all", "state", "ready", "drain", "maint", "weight",
    "addr", "port", "health", "up", "down", "stopping", "agent", "check-port", "fqdn",
    "check-addr", "agent-addr", "enabled", "disabled", "backup", "check", "id", "cli",
    "0", "1", "-1", "100%", "50%", "0x1", "99999999999999999999", "256", "1s", "abc",
    "127.0.0.1", "::1", "127.0.0.1:1", "/tmp/x", "no-maint", "up", "typed", "json", "",
    "\\", "\\;", ";", "<<", "\x00", "\xff", "é",
]  # fmt: skip

word = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.text(alphabet="0123456789-%.:/#", max_size=8),
)
known_command = st.builds(
    lambda name, args: " ".join([name, *args]), st.sampled_from(NAMES), st.lists(word, max_size=8)
)
line = st.one_of(
    known_command,
    st.text(max_size=200),
    st.builds(lambda c, n: c * n, st.sampled_from("xa ;\\/"), st.integers(1, 20_000)),
)
payload = st.one_of(st.none(), st.text(max_size=300))


def well_ended(text: str, session: Session) -> bool:
    return text.endswith("\n> " if session.interactive else "\n")


@FUZZ
@given(lines=st.lists(st.tuples(line, payload), min_size=1, max_size=6))
def test_at_level_user_nothing_changes_and_nothing_escapes(
    lines: list[tuple[str, str | None]],
) -> None:
    world = World()
    before = world.state()
    world.session = Session(Level.USER)
    for text, body in lines:
        answer = execute(Command(text, body), world.session, world.view())
        assert answer.close or well_ended(answer.text, world.session)
        assert answer.effects == () and answer.goes == ()
        assert world.session.level is Level.USER  # no command raises the level
    assert world.state() == before


@FUZZ
@given(lines=st.lists(st.tuples(known_command, payload), min_size=1, max_size=8))
def test_at_level_admin_every_command_answers_without_an_exception(
    lines: list[tuple[str, str | None]],
) -> None:
    world = World()
    for text, body in lines:
        world.session.interactive = False
        answer = execute(Command(text, body), world.session, world.view())
        for effect in answer.effects:
            world.apply(effect)
        assert answer.close or well_ended(answer.text, world.session)


@FUZZ
@given(
    data=st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from([b"\n", b";", b"\\", b"<<\n", b"\r\n", b"\n\n", b"show info\n"]),
            st.builds(lambda n: b"A" * n, st.integers(1, 40_000)),
        ),
        max_size=12,
    ),
    level=st.sampled_from([Level.USER, Level.OPERATOR]),
)
def test_any_bytes_read_as_commands_never_raise(data: list[bytes], level: Level) -> None:
    world = World()
    before = world.state()
    world.session = Session(level)
    reader = LineReader()
    for piece in data:
        reader.feed(piece)
        while (command := reader.next()) is not None:
            assert len(command.line.encode("utf-8", "surrogateescape")) < commands.MAX_LINE
            execute(command, world.session, world.view())
        held = len(reader.buf) + sum(len(p) for p in reader.payload)
        assert held <= commands.MAX_COMMAND or reader.overflow
        if reader.overflow:
            assert not reader.buf and not reader.payload
    if level is Level.USER:
        assert world.state() == before
