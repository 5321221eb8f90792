"""ACLs and conditions as haproxy.cfg writes them (configuration.txt 7.1, 7.2 and 7.4).

`acl NAME CRITERION [FLAGS] [OPERATOR] [VALUE]...` and the anonymous `{ CRITERION ... }`
give an AclTest; `if|unless [!]acl1 [!]acl2 [or|'||' ...]` gives a Condition. Patterns are
checked here (integers and ranges, IP networks, regexes), so that a bad one is reported at
its line and the core compiles them without surprises.

A condition names its ACLs; the link pass resolves the names (HAProxy's rule: an ACL is
declared before the first rule that uses it, and the ACLs of a `defaults` section are only
visible to that section's own rules). Until then a named term holds a placeholder Acl
with no tests. Pure: a `-f FILE` is read through the `read_file` function the loader gives.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from poise.config import patterns as pattern_files
from poise.config.diagnostics import Diagnostic, warning
from poise.config.haproxy_draft import Problem
from poise.config.model import (
    NOWHERE,
    Acl,
    AclPattern,
    AclTerm,
    AclTest,
    Condition,
    MatchMethod,
    Sample,
    Where,
)
from poise.config.samples import (
    ACL_KEYWORDS,
    ALIASES,
    FETCHES,
    SampleType,
    check_args,
    output_type,
    parse_converters,
    split_call,
    unknown_fetch,
)

ReadFile = Callable[[str], bytes]
ACL_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_DEFAULT_MATCH: dict[SampleType, MatchMethod] = {  # "any" has none: `-m` is needed
    "bool": "bool",
    "int": "int",
    "ip": "ip",
    "str": "str",
    "bin": "bin",
    "meth": "meth",
}
_METHODS: dict[str, MatchMethod] = {
    m: m for m in ("found", "bool", "int", "ip", "str", "beg", "end", "sub", "reg", "dom", "dir")
}
_METHODS["len"] = "len"
_METHODS["bin"] = "bin"
INT_OPERATORS = frozenset({"eq", "ge", "gt", "le", "lt"})
_INT = re.compile(r"-?\d+")
_RANGE = re.compile(r"(-?\d+)?:(-?\d+)?")


def criterion(text: str) -> tuple[Sample, MatchMethod | None]:
    """The sample and default matching method of an ACL criterion (`hdr_beg(host)`,
    `path`, `req.hdr(x),lower`); None when its type has none (`var`: `-m` is needed)."""
    name, args, rest = split_call(text)
    if not name:
        raise Problem(f"missing fetch method in ACL expression '{text}'")
    method: MatchMethod | None = None
    if name in ACL_KEYWORDS:
        fetch, method = ACL_KEYWORDS[name]
    else:
        fetch = ALIASES.get(name, name)
    spec = FETCHES.get(fetch)
    if spec is None:
        raise unknown_fetch(name)
    args = check_args(name, spec, args)
    sample = Sample(fetch, args, parse_converters(rest, text), text)
    # After a converter, the ACL keyword's own method gives way to the output type's.
    if method is None or sample.converters:
        method = _DEFAULT_MATCH.get(output_type(sample))
    return sample, method


def _ipv4(text: str) -> str:
    """HAProxy's dotted IPv4 forms: `10.12` is 10.0.0.12 (zero octets omitted)."""
    octets = text.split(".")
    if not 1 <= len(octets) <= 4 or not all(o.isdigit() for o in octets):
        return text
    return ".".join([*octets[:-1], *["0"] * (4 - len(octets)), octets[-1]])


def check_ip(value: str) -> None:
    """An address or a network: `a.b.c.d[/bits|/mask]`, `ipv6[/bits]`."""
    address, slash, mask = value.partition("/")
    try:
        if ":" in address:
            ipaddress.IPv6Network(value, strict=False)
            return
        network = _ipv4(address)
        if slash and not mask.isdigit():
            ipaddress.IPv4Network(f"{network}/{mask}", strict=False)
        else:
            ipaddress.IPv4Network(f"{network}/{mask}" if slash else network, strict=False)
    except ValueError:
        raise Problem(
            f"'{value}' is not a valid IPv4 or IPv6 address (host names are not resolved "
            "by poise: write the address)"
        ) from None


def ip_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network a checked ip pattern stands for."""
    address, slash, mask = value.partition("/")
    if ":" in address:
        return ipaddress.IPv6Network(value, strict=False)
    network = _ipv4(address)
    return ipaddress.IPv4Network(f"{network}/{mask}" if slash else network, strict=False)


def _dotted_version(text: str) -> str:
    """`req.ssl_ver`'s patterns are versions, MAJOR.MINOR or a range of them (`3.1:3.3`),
    compared as MAJOR * 65536 + MINOR (HAProxy's pat_parse_dotted_ver)."""

    def one(version: str) -> str:
        major, dot, minor = version.partition(".")
        if not major.isdigit() or (dot and not minor.isdigit()):
            return version  # not a version: reported by check_pattern
        return str(int(major) * 65536 + int(minor or 0))

    if ":" in text:
        low, _, high = text.partition(":")
        return f"{one(low) if low else ''}:{one(high) if high else ''}"
    return one(text)


def check_pattern(method: MatchMethod, pattern: AclPattern) -> None:
    value = pattern.value
    if method in ("int", "len"):
        if not (_INT.fullmatch(value) or _RANGE.fullmatch(value)):
            raise Problem(f"'{value}' is not a valid integer or range")
    elif method == "ip":
        check_ip(value)
    elif method == "bin":
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})*", value):
            raise Problem(f"'{value}' is not a valid binary pattern (hexadecimal digit pairs)")
    elif method == "reg":
        try:
            re.compile(value, re.IGNORECASE if pattern.ignore_case else 0)
        except re.error as exc:
            raise Problem(f"regex '{value}' is invalid ({exc})") from None


def parse_test(
    words: Sequence[str],
    where: Where,
    diagnostics: list[Diagnostic] | None = None,
    read_file: ReadFile | None = None,
    label: str = "acl",
) -> AclTest:
    """`CRITERION [FLAGS] [OPERATOR] [VALUE]...` (an `acl` line without its name, or the
    inside of `{ ... }`)."""
    if not words:
        raise Problem("missing fetch method in ACL expression ''")
    sample, method = criterion(words[0])
    icase, explicit_end, as_map = False, False, False
    patterns: list[AclPattern] = []
    files: list[tuple[str, bool]] = []
    index = 1
    while index < len(words) and words[index].startswith("-"):
        flag = words[index]
        value = words[index + 1] if index + 1 < len(words) else None
        if flag == "--":
            explicit_end = True
            index += 1
            break
        if flag == "-i":
            icase = True
        elif flag == "-n":
            pass  # poise never resolves names in patterns
        elif flag in ("-m", "-f", "-u"):
            if value is None:
                raise Problem(f"'{flag}' expects an argument")
            if flag == "-m":
                if value not in _METHODS:
                    raise Problem(f"unknown matching method '{value}'")
                method = _METHODS[value]
            elif flag == "-f":
                pattern_files.load(value, "acl-map" if as_map else "acl")
                files.append((value, icase))
            elif flag == "-u":
                raise Problem("'-u' (unique ACL ids) is not implemented yet in poise")
            index += 1
        elif flag == "-M":
            as_map = True
        else:
            raise Problem(f"'{flag}' is not a valid ACL option")
        index += 1
    if method is None:
        raise Problem(
            "matching method must be specified first (using '-m') when using a sample "
            f"fetch of this type ('{sample.fetch}')."
        )
    operator = ""
    for word in words[index:]:
        if method in ("int", "len") and word in INT_OPERATORS:
            operator = word
            continue
        dotted = sample.fetch == "req.ssl_ver" and method == "int" and not sample.converters
        patterns.append(AclPattern(_dotted_version(word) if dotted else word, icase, operator))
    for pattern in patterns:
        check_pattern(method, pattern)
    for path, file_icase in files:
        for entry in pattern_files.load(path, "check").entries:
            try:
                check_pattern(method, AclPattern(entry.key, file_icase))
            except Problem as exc:
                raise Problem(f"{exc} in pattern file '{path}'") from None
    pattern_files.anonymous()
    if sample.fetch == "http_auth_group":
        wanted = tuple(p.value for p in patterns)
        pattern_files.refer_to_userlist("http_auth_group", sample.args[0], wanted)
    silent = explicit_end or diagnostics is None or bool(files)
    if not patterns and method not in ("found", "bool") and not silent:
        assert diagnostics is not None
        diagnostics.append(
            warning(
                where,
                f"'{words[0]}': no pattern to match against were provided, so this ACL "
                "will never match (add '--' if intended, or use '-m found' to check "
                "for existence)",
                label,
            )
        )
    return AclTest(words[0], sample, method, tuple(patterns), where, tuple(files))


def parse_condition(
    words: Sequence[str],
    where: Where,
    diagnostics: list[Diagnostic] | None = None,
    read_file: ReadFile | None = None,
    label: str = "acl",
) -> Condition:
    """`if|unless` and the words after it."""
    if not words or words[0] not in ("if", "unless"):
        raise Problem("expects 'if' or 'unless' followed by a condition")
    suites: list[list[AclTerm]] = [[]]
    body = list(words[1:])
    index = 0
    while index < len(body):
        word = body[index]
        index += 1
        if word == "||" or word.lower() == "or":  # HAProxy: strcasecmp(word, "or")
            suites.append([])
            continue
        negate = False
        while word.startswith("!"):
            negate = not negate
            word = word[1:]
            if not word:
                if index >= len(body):
                    break
                word = body[index]
                index += 1
        if not word:
            continue  # a lone '!' at the end: HAProxy ignores it
        if word == "{":
            try:
                close = body.index("}", index)
            except ValueError:
                raise Problem("missing closing '}' in condition") from None
            test = parse_test(body[index:close], where, diagnostics, read_file, label)
            suites[-1].append(AclTerm(Acl("", (test,), where), negate))
            index = close + 1
            continue
        suites[-1].append(AclTerm(Acl(word, (), where), negate))
    text = " ".join(words)
    return Condition(words[0] == "unless", tuple(tuple(s) for s in suites if s), where, text)


def _predefined(name: str, line: str) -> Acl:
    test = parse_test(line.split(), NOWHERE)
    return Acl(name, (test,), NOWHERE)


# configuration.txt 7.4.
PREDEFINED: dict[str, Acl] = {
    name: _predefined(name, line)
    for name, line in (
        ("FALSE", "always_false"),
        ("HTTP", "req.proto_http"),
        ("HTTP_1.0", "req.ver 1.0"),
        ("HTTP_1.1", "req.ver 1.1"),
        ("HTTP_2.0", "req.ver 2.0"),
        ("HTTP_CONTENT", "req.hdr_val(content-length) gt 0"),
        ("HTTP_URL_ABS", "url_reg ^[^/:]*://"),
        ("HTTP_URL_SLASH", "url_beg /"),
        ("HTTP_URL_STAR", "url *"),
        ("LOCALHOST", "src 127.0.0.1/8 ::1"),
        ("METH_CONNECT", "method CONNECT"),
        ("METH_DELETE", "method DELETE"),
        ("METH_GET", "method GET HEAD"),
        ("METH_HEAD", "method HEAD"),
        ("METH_OPTIONS", "method OPTIONS"),
        ("METH_POST", "method POST"),
        ("METH_PUT", "method PUT"),
        ("METH_TRACE", "method TRACE"),
        ("RDP_COOKIE", "req.rdp_cookie_cnt gt 0"),
        ("REQ_CONTENT", "req.len gt 0"),
        ("TRUE", "always_true"),
        ("WAIT_END", "wait_end"),
    )
}
PREDEFINED_NOT_IMPLEMENTED: frozenset[str] = frozenset()
