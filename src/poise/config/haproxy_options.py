"""`option X`, `no option X` and `default option X` lines of proxy sections.

HAProxy's configuration.txt 4.2 gives each option's arguments; the keywords matrix (4.1)
marks with (*) those that take the `no` and `default` prefixes (for every option poise
implements, the built-in default is "off", so `default option X` turns it off). `option
tcplog` and `option httplog` choose one log format, so the later one wins and HAProxy warns
when both are written in one section. Options that only tune HAProxy's own I/O (splicing,
TCP quick-ack tricks) are accepted with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence

from poise.config import keywords
from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import ForwardFor, Problem, Settings, no_args, one_arg
from poise.config.model import Option, Where
from poise.config.units import parse_int

_OPTIONS = {option.value: option for option in Option}


def apply_option(
    settings: Settings,
    prefix: str | None,
    name: str,
    args: Sequence[str],
    where: Where,
    *,
    diagnostics: list[Diagnostic],
) -> None:
    """Apply one option line to a section's settings (raises Problem)."""
    if prefix is not None and name not in keywords.NEGATABLE_OPTIONS:
        raise Problem(f"'{prefix}' is not supported for option '{name}'")
    if name in keywords.HARMLESS_OPTIONS:
        reason = keywords.HARMLESS_OPTIONS[name]
        diagnostics.append(warning(where, f"ignored: {reason}", f"option {name}"))
        return
    option = _OPTIONS.get(name)
    if option is None:
        raise Problem("this HAProxy option is not implemented yet in poise")
    if prefix is not None:
        no_args(args)
        _set(settings, option, False, where)
        if option is Option.REDISPATCH:
            settings.redispatch_interval = None
        return
    if option is Option.REDISPATCH:
        interval = parse_int(one_arg(args, "an interval")) if args else -1
        _set(settings, option, interval != 0, where)  # `option redispatch 0` turns it off
        settings.redispatch_interval = interval or None
    elif option is Option.FORWARDFOR:
        settings.forwardfor = _forwardfor(args, where)
        _set(settings, option, True, where)
    else:
        if option is Option.HTTPLOG and args[:1] == ["clf"]:
            raise Problem("'option httplog clf' is not implemented yet in poise")
        no_args(args)
        if option in (Option.TCPLOG, Option.HTTPLOG):
            _log_format(settings, option, where, diagnostics)
        _set(settings, option, True, where)


def _set(settings: Settings, option: Option, on: bool, where: Where) -> None:
    settings.options[option] = on
    settings.option_where[option] = where


def _log_format(
    settings: Settings, option: Option, where: Where, diagnostics: list[Diagnostic]
) -> None:
    """`option tcplog` and `option httplog` choose one log format: the last one wins."""
    other = Option.HTTPLOG if option is Option.TCPLOG else Option.TCPLOG
    if settings.options.get(other):
        diagnostics.append(
            warning(
                where,
                f"overrides 'option {other.value}' written at {settings.option_where[other]}",
                f"option {option.value}",
            )
        )
    settings.options[other] = False


def _forwardfor(args: Sequence[str], where: Where) -> ForwardFor:
    """`option forwardfor [except NET] [header NAME] [if-none]`, in any order."""
    except_net: str | None = None
    header, if_none = "X-Forwarded-For", False
    index = 0
    while index < len(args):
        word = args[index]
        if word in ("except", "header"):
            if index + 1 >= len(args):
                raise Problem(f"'{word}' expects a value")
            if word == "except":
                except_net = args[index + 1]
            else:
                header = args[index + 1]
            index += 2
        elif word == "if-none":
            if_none = True
            index += 1
        else:
            raise Problem(f"unexpected argument '{word}' (except NET, header NAME, if-none)")
    return ForwardFor(where, except_net, header, if_none)
