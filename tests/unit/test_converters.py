"""Converters (configuration.txt 7.3.1) on sample values: HAProxy's documented examples,
and values HAProxy 2.6.12 gave for the same expressions (an `http-request return` whose
lf-file shows each one; an empty result there is a failed conversion, told apart from an
empty string with `,length`)."""

from __future__ import annotations

import pytest

from poise.config.haproxy_draft import Problem
from poise.config.samples import parse_log_format, parse_sample
from poise.core.fetch import compile_format, sample_values, to_str
from poise.core.http.headers import Headers
from poise.core.http.message import Request


def request() -> Request:
    req = Request(
        "GET",
        "/a/b?c=d",
        "1.0",
        Headers([("Host", "Example.COM"), ("X-Ip", "10.1.2.3")]),
        src="127.0.0.1",
        src_port=40000,
        dst="127.0.0.1",
        dst_port=80,
    )
    req.vars = {"txn.x": "hello", "txn.n": 7, "txn.empty": ""}
    return req


def evaluate(expression: str) -> str | None:
    """The value as HAProxy shows it in a log-format string; None: no value."""
    found = sample_values(parse_sample(expression, "req"), "req")(request(), None)
    return to_str(found[-1]) if found else None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # configuration.txt's examples
        ("str(f1_f2_f3__f5),field(5,_)", "f5"),
        ("str(f1_f2_f3__f5),field(2,_,0)", "f2_f3__f5"),
        ("str(f1_f2_f3__f5),field(2,_,2)", "f2_f3"),
        ("str(f1_f2_f3__f5),field(-2,_,3)", "f2_f3_"),
        ("str(f1_f2_f3__f5),field(-3,_,0)", "f1_f2_f3"),
        ("str(f1_f2_f3__f5),word(4,_)", "f5"),
        ("str(f1_f2_f3__f5),word(2,_,0)", "f2_f3__f5"),
        ("str(f1_f2_f3__f5),word(3,_,2)", "f3__f5"),
        ("str(f1_f2_f3__f5),word(-2,_,3)", "f1_f2_f3"),
        ("str(f1_f2_f3__f5),word(-3,_,0)", "f1_f2"),
        ("str(/f1/f2/f3/f4),word(1,/)", "f1"),
        ("str(/////a///b/c/xzxyz/),regsub(/+,/,g)", "/a/b/c/xzxyz/"),
        ("str('a/b\"c'),json", 'a\\/b\\"c'),
        ("str(a),concat(<,txn.x,>)", "a<hello>"),
        # HAProxy 2.6.12 on the same expressions
        ("str(f1_f2_f3__f5),field(7,_)", None),
        ("str(f1_f2_f3__f5),word(9,_)", ""),
        ("str(a_b),field(-5,_)", None),
        ("str(_a_b_),word(-1,_)", "b"),
        ("str(),field(1,_)", ""),
        ("str(abc),strcmp(txn.x)", "-7"),
        ("str(hellp),strcmp(txn.x)", "1"),
        ("str(hel),strcmp(txn.x)", "-1"),
        ("str(helloooo),strcmp(txn.x)", "1"),
        ("str(a),strcmp(txn.nope)", None),
        ("int(7),strcmp(txn.n)", "0"),
        ("str(abc),bytes(5)", ""),
        ("str(abcdef),bytes(2,2)", "cd"),
        ("str(abcdef),bytes(2,10)", "cdef"),
        ("str(a),concat(<,txn.nope,>)", "a<>"),
        ("str(a),concat(,txn.n,)", "a7"),
        ("str(a),concat(x)", "ax"),
        ("str(a),concat(,,y)", "ay"),
        ("int(5),div(0)", "9223372036854775807"),
        ("int(5),mod(0)", "0"),
        ("int(-7),mod(3)", "-1"),
        ("int(-7),div(2)", "-3"),
        ("int(9223372036854775807),add(1)", "9223372036854775807"),
        ("int(9223372036854775807),mul(2)", "9223372036854775807"),
        ("int(-9223372036854775807),sub(10)", "-9223372036854775808"),
        ("int(5),sub(8)", "-3"),
        ("int(5),mul(-3)", "-15"),
        ("str(123abc),add(1)", "124"),
        ("str(abc),add(1)", "1"),
        ("int(3),add(txn.n)", "10"),
        ("int(3),add(txn.x)", "3"),
        ("int(3),add(txn.nope)", None),
        ("str(é),json", "\\u00c3\\u00a9"),
        ("str(é),json(utf8)", "\\u00e9"),
        ("str(x),sdbm", "120"),
        ("str(x),sdbm(1)", "2246094376"),
        ("str(abc),sdbm(0)", "807794786"),
        ("str(x),crc32", "2363233923"),
        ("str(x),wt6", "1898969189"),
        ("str(x),djb2", "177693"),
        ("str(abc),xxh3", "8696274497037089104"),
        ("str(abc),xxh3(1)", "7729416884403528232"),
        ("str(hello),xxh3", "-7685981735718036227"),
        ("str(abc),xxh32", "852579327"),
        ("str(abc),xxh32(5)", "1562728233"),
        ("str(abc),xxh64", "4952883123889572249"),
        ("str(abc),xxh64(5)", "-1753195980308443340"),
        ("str(%41%zz+b?c+d),url_dec", None),
        ("str(%41+b),url_dec(1)", "A b"),
        ("str(a+b?c+d%20),url_dec", "a+b?c d "),
        ("str(%4),url_dec", None),
        ("src,ipmask(24)", "127.0.0.0"),
        ("req.hdr(x-ip),ipmask(255.255.0.0)", "10.1.0.0"),
        ("int(5),ipmask(24)", "0.0.0.0"),
        ("str(::1),ipmask(24)", None),
        ("str(::1),ipmask(24,64)", "::"),
        ("str(2001:db8::1),ipmask(24,ffff:ffff::)", "2001:db8::"),
        ("str(abc),hex", "616263"),
        ("int(12),hex", "000000000000000C"),
        ("str(abc),hex,lower", "616263"),
        ("str(abc),base64", "YWJj"),
        ("str(YWJj),b64dec", "abc"),
        ("str(YWJ),b64dec", None),
        ("str(a),base64,b64dec", "a"),
        ("int(0),bool", "0"),
        ("str(1),bool", "1"),
        ("str(x),bool", "0"),
        ("str(0),not", "1"),
        ("int(3),not", "0"),
        ("int(3),odd", "1"),
        ("int(-3),odd", "1"),
        ("int(-4),even", "1"),
        ("str(hello),secure_memcmp(txn.x)", "1"),
        ("str(hellp),secure_memcmp(txn.x)", "0"),
        ("str(aBc),upper", "ABC"),
        ("int(-5),length", "2"),
    ],
)
def test_converters_give_what_haproxy_gives(expression: str, expected: str | None) -> None:
    assert evaluate(expression) == expected


def test_regsub_backreferences_and_flags() -> None:
    # The first match is "FOO" (no digits): replaced by itself.
    assert evaluate(r"str(FOObar12),regsub('(foo|bar)([0-9]+)?','\2\1',i)") == "FOObar12"
    assert evaluate(r"str(FOObar12),regsub('(foo|bar)([0-9]+)?','\2\1',ig)") == "FOO12bar"
    assert evaluate("str(a.b.c),regsub(\\.,-,g)") == "a-b-c"
    assert evaluate("str(a.b.c),regsub(\\.,-)") == "a-b.c"


def test_set_var_and_unset_var_converters_pass_the_value_on() -> None:
    req = request()
    sample = parse_sample("str(v),set-var(txn.copy),upper", "req")
    assert sample_values(sample, "req")(req, None) == ["V"]
    assert req.vars is not None and req.vars["txn.copy"] == "v"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("str(a),field", "invalid arg 1 in converter 'field' : expected type 'integer'"),
        ("str(a),field(1)", "invalid arg 2 in converter 'field' : missing arguments (got 1/2)"),
        ("str(a),field(0,:)", "Unexpected value 0 for index."),
        ("str(a),field(1,)", "Empty separators list."),
        ("str(a),word(a,:)", "failed to parse 'a' as type 'integer' at position 1."),
        ("str(a),add(x)", "expects an integer or a variable name."),
        ("str(a),bytes(x)", "failed to parse 'x' as type 'integer' at position 1."),
        (
            "str(a),concat(a,b,c,d)",
            "invalid arg 3 in converter 'concat' : expected ')' before ',d)'",
        ),
        ("str(a),strcmp", "missing variable name."),
        ("str(a),ipmask(33)", "failed to parse '33' as type 'IPv4 mask' at position 1."),
        ("str(a),ipmask(24,129)", "failed to parse '129' as type 'IPv6 mask' at position 2."),
        ("str(a),regsub(a,b,x)", "invalid regex flag 'x', only 'i' and 'g' are supported."),
        ("str(a),regsub(a(,b)", "error in regex 'a(' in arg 1 of conversion keyword 'regsub'"),
        ("str(a),json(foo)", "Unexpected input code type."),
        ("str(a),lower(1)", "invalid arg 1 in converter 'lower' : expected ')' before '1)'."),
        ("str(a),hex(1)", "expected ')' before '1)'."),
    ],
)
def test_bad_arguments_are_refused_with_haproxys_messages(expression: str, message: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_sample(expression, "req")
    assert message in str(caught.value)


def test_a_bracket_inside_arguments_does_not_end_the_expression() -> None:
    # configuration.txt's example: "%[query,regsub([?;&]*,'')]"
    fmt = parse_log_format("<%[query,regsub([?;&]*,'')]>", "req")
    req = request()
    req.uri = "/p?;&a=b"
    assert compile_format(fmt, "req")(req, None) == "<a=b>"
