"""`log-format` strings (configuration.txt 8.2.6) read as HAProxy 2.6 reads them: literal
text, separators, `%var` and `%[sample]` nodes with their `%{+Q,-M,...}` flags. Pure data;
core/logformat.py turns the nodes into a function of a log record.

What this module refuses, HAProxy 2.6 refuses too, with the same message (checked with
`haproxy -c`): an unknown variable, `%` before a digit or a blank, a `%{...}` with no
variable after it, a string cut after `%`, `%{` or `%[`, a sample expression that does not
parse, and a sample fetch that is not available when the log line is written (request and
response headers are gone by then: `%[req.hdr(host)]` is refused, `%[capture.req.hdr(0)]`
is the way). Unknown flags are ignored, as HAProxy ignores them. The HTTP-only variables
(`%r`, `%TR`, ...) are refused in a TCP proxy by `check_mode`, once the mode is known.

Spaces are separators: a run of them prints one space, none at the start of the line and
none after a capture block that printed nothing (how `option httplog` drops its `{...}`
blocks when there are no captures). A text node never holds a space.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.config import sample_names
from poise.config.diagnostics import Diagnostic, error
from poise.config.haproxy_draft import Problem
from poise.config.model import Mode, Sample, Where
from poise.config.samples import (
    FETCHES,
    NEEDS,
    expression_end,
    parse_converters,
    parse_sample,
    split_call,
)

# Node flags (log.c LOG_OPT_*). MANDATORY ("-" for an empty value) is on by default in a
# `log-format` line.
QUOTE = 1
HEX = 2
ESCAPE = 4
MANDATORY = 8
_FLAG_BITS = {"Q": QUOTE, "X": HEX, "E": ESCAPE, "M": MANDATORY}

# HAProxy's predefined formats (log.c), as `log-format` strings.
HTTPLOG = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc "
    "%sq/%bq %hr %hs %{+Q}r"
)
HTTPLOG_CLF = (
    '%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc '
    "%ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"
)
# `option httpslog`: httplog, then the connection's and TLS errors, session resumption,
# SNI, version and cipher (HAProxy 2.6's log.c default_https_log_format).
HTTPSLOG = (
    HTTPLOG + " %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] "
    "%[ssl_fc_sni]/%sslv/%sslc"
)
TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"

VARIABLES = sample_names.LOG_FORMAT_VARIABLES
# The variables HAProxy 2.6 reserves for HTTP mode (the "H" rows of the 8.2.6 table).
HTTP_ONLY = frozenset(
    {"CC", "CS", "HM", "HP", "HPO", "HQ", "HU", "HV", "Ta", "Ti", "Tq", "TR", "Tr", "r"}
    | {"tr", "trg", "trl"}
)
# Fetches of captured values (configuration.txt 7.3.6), and the connection's error codes
# and TLS session resumption of `option httpslog`, read from the log record.
CAPTURE_FETCHES = {
    "fc_err": 0,
    "ssl_fc_err": 0,
    "ssl_c_err": 0,
    "ssl_c_ca_err": 0,
    "ssl_fc_is_resumed": 0,
    "capture.req.hdr": 1,
    "capture.res.hdr": 1,
    "capture.req.method": 0,
    "capture.req.uri": 0,
    "capture.req.ver": 0,
    "capture.res.ver": 0,
}
# Fetches HAProxy accepts in a log line although poise marks them request- or
# response-bound (they are known when the line is written, or give nothing).
_LOG_TIME_FETCHES = frozenset({"status", "req.proto_http"})
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _ALPHA | frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Separator:
    pass


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    flags: int = MANDATORY


@dataclass(frozen=True, slots=True)
class Expression:
    """`%[sample]`: a fetch of config/samples.py, or one of CAPTURE_FETCHES (the Sample's
    `fetch` then names it, and `args` holds the capture's index)."""

    sample: Sample
    flags: int = MANDATORY


Node = Text | Separator | Variable | Expression
SEPARATOR = Separator()


def apply_flags(arg: str, flags: int) -> int:
    """`+Q,-M,...` applied to `flags`; a flag without sign or unknown is ignored (log.c
    `parse_logformat_var_args`)."""
    for word in arg.split(","):
        bit = _FLAG_BITS.get(word[1:])
        if bit is None:
            continue
        if word[:1] == "+":
            flags |= bit
        elif word[:1] == "-":
            flags &= ~bit
    return flags


def parse(text: str) -> tuple[Node, ...]:
    """The nodes of a `log-format` string (raises Problem with HAProxy's message)."""
    nodes: list[Node] = []
    literal: list[str] = []
    defaults = MANDATORY  # changed by `%o`

    def flush() -> None:
        if literal:
            nodes.append(Text("".join(literal)))
            literal.clear()

    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char == " ":
            flush()
            nodes.append(SEPARATOR)
            index += 1
            continue
        if char != "%":
            literal.append(char)
            index += 1
            continue
        index += 1
        if index == size:
            raise Problem("truncated line after '%'")
        char = text[index]
        if char == "%":
            literal.append("%")
            index += 1
            continue
        if char in "0123456789 \t":
            raise Problem(
                f"unexpected variable name near '{char}' at position {index} line : '{text}'. "
                "Maybe you want to write a single '%', use the syntax '%%'"
            )
        flags = defaults
        first = _ALPHA
        if char == "{":
            close = text.find("}", index + 1)
            if close < 0:
                raise Problem(f"truncated line after '{text[index + 1 :]}'")
            arg = text[index + 1 : close]
            flags = apply_flags(arg, flags)
            index = close + 1
            char = text[index] if index < size else ""
            first = _ALNUM
            if char != "[" and char not in first:
                raise Problem(f"parse argument modifier without variable name near '%{{{arg}}}'")
        if char == "[":
            flush()
            close = expression_end(text, index + 1)
            if close < 0:
                raise Problem(f"missing ']' after '{text[index + 1 :]}'")
            nodes.append(Expression(log_sample(text[index + 1 : close], text[index + 1 :]), flags))
            index = close + 1
        elif char in first:
            end = index
            while end < size and text[end] in _ALNUM:
                end += 1
            name = text[index:end]
            if name not in VARIABLES:
                raise Problem(
                    f"no such format variable '{name}'. If you wanted to emit the '%' "
                    "character verbatim, you need to use '%%'"
                )
            index = end
            if name == "o":
                defaults = flags
            else:
                flush()
                nodes.append(Variable(name, flags))
        # Any other character after '%': the '%' is dropped, the character is text (log.c).
    flush()
    return tuple(nodes)


def log_sample(expression: str, rest: str) -> Sample:
    """The sample of `%[expression]`, checked to be known when the line is written.
    `rest` is the format string from the expression on, which HAProxy's messages quote."""
    name, args, tail = split_call(expression)
    if name in CAPTURE_FETCHES:
        wanted = CAPTURE_FETCHES[name]
        if len(args) != wanted or (wanted and not args[0].isdigit()):
            what = "a capture index" if wanted else "no argument"
            raise Problem(f"failed to parse sample expression <{rest}> : '{name}' expects {what}")
        try:
            converters = parse_converters(tail, expression)
        except Problem as exc:
            raise Problem(f"failed to parse sample expression <{rest}> : {exc}") from None
        return Sample(name, args, converters, expression)
    try:
        sample = parse_sample(expression)
    except Problem as exc:
        raise Problem(f"failed to parse sample expression <{rest}> : {exc}") from None
    scope = FETCHES[sample.fetch].scope
    if scope != "any" and sample.fetch not in _LOG_TIME_FETCHES:
        raise Problem(
            f"sample fetch <{rest}> may not be reliably used here because it needs "
            f"'{NEEDS[scope]}' which is not available here"
        )
    return sample


def check_mode(nodes: tuple[Node, ...], http: bool) -> str | None:
    """The error for a variable reserved for HTTP mode used in a TCP proxy, or None."""
    if http:
        return None
    for node in nodes:
        if isinstance(node, Variable) and node.name in HTTP_ONLY:
            return f"format variable '{node.name}' is reserved for HTTP mode"
    return None


def link_log_format(
    text: str | None, http: bool, where: Where | None, diagnostics: list[Diagnostic]
) -> str | None:
    """A frontend's format once its mode is known (the link pass): None for `option
    httplog` and `option tcplog` (also when they replaced a `log-format`), and for
    `option httplog clf` and `option httpslog` in a TCP proxy, which fall back to `option
    tcplog` (link.py warns); an HTTP-only variable in a TCP proxy is an error at the
    `log-format` line."""
    if not text or (not http and text in (HTTPLOG_CLF, HTTPSLOG)):
        return None
    message = check_mode(parse(text), http)
    if message is not None and where is not None:
        diagnostics.append(error(where, f"failed to parse log-format : {message}", "log-format"))
    return text


def link_format_sd(
    sd: tuple[str, Where] | None, mode: Mode, diagnostics: list[Diagnostic]
) -> str | None:
    """A frontend's `log-format-sd` once its mode is known: an HTTP-only variable in a
    TCP proxy is an error at its line."""
    if sd is None:
        return None
    text, where = sd
    message = check_mode(parse(text), mode is Mode.HTTP)
    if message is not None:
        diagnostics.append(
            error(where, f"failed to parse log-format-sd : {message}", "log-format-sd")
        )
    return text
