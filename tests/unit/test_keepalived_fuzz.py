"""Fuzzing keepalived.conf (issue 11): random trees of Keepalived's own keywords (from
config/keepalived_keywords.py) with hostile words (braces alone or glued, quotes and
escapes, line continuations, binary bytes, very long words) and `include` lines between
files, run through the lexer and the parser. Whatever the input, nothing but diagnostics
comes out, each naming a file read and a line in it, each printed on one line.

CI runs a fixed set of examples (derandomized, so never flaky);
`POISE_FUZZ_EXAMPLES=20000 pytest tests/unit/test_keepalived_fuzz.py` explores at random.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from poise.config import keepalived_keywords as kw
from poise.config import keepalived_lvs_keywords as lvs
from poise.config.diagnostics import Diagnostic
from poise.config.keepalived import parse
from poise.config.keepalived_lexer import INCLUDE_KEYWORDS, read_tree
from tests.unit.fuzzing import fuzz_settings
from tests.unit.keepalived_support import FakeSource

FUZZ = fuzz_settings(60)
MAIN = "/etc/keepalived/keepalived.conf"
OTHERS = ["/etc/keepalived/a.conf", "/etc/keepalived/conf.d/b.conf", "/etc/keepalived/c{1}.conf"]

_BLOCKS = [
    *sorted(kw.TOP | kw.TOP_UNIMPLEMENTED | kw.TOP_LVS),
    *sorted(lvs.CHECKERS | lvs.CHECKERS_UNIMPLEMENTED),
    "real_server",
    "url",
    *("authentication", "virtual_ipaddress", "track_script", "track_interface"),
    *("unicast_peer", "group", "virtual_routes", "virtual_rules", "virtual_ipaddress_excluded"),
]
_KEYWORDS = sorted(
    kw.GLOBAL
    | kw.GLOBAL_MAIL
    | kw.GLOBAL_UNIMPLEMENTED
    | kw.SCRIPT
    | kw.INSTANCE
    | kw.INSTANCE_UNIMPLEMENTED
    | kw.AUTHENTICATION
    | kw.SYNC_GROUP
    | kw.VIP_OPTIONS
    | lvs.VIRTUAL_SERVER
    | lvs.VIRTUAL_SERVER_UNIMPLEMENTED
    | lvs.REAL_SERVER
    | lvs.CHECKER_COMMON
    | lvs.MISC_COMMON
    | lvs.URL
    | frozenset().union(*lvs.CHECKER_OWN.values())
)
_VALUES = [
    "VI_1", "VI_2", "chk", "eth0", "lo", "MASTER", "BACKUP", "PASS", "AH", "1", "0", "-1",
    "255", "256", "51", "100", "1.5", "0.001", "nan", "inf", "1e999", "99999999999999999999",
    "198.51.100.10", "198.51.100.10/24", "198.51.100.10/33", "198.51.100.10/", "/24",
    "224.0.0.18", "::1", "fe80::1/64", "dev", "label", "brd", "scope", "link", "weight",
    "reverse", "on", "off", "yes", "true", "/bin/true", '"/bin/true arg"', "'a b'", "",
    "\"unterminated", "'", '"', "\\", "\\x", "\\x41", "\\101", "\\c", '"\\x"', '"\\c"',
    '"a\\', "{", "}", "{{", "}}", "{{ x }}", "{x}", "x{", "}x", "#", "!", "# comment",
    # routes and rules
    "src", "to", "from", "via", "table", "metric", "default", "blackhole", "10.0.0.0/8",
    "0.0.0.0/0", "main", "local", "253", "4294967296", "proto", "type", "unicast", "onlink",
    # virtual servers
    "group", "fwmark", "80", "65536", "NAT", "DR", "TUN", "rr", "wlc", "dh", "TCP", "UDP",
    "198.51.100.1-9", "198.51.100.0/30", "2001:db8::1-f", "ffffffffffffffffffffffffffffffff",
    "200-299", "299-200",
]  # fmt: skip
_HOSTILE = st.one_of(
    st.text(max_size=10),
    st.binary(max_size=10).map(lambda b: b.decode("utf-8", errors="replace")),
    st.sampled_from(["w" * 300, "w" * 8000]),
    st.sampled_from(["\x00", "\x1b[2J", "\r", "\u202e", "\udcff", "\ud800x", "\\"]),
)
WORD = st.one_of(st.sampled_from(_VALUES), st.sampled_from(_VALUES), _HOSTILE)


_INCLUDE = st.tuples(
    st.sampled_from(sorted(INCLUDE_KEYWORDS)),
    st.sampled_from(
        [
            "a.conf",
            "conf.d/*.conf",
            "/etc/keepalived/{a,conf.d/b}.conf",
            "c{1}.conf",
            "keepalived.conf",
            "missing.conf",
            "*.none",
            "{",
            "{a,",
            "[",
            "",
            "a.conf b.conf",
        ]
    ),
).map(lambda pair: f"{pair[0]} {pair[1]}")
# Strategies built once: building them inside each draw costs more than the parsing.
# What an unrendered template leaves where a keyword or an item should be.
_TEMPLATE = st.sampled_from(["{", "}", "{{ vip }}", "{{", "}}", "{% if x %}", "{# c #}"])
_KEYWORD = st.one_of(
    st.sampled_from(_BLOCKS), st.sampled_from(_KEYWORDS), _HOSTILE, _INCLUDE, _TEMPLATE
)
_WORDS = st.lists(WORD, max_size=4)
_STYLE = st.sampled_from(["same", "next", "one", "unclosed", "extra"])
_COUNT = st.integers(0, 4)


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> list[str]:
    """One statement: a keyword with words, maybe a block of statements, with braces
    where Keepalived allows them (same line, next line, items on one line) or not."""
    words = " ".join([draw(_KEYWORD), *draw(_WORDS)])
    if depth >= 2 or not draw(st.booleans()):
        return [words]
    children = [line for _ in range(draw(_COUNT)) for line in draw(_BLOCK[depth + 1])]
    style = draw(_STYLE)
    if style == "same":
        return [f"{words} {{", *children, "}"]
    if style == "next":
        return [words, "{", *children, "}"]
    if style == "one":
        return [f"{words} {{ {' '.join(children)} }}"]
    if style == "unclosed":
        return [f"{words} {{", *children]
    return [f"{words} {{", *children, "}", "}"]


_BLOCK = [block(0), block(1), block(2)]


@st.composite
def conf_text(draw: st.DrawFn) -> str:
    lines = [line for _ in range(draw(_COUNT)) for line in draw(_BLOCK[0])]
    if draw(st.booleans()) and lines:  # a line continued with a backslash
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] += "\\"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["\n", "", "\\"]))


@st.composite
def file_set(draw: st.DrawFn) -> dict[str, str]:
    files = {MAIN: draw(conf_text())}
    for path in OTHERS:
        if draw(st.booleans()):
            files[path] = draw(conf_text())
    return files


def check_diagnostics(diagnostics: list[Diagnostic], files: dict[str, str]) -> None:
    for diagnostic in diagnostics:
        text = str(diagnostic)
        assert diagnostic.where.file in files, text
        last = files[diagnostic.where.file].count("\n") + 1
        assert 1 <= diagnostic.where.line <= last, text
        assert text.startswith(f"{diagnostic.where}: "), text
        assert text.isprintable(), text


@FUZZ
@given(file_set())
def test_the_lexer_takes_anything(files: dict[str, str]) -> None:
    _, diagnostics = read_tree(MAIN, FakeSource(files))
    check_diagnostics(diagnostics, files)


@FUZZ
@given(file_set())
def test_the_parser_takes_anything_and_only_reports(files: dict[str, str]) -> None:
    config, diagnostics = parse(MAIN, FakeSource(files))
    check_diagnostics(diagnostics, files)
    if config is None:
        assert any(d.severity.value == "error" for d in diagnostics)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_a_file(data: bytes) -> None:
    files = {MAIN: data.decode("utf-8", errors="replace")}
    _, diagnostics = parse(MAIN, FakeSource(files))
    check_diagnostics(diagnostics, files)


_SEED = """\
global_defs {
    router_id lb1
}
vrrp_script chk {
    script "/bin/true"
    interval 1
    weight 2
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 101
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        198.51.100.10/24
    }
    track_script {
        chk
    }
}
vrrp_sync_group G {
    group {
        VI_1
    }
}
"""


@FUZZ
@given(st.data())
def test_a_valid_file_mutated_line_by_line(data: st.DataObject) -> None:
    lines = _SEED.splitlines()
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(lines) - 1)) if lines else 0
        action = data.draw(st.sampled_from(["insert", "replace", "drop", "word"]))
        if action == "insert" or not lines:
            lines.insert(at, data.draw(st.one_of(_TEMPLATE, WORD)))
        elif action == "replace":
            lines[at] = " ".join(data.draw(st.lists(WORD, min_size=1, max_size=4)))
        elif action == "drop":
            del lines[at]
        else:
            lines[at] += " " + data.draw(WORD)
    files = {MAIN: "\n".join(lines) + "\n"}
    _, diagnostics = parse(MAIN, FakeSource(files))
    check_diagnostics(diagnostics, files)


_LIST_BLOCK = st.sampled_from(
    [
        *("virtual_ipaddress", "unicast_peer", "track_interface", "track_script"),
        *("authentication", "virtual_routes", "virtual_rules", "virtual_ipaddress_excluded"),
    ]
)
_ITEM = st.one_of(_TEMPLATE, WORD, st.sampled_from(["198.51.100.10/24", "eth0", "chk"]))


@FUZZ
@given(_LIST_BLOCK, st.lists(st.lists(_ITEM, min_size=1, max_size=3), max_size=5))
def test_list_blocks_take_anything(block: str, items: list[list[str]]) -> None:
    # Where a template left `{{ x }}` or a lone `{` (issue 11.7: an IndexError once).
    body = "\n".join("        " + " ".join(item) for item in items)
    text = (
        'vrrp_script chk {\n    script "/bin/true"\n}\nvrrp_instance VI_1 {\n'
        "    interface eth0\n    virtual_router_id 51\n"
        f"    {block} {{\n{body}\n    }}\n}}\nvrrp_sync_group G {{\n    group {{\n{body}\n"
        "    }\n}\n"
    )
    files = {MAIN: text}
    _, diagnostics = parse(MAIN, FakeSource(files))
    check_diagnostics(diagnostics, files)
