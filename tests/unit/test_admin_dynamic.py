"""`add server` and `del server`: servers that join and leave a backend while it serves,
on HAProxy 2.6's rules, with its answers (checked byte for byte against HAProxy 2.6.12,
tests/io/test_admin_haproxy.py); where HAProxy reads a bad number as 0, poise refuses it.
"""

from __future__ import annotations

from collections import Counter

import pytest

from poise.admin import commands, stats
from poise.admin.commands import Level
from poise.core.backend import Outcome
from poise.core.server import AdminState, ServerState
from tests.unit.admin_support import World, rows

REGISTERED = "New server registered.\n\n"


@pytest.fixture
def world() -> World:
    return World()


def names(world: World, backend: str) -> list[str]:
    return [s.name for s in world.backends[backend].servers]


def test_a_new_server_starts_in_maintenance_with_haproxys_defaults(world: World) -> None:
    answer = world.run("add server be/n1 127.0.0.1:27186", Level.ADMIN)
    assert answer.text == REGISTERED
    assert names(world, "be") == ["s1", "s2", "s3", "n1"]
    n1 = world.srv("be", "n1")
    assert (n1.id, n1.admin, n1.weight, n1.maxconn, n1.backup) == (4, AdminState.MAINT, 1, 0, False)
    assert (n1.addr, n1.port, n1.last_change) == ("127.0.0.1", 27186, world.now)
    config = n1.config
    assert (config.inter, config.rise, config.fall, config.check) == (2000, 2, 3, False)
    # Nothing is sent to it until it is enabled.
    assert {world.backends["be"].balancer.pick().name for _ in range(5)} == {"s1"}  # type: ignore[union-attr]
    assert world.text("set server be/n1 state ready") == "\n"
    picks = Counter(world.backends["be"].balancer.pick().name for _ in range(11))  # type: ignore[union-attr]
    assert picks == {"s1": 10, "n1": 1}


def test_enabled_takes_traffic_at_once_and_the_last_word_wins(world: World) -> None:
    assert world.text("add server be/n2 127.0.0.1:1 weight 256 weight 5 enabled", Level.ADMIN) == (
        REGISTERED
    )
    n2 = world.srv("be", "n2")
    assert (n2.admin, n2.weight, n2.initial_weight) == (AdminState.READY, 5, 5)
    assert world.text("add server be/n3 127.0.0.1:1 enabled disabled") == REGISTERED
    n3 = world.srv("be", "n3")
    assert (n3.admin, n3.config.disabled) == (AdminState.MAINT, True)
    assert world.text("add server be/n4 127.0.0.1:1 backup no-backup disabled enabled") == (
        REGISTERED
    )
    assert (world.srv("be", "n4").backup, world.srv("be", "n4").admin) == (False, AdminState.READY)


def test_options_a_dynamic_server_takes(world: World) -> None:
    line = (
        "add server be/f9 127.0.0.1:1 addr 127.0.0.3 port 9 check inter 3s fastinter 500 "
        "downinter 1m rise 4 fall 5 maxconn 3 maxqueue 4 backup id 20"
    )
    assert world.text(line, Level.ADMIN) == REGISTERED
    f9 = world.srv("be", "f9")
    config = f9.config
    assert (config.check_addr, config.check_port, config.check) == ("127.0.0.3", 9, True)
    assert (config.inter, config.fastinter, config.downinter) == (3000, 500, 60000)
    assert (config.rise, config.fall, f9.maxconn, config.maxqueue) == (4, 5, 3, 4)
    assert (f9.backup, f9.id) == (True, 20)
    # The check is configured, not running: HAProxy 2.6 waits for `enable health`.
    assert not f9.check_enabled
    line = world.text("show servers state be").splitlines()[-2]
    assert line.split()[3:] == (
        [
            "f9",
            "127.0.0.1",
            "0",
            "1",
            "1",
            "1",
            "0",
            "1",
            "0",
            "0",
            "2",
            "0",
            "0",
            "0",
            "-",
            "1",
            "-",
            "0",
            "9",
            "127.0.0.3",
            "127.0.0.3",
            "9",
        ]
    )
    assert rows(world.text("show stat"))["be", "f9"]["status"] == "MAINT"
    assert world.text("add server be/n5 127.0.0.1:1") == REGISTERED
    assert world.srv("be", "n5").id == 4  # the lowest free id


def test_a_dynamic_server_sends_the_proxy_protocol(world: World) -> None:
    # HAProxy 2.6 takes these on `add server`, no-send-proxy* included.
    line = (
        "add server be/p1 127.0.0.1:1 send-proxy send-proxy-v2-ssl-cn "
        "proxy-v2-options crc32c,authority no-send-proxy-v2-ssl-cn check-send-proxy"
    )
    assert world.text(line, Level.ADMIN) == REGISTERED
    config = world.srv("be", "p1").config
    assert config.proxy_protocol == {"v1", "v2", "ssl", "crc32c", "authority"}
    assert config.check_send_proxy


def test_servers_state_of_new_servers_is_haproxys(world: World) -> None:
    for line in (
        "add server be/n1 127.0.0.1:27186",
        "add server be/n2 127.0.0.1:27187 weight 5 enabled",
        "add server be/n10 127.0.0.1:27187 disabled",
        "add server be/f3 127.0.0.1:1 check",
        "add server be/f4 127.0.0.1:1 check enabled",
        "add server be/n12 [::1]:80",
        "add server be/e7 /tmp/sock",
        "add server be/d1 backend.example:80",
    ):
        assert world.text(line, Level.ADMIN) == REGISTERED, line
    lines = world.text("show servers state be").splitlines()[5:-1]
    assert lines == [  # as HAProxy 2.6.12 (be_id aside, which is the test's)
        "3 be 4 n1 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 27186 - 0 0 - - 0",
        "3 be 5 n2 127.0.0.1 2 0 5 5 0 1 0 2 0 0 0 0 - 27187 - 0 0 - - 0",
        "3 be 6 n10 127.0.0.1 0 5 1 1 0 1 0 0 8 0 0 0 - 27187 - 0 0 - - 0",
        "3 be 7 f3 127.0.0.1 0 1 1 1 0 1 0 0 2 0 0 0 - 1 - 0 0 - - 0",
        "3 be 8 f4 127.0.0.1 2 0 1 1 0 1 0 2 2 0 0 0 - 1 - 0 0 - - 0",
        "3 be 9 n12 ::1 0 1 1 1 0 1 0 0 0 0 0 0 - 80 - 0 0 - - 0",
        "3 be 10 e7 - 0 1 1 1 0 1 0 0 0 0 0 0 - 0 - 0 0 - - 0",
        "3 be 11 d1 - 0 1 1 1 0 1 0 0 0 0 0 0 backend.example 80 - 0 0 - - 0",
    ]
    table = rows(world.text("show stat"))
    assert table["be", "f4"]["status"] == "no check"  # configured, not enabled
    assert table["be", "d1"]["addr"] == ""  # a name HAProxy does not resolve
    assert table["be", "e7"]["addr"] == "unix"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("add server", "Require 'backend/server'.\n"),
        ("add server be", "Require 'backend/server'.\n"),
        ("add server be/", "Require 'backend/server'.\n"),
        ("add server /n6 127.0.0.1:1", "Require 'backend/server'.\n"),
        ("add server nope/n1 127.0.0.1:1", "No such backend.\n"),
        ("add server fe/n1 127.0.0.1:1", "No such backend.\n"),
        ("add server st/n1 127.0.0.1:1",
         "Backend must use a dynamic load balancing to support dynamic servers.\n"),
        ("add server hs/n1 127.0.0.1:1",
         "Backend must use a dynamic load balancing to support dynamic servers.\n"),
        ("add server be/n1", "'server' expects <name> and <addr>[:<port>] as arguments.\n\n"),
        ("add server be/s1", "'server' expects <name> and <addr>[:<port>] as arguments.\n\n"),
        ("add server be/s1 127.0.0.1:1",
         "Already exists a server with the same name in backend.\n\n"),
        ("add server be/s1 127.0.0.1:1 foo",
         "unknown keyword 'foo'; did you mean 'tfo' maybe ?\n\n"),
        ("add server be/n1 127.0.0.1:1 weght 5",
         "unknown keyword 'weght'; did you mean 'weight' maybe ?\n\n"),
        ("add server be/n1 127.0.0.1:1 chek",
         "unknown keyword 'chek'; did you mean 'check' maybe ?\n\n"),
        ("add server be/n1 127.0.0.1:1 backu",
         "unknown keyword 'backu'; did you mean 'backup' maybe ?\n\n"),
        ("add server be/n1 127.0.0.1:1 xyzzyxyzzy", "unknown keyword 'xyzzyxyzzy'.\n\n"),
        ("add server be/n1 127.0.0.1:1 cookie c1",
         "'cookie' option is not accepted for dynamic server\n\n"),
        ("add server be/n1 127.0.0.1:1 init-addr none",
         "'init-addr' option is not accepted for dynamic server\n\n"),
        ("add server be/n1 127.0.0.1:1 no-check",
         "'no-check' option is not accepted for dynamic server\n\n"),
        ("add server be/n1 127.0.0.1:1 ssl", "'ssl' option is not implemented yet in poise\n\n"),
        ("add server be/n1 127.0.0.1:1 id 1",
         "'id' : custom id 1 already used at test.cfg:1 ('server s1').\n\n"),
        ("add server be/n1 127.0.0.1:1 id", "'id' : expects an integer argument.\n\n"),
        ("add server be/n1 127.0.0.1:1 id 0", "'id' : custom id has to be > 0.\n\n"),
        ("add server be/n1 127.0.0.1:1 id abc", "'id' : custom id has to be > 0.\n\n"),
        ("add server be/n1 127.0.0.1:1 weight 300",
         "weight of server n1 is not within 0 and 256 (300)..\n\n"),
        ("add server be/n1 127.0.0.1:1 weight -1",
         "weight of server n1 is not within 0 and 256 (-1)..\n\n"),
        # HAProxy reads these as 0 and registers the server.
        ("add server be/n1 127.0.0.1:1 weight abc",
         "weight of server n1 is not within 0 and 256 (abc)..\n\n"),
        ("add server be/n1 127.0.0.1:1 weight", "'weight' expects an integer argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 maxconn -5", "'maxconn' has to be >= 0..\n\n"),
        ("add server be/n1 127.0.0.1:1 maxqueue", "'maxqueue' expects an integer argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 port 70000",
         "'port' expects a port number as argument..\n\n"),
        # First problem wins, left to right.
        ("add server be/n1 127.0.0.1:1 weight 300 foo",
         "weight of server n1 is not within 0 and 256 (300)..\n\n"),
        ("add server be/n1 127.0.0.1:1 foo weight 300",
         "unknown keyword 'foo'; did you mean 'tfo' maybe ?\n\n"),
        ("add server be/n1 127.0.0.1:1 inter", "'inter' expects a delay as argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 inter 0",
         "invalid value 0 for argument 'inter' of server n1..\n\n"),
        # HAProxy names 'agent-inter' here, whichever delay it was.
        ("add server be/n1 127.0.0.1:1 inter 10x",
         "unexpected character 'x' in 'inter' argument of server n1..\n\n"),
        ("add server be/n1 127.0.0.1:1 fastinter", "'fastinter' expects a delay as argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 downinter 0",
         "invalid value 0 for argument 'downinter' of server n1..\n\n"),
        ("add server be/n1 127.0.0.1:1 rise", "'rise' expects an integer argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 rise 0", "'rise' has to be > 0..\n\n"),
        ("add server be/n1 127.0.0.1:1 fall abc", "'fall' has to be > 0..\n\n"),
        ("add server be/n1 127.0.0.1:1 port", "'port' expects a port number as argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 addr", "'addr' expects <ipv4|ipv6> as argument..\n\n"),
        ("add server be/n1 127.0.0.1:1 addr foo", "'addr' : invalid address: 'foo' in 'foo'.\n\n"),
        ("add server be/n1 127.0.0.1:99999", "invalid port '99999' in '127.0.0.1:99999'\n\n"),
        ("add server be/n1 127.0.0.1:1 proxy-v2-options ssl,bogus",
         "'bogus' : proxy v2 option not implemented.\n\n"),
    ],
)  # fmt: skip
def test_add_server_refusals_change_nothing(world: World, line: str, answer: str) -> None:
    before = world.state()
    result = world.run(line, Level.ADMIN)
    assert result.text == answer
    assert (result.goes, result.effects) == ((), ())
    assert world.state() == before


def test_add_and_del_server_need_the_admin_level(world: World) -> None:
    before = world.state()
    for level in (Level.USER, Level.OPERATOR):
        assert world.text("add server be/z 127.0.0.1:1", level) == "Permission denied\n\n"
        world.srv("be", "s3")  # in maintenance: deletable at the admin level
        assert world.text("del server be/s3", level) == "Permission denied\n\n"
    assert world.state() == before


# -- del server ---------------------------------------------------------------------------


class Waiter:
    def dequeued(self, server: ServerState) -> None:
        pass


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("del server", "Require 'backend/server'.\n"),
        ("del server be", "Require 'backend/server'.\n"),
        ("del server nope/x", "No such backend.\n"),
        ("del server be/nope", "No such server.\n"),
        ("del server be/s1", "Only servers in maintenance mode can be deleted.\n"),
    ],
)
def test_del_server_refusals_change_nothing(world: World, line: str, answer: str) -> None:
    before = world.state()
    result = world.run(line, Level.ADMIN)
    assert result.text == answer
    assert (result.goes, result.effects) == ((), ())
    assert world.state() == before


def test_a_drained_server_or_one_with_sessions_stays(world: World) -> None:
    backend = world.backends["be"]
    s1 = world.srv("be", "s1")
    assert world.text("set server be/s1 state drain", Level.ADMIN) == "\n"
    assert world.text("del server be/s1") == "Only servers in maintenance mode can be deleted.\n"
    backend.occupy(s1)  # a session is still on it
    assert world.text("set server be/s1 state maint") == "\n"
    assert world.text("del server be/s1") == (
        "Server still has connections attached to it, cannot remove it.\n"
    )
    assert "s1" in names(world, "be")
    backend.release(s1)
    answer = world.run("del server be/s1")
    assert answer.text == "Server deleted.\n"
    assert names(world, "be") == ["s2", "s3"]
    assert answer.effects[0] == commands.DropIdle("be", 1, forget=True)
    assert 1 not in backend.server_queues


def test_an_enabled_new_server_takes_the_waiting_connections(world: World) -> None:
    backend = world.backends["be"]
    s1 = world.srv("be", "s1")
    s1.maxconn = 1
    assert backend.take(Waiter()).outcome is Outcome.ASSIGNED
    waiting = Waiter()
    assert backend.take(waiting).outcome is Outcome.QUEUED
    assert world.run("add server be/n1 127.0.0.1:1", Level.ADMIN).goes == ()  # maintenance
    answer = world.run("add server be/n2 127.0.0.1:1 enabled")
    assert [(go.waiter, go.server.name) for go in answer.goes] == [(waiting, "n2")]


def test_a_deleted_server_can_come_back_with_its_id(world: World) -> None:
    assert world.text("del server be/s3", Level.ADMIN) == "Server deleted.\n"
    assert world.text("show servers state be").count("\n3 be ") == 2
    assert world.text("add server be/s3 127.0.0.1:27183") == REGISTERED
    assert world.text("add server be/n22 127.0.0.1:27183") == REGISTERED
    assert [(s.name, s.id) for s in world.backends["be"].servers] == [
        ("s1", 1), ("s2", 2), ("s3", 3), ("n22", 4),
    ]  # fmt: skip


def test_the_stat_rows_follow_the_servers(world: World) -> None:
    world.run("add server be/n1 127.0.0.1:9 weight 7 enabled", Level.ADMIN)
    table = rows(world.text("show stat"))
    assert list(table)[1:6] == [("be", s) for s in ("s1", "s2", "s3", "n1", "BACKEND")]
    assert (table["be", "n1"]["weight"], table["be", "BACKEND"]["weight"]) == ("7", "17")
    world.run("set server be/n1 state maint")
    world.run("del server be/n1")
    table = rows(world.text("show stat"))
    assert ("be", "n1") not in table and table["be", "BACKEND"]["weight"] == "10"
    assert world.text("show stat").split("\n")[0] == stats.HEADER
