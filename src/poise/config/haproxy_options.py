"""`option X`, `no option X` and `default option X` lines of proxy sections.

HAProxy's configuration.txt 4.2 gives each option's arguments; the keywords matrix (4.1)
marks with (*) those that take the `no` and `default` prefixes (for every option poise
implements, the built-in default is "off", so `default option X` turns it off). `option
tcplog`, `option httplog` and `option httpslog` choose one log format, so the later one
wins and HAProxy warns when two are written in one section. `option http-keep-alive`,
`http-server-close` and `httpclose` choose one connection mode, so each one turns the
other two off (4.2).
`option httplog clf` is the `log-format` HAProxy names so (config/logformat.py).
`option httpchk [METHOD] [URI] [VERSION]` starts an HTTP check, and the protocol check
options (`tcp-check`, `redis-check`, ...: haproxy_tcpcheck.py) the others. Options that only tune
HAProxy's own I/O (splicing, TCP quick-ack tricks) are accepted with a warning.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from poise.config import keywords, logformat
from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import ForwardFor, Problem, Settings, no_args, one_arg
from poise.config.haproxy_tcpcheck import PROTOCOL_OPTIONS, protocol_option
from poise.config.model import HttpCheck, Option, OriginalTo, Where
from poise.config.units import parse_int

_OPTIONS = {option.value: option for option in Option}
# The options that choose a log format, and the `log-format` each stands for ("": the
# built-in line of core/logline.py, core/httplog.py).
_LOG_FORMATS = {Option.TCPLOG: "", Option.HTTPLOG: "", Option.HTTPSLOG: logformat.HTTPSLOG}
_CONNECTION_MODES = (Option.HTTP_KEEP_ALIVE, Option.HTTP_SERVER_CLOSE, Option.HTTPCLOSE)


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
    if name == "httpchk":
        settings.httpchk = _httpchk(args, where, diagnostics)
        settings.check_kind = name
        return
    if name in PROTOCOL_OPTIONS:
        if prefix is not None:
            raise Problem(f"'{prefix}' is not supported for option '{name}'")
        settings.tcp_check = protocol_option(name, args, where)
        settings.check_kind = name
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
    elif option is Option.ORIGINALTO:
        settings.originalto = _originalto(args, where)
        _set(settings, option, True, where)
    else:
        clf = option is Option.HTTPLOG and args[:1] == ["clf"]
        no_args(args[1:] if clf else args)
        if option in _LOG_FORMATS:
            _log_format(settings, option, where, diagnostics)
            # A later `log-format` replaces this choice, and this one an earlier
            # `log-format` ("": none, even one the defaults set).
            settings.log_format = logformat.HTTPLOG_CLF if clf else _LOG_FORMATS[option]
            settings.log_format_where = where
        if option in _CONNECTION_MODES:
            for other in _CONNECTION_MODES:
                settings.options[other] = False
        _set(settings, option, True, where)


def _set(settings: Settings, option: Option, on: bool, where: Where) -> None:
    settings.options[option] = on
    settings.option_where[option] = where


def _log_format(
    settings: Settings, option: Option, where: Where, diagnostics: list[Diagnostic]
) -> None:
    """`option tcplog`, `httplog` and `httpslog` choose one log format: the last one wins."""
    for other in _LOG_FORMATS:
        if other is option:
            continue
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


def _originalto(args: Sequence[str], where: Where) -> OriginalTo:
    """`option originalto [except NET] [header NAME]`, in any order."""
    except_net: str | None = None
    header = "X-Original-To"
    for index in range(0, len(args), 2):  # HAProxy 2.6's messages
        word = args[index]
        if word not in ("except", "header"):
            raise Problem(
                "'option originalto' only supports optional values: 'except' and 'header'."
            )
        value = args[index + 1] if index + 1 < len(args) else ""
        if word == "except":
            try:
                except_net = str(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise Problem(
                    "'option originalto except' expects <address>[/mask] as argument."
                ) from None
        elif not value:
            raise Problem("'option originalto header' expects <header_name> as argument.")
        else:
            header = value
    return OriginalTo(where, except_net, header)


def _httpchk(args: Sequence[str], where: Where, diagnostics: list[Diagnostic]) -> HttpCheck:
    """`option httpchk`, `option httpchk URI`, `option httpchk METHOD URI [VERSION]`. A
    version followed by `\\r\\n` and header lines is HAProxy's old way of adding headers,
    still accepted with a warning."""
    if len(args) > 3:
        raise Problem(f"'option httpchk' cannot handle unexpected argument '{args[3]}'")
    if len(args) == 1:
        return HttpCheck(where, uri=args[0])
    check = HttpCheck(where)
    if len(args) >= 2:
        check = HttpCheck(where, method=args[0], uri=args[1])
    if len(args) == 3:
        version, _, extra = args[2].partition("\r\n")
        headers: list[tuple[str, str]] = []
        if extra:
            diagnostics.append(
                warning(
                    where,
                    "hiding headers or body at the end of the version string is deprecated; "
                    "use 'http-check send' instead",
                    "option httpchk",
                )
            )
            for line in filter(None, extra.split("\r\n")):
                header, colon, value = line.partition(":")
                if not colon:
                    raise Problem(f"bad header line '{line}' after the version")
                headers.append((header.strip(), value.strip()))
        check = HttpCheck(where, args[0], args[1], version, tuple(headers))
    return check
