"""The man page and the shell completions in the repository are what the argument parser
writes (poise/cli/manual.py): a new option or subcommand shows in all three or the test
fails, naming the command that writes them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.cli import manual

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("relative", sorted(manual.OUTPUTS))
def test_the_committed_file_is_what_the_parser_writes(relative: str) -> None:
    expected = manual.OUTPUTS[relative](manual.commands())
    assert (ROOT / relative).read_text() == expected, (
        f"{relative} is out of date: run `.venv/bin/python -m poise.cli.manual .`"
    )


def test_every_subcommand_and_option_is_in_the_man_page() -> None:
    page = manual.manpage(manual.commands())
    for command in manual.commands():
        assert f".SS poise {command.name}" in page
        for option in command.options:
            for flag in option.flags:
                assert manual.roff(flag) in page, (command.name, flag)


def test_roff_escapes_what_roff_would_read_as_requests() -> None:
    assert manual.roff(".dot first") == "\\&.dot first"
    assert manual.roff("a-b \\n") == "a\\-b \\en"
