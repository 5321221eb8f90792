"""Fuzzing haproxy.cfg (issue 11): random files made of HAProxy's own keywords (from the
tables in config/keywords.py) and of hostile words (quotes, escapes, `${ENV}`, braces,
binary bytes, very long words), sections in any order, run through the lexer, the parser
and the link pass. Whatever the input, nothing but diagnostics comes out, each naming a
file given and a line in it, each printed on one line.

CI runs a fixed set of examples (derandomized, so never flaky);
`POISE_FUZZ_EXAMPLES=20000 pytest tests/unit/test_config_fuzz.py` explores at random.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from poise.config import keywords, sample_names, samples
from poise.config.diagnostics import Diagnostic
from poise.config.haproxy import parse
from poise.config.lexer import lex
from tests.unit.fuzzing import fuzz_settings

FUZZ = fuzz_settings(60)
ENV = {"PORT": "8080", "HOST": "127.0.0.1", "EMPTY": "", "LIST": "a b  c", "BAD": '"\\x'}

_KEYWORDS = sorted(
    set(keywords.GLOBAL_KEYWORDS)
    | set(keywords.PROXY_MATRIX)
    | keywords.ALL_SECTIONS
    | {"no option", "default option", "acl", "use_backend", "http-request", "tcp-request"}
)
_OPTIONS = sorted(set(keywords.BIND_OPTIONS) | set(keywords.SERVER_OPTIONS))
_VALUES = sorted(
    set(keywords.BALANCE_ALGORITHMS)
    | set(keywords.HASH_FUNCTIONS)
    | set(keywords.LOG_FACILITIES)
    | set(keywords.LOG_LEVELS)
    | set(keywords.LOG_FORMATS)
    | keywords.OPTION_NAMES
    | {"http", "tcp", "health", "if", "unless", "!", "or", "||", "TRUE", "FALSE"}
)
_ODD = [
    # addresses
    ":80", "*:443", "127.0.0.1:8080", "[::1]:80", ":::80", "1.2.3.4:1-5", "10.0.0.1:0",
    "unix@/run/x.sock", "/run/x.sock", "ipv4@", "ipv6@::1", "fd@3", "sockpair@4", "abns@x",
    ":${PORT}", "${HOST}:${PORT}", ":${UNSET}", "$HOST:$PORT", "${", "$", "127.0.0.1:+1",
    "localhost", "_http._tcp.example.com", "a..b", "[", "]", ":", "-", "0", "-1",
    "99999999999999999999", "1e9", "10s", "1m", "5ms", "1d", "0x10", "100k", "1g", "nan",
    # samples, ACLs and log formats
    "{", "}", "{{", "}}", "hdr(host)", "req.hdr(x),lower", "path_beg", "-i", "-m", "-f",
    "%[src]", "%{+Q}o", "%ci:%cp", "%[", "%{", "%", "str(", "var(txn.x)", "set-var(txn.x)",
    "int(1)", "),", "(", ")", ",", "base64", "-m beg", "ssl_fc", "src", "dst_port",
    # files
    "/etc/haproxy/errors/503.http", "/nonexistent", "@system-ca", "crt.pem", "",
    # protocol words
    "ssl", "crt", "check", "inter", "rise", "fall", "weight", "cookie", "backup", "verify",
    "none", "required", "alpn", "h2,http/1.1", "TLSv1.2", "TLSv1.3", "SSLv3", "deny",
    "allow", "redirect", "location", "code", "301", "prefix", "scheme", "https", "set-header",
    "del-header", "return", "status", "200", "content-type", "text/plain", "string", "lf-file",
]  # fmt: skip
_HOSTILE = st.one_of(
    st.sampled_from(
        [
            '"',
            "'",
            "\\",
            "\\x",
            "\\x4",
            "\\x41",
            "\\xZZ",
            "\\n",
            "\\ ",
            "\\#",
            "#",
            "# x",
            '"${PORT}"',
            '"${UNSET}"',
            '"${LIST[*]}"',
            '"${EMPTY[*]}"',
            '"${UNSET-d}"',
            '"${BAD}"',
            '"$1"',
            '"${1}"',
            '"${PORT"',
            '"${PORT:x}"',
            '"${.LINE}"',
            '"${.FILE}"',
            '"${.SECTION}"',
            "'$PORT'",
            '"a b"',
            "'a b'",
            '""',
            "''",
            '"\\"',
            "\x00",
            "\x1b[31m",
            "\r",
            "\x7f",
            "\u202e",
            "\ufeff",
            "é",
            "\udcff",
            "\ud800x",
            "\U0001f600",
            "\t",
        ]
    ),
    st.text(max_size=12),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", errors="replace")),
    st.sampled_from(["x" * 300, "x" * 8000, "${PORT}" * 500]),
)
WORD = st.one_of(
    st.sampled_from(_OPTIONS),
    st.sampled_from(_VALUES),
    st.sampled_from(_ODD),
    st.integers(-(2**64), 2**64).map(str),
    _HOSTILE,
)


_FETCHES = sorted(samples.FETCHES) + sorted(sample_names.FETCHES)[:80]
_CONVERTERS = [*sorted(samples.CONVERTERS), "bogus", "lower(1)", "map(x)", ""]
# Strategies are built once, here: building them inside each draw costs more than parsing.
_FETCH = st.sampled_from(_FETCHES)
_FETCH_ARGS = st.lists(st.sampled_from(["host", "1", "-1", "x,y", "", ")", "("]), max_size=3)
_CLOSE = st.sampled_from([")", "", "))"])
_CONVERTER_CHAIN = st.lists(st.sampled_from(_CONVERTERS), max_size=3)


@st.composite
def _sample(draw: st.DrawFn) -> str:
    """A sample expression: a fetch, maybe with arguments, and converters."""
    text = draw(_FETCH)
    if draw(st.booleans()):
        text += "(" + ",".join(draw(_FETCH_ARGS)) + draw(_CLOSE)
    for converter in draw(_CONVERTER_CHAIN):
        text += "," + converter
    return text


SAMPLE = _sample()
_TERM = st.one_of(
    st.sampled_from(["a", "b", "!a", "TRUE", "FALSE", "HTTP", "or", "||", "!", "{", "}"]),
    SAMPLE.map(lambda text: f"{{ {text} x }}"),
    SAMPLE.map(lambda text: f"{{ {text} -m beg -i /x }}"),
    SAMPLE.map(lambda text: f"{{ {text} }}"),
)
CONDITION = st.tuples(
    st.sampled_from(["if", "unless", "if !", "if {", "unless ! {"]),
    st.lists(_TERM, min_size=1, max_size=4),
).map(lambda pair: [pair[0], *pair[1]])
_COUNT = st.integers(0, 8)
_BIND_OPTION = st.sampled_from(sorted(keywords.BIND_OPTIONS))
_SERVER_OPTION = st.sampled_from(sorted(keywords.SERVER_OPTIONS))


@st.composite
def _options(draw: st.DrawFn, head: str, table: dict[str, int]) -> str:
    words = [head]
    choose = _BIND_OPTION if table is keywords.BIND_OPTIONS else _SERVER_OPTION
    for _ in range(draw(_COUNT)):
        option = draw(choose)
        words.append(option)
        arity = table[option]
        words.extend(draw(WORD) for _ in range(3 if arity < 0 else arity))
    return " ".join(words)


_KIND = st.sampled_from(["bind", "server", "acl", "http", "log-format", "other"])
_ADDRESS = st.sampled_from(_ODD[:30])
_SERVER_HEAD = st.sampled_from(["server s1", "default-server", "server-template t 1-3"])
_ACL_NAME = st.sampled_from(["a", "b", "a-b", "", "!x"])
_ACL_FLAGS = st.sampled_from([[], ["-i"], ["-m", "beg"], ["-m", "reg"], ["-f", "/x"]])
_FEW_WORDS = st.lists(WORD, max_size=3)
_RULE = st.sampled_from(["http-request", "http-response", "tcp-request content"])
_ACTION = st.sampled_from(
    sorted(sample_names.HTTP_REQUEST_ACTIONS | sample_names.HTTP_RESPONSE_ACTIONS)
)
_ACTION_ARGS = st.lists(st.one_of(WORD, SAMPLE.map(lambda t: f"%[{t}]")), max_size=4)
_TAIL: st.SearchStrategy[list[str]] = st.one_of(st.just([]), CONDITION)
_LOG_FORMAT = st.lists(
    st.one_of(
        st.sampled_from(sorted(sample_names.LOG_FORMAT_VARIABLES)).map(lambda v: "%" + v),
        st.sampled_from(["%{+Q}", "%{-Q}", "%{+X}", "%{", "%[", "%%", "%", " ", "\\"]),
        SAMPLE.map(lambda t: f"%[{t}]"),
    ),
    max_size=8,
)
_OTHER = st.sampled_from(
    [
        "    mode http",
        "    mode tcp",
        "    balance hdr(host)",
        "    timeout client 1s",
        "    option httpchk GET /",
        "    stats uri /s",
        "    http-check expect status 200",
    ]
)


@st.composite
def _structured(draw: st.DrawFn) -> str:
    """Lines shaped as HAProxy expects them, so the parser goes past the first word."""
    kind = draw(_KIND)
    address = draw(_ADDRESS)
    if kind == "bind":
        return draw(_options(f"    bind {address}", keywords.BIND_OPTIONS))
    if kind == "server":
        head = draw(_SERVER_HEAD)
        head += "" if head == "default-server" else f" {address}"
        return draw(_options(f"    {head}", keywords.SERVER_OPTIONS))
    if kind == "acl":
        flags, values = draw(_ACL_FLAGS), draw(_FEW_WORDS)
        return " ".join(["    acl", draw(_ACL_NAME), draw(SAMPLE), *flags, *values])
    if kind == "http":
        words = [f"    {draw(_RULE)}", draw(_ACTION), *draw(_ACTION_ARGS), *draw(_TAIL)]
        return " ".join(words)
    if kind == "log-format":
        return '    log-format "' + "".join(draw(_LOG_FORMAT)) + '"'
    return draw(_OTHER)


_SECTIONS = ["global", "defaults", "frontend", "backend", "listen"] * 3 + ["resolvers", "peers"]
_NAMES = ["", " fe", " be", " l", " d", " d from d", " x from", " x y", " ${HOST}", ' "a b"', " é"]
STRUCTURED = _structured()
_KEYWORD = st.one_of(st.sampled_from(_KEYWORDS), _HOSTILE)
_NAME = st.sampled_from(_NAMES)
_ARGS = st.lists(st.one_of(WORD, WORD, _HOSTILE), max_size=10)
_INDENT = st.sampled_from(["    ", "\t", "", "  \t "])


@st.composite
def _statement(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 2)):
        return draw(STRUCTURED)
    keyword = draw(_KEYWORD)
    if keyword in keywords.ALL_SECTIONS:
        return keyword + draw(_NAME)
    return draw(_INDENT) + " ".join([keyword, *draw(_ARGS)])


STATEMENT = _statement()
SECTION = st.tuples(st.sampled_from(_SECTIONS), _NAME, st.lists(STATEMENT, max_size=6)).map(
    lambda parts: [parts[0] + parts[1], *parts[2]]
)


@st.composite
def _config_text(draw: st.DrawFn) -> str:
    """Sections in any order (proxies named so that references may resolve), then the
    same text with random line endings and maybe no final newline."""
    lines = [line for part in draw(st.lists(SECTION, max_size=5)) for line in part]
    newline = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    ending = draw(st.sampled_from(["\n", "\n", ""]))
    return newline.join(lines) + ending


CONFIG_TEXT = _config_text()


def read_file(path: str) -> bytes:
    """The files a configuration names: some missing, some odd."""
    if "nonexistent" in path or len(path) % 3 == 0:
        raise FileNotFoundError(2, "No such file or directory", path)
    return b"HTTP/1.0 503 x\r\n\r\nbody\n" if path.endswith(".http") else b"a\n\x00b\nc"


def check_diagnostics(diagnostics: list[Diagnostic], files: dict[str, str]) -> None:
    for diagnostic in diagnostics:
        text = str(diagnostic)
        assert diagnostic.where.file in files, text
        last = files[diagnostic.where.file].count("\n") + 1
        assert 1 <= diagnostic.where.line <= last, text
        assert text.startswith(f"{diagnostic.where}: "), text
        assert text.isprintable(), text


@FUZZ
@given(CONFIG_TEXT)
def test_the_lexer_takes_anything(text: str) -> None:
    lines, diagnostics = lex("f.cfg", text, ENV, keywords.ALL_SECTIONS)
    check_diagnostics(diagnostics, {"f.cfg": text})
    assert all(1 <= line.where.line <= text.count("\n") + 1 for line in lines)


@FUZZ
@given(st.lists(CONFIG_TEXT, min_size=1, max_size=2))
def test_parse_and_link_take_any_files_and_only_report(texts: list[str]) -> None:
    files = {f"f{index}.cfg": text for index, text in enumerate(texts)}
    config, diagnostics = parse(list(files.items()), ENV, read_file)
    check_diagnostics(diagnostics, files)
    if config is None:
        assert any(d.severity.value == "error" for d in diagnostics)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_a_file(data: bytes) -> None:
    # As load.py reads a file: bytes decoded with replacement.
    text = data.decode("utf-8", errors="replace")
    _, diagnostics = parse([("b.cfg", text)], ENV, read_file)
    check_diagnostics(diagnostics, {"b.cfg": text})


_SEEDED = (
    "global\n    maxconn 100\ndefaults\n    mode http\n    timeout client 1s\n"
    "    timeout server 1s\n    timeout connect 1s\nfrontend fe\n    bind :80\n"
    "    acl a path_beg /x\n    use_backend be if a\n    default_backend be\n"
    "backend be\n    balance roundrobin\n    server s1 127.0.0.1:8080 check\n"
)


@FUZZ
@given(st.data())
def test_a_valid_file_mutated_line_by_line(data: st.DataObject) -> None:
    # Start from a file that links, then replace, insert or drop lines: the link pass
    # sees names that nearly resolve.
    lines = _SEEDED.splitlines()
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(lines)))
        action = data.draw(st.sampled_from(["insert", "replace", "drop", "swap"]))
        if action == "insert" or not lines:
            lines.insert(at, data.draw(STATEMENT))
        elif action == "replace":
            lines[min(at, len(lines) - 1)] = data.draw(STATEMENT)
        elif action == "drop":
            del lines[min(at, len(lines) - 1)]
        else:
            other = data.draw(st.integers(0, len(lines) - 1))
            here = min(at, len(lines) - 1)
            lines[here], lines[other] = lines[other], lines[here]
    text = "\n".join(lines) + "\n"
    _, diagnostics = parse([("m.cfg", text)], ENV, read_file)
    check_diagnostics(diagnostics, {"m.cfg": text})
