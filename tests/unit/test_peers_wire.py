"""The peers protocol's bytes (core/peers/wire.py) and a session fed byte by byte
(core/peers/session.py): HAProxy 2.6's varint, its frames, definitions and updates, and
what a session does with garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config.model_stick import StickTable
from poise.config.where import Where
from poise.core.peers import wire
from poise.core.peers.session import Closed, Session, check_hello
from poise.core.sticktable import CLOCK_BASE, FreqCtr, Table

W = Where("t.cfg", 1)
NOW = CLOCK_BASE + 1_000_000


@pytest.mark.parametrize(
    ("number", "encoded"),
    [
        (0, b"\x00"),
        (239, b"\xef"),
        (240, b"\xf0\x00"),
        (2287, b"\xff\x7f"),
        (2288, b"\xf0\x80\x00"),
        (264432, b"\xf0\x80\x80\x00"),
    ],
)
def test_varint_is_haproxys(number: int, encoded: bytes) -> None:
    assert wire.varint(number) == encoded
    assert wire.read_varint(encoded, 0, len(encoded)) == (number, len(encoded))


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_varint_round_trip(number: int) -> None:
    encoded = wire.varint(number)
    assert wire.read_varint(encoded, 0, len(encoded)) == (number, len(encoded))


@given(st.binary(max_size=12))
def test_any_bytes_are_a_number_or_malformed(data: bytes) -> None:
    try:
        value, pos = wire.read_varint(data, 0, len(data))
    except wire.Malformed:
        return
    assert 0 <= value < 1 << 64 and 0 < pos <= len(data)


def test_frames_wait_for_the_whole_message_and_refuse_oversized_ones() -> None:
    message = wire.frame(wire.ACK, b"abc")
    assert message == b"\x0a\x84\x03abc"
    assert wire.next_message(message[:4], 0) is None
    assert wire.next_message(message, 0) == (10, 0x84, b"abc", 6)
    assert wire.next_message(b"\x00\x04", 0) == (0, 4, b"", 2)  # a heartbeat
    with pytest.raises(wire.TooBig):
        wire.next_message(b"\x0a\x80" + wire.varint(wire.MAX_MESSAGE + 1), 0)


def table(name: str = "st", kind: str = "ip", **more: object) -> Table:
    store = (("server_id", 0), ("conn_cnt", 0), ("conn_cur", 0), ("http_req_rate", 10_000),
             ("server_key", 0))  # fmt: skip
    config = StickTable(name, kind, 100, W, 4, 60_000, store=store, peers="p")  # type: ignore[arg-type]
    return Table(config, lambda: NOW)


def test_define_lists_data_by_haproxys_numbers_and_the_rate_periods() -> None:
    ours = table()
    message = wire.define(1, "st", key="ip", key_size=4, store=ours.config.store, expire=60_000)
    klass, kind, payload, _ = wire.next_message(message, 0) or (0, 0, b"", 0)
    assert (klass, kind) == (wire.STICKTABLE, wire.DEFINE)
    bits = 1 << 0 | 1 << 4 | 1 << 6 | 1 << 10 | 1 << 19
    assert payload == (b"\x01\x02st\x04\x04" + wire.varint(bits) + wire.varint(60_000)
                       + b"\x0a" + wire.varint(10_000))  # fmt: skip
    definition = wire.read_define(payload)
    assert definition.data == ("server_id", "conn_cnt", "conn_cur", "http_req_rate", "server_key")
    assert definition.periods == {"http_req_rate": 10_000}


def test_an_entry_goes_from_one_session_to_the_other() -> None:
    """What one session pushes, another applies: counters, a rate, the server's name;
    `conn_cur` stays each node's own, as in HAProxy."""
    mine, theirs = table(), table()
    entry = mine.get(0x7F000002)
    assert entry is not None
    entry.data.update(server_id=2, conn_cnt=7, conn_cur=3, server_key="s2")
    rate = entry.data["http_req_rate"]
    assert isinstance(rate, FreqCtr)
    rate.add(NOW - 4000, 10_000, 5)
    pushed = Session({"st": mine}, lambda: NOW).push("st", [(1, entry)])
    receiver = Session({"st": theirs}, lambda: NOW)
    reply = receiver.feed(pushed[:7]) + receiver.feed(pushed[7:])  # in two reads
    assert reply == wire.ack(1, 1)
    got = theirs.lookup(0x7F000002)
    assert got is not None
    assert {k: got.data[k] for k in ("server_id", "conn_cnt", "conn_cur", "server_key")} == {
        "server_id": 2, "conn_cnt": 7, "conn_cur": 0, "server_key": "s2"}  # fmt: skip
    assert theirs.read(got, "http_req_rate") == mine.read(entry, "http_req_rate") == 5
    assert got.expire == NOW + 60_000


KEYS = [("ipv6", 1 << 100 | 5), ("integer", 42), ("string", "abc"), ("binary", b"ab\0\0")]


@pytest.mark.parametrize(("kind", "key"), KEYS)
def test_every_key_type_travels(kind: str, key: int | str | bytes) -> None:
    size = {"ipv6": 16, "integer": 4, "string": 32, "binary": 4}[kind]
    config = StickTable("st", kind, 10, W, size, 1000, store=(("gpc0", 0),), peers="p")  # type: ignore[arg-type]
    mine, theirs = Table(config, lambda: NOW), Table(config, lambda: NOW)
    entry = mine.get(key)
    assert entry is not None
    entry.data["gpc0"] = 9
    receiver = Session({"st": theirs}, lambda: NOW)
    receiver.feed(Session({"st": mine}, lambda: NOW).push("st", [(5, entry)], timed=True))
    got = theirs.lookup(key)
    assert got is not None and got.data["gpc0"] == 9


def test_a_table_of_another_key_type_is_skipped() -> None:
    mine, theirs = table(), table(kind="integer")
    entry = mine.get(1)
    assert entry is not None
    Session({"st": theirs}, lambda: NOW).feed(
        Session({"st": mine}, lambda: NOW).push("st", [(1, entry)])
    )
    assert theirs.used() == 0


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"\xff\x00", b"\x01\x00"),  # reserved class
        (b"\x0a\x82\x03\x00\xf5\x01", b"\x01\x00"),  # a definition cut short
        (b"\x0a\x80" + wire.varint(1 << 20), b"\x01\x01"),  # longer than the buffer
        (b"\x0a\x82\x02\x01\x05", b"\x01\x00"),  # a name longer than the message
    ],
)
def test_garbage_closes_with_haproxys_error(data: bytes, reply: bytes) -> None:
    with pytest.raises(Closed) as closed:
        Session({"st": table()}, lambda: NOW).feed(data)
    assert closed.value.reply == reply


@given(st.binary(max_size=64))
def test_any_bytes_are_read_or_refused(data: bytes) -> None:
    with contextlib.suppress(Closed):
        Session({"st": table()}, lambda: NOW).feed(data)


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (["GET / HTTP/1.0"], 501),
        (["HAProxyS 2.2"], 502),
        (["HAProxyS x"], 502),
        (["HAProxyS 2.1", "other"], 503),
        (["HAProxyS 2.1", "me", "nobody 1 1"], 504),
        (["HAProxyS 2.1", "me", "peer"], 501),
    ],
)
def test_handshakes_refused_with_haproxys_status(lines: list[str], status: int) -> None:
    with pytest.raises(Closed) as closed:
        check_hello(lines, "me", ["peer"])
    assert closed.value.reply == f"{status}\n".encode()


def test_a_good_handshake_names_the_caller() -> None:
    assert check_hello(["HAProxyS 2.0"], "me", ["peer"]) is None
    assert check_hello(["HAProxyS 2.1", "me", "peer 12 1"], "me", ["peer"]) == "peer"


def test_a_resync_request_is_answered_with_every_entry_and_finished() -> None:
    mine = table()
    for number in range(3):
        mine.get(number)
    session = Session({"st": mine}, lambda: NOW)
    assert session.feed(wire.control(wire.RESYNC_REQUEST)) == b""
    assert session.teach
    lesson = session.lesson({"st": 3})
    assert lesson.endswith(wire.control(wire.RESYNC_FINISHED))
    learner = Session({"st": table()}, lambda: NOW)
    assert learner.feed(lesson).startswith(wire.control(wire.RESYNC_CONFIRM))
    assert learner.learned and learner.updates == 3
