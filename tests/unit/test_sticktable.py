"""Stick tables without sockets (core/sticktable.py, core/sticktrack.py, config parsing):
HAProxy's rate arithmetic on an explicit clock, expiry, eviction of the least recently
touched entries when full (never more than `size`), keys cast to the table's type, and
the configuration's errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.haproxy import parse
from poise.config.haproxy_stick import parse_stick_table
from poise.config.model import Where
from poise.config.model_stick import StickTable
from poise.core.sticktable import CLOCK_BASE, FreqCtr, Table
from poise.core.values import parse_ip

W = Where("t.cfg", 1)


class Clock:
    def __init__(self) -> None:
        self.now = CLOCK_BASE

    def __call__(self) -> int:
        return self.now


def table(text: str, clock: Clock | None = None) -> Table:
    return Table(parse_stick_table("t", text.split(), W), clock or Clock())


def test_a_rate_is_haproxys_current_and_previous_period_interpolated() -> None:
    ctr, period, now = FreqCtr(), 10_000, CLOCK_BASE + 1
    for _ in range(8):
        ctr.add(now, period)
    assert ctr.curr_tick == now - 1  # HAProxy keeps the tick even (its lock bit)
    assert ctr.read(now, period) == 8
    # A quarter into the next period: 3/4 of the 8 before, plus the 2 new ones.
    later = ctr.curr_tick + period + period // 4
    ctr.add(later, period, 2)
    assert (ctr.prev_ctr, ctr.curr_ctr) == (8, 2)
    assert ctr.read(later, period) == (8 * (period - period // 4) + 2 * period) // period
    # Two periods without events: nothing is left.
    assert ctr.read(later + 2 * period, period) == 0


def test_a_low_rate_does_not_flap() -> None:
    """freq_ctr_total's correction: one event in the past period reads 1, not a fraction."""
    ctr, period = FreqCtr(), 1000
    ctr.add(CLOCK_BASE, period)
    assert ctr.read(CLOCK_BASE + period + 900, period) == 1


@given(st.lists(st.integers(0, 5000), max_size=60))
def test_a_rate_never_exceeds_the_events_of_two_periods(gaps: list[int]) -> None:
    ctr, period, now = FreqCtr(), 1000, CLOCK_BASE
    times = []
    for gap in gaps:
        now += gap
        ctr.add(now, period)
        times.append(now)
        recent = sum(1 for t in times if now - t < 2 * period)
        assert 0 <= ctr.read(now, period) <= recent


def test_a_full_table_evicts_the_least_recently_touched_and_never_grows() -> None:
    clock = Clock()
    t = table("type integer size 4 store gpc0", clock)
    entries = []
    for key in range(4):
        clock.now += 1
        entry = t.get(key)
        assert entry is not None
        entries.append(entry)
    t.touch(entries[0])  # 0 is now the most recent: 1 goes first
    entries[2].refs = 1  # tracked: never evicted
    for key in range(10, 20):
        assert t.get(key) is not None
        assert len(t.entries) <= 4
    assert 0 not in t.entries or 1 not in t.entries
    assert 2 in t.entries and 1 not in t.entries


def test_nopurge_refuses_new_keys_when_full() -> None:
    t = table("type integer size 2 nopurge")
    assert t.get(1) is not None and t.get(2) is not None
    assert t.get(3) is None and sorted(t.entries) == [1, 2]


def test_entries_expire_unless_tracked() -> None:
    clock = Clock()
    t = table("type ip size 10 expire 30s store conn_cur", clock)
    a, b = t.get(1), t.get(2)
    assert a is not None and b is not None
    b.refs = 1
    clock.now += 30_000
    assert t.lookup(1) is None
    assert t.lookup(2) is b
    assert [e.key for e in t.live()] == [2]


def test_keys_are_cast_to_the_tables_type() -> None:
    ip, ipv6 = table("type ip size 1"), table("type ipv6 size 1")
    v4, v6 = parse_ip("10.0.0.1"), parse_ip("2001:db8::1")
    assert v4 is not None and v6 is not None
    assert ip.key(v4) == v4[1] and ip.key(v6) is None
    assert ip.key(parse_ip("::ffff:10.0.0.1") or (0, 0)) == v4[1]
    assert ipv6.key(v4) == (0xFFFF << 32) | v4[1]
    assert table("type integer size 1").key("-1") == 0xFFFF_FFFF
    assert table("type string len 4 size 1").key("abcdef") == "abcd"
    assert table("type string size 1").key("x" * 40) == "x" * 31
    assert table("type binary len 4 size 1").key("ab") == b"ab\0\0"


def test_the_store_is_kept_in_haproxys_order_with_periods() -> None:
    parsed = parse_stick_table(
        "fe",
        ["type", "ip", "size", "1m", "expire", "30s", "store", "http_req_rate(10s),conn_cur,gpc0"],
        W,
    )
    assert parsed == StickTable(
        "fe", "ip", 1 << 20, W, 4, 30_000, False,
        (("gpc0", 0), ("conn_cur", 0), ("http_req_rate", 10_000)),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("type ip", "stick-table: missing size."),
        ("size 10", "stick-table: missing type."),
        ("type ipv4 size 1", "stick-table: unknown type 'ipv4'."),
        ("type ip size 1 store http_req_rate", "missing argument to store option 'http_req_rate'"),
        ("type ip size 1 store gpc0(1s)", "unexpected argument to store option 'gpc0'"),
        ("type ip size 1 store nope", "unknown store option 'nope'"),
        ("type ip size 1 store gpc(2)", "'gpc' is not implemented yet"),
        ("type ip size 1 peers", "stick-table: missing argument after 'peers'."),
        ("type ip size 1 expire", "missing argument after 'expire'"),
        ("type ip size 1 bogus", "unknown argument 'bogus'"),
        ("type ip size 1x", "unexpected character 'x'"),
    ],
)
def test_bad_stick_tables_say_why(args: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_stick_table("t", args.split(), W)
    assert message in str(caught.value)


CONFIG = """\
frontend fe
    mode http
    bind :80
    stick-table type ip size 10 store http_req_rate(10s)
{line}
    default_backend be
backend be
    mode http
    server s 10.0.0.1:80
backend other
    mode http
"""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    http-request track-sc0 src table nope", "unable to find table 'nope'"),
        ("    http-request track-sc1 src table be", "no table in proxy 'be'"),
        ("    http-request deny if { src_conn_cur(other) gt 1 }", "no table in proxy 'other'"),
        ("    http-request deny if { sc_http_req_rate(3) gt 1 }", "invalid stick counter '3'"),
        ("    http-request track-sc0", "expects a sample fetch"),
        ("    http-request track-sc0 res.hdr(x)", "none of which is available here"),
        ("    stick-table type ip size 1", "only one stick-table per proxy"),
        ("    http-response sc-set-gpt0(0) path", "none of which is available here"),
        ("    http-request sc-set-gpt0(0)", "expects an integer or a sample expression"),
        (
            "    http-request deny if { src,table_gpc0(nope) gt 1 }",
            "unable to find table 'nope' referenced in converter 'table_gpc0'",
        ),
        ("    http-request track-sc0 src table other", "no table in proxy 'other'"),
    ],
)
def test_bad_tracking_says_why(line: str, message: str) -> None:
    config, found = parse([("t.cfg", CONFIG.format(line=line))], {})
    assert config is None
    assert any(message in str(d) and "t.cfg:5" in str(d) for d in found), found


def test_src_fetches_read_the_table_of_the_proxy_they_are_used_in() -> None:
    line = "    http-request deny if { src_http_req_rate gt 1 } || { table_cnt gt 5 }"
    config, found = parse([("t.cfg", CONFIG.format(line=line))], {})
    assert config is not None, found
    rule = config.proxies[0].http_request_rules[0]
    assert rule.condition is not None
    samples = [term.acl.tests[0].sample for suite in rule.condition.suites for term in suite]
    assert [(s.fetch, s.args) for s in samples if s] == [
        ("src_http_req_rate", ("fe",)),
        ("table_cnt", ("fe",)),
    ]


def test_stick_rules_name_a_table_and_add_the_servers_data_to_it() -> None:
    text = CONFIG.format(line="") + (
        "    stick-table type ip size 10 store gpc0\n"
        "    stick on src if { src 10.0.0.0/8 }\n"
        "    stick store-response res.hdr(x-id) table fe\n"
    )
    text = text.replace("backend other\n    mode http\n", "")
    config, found = parse([("t.cfg", text.replace("backend be", "backend other", 0))], {})
    assert config is not None, found
    backend = config.proxy("be")
    assert backend is not None
    assert [(r.kind, r.key.fetch, r.table) for r in backend.stick_rules] == [
        ("on", "src", "be"),
        ("store-response", "res.hdr", "fe"),
    ]
    stores = {t.name: [name for name, _ in t.store] for t in config.tables}
    assert stores == {
        "fe": ["server_id", "http_req_rate", "server_key"],
        "be": ["server_id", "gpc0", "server_key"],
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "    stick on src table nope",
            "unable to find table 'nope' referenced in rule 'stick on'",
        ),
        ("    stick match", "'stick match' expects a fetch method"),
        ("    stick store-request res.hdr(x)", "none of which is available here"),
        ("    stick on src foo", "unexpected argument 'foo'"),
    ],
)
def test_bad_stick_rules_say_why(line: str, message: str) -> None:
    text = CONFIG.format(line="").replace("backend other\n", f"backend other\n{line}\n")
    config, found = parse([("t.cfg", text)], {})
    assert config is None
    assert any(message in str(d) for d in found), found


def test_a_full_table_takes_new_keys_without_walking_every_entry() -> None:
    """Expiry and eviction look at the oldest entries only: 30,000 new keys into a full
    table of 10,000 stay quick (walking the table for each would take minutes)."""
    clock = Clock()
    t = table("type integer size 10000 expire 1m store http_req_rate(10s)", clock)
    for key in range(30_000):
        clock.now += 1
        entry = t.get(key)
        assert entry is not None
        t.add(entry, "http_req")
    assert len(t.entries) <= 10_000 and t.used() == len(t.entries)
    assert 29_999 in t.entries and 0 not in t.entries


TABLE_WORDS = [
    "ti", "ts", "tb", "t6", "tn", "nope", "key", "data.gpc0", "data.http_req_rate",
    "data.conn_cur", "data.server_id", "data.nope", "data.", "eq", "ne", "gt", "xx", "0", "-1",
    "4294967296", "99999999999999999999", "10.0.0.1", "::1", "abc", "a b", "=", "\\", "",
    "ffff", "é", "\x00",
]  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> None:
    from poise.core import sticktable

    sticktable.install(
        [
            parse_stick_table(name, args.split(), W)
            for name, args in (
                ("ti", "type ip size 5 expire 1s store gpc0,http_req_rate(1s),conn_cur"),
                ("t6", "type ipv6 size 5 store gpc0,server_id"),
                ("tn", "type integer size 5 nopurge store gpc0"),
                ("ts", "type string len 4 size 5 store http_req_rate(10s)"),
                ("tb", "type binary len 4 size 5 store gpc0"),
            )
        ],
        Clock(),
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["show table", "set table", "clear table"]),
            st.lists(st.one_of(st.sampled_from(TABLE_WORDS), st.text(max_size=6)), max_size=9),
            st.sampled_from(["user", "operator", "admin"]),
        ),
        max_size=8,
    )
)
def test_table_commands_answer_any_words_without_an_exception(
    tables: None, lines: list[tuple[str, list[str], str]]
) -> None:
    from poise.admin.commands import LEVELS, Session
    from poise.admin.commands_base import Request
    from poise.admin.commands_table import cmd_clear_table, cmd_set_table, cmd_show_table
    from poise.core.sticktable import TABLES

    run = {"show table": cmd_show_table, "set table": cmd_set_table, "clear table": cmd_clear_table}
    for name, words, level in lines:
        req = Request(tuple(name.split() + words), Session(LEVELS[level]), None)  # type: ignore[arg-type]
        answer = run[name](req)
        assert answer.text == "" or answer.text.endswith("\n")
    assert all(len(t.entries) <= t.size for t in TABLES.values())
