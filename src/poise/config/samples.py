"""Sample expressions and log-format strings as haproxy.cfg writes them: which fetches
poise knows (their output type, arguments and where they can be used), and the parsers of
`fetch(args),converter,...` (configuration.txt 7.3) and of `text %[sample] %ci`
(8.2.6). Pure; core/acl.py implements every fetch of FETCHES (a test checks it).

Where a fetch can be used follows HAProxy: the request's volatile parts (`path`, headers,
cookies) are gone when the response is processed, and the response does not exist yet
while the request is; `method` and the connection's addresses are known throughout. Used
where it cannot be, a fetch in a log-format string is an error and an ACL never matches
(HAProxy's warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from poise.config import converters, patterns, sample_names, stick_fetches
from poise.config.haproxy_draft import Problem
from poise.config.keywords import did_you_mean
from poise.config.model import FormatVar, LogFormat, MatchMethod, Sample
from poise.config.variables import check_var_name

# "any": the type of what was stored (a variable); an ACL on it needs `-m`.
SampleType = Literal["bool", "int", "ip", "str", "bin", "meth", "any"]
# "req": the request (its head, or its first bytes in a content rule); "res": the
# response's; "any": both, and anywhere; "conn": where only the connection is known
# (`tcp-request connection` and `session` rules: nothing read from it yet).
Scope = Literal["any", "req", "res", "conn"]


@dataclass(frozen=True, slots=True)
class FetchSpec:
    type: SampleType
    min_args: int = 0
    max_args: int = 0
    scope: Scope = "any"
    # In an ACL, all occurrences are tried (headers, cookies, parameters).
    multi: bool = False
    # The argument that is an occurrence number (hdr(NAME,OCC)), if any.
    occurrence_arg: int | None = None


_REQ_HDR = FetchSpec("str", 0, 2, "req", multi=True, occurrence_arg=1)
_RES_HDR = FetchSpec("str", 0, 2, "res", multi=True, occurrence_arg=1)
FETCHES: dict[str, FetchSpec] = {
    "always_true": FetchSpec("bool"),
    "always_false": FetchSpec("bool"),
    "str": FetchSpec("str", 0, 1),
    "int": FetchSpec("int", 1, 1),
    "src": FetchSpec("ip"),
    "src_port": FetchSpec("int"),
    "dst": FetchSpec("ip"),
    "dst_port": FetchSpec("int"),
    "ssl_fc": FetchSpec("bool"),
    "ssl_fc_sni": FetchSpec("str"),
    "ssl_c_used": FetchSpec("bool"),
    "ssl_c_verify": FetchSpec("int"),
    "method": FetchSpec("meth"),
    "req.ver": FetchSpec("str", scope="req"),
    "req.proto_http": FetchSpec("bool", scope="req"),
    "req.len": FetchSpec("int", scope="req"),
    "path": FetchSpec("str", scope="req"),
    "pathq": FetchSpec("str", scope="req"),
    "url": FetchSpec("str", scope="req"),
    "base": FetchSpec("str", scope="req"),
    "baseq": FetchSpec("str", scope="req"),
    "query": FetchSpec("str", scope="req"),
    "url_param": FetchSpec("str", 0, 2, "req", multi=True),
    "req.hdr": _REQ_HDR,
    "req.fhdr": FetchSpec("str", 1, 2, "req", multi=True, occurrence_arg=1),
    "req.hdr_cnt": FetchSpec("int", 0, 1, "req"),
    "req.fhdr_cnt": FetchSpec("int", 0, 1, "req"),
    "req.hdr_val": FetchSpec("int", 0, 2, "req", multi=True, occurrence_arg=1),
    "req.hdr_ip": FetchSpec("ip", 0, 2, "req", multi=True, occurrence_arg=1),
    "req.cook": FetchSpec("str", 0, 1, "req", multi=True),
    "req.cook_cnt": FetchSpec("int", 0, 1, "req"),
    "req.cook_val": FetchSpec("int", 0, 1, "req", multi=True),
    "res.hdr": _RES_HDR,
    "res.fhdr": FetchSpec("str", 0, 2, "res", multi=True, occurrence_arg=1),
    "res.hdr_cnt": FetchSpec("int", 0, 1, "res"),
    "res.fhdr_cnt": FetchSpec("int", 0, 1, "res"),
    "res.hdr_val": FetchSpec("int", 0, 2, "res", multi=True, occurrence_arg=1),
    "res.hdr_ip": FetchSpec("ip", 0, 2, "res", multi=True, occurrence_arg=1),
    "res.cook": FetchSpec("str", 0, 1, "res", multi=True),
    "res.cook_cnt": FetchSpec("int", 0, 1, "res"),
    "res.cook_val": FetchSpec("int", 0, 1, "res", multi=True),
    "res.ver": FetchSpec("str", scope="res"),
    "res.cache_hit": FetchSpec("bool", scope="res"),
    "res.cache_name": FetchSpec("str", scope="res"),
    "status": FetchSpec("int", scope="res"),
    "var": FetchSpec("any", 1, 2),
    "date": FetchSpec("int", 0, 2),
    "env": FetchSpec("str", 0, 1),
    "rand": FetchSpec("int", 0, 1),
    "uuid": FetchSpec("str", 0, 1),
    "nbsrv": FetchSpec("int", 0, 1),
    "be_conn": FetchSpec("int", 0, 1),
    "queue": FetchSpec("int", 0, 1),
    "avg_queue": FetchSpec("int", 0, 1),
    "connslots": FetchSpec("int", 0, 1),
    "srv_is_up": FetchSpec("bool", 1, 1),
    "base32": FetchSpec("int", scope="req"),
    "url_ip": FetchSpec("ip", scope="req"),
    "url_port": FetchSpec("int", scope="req"),
    "http_auth": FetchSpec("bool", 1, 1, "req"),
    "http_auth_bearer": FetchSpec("str", 0, 1, "req"),
    # The body held under `option http-buffer-request` (core/request_body.py).
    "req.body": FetchSpec("bin", scope="req"),
    "req.body_len": FetchSpec("int", scope="req"),
    "req.body_size": FetchSpec("int", scope="req"),
    "req.body_param": FetchSpec("str", 0, 1, "req", multi=True),
    # A capture slot's value (core/http/txn_rules.py fills them); log lines read theirs
    # from the record (config/logformat.py).
    "capture.req.hdr": FetchSpec("str", 1, 1),
    "capture.res.hdr": FetchSpec("str", 1, 1),
    "http_auth_group": FetchSpec("str", 1, 1, "req"),
    # Layer 4 contents (core/payload.py): the bytes a content rule holds.
    "req.payload": FetchSpec("bin", 2, 2, "req"),
    "req.payload_lv": FetchSpec("bin", 2, 3, "req"),
    "req.ssl_hello_type": FetchSpec("int", scope="req"),
    "req.ssl_sni": FetchSpec("str", scope="req"),
    "req.ssl_ver": FetchSpec("int", scope="req"),
    "req.ssl_alpn": FetchSpec("str", scope="req", multi=True),
    "req.rdp_cookie": FetchSpec("str", 0, 1, "req"),
    "req.rdp_cookie_cnt": FetchSpec("int", 0, 1, "req"),
    "res.len": FetchSpec("int", scope="res"),
    "res.payload": FetchSpec("bin", 2, 2, "res"),
    "res.payload_lv": FetchSpec("bin", 2, 3, "res"),
    "res.ssl_hello_type": FetchSpec("int", scope="res"),
    "wait_end": FetchSpec("bool"),
    # Stick tables (config/stick_fetches.py).
    **{
        name: FetchSpec("bool" if kind == "bool" else "int", low, high)
        for name, (kind, low, high) in stick_fetches.SPECS.items()
    },
}
# The fetches that read the bytes held by a content rule (their arguments are offsets).
PAYLOAD_FETCHES = frozenset(
    name for name in FETCHES if name.startswith(("req.payload", "res.payload"))
)
# Fetches that name a backend (or BACKEND/SERVER), checked once the sections are known.
BACKEND_FETCHES = frozenset({"nbsrv", "be_conn", "queue", "avg_queue", "connslots", "srv_is_up"})
# Deprecated spellings HAProxy still accepts.
ALIASES = {
    "cook": "req.cook",
    "cook_cnt": "req.cook_cnt",
    "cook_val": "req.cook_val",
    "hdr_cnt": "req.hdr_cnt",
    "hdr_ip": "req.hdr_ip",
    "hdr_val": "req.hdr_val",
    "req_ver": "req.ver",
    "req_len": "req.len",
    "req_proto_http": "req.proto_http",
    "urlp": "url_param",
    "shdr": "res.hdr",
    "shdr_cnt": "res.hdr_cnt",
    "shdr_ip": "res.hdr_ip",
    "shdr_val": "res.hdr_val",
    "scook": "res.cook",
    "scook_cnt": "res.cook_cnt",
    "scook_val": "res.cook_val",
    "resp_ver": "res.ver",
    "req_ssl_hello_type": "req.ssl_hello_type",
    "req_ssl_sni": "req.ssl_sni",
    "req_ssl_ver": "req.ssl_ver",
    "rdp_cookie": "req.rdp_cookie",
    "rdp_cookie_cnt": "req.rdp_cookie_cnt",
    "rep_ssl_hello_type": "res.ssl_hello_type",
    # `payload` and `payload_lv` read the direction of the rule (parse_sample); in an ACL,
    # the request's.
    "payload": "req.payload",
    "payload_lv": "req.payload_lv",
}
# ACL keywords that are a fetch with a matching method (`path_beg` is `path -m beg`).
# `hdr` and its derivatives are the request's headers in an ACL; in a log-format string
# `hdr` follows the direction of the rule (below).
_DERIVED_METHODS: tuple[MatchMethod, ...] = ("beg", "dir", "dom", "end", "len", "reg", "sub")
ACL_KEYWORDS: dict[str, tuple[str, MatchMethod | None]] = {"hdr": ("req.hdr", None)}
for _family, _fetch in (
    ("path", "path"),
    ("url", "url"),
    ("base", "base"),
    ("hdr", "req.hdr"),
    ("urlp", "url_param"),
    ("cook", "req.cook"),
    ("req.cook", "req.cook"),
    ("shdr", "res.hdr"),
    ("res.hdr", "res.hdr"),
    ("ssl_fc_sni", "ssl_fc_sni"),
):
    for _method in _DERIVED_METHODS:
        ACL_KEYWORDS[f"{_family}_{_method}"] = (_fetch, _method)
# Converters poise implements (config/converters.py).
CONVERTERS = converters.CONVERTERS
# What HAProxy says a fetch needs, when it is used where that is not available.
NEEDS = {"req": "HTTP request headers", "res": "HTTP response headers"}
# Log-format variables poise can fill in a header value or a reply: the connection's
# addresses and the request line.
HEADER_VARIABLES = frozenset({"ci", "cp", "fi", "fp", "HM", "HU", "HP", "HPO", "HQ", "HV"})


def output_type(sample: Sample) -> SampleType:
    """The type of a sample after its converters."""
    for name, _ in reversed(sample.converters):
        output = CONVERTERS[name].output
        if output != "same":
            return output
    return FETCHES[sample.fetch].type


def split_call(text: str) -> tuple[str, tuple[str, ...], str]:
    """`name(a,b)rest` -> (name, (a, b), rest); `name,rest` -> (name, (), ",rest").

    The arguments are read as HAProxy reads them: within single quotes nothing is special
    but the closing quote; elsewhere double quotes group, and a backslash before one of
    `\\ ' " , )` takes that character literally (any other backslash is kept, for
    regsub's `\\1`)."""
    match = re.match(r"[^(),]*", text)
    name = match.group(0) if match else ""
    rest = text[len(name) :]
    if not rest.startswith("("):
        return name, (), rest
    args: list[str] = []
    current: list[str] = []
    quote = ""
    index, size = 1, len(rest)
    while index < size:
        char = rest[index]
        index += 1
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                current.append(char)
        elif char == "\\" and index < size and rest[index] in "\\'\",)":
            current.append(rest[index])
            index += 1
        elif char == '"':
            quote = "" if quote else '"'
        elif quote:
            current.append(char)
        elif char == "'":
            quote = "'"
        elif char == ",":
            args.append("".join(current))
            current = []
        elif char == ")":
            if args or current:
                args.append("".join(current))
            return name, tuple(args), rest[index:]
        else:
            current.append(char)
    raise Problem(f"missing closing ')' after arguments to '{name}'")


def unknown_fetch(name: str) -> Problem:
    if sample_names.is_fetch(name):
        return Problem(f"fetch method '{name}' is not implemented yet in poise")
    known = [*FETCHES, *ALIASES, *ACL_KEYWORDS]
    return Problem(f"unknown fetch method '{name}'{did_you_mean(name, known)}")


def check_args(name: str, spec: FetchSpec, args: tuple[str, ...]) -> tuple[str, ...]:
    """The arguments of a fetch, checked; with a stick table's implied one added."""
    if len(args) < spec.min_args:
        raise Problem(f"fetch method '{name}' expects at least {spec.min_args} argument(s)")
    if len(args) > spec.max_args:
        raise Problem(f"fetch method '{name}' expects at most {spec.max_args} argument(s)")
    at = spec.occurrence_arg
    if at is not None and len(args) > at and not re.fullmatch(r"-?\d+", args[at]):
        raise Problem(f"fetch method '{name}': occurrence '{args[at]}' is not an integer")
    if name == "int" and not re.fullmatch(r"-?\d+", args[0]):
        raise Problem(f"fetch method 'int': '{args[0]}' is not an integer")
    _check_state_args(name, args)
    if name in PAYLOAD_FETCHES or name.startswith("capture."):
        _check_payload_args(name, args)
    if name == "var":
        try:
            check_var_name(args[0])
        except Problem as exc:
            raise Problem(f"invalid args in fetch method 'var' : {exc}") from None
    if name in stick_fetches.SPECS:
        args = stick_fetches.check_stick_args(name, args, patterns.current_proxy())
        table = stick_fetches.table_argument(name, args)
        if table is not None:
            patterns.refer_to_table(name, table)
    return args


def _check_payload_args(name: str, args: tuple[str, ...]) -> None:
    """`capture.req.hdr(N)`, `capture.res.hdr(N)`: an integer. `payload(OFFSET,LENGTH)`,
    `payload_lv(OFFSET1,LENGTH[,OFFSET2])`: integers, the second of payload_lv a size of
    at most 4 bytes, OFFSET2 maybe relative (`+N`, `-N`)."""
    for position, arg in enumerate(args, 1):
        if not re.fullmatch(r"[-+]?\d+" if position == 3 else r"\d+", arg):
            raise Problem(
                f"fetch method '{name}' : failed to parse '{arg}' as type 'integer' at "
                f"position {position}."
            )
    if name.endswith("_lv") and not 0 < int(args[1]) <= 4:
        raise Problem(f"invalid args in fetch method '{name}' : length must be 1 to 4.")


def _check_state_args(name: str, args: tuple[str, ...]) -> None:
    """The arguments of date, rand, uuid and of the fetches that name a backend."""
    number = name in ("date", "rand") and args and args[0]
    if number and not re.fullmatch(r"[-+]?\d+", args[0]):
        raise Problem(
            f"fetch method '{name}' : failed to parse '{args[0]}' as type 'integer' at position 1."
        )
    if name == "date" and len(args) > 1 and args[1] not in ("", "s", "ms", "us"):
        raise Problem(
            f"invalid args in fetch method 'date' : expects 's', 'ms' or 'us', got '{args[1]}'."
        )
    if name == "uuid" and args and args[0] != "4":
        raise Problem(
            f"invalid args in fetch method 'uuid' : Unsupported UUID version: '{args[0]}'."
        )
    if name in ("http_auth", "http_auth_group"):
        patterns.refer_to_userlist(name, args[0])
    if name in BACKEND_FETCHES:
        if not args or (name == "srv_is_up" and "/" not in args[0]):
            raise Problem(
                f"fetch method '{name}' without a backend name (the current backend) is not "
                "implemented yet in poise"
            )
        patterns.refer_to_backend(name, args[0])


def parse_converters(rest: str, text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found: list[tuple[str, tuple[str, ...]]] = []
    while rest:
        if not rest.startswith(","):
            raise Problem(f"unexpected '{rest}' after the fetch method in '{text}'")
        name, args, rest = split_call(rest[1:])
        if name not in CONVERTERS:
            if name in sample_names.CONVERTERS:
                raise Problem(f"converter '{name}' is not implemented yet in poise")
            hint = did_you_mean(name, sample_names.CONVERTERS)
            raise Problem(f"unknown converter '{name}'{hint}")
        converters.check_converter(name, args)
        found.append((name, args))
    return tuple(found)


def parse_sample(text: str, direction: Scope = "any") -> Sample:
    """A sample expression as a log-format string's `%[...]` writes it. `direction` is
    where it is evaluated ("req" or "res"), which `hdr` follows."""
    name, args, rest = split_call(text)
    if not name:
        raise Problem(f"missing fetch method in '{text}'")
    if name == "hdr":
        name = "res.hdr" if direction == "res" else "req.hdr"
    elif name in ("payload", "payload_lv") and direction == "res":
        name = "res." + name
    name = ALIASES.get(name, name)
    spec = FETCHES.get(name)
    if spec is None:
        raise unknown_fetch(name)
    args = check_args(name, spec, args)
    return Sample(name, args, parse_converters(rest, text), text)


def expression_end(text: str, start: int) -> int:
    """Where the `]` closing a `%[` expression that starts at `start` is (-1: none). As
    in HAProxy the expression decides where it ends: a `]` inside an argument (in
    parentheses or quotes, `regsub([?;&]*,'')`) does not close it."""
    depth, quote = 0, ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"" and depth:
            quote = char
        elif char == "\\" and depth:
            index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "]" and not depth:
            return index
        index += 1
    return -1


def check_scope(sample: Sample, scope: Scope) -> str | None:
    """What a fetch needs that is not available where it is used, or None."""
    needed = FETCHES[sample.fetch].scope
    if needed == "any" or scope in ("any", needed):
        return None
    if sample.fetch == "status":
        return "HTTP response"
    return NEEDS[needed]


def _flags(text: str) -> bool:
    """The `{+Q,-Q,...}` flags of a variable: whether to quote."""
    quote = False
    for flag in text.split(","):
        if flag in ("+Q", "-Q"):
            quote = flag == "+Q"
        elif flag[1:] in ("X", "E") and flag[:1] in "+-":
            raise Problem(f"log-format flag '{flag}' is not implemented yet in poise")
        else:
            raise Problem(f"unknown log-format flag '{flag}'")
    return quote


def parse_log_format(
    text: str,
    direction: Scope,
    variables: frozenset[str] = HEADER_VARIABLES,
    *,
    samples: bool = True,
) -> LogFormat:
    """A log-format string: literal text, `%%`, `%[sample]` and `%var` (with optional
    `%{+Q}` flags). `variables` are those poise can fill where the string is used; the
    other HAProxy variables are reported as not implemented there. With `samples`
    False, the `%[...]` expressions are only checked to be closed (for `log-format`,
    whose expressions the log formatter reads)."""
    parts: list[str | Sample | FormatVar] = []
    literal: list[str] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char != "%":
            literal.append(char)
            index += 1
            continue
        index += 1
        if text[index : index + 1] == "%":
            literal.append("%")
            index += 1
            continue
        quote = False
        if text[index : index + 1] == "{":
            close = text.find("}", index)
            if close < 0:
                raise Problem(f"missing '}}' after '%{{' in '{text}'")
            quote = _flags(text[index + 1 : close])
            index = close + 1
        if literal:
            parts.append("".join(literal))
            literal = []
        if text[index : index + 1] == "[":
            close = expression_end(text, index + 1)
            if close < 0:
                raise Problem(f"missing ']' after '{text[index + 1 :]}'")
            expression = text[index + 1 : close]
            if samples:
                sample = parse_sample(expression, direction)
                needs = check_scope(sample, direction)
                if needs:
                    raise Problem(
                        f"sample fetch <{expression}> may not be reliably used here because "
                        f"it needs '{needs}' which is not available here"
                    )
                parts.append(sample)
            else:
                parts.append(Sample("", (), (), expression))
            index = close + 1
            continue
        match = re.match(r"[A-Za-z0-9]+", text[index:])
        name = match.group(0) if match else ""
        if name not in sample_names.LOG_FORMAT_VARIABLES:
            raise Problem(
                f"no such format variable '{name}'. If you wanted to emit the '%' "
                "character verbatim, you need to use '%%'"
            )
        if name not in variables:
            raise Problem(f"log-format variable '%{name}' is not implemented yet in poise here")
        parts.append(FormatVar(name, quote))
        index += len(name)
    if literal:
        parts.append("".join(literal))
    return LogFormat(text, tuple(parts))
