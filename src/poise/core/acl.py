"""ACLs evaluated on a request (and its response): HAProxy's matching methods and
conditions (configuration.txt 7.1, 7.2 and 7.4), on the samples of fetch.py.

An ACL test, an ACL and a condition are compiled once into closures (regexes compiled,
patterns lowered, networks turned into integers, exact strings into sets) and then cost
a few calls per request; rules.py compiles each proxy once and caches it. The response is
None while the request is processed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from poise.config import patterns as pattern_files
from poise.config.acl_parse import check_pattern, ip_network
from poise.config.haproxy_draft import Problem
from poise.config.model import Acl, AclPattern, AclTest, Condition, MatchMethod
from poise.config.patterns import PatternRef
from poise.config.samples import Scope, output_type
from poise.core import auth
from poise.core.fetch import (
    Value,
    Values,
    parse_ip,
    sample_getter,
    sample_values,
    to_int,
    to_str,
)
from poise.core.http.message import Request, Response

Test = Callable[[Request, Response | None], bool]
Matcher = Callable[[Value], bool]

KNOWN_METHODS = frozenset({"OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT"})


def _int_check(pattern: AclPattern) -> Callable[[int], bool]:
    text, op = pattern.value, pattern.operator
    if ":" in text:  # a range; an operator before it means nothing (7.1.2)
        low_text, _, high_text = text.partition(":")
        low = int(low_text) if low_text else None
        high = int(high_text) if high_text else None
        return lambda v: (low is None or v >= low) and (high is None or v <= high)
    n = int(text)
    return {
        "": lambda v: v == n,
        "eq": lambda v: v == n,
        "ge": lambda v: v >= n,
        "gt": lambda v: v > n,
        "le": lambda v: v <= n,
        "lt": lambda v: v < n,
    }[op]


def _networks(patterns: Sequence[AclPattern]) -> Matcher:
    """HAProxy's IP matching (7.1.6), IPv4 patterns also matching IPv4-mapped, IPv4-
    compatible and 6to4 IPv6 addresses, IPv6 patterns matching IPv4 as ::ffff:a.b.c.d."""
    nets: list[tuple[int, int, int]] = []  # (version, network, mask)
    for pattern in patterns:
        network = ip_network(pattern.value)
        bits = 32 if network.version == 4 else 128
        mask = ((1 << network.prefixlen) - 1) << (bits - network.prefixlen)
        nets.append((network.version, int(network.network_address), mask))

    def match(value: Value) -> bool:
        ip = value if isinstance(value, tuple) else parse_ip(to_str(value))
        if ip is None:
            return False
        version, number = ip
        as_v4 = number if version == 4 else _embedded_v4(number)
        as_v6 = number if version == 6 else (0xFFFF << 32) | number
        for net_version, net, mask in nets:
            if net_version == 4:
                if as_v4 is not None and as_v4 & mask == net:
                    return True
            elif as_v6 & mask == net:
                return True
        return False

    return match


def _embedded_v4(number: int) -> int | None:
    if number >> 32 in (0, 0xFFFF):  # ::a.b.c.d and ::ffff:a.b.c.d
        return number & 0xFFFFFFFF
    if number >> 112 == 0x2002:  # 6to4: 2002:AABB:CCDD::
        return (number >> 80) & 0xFFFFFFFF
    return None


def _word_regex(pattern: AclPattern, delimiters: str) -> re.Pattern[str]:
    """`-m dom` and `-m dir`: the pattern (without its leading and trailing delimiters)
    between delimiters or the ends of the string (7.1.3)."""
    word = pattern.value.strip(delimiters)
    cls = "[" + re.escape(delimiters) + "]"
    flags = re.IGNORECASE if pattern.ignore_case else 0
    return re.compile(f"(?:^|{cls}){re.escape(word)}(?:{cls}|\\Z)", flags)


def _strings(method: MatchMethod, patterns: Sequence[AclPattern]) -> Callable[[str], bool]:
    exact = [p.value for p in patterns if not p.ignore_case]
    folded = [p.value.lower() for p in patterns if p.ignore_case]
    if method == "str":
        exact_set, folded_set = frozenset(exact), frozenset(folded)
        return lambda s: s in exact_set or (bool(folded_set) and s.lower() in folded_set)
    if method in ("beg", "end"):
        exact_t, folded_t = tuple(exact), tuple(folded)
        if method == "beg":
            return lambda s: (
                s.startswith(exact_t) or (bool(folded_t) and s.lower().startswith(folded_t))
            )
        return lambda s: s.endswith(exact_t) or (bool(folded_t) and s.lower().endswith(folded_t))
    if method == "sub":
        return lambda s: (
            any(p in s for p in exact) or (bool(folded) and any(p in s.lower() for p in folded))
        )
    if method in ("reg", "dom", "dir"):
        if method == "reg":
            regexes = [re.compile(p.value, re.IGNORECASE if p.ignore_case else 0) for p in patterns]
        else:
            regexes = [_word_regex(p, "/?.:" if method == "dom" else "/?") for p in patterns]
        return lambda s: any(r.search(s) for r in regexes)
    raise AssertionError(method)


def _methods(patterns: Sequence[AclPattern]) -> Matcher:
    """The `method` ACL: a known method matches exactly; other methods compare as strings
    (ignoring case with -i), and never match a known one."""
    known = frozenset(p.value for p in patterns if p.value in KNOWN_METHODS)
    others = [p for p in patterns if p.value not in KNOWN_METHODS]

    def match(value: Value) -> bool:
        method = to_str(value)
        if method in KNOWN_METHODS:
            return method in known
        return any(
            method.lower() == p.value.lower() if p.ignore_case else method == p.value
            for p in others
        )

    return match


def matcher(method: MatchMethod, patterns: Sequence[AclPattern]) -> Matcher:
    """How one value is compared with an ACL's patterns."""
    if method == "found":
        return lambda value: True
    if method == "bool":
        return lambda value: bool(to_int(value))
    if method in ("int", "len"):
        checks = [_int_check(p) for p in patterns]
        if method == "len":
            return lambda value: any(check(len(to_str(value))) for check in checks)

        def integer(value: Value) -> bool:
            number = to_int(value)
            return number is not None and any(check(number) for check in checks)

        return integer
    if method == "ip":
        return _networks(patterns)
    if method == "meth":
        return _methods(patterns)
    if method == "bin":  # hexadecimal patterns, each the exact bytes (as latin-1 text)
        wanted = frozenset(bytes.fromhex(p.value).decode("latin-1") for p in patterns)
        return lambda value: (value if isinstance(value, str) else to_str(value)) in wanted
    strings = _strings(method, patterns)
    return lambda value: strings(value if isinstance(value, str) else to_str(value))


def _file_patterns(test: AclTest, refs: Sequence[PatternRef]) -> list[AclPattern]:
    """The test's own patterns and those its files hold now (one the runtime API added
    that cannot be read with the test's method is left out)."""
    found = list(test.patterns)
    for ref, (_, icase) in zip(refs, test.files, strict=True):
        for entry in ref.entries:
            pattern = AclPattern(entry.key, icase)
            try:
                check_pattern(test.match, pattern)
            except Problem:
                continue
            found.append(pattern)
    return found


class _FileTest:
    """An ACL test with pattern files: its matcher is built again when a file changed."""

    __slots__ = ("match", "refs", "test", "values", "versions")

    def __init__(self, test: AclTest, values: Values) -> None:
        self.test, self.values = test, values
        self.refs = [pattern_files.REFERENCES[path] for path, _ in test.files]
        self.versions: list[int] = []
        self.match: Matcher = _never

    def __call__(self, req: Request, resp: Response | None) -> bool:
        refs = self.refs
        if len(self.versions) != len(refs) or any(
            ref.version != seen for ref, seen in zip(refs, self.versions, strict=True)
        ):
            self.versions = [ref.version for ref in refs]
            patterns = _file_patterns(self.test, refs)
            method = self.test.match
            self.match = (
                matcher(method, patterns) if patterns or method in ("found", "bool") else _never
            )
        match = self.match
        for value in self.values(req, resp):  # noqa: SIM110
            if match(value):
                return True
        return False


def _never(value: Value) -> bool:
    return False


def _user_groups(listname: str) -> Values:
    """`http_auth_group(L)` in an ACL: the groups of the user the request authenticates
    as, which the patterns name (configuration.txt 7.3.6)."""
    user_of = auth.authenticated(listname)

    def groups(req: Request, resp: Response | None) -> Sequence[Value]:
        user = user_of(req)
        return user.groups if user is not None else ()

    return groups


def compile_test(test: AclTest, scope: Scope) -> Test:
    values = sample_values(test.sample, scope)
    if test.sample.fetch == "http_auth_group" and not test.sample.converters:
        values = _user_groups(test.sample.args[0])
    if test.files:
        return _FileTest(test, values)
    if not test.patterns and test.match not in ("found", "bool"):
        return lambda req, resp: False  # HAProxy: "this ACL will never match"
    if test.match == "bool" and output_type(test.sample) == "bool" and not test.sample.converters:
        return lambda req, resp: any(values(req, resp))
    match = matcher(test.match, test.patterns)
    get = sample_getter(test.sample, scope)
    if get is not None:  # one value at most: no sequence to build

        def one(req: Request, resp: Response | None) -> bool:
            value = get(req, resp)
            return value is not None and match(value)

        return one

    def run(req: Request, resp: Response | None) -> bool:
        # A plain loop: any() over a generator costs a frame per request on this path.
        for value in values(req, resp):  # noqa: SIM110
            if match(value):
                return True
        return False

    return run


def compile_acl(acl: Acl, scope: Scope) -> Test:
    tests = [compile_test(test, scope) for test in acl.tests]
    if len(tests) == 1:
        return tests[0]
    return lambda req, resp: any(test(req, resp) for test in tests)


def compile_condition(cond: Condition, scope: Scope) -> Test:
    """`if`: some suite has all its terms true; `unless`: none has."""
    suites = [
        [(compile_acl(term.acl, scope), term.negate) for term in suite] for suite in cond.suites
    ]
    unless = cond.unless
    if len(suites) == 1 and len(suites[0]) == 1:  # the common `if acl` / `unless !acl`
        acl, negate = suites[0][0]
        flip = negate != unless
        return lambda req, resp: acl(req, resp) != flip

    def holds(req: Request, resp: Response | None) -> bool:
        for suite in suites:
            for acl, negate in suite:
                if acl(req, resp) == negate:
                    break
            else:
                return not unless
        return unless

    return holds
