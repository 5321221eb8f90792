"""The man page and the bash and zsh completions, written from the one argument parser.

`python -m poise.cli.manual [ROOT]` writes docs/poise.1, contrib/completion/poise.bash and
contrib/completion/_poise under ROOT (default: here), where the repository keeps them; a
test checks the committed ones are what this writes, so they cannot drift from the parser.
Every subcommand, option, value name and help text comes from the parser that reads the
command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from poise import __version__
from poise.cli import build_parser

__all__ = ["Command", "bash", "commands", "manpage", "write", "zsh"]

# Options whose value is a file or a directory: completed from the file system.
PATHS = {"FILE", "FILE|DIR", "PIDFILE", "SOCKET", "DIR", "OUT"}


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    metavar: str | None  # None: a flag without a value
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    description: str
    usage: str
    options: tuple[Option, ...]


def commands(parser: argparse.ArgumentParser | None = None) -> list[Command]:
    """The subcommands in the order `poise -h` lists them."""
    parser = parser or build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {c.dest: c.help or "" for c in sub._choices_actions}
    found = []
    for name, command in sub.choices.items():
        usage = command.format_usage().removeprefix("usage: ").strip()
        found.append(
            Command(
                name,
                summaries.get(name, ""),
                command.description or "",
                " ".join(usage.split()),
                tuple(options(command)),
            )
        )
    return found


def options(parser: argparse.ArgumentParser) -> Iterator[Option]:
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        takes = action.nargs != 0
        metavar = (action.metavar or action.dest.upper()) if takes else None
        yield Option(
            tuple(action.option_strings), str(metavar) if metavar else None, action.help or ""
        )


def roff(text: str) -> str:
    """Text as roff reads it: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def manpage(found: Sequence[Command]) -> str:
    top = build_parser()
    lines = [
        f'.TH POISE 1 "" "poise {__version__}" "User Commands"',
        ".SH NAME",
        "poise \\- a load balancer that reads haproxy.cfg and keepalived.conf",
        ".SH SYNOPSIS",
        ".B poise",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".br",
        ".B poise",
        "[\\fIHAProxy's options\\fR] \\-f \\fIFILE\\fR",
        ".SH DESCRIPTION",
    ]
    lines += [roff(p) for p in (top.description or "").split("\n") if p.strip()]
    lines.append(".SH COMMANDS")
    for command in found:
        lines += [".SS " + roff(f"poise {command.name}"), roff(command.summary) + ".", ".PP"]
        lines += [".nf", roff(command.usage), ".fi"]
        if command.description:
            lines += [".PP", roff(command.description)]
        for option in command.options:
            flags = ", ".join(f"\\fB{roff(f)}\\fR" for f in option.flags)
            value = f" \\fI{roff(option.metavar)}\\fR" if option.metavar else ""
            lines += [".TP", flags + value, roff(option.help)]
    lines += [
        ".SH FILES",
        ".TP",
        "/etc/haproxy/haproxy.cfg",
        "HAProxy's configuration, as poise run and poise check read it.",
        ".TP",
        "/etc/keepalived/keepalived.conf",
        "Keepalived's configuration, as poise vrrp reads it.",
        ".SH SEE ALSO",
        ".BR haproxy (1),",
        ".BR keepalived (8),",
        ".BR keepalived.conf (5)",
    ]
    return "\n".join(lines) + "\n"


def bash(found: Sequence[Command]) -> str:
    names = " ".join(c.name for c in found)
    cases = []
    for command in found:
        flags = " ".join(f for o in command.options for f in o.flags)
        paths = "|".join(f for o in command.options if o.metavar in PATHS for f in o.flags)
        case = f"        {command.name})\n"
        if paths:
            files = 'COMPREPLY=($(compgen -f -- "$cur")); return'
            case += f'            case "$prev" in {paths}) {files};; esac\n'
        case += f'            COMPREPLY=($(compgen -W "{flags}" -- "$cur"));;\n'
        cases.append(case)
    return (
        "# bash completion for poise (written by `python -m poise.cli.manual` from its parser)\n"
        "_poise() {\n"
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"\n'
        '    if [ "$COMP_CWORD" -eq 1 ]; then\n'
        f'        COMPREPLY=($(compgen -W "{names}" -- "$cur")); return\n'
        "    fi\n"
        '    case "${COMP_WORDS[1]}" in\n' + "".join(cases) + "    esac\n"
        "}\n"
        "complete -F _poise poise\n"
    )


def zsh(found: Sequence[Command]) -> str:
    def quote(text: str) -> str:
        return (
            text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")
        )

    lines = [
        "#compdef poise",
        "# zsh completion for poise (written by `python -m poise.cli.manual` from its parser)",
        "_poise() {",
        "  local -a commands",
        "  commands=(",
    ]
    lines += [f"    '{c.name}:{quote(c.summary)}'" for c in found]
    lines += [
        "  )",
        "  if (( CURRENT == 2 )); then",
        "    _describe 'command' commands",
        "    return",
        "  fi",
        "  case $words[2] in",
    ]
    for command in found:
        specs = []
        for option in command.options:
            first = option.help.split(". ")[0]
            for flag in option.flags:
                value = ""
                if option.metavar:
                    action = "_files" if option.metavar in PATHS else " "
                    value = f":{quote(option.metavar)}:{action}"
                specs.append(f"'{flag}[{quote(first)}]{value}'")
        lines.append(f"    {command.name})")
        lines.append("      _arguments -s " + " ".join(specs) + " ;;" if specs else "      ;;")
    lines += ["  esac", "}", '_poise "$@"']
    return "\n".join(lines) + "\n"


# Where the repository keeps each, relative to its root.
OUTPUTS = {
    "docs/poise.1": manpage,
    "contrib/completion/poise.bash": bash,
    "contrib/completion/_poise": zsh,
}


def write(root: Path) -> list[Path]:
    found = commands()
    written = []
    for relative, render in OUTPUTS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(found))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(path)
