"""`peers` sections, `localpeer` and `stick-table ... peers NAME` (configuration.txt 3.5):
what is read, and the messages `haproxy -c` 2.6.12 prints for the same input."""

from __future__ import annotations

import pytest

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Address, Config
from poise.config.model_peers import Peers

BACKEND = "backend b\n    stick-table type ip size 10 peers p store conn_cnt\n"


def parse_ok(text: str) -> Config:
    config, diagnostics = parse([("p.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    return config


def errors(text: str) -> list[str]:
    config, diagnostics = parse([("p.cfg", text)], {})
    assert config is None
    return [str(d) for d in diagnostics if d.severity is Severity.ERROR]


def section(config: Config) -> Peers:
    assert len(config.peers) == 1
    return config.peers[0]


def test_peer_lines_localpeer_and_a_table_that_names_the_section() -> None:
    config = parse_ok(
        "global\n    localpeer lb1\n"
        "peers p\n    peer lb1 127.0.0.1:10000\n    peer lb2 127.0.0.2:10001\n" + BACKEND
    )
    peers = section(config)
    assert config.global_.localpeer == "lb1"
    assert [p.name for p in peers.peers] == ["lb1", "lb2"]
    assert peers.listen("lb1") == Address("ipv4", "127.0.0.1", 10000)
    assert [p.name for p in peers.remotes("lb1")] == ["lb2"]
    assert peers.listen("other") is None  # HAProxy removes the section with a warning
    (table,) = config.tables
    assert (table.name, table.peers) == ("b", "p")


def test_bind_and_server_lines_and_tables_of_the_section() -> None:
    config = parse_ok(
        "peers p\n    bind 127.0.0.1:10000\n    server lb1\n    server lb2 127.0.0.2:10001\n"
        "    table t type string len 8 size 1k expire 30s store gpc0\n    disabled\n"
        "    enabled\n"
    )
    peers = section(config)
    assert peers.listen("lb1") == Address("ipv4", "127.0.0.1", 10000)
    assert peers.peer("lb1") is not None and peers.peer("lb1").address is None  # type: ignore[union-attr]
    assert not peers.disabled
    (table,) = config.tables
    assert (table.name, table.type, table.key_size, table.peers) == ("p/t", "string", 9, "p")


def test_disabled() -> None:
    assert section(parse_ok("peers p\n    peer a 127.0.0.1:1\n    disabled\n")).disabled


def test_a_good_section_says_nothing() -> None:
    _, diagnostics = parse([("p.cfg", "peers p\n    peer a 127.0.0.1:1\n")], {})
    assert diagnostics == []


def test_ignored_server_options_warn_as_haproxy() -> None:
    _, diagnostics = parse([("p.cfg", "peers p\n    peer a 127.0.0.1:1 check\n")], {})
    assert "p.cfg:2: warning: 'peer': 'peer a' : init_addr, resolvers, check and agent are " \
        "ignored for peers." in [str(d) for d in diagnostics]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("peers\n", "p.cfg:1: error: 'peers': missing name for peers section."),
        ("peers p q\n", "p.cfg:1: error: 'peers': 'peers' cannot handle unexpected argument 'q'."),
        (
            "peers p\npeers p\n",
            "p.cfg:2: error: 'peers': peers section 'p' has the same name as another peers "
            "section declared at p.cfg:1.",
        ),
        (
            "peers p\n    blah\n",
            "p.cfg:2: error: 'blah': unknown keyword 'blah' in 'peers' section",
        ),
        (
            "peers p\n    bind 127.0.0.1:1\n    peer a 127.0.0.1:2\n",
            'p.cfg:3: error: \'peer\': mixing "peer" and "bind" line is forbidden',
        ),
        (
            "peers p\n    peer a 127.0.0.1:2\n    bind 127.0.0.1:1\n",
            'p.cfg:3: error: \'bind\': mixing "peer" and "bind" line is forbidden',
        ),
        (
            "peers p\n    peer a 127.0.0.1:1\n    table t type ip size 10 peers x\n",
            "p.cfg:3: error: 'table': table: unknown argument 'peers'.",
        ),
        (
            "peers p\n    table t type ip\n",
            "p.cfg:2: error: 'table': table: missing size.",
        ),
        (
            "backend b\n    stick-table type ip size 10 peers zz\n",
            "p.cfg:2: error: 'stick-table': Proxy 'b': unable to find sync peers 'zz'.",
        ),
        (
            "peers p\n    peer a 127.0.0.1:1 ssl\n",
            "p.cfg:2: error: 'peer': 'peer a' : option 'ssl' is not implemented yet in poise",
        ),
        ("global\n    localpeer\n", "p.cfg:2: error: 'localpeer': expects a peer name"),
    ],
)
def test_bad_input_says_what_haproxy_says(text: str, message: str) -> None:
    assert message in errors(text)


def test_the_peers_tuning_is_a_warning_that_says_why() -> None:
    _, diagnostics = parse([("p.cfg", "global\n    tune.peers.max-updates-at-once 50\n")], {})
    assert [str(d) for d in diagnostics] == [
        "p.cfg:2: warning: 'tune.peers.max-updates-at-once': ignored: poise sends every "
        "pending peers update at once"
    ]
