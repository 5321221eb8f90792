"""Runtime commands on one server: `set server B/S addr`, `set maxconn server`, `shutdown
sessions server`, and what `drain` and `maint` mean to the balancer and to persistence.
Answers are HAProxy 2.6.12's, byte for byte, unless a test says otherwise.
"""

from __future__ import annotations

import pytest

from poise.admin import commands
from poise.admin.commands import Level
from poise.admin.commands_servers import dynamic_weights
from poise.config import model
from poise.core.backend import Outcome
from poise.core.http import persistence
from poise.core.http.headers import Headers
from poise.core.server import ServerState
from tests.unit.admin_support import World, make_backend

BY = " by 'stats socket command'\n\n"


@pytest.fixture
def world() -> World:
    return World()


# -- set server addr ----------------------------------------------------------------------


def test_set_server_addr_says_what_changed(world: World) -> None:
    s2 = world.srv("be", "s2")
    steps = [
        ("set server be/s2 addr 127.0.0.5", "IP changed from '127.0.0.1' to '127.0.0.5'"),
        ("set server be/s2 addr 127.0.0.6 port 27199",
         "IP changed from '127.0.0.5' to '127.0.0.6', port changed from '18082' to '27199'"),
        ("set server be/s2 addr 127.0.0.6 port 27199",
         "no need to change the addr, no need to change the port"),
        ("set server be/s2 addr ::1", "IP changed from '127.0.0.6' to '::1'"),
        ("set server be/s2 addr 0:0::1 port 0",
         "no need to change the addr, port changed from '27199' to '0'"),
        ("set server be/s2 addr 127.0.0.1 foo 5", "IP changed from '::1' to '127.0.0.1'"),
    ]  # fmt: skip
    for line, said in steps:
        assert world.text(line, Level.ADMIN) == said + BY, line
    assert (s2.addr, s2.port) == ("127.0.0.1", None)  # port 0: the client's own port


def test_a_new_address_drops_the_idle_connections_to_the_old_one(world: World) -> None:
    answer = world.run("set server be/s1 addr 127.0.0.9", Level.ADMIN)
    assert answer.effects == (commands.DropIdle("be", 1),)
    assert world.run("set server be/s1 addr 127.0.0.9").effects == ()  # nothing changed


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("set server be/s2 addr",
         "set server <b>/<s> addr requires an address and optionally a port.\n\n"),
        ("set server be/s2 addr foo", "Invalid addr 'foo' by 'stats socket command'\n\n"),
        ("set server be/s2 addr 1.2.3.4.5", "Invalid addr '1.2.3.4.5'" + BY),
        # HAProxy changes the address and then complains about the port: poise refuses all.
        ("set server be/s2 addr 127.0.0.6 port", "problem converting port '' to an int" + BY),
        ("set server be/s2 addr 127.0.0.6 port abc",
         "problem converting port 'abc' to an int" + BY),
        ("set server be/s2 addr 127.0.0.6 port 99999",
         "problem converting port '99999' to an int" + BY),
        ("set server be/s2 addr 127.0.0.6 port +5",
         "port offsets ('+5') are not implemented yet in poise" + BY),
        ("set server be/s2 agent up",
         "'set server <srv> agent' is not implemented yet in poise.\n\n"),
        ("set server be/s2 foo", "usage: set server <backend>/<server> addr | state | weight\n\n"),
        ("set server be/nope addr 127.0.0.1", "No such server.\n\n"),
        ("set maxconn server be/s1", "Require <maxconn>.\n\n"),
        ("set maxconn server be/s1 abc", "maxconn string empty or preceded by garbage\n"),
        ("set maxconn server be/s1 5x", "Trailing garbage in maxconn string\n"),
        ("set maxconn server be/s1 -1", "Value out of range.\n\n"),
        ("set maxconn server be/nope 3", "No such server.\n\n"),
        ("set maxconn server", "Require 'backend/server'.\n\n"),
        ("shutdown sessions server", "Require 'backend/server'.\n\n"),
        ("shutdown sessions server be", "Require 'backend/server'.\n\n"),
        ("shutdown sessions server nope/s1", "No such backend.\n\n"),
        ("shutdown sessions server be/nope", "No such server.\n\n"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(world: World, line: str, answer: str) -> None:
    before = world.state()
    result = world.run(line, Level.ADMIN)
    assert result.text == answer
    assert (result.goes, result.effects) == ((), ())
    assert world.state() == before


@pytest.mark.parametrize(
    "line",
    ["set server be/s1 addr 127.0.0.2", "set maxconn server be/s1 1",
     "shutdown sessions server be/s1"],
)  # fmt: skip
def test_server_commands_need_the_admin_level(world: World, line: str) -> None:
    before = world.state()
    for level in (Level.USER, Level.OPERATOR):
        answer = world.run(line, level)
        assert (answer.text, answer.effects) == ("Permission denied\n\n", ())
    assert world.state() == before


# -- set maxconn server -------------------------------------------------------------------


class Waiter:
    def dequeued(self, server: ServerState) -> None:
        pass


def test_raising_a_servers_maxconn_lets_its_queue_go(world: World) -> None:
    backend = world.backends["st"]
    x = world.srv("st", "x")
    x.maxconn = 1
    assert backend.take(Waiter()).outcome is Outcome.ASSIGNED
    waiting = Waiter()
    assert backend.take(waiting).outcome is Outcome.QUEUED
    answer = world.run("set maxconn server st/x 2", Level.ADMIN)
    assert answer.text == "\n" and x.maxconn == 2
    assert [(go.waiter, go.server) for go in answer.goes] == [(waiting, x)]
    assert world.run("set maxconn server st/x 0").text == "\n"  # no limit
    assert x.maxconn == 0 and not x.full


def test_shutdown_sessions_server_asks_the_shell_to_end_them(world: World) -> None:
    answer = world.run("shutdown sessions server be/s1", Level.ADMIN)
    assert answer.text == "\n"
    assert answer.effects == (commands.EndSessions(world.srv("be", "s1")),)
    # A server in maintenance keeps its sessions until they are shut down.
    assert world.run("shutdown sessions server #3/#3").effects == (
        commands.EndSessions(world.srv("be", "s3")),
    )


# -- drain and maint, as the balancer and persistence see them ----------------------------

COOKIE = model.Cookie("SRV", model.Where("t.cfg", 1), mode="insert")


def sticky(servers: list[ServerState], value: str) -> ServerState | None:
    headers = Headers([("Cookie", f"SRV={value}")])
    match = persistence.request_cookie(
        COOKIE, headers, servers, 1_700_000_000.0, persist=False, redispatch=False
    )
    return match.server


def test_drain_keeps_sticky_clients_and_sends_no_new_ones(world: World) -> None:
    proxy = model.Proxy(
        "web", model.Capability.BACKEND, model.Where("t.cfg", 1), id=9, cookie=COOKIE,
        servers=(
            model.Server("a", model.Address("ipv4", "127.0.0.1", 1), model.Where("t", 1), 1,
                         cookie="a"),
            model.Server("b", model.Address("ipv4", "127.0.0.1", 2), model.Where("t", 2), 2,
                         cookie="b"),
        ),
    )  # fmt: skip
    world.backends["web"] = backend = make_backend(proxy)
    a = backend.servers[0]
    assert world.text("set server web/a state drain", Level.ADMIN) == "\n"
    assert {backend.balancer.pick().name for _ in range(6)} == {"b"}  # type: ignore[union-attr]
    assert sticky(backend.servers, "a") is a  # a client bound to `a` still reaches it
    assert world.text("set server web/a state maint") == "\n"
    assert {backend.balancer.pick().name for _ in range(6)} == {"b"}  # type: ignore[union-attr]
    assert sticky(backend.servers, "a") is None  # not even a bound client
    assert world.text("set server web/a state ready") == "\n"
    assert {backend.balancer.pick().name for _ in range(6)} == {"a", "b"}  # type: ignore[union-attr]
    assert sticky(backend.servers, "a") is a


@pytest.mark.parametrize(
    ("algorithm", "hash_type", "dynamic"),
    [
        (model.Algorithm.ROUNDROBIN, model.HashType.MAP_BASED, True),
        (model.Algorithm.STATIC_RR, model.HashType.MAP_BASED, False),
        (model.Algorithm.SOURCE, model.HashType.MAP_BASED, False),
        (model.Algorithm.URI, model.HashType.MAP_BASED, False),
        (model.Algorithm.URL_PARAM, model.HashType.MAP_BASED, False),
        (model.Algorithm.HDR, model.HashType.MAP_BASED, False),
        (model.Algorithm.RDP_COOKIE, model.HashType.MAP_BASED, False),
        (model.Algorithm.URI, model.HashType.CONSISTENT, True),
        (model.Algorithm.SOURCE, model.HashType.MAGLEV, True),
    ],
)
def test_map_based_hashing_is_static_for_every_key(
    algorithm: model.Algorithm, hash_type: model.HashType, dynamic: bool
) -> None:
    """HAProxy's map-based hashing takes no runtime weight (but 0 and 100%), whatever it
    hashes; consistent hashing does (BE_LB_PROP_DYN)."""
    assert dynamic_weights(model.Balance(algorithm, hash_type=hash_type)) is dynamic
