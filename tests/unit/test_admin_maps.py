"""The runtime commands of maps and ACL files (admin/commands_maps.py) on a configuration
like the one HAProxy 2.6.12 answered them for (the texts below are its answers; entry ids
are addresses there, so they are compared by position)."""

from __future__ import annotations

import re

import pytest

from poise.admin.commands import Command, Level, Session, execute
from poise.config import patterns
from poise.config.haproxy import parse
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from tests.unit.admin_support import World

FILES = {
    "/m/hosts.map": b"# comment\n  example.com   be_a  \nfoo.org be_b\n10.0.0.0/8 net\nnoval\n",
    "/m/paths.acl": b"/api\n/static\n",
    "/m/ips.map": b"10.0.0.0/8 net8\n10.1.0.0/16 net16\n127.0.0.1 lo\n",
}
CONFIG = """defaults
  mode http
  timeout client 2s
  timeout server 2s
  timeout connect 2s
frontend f
  bind 127.0.0.1:18601
  acl api path_beg -f /m/paths.acl
  acl hm req.hdr(host) -M -f /m/hosts.map
  http-request set-header X-Api 1 if api
  http-request set-header X-Be %[req.hdr(host),map(/m/hosts.map,none)]/%[src,map_ip(/m/ips.map)]
  default_backend b
backend b
  server s 127.0.0.1:1
"""


@pytest.fixture
def world() -> World:
    return World()


def read(path: str) -> bytes:
    """FILES, as the disk: a file not there (/etc/resolv.conf) is an OSError."""
    if path not in FILES:
        raise FileNotFoundError(2, "No such file or directory")
    return FILES[path]


def load() -> rules.Rules:
    config, diagnostics = parse([("m.cfg", CONFIG)], {}, read)
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxy("f")
    assert proxy is not None
    return rules.Rules(proxy)


def ids(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "0x_", text)


def test_show_map_and_show_acl_list_the_files_as_haproxy_does(world: World) -> None:
    load()
    assert world.text("show map") == (
        "# id (file) description\n"
        "2 (/m/hosts.map) pattern loaded from file '/m/hosts.map' used by map at file "
        "'m.cfg' line 9, by map at file 'm.cfg' line 11. curr_ver=0 next_ver=0 entry_cnt=8\n"
        "4 (/m/ips.map) pattern loaded from file '/m/ips.map' used by map at file 'm.cfg' "
        "line 11. curr_ver=0 next_ver=0 entry_cnt=3\n\n"
    )
    listed = world.text("show acl")
    assert listed.startswith(
        "# id (file) description\n"
        "0 (/m/paths.acl) pattern loaded from file '/m/paths.acl' used by acl at file "
        "'m.cfg' line 8. curr_ver=0 next_ver=0 entry_cnt=2\n"
        "2 (/m/hosts.map) "
    )
    assert "(/m/ips.map)" not in listed
    assert ids(world.text("show map /m/hosts.map")) == (
        "0x_ example.com be_a\n0x_ foo.org be_b\n0x_ 10.0.0.0/8 net\n0x_ noval \n\n"
    )
    assert world.text("show map #0") == "Unknown map identifier. Please use #<id> or <file>.\n\n"
    assert ids(world.text("show acl #0")) == "0x_ /api\n0x_ /static\n\n"
    assert world.text("show acl #4") == "Unknown ACL identifier. Please use #<id> or <file>.\n\n"


def test_map_changes_and_their_messages(world: World) -> None:
    program = load()

    def routed(host: str) -> str | None:
        req = Request("GET", "/", "1.1", Headers([("Host", host)]), src="10.1.2.3")
        rules.request_rules(program, req)
        return req.headers.get("x-be")

    hosts = "/m/hosts.map"
    assert world.text(f"add map {hosts} new.net be_c") == "\n"
    assert routed("new.net") == "be_c/net16"
    assert world.text(f"add map {hosts} onlykey") == (
        "'add map' expects three parameters (map identifier, key and value) or one "
        "parameter (map identifier) and a payload\n\n"
    )
    assert world.text("add map /nope k v") == (
        "Unknown map identifier. Please use #<id> or <file>.\n\n"
    )
    assert world.text(f"set map {hosts} foo.org be_x") == "\n"
    assert routed("foo.org") == "be_x/net16"
    assert world.text(f"set map {hosts} nope be_x") == "entry not found.\n\n"
    assert world.text(f"del map {hosts} noval") == "\n"
    assert world.text(f"del map {hosts} nothere") == "Key not found.\n\n"
    assert world.text(f"del map {hosts}") == (
        "This command expects two parameters: map identifier and key.\n\n"
    )
    assert world.text(f"set map {hosts}") == (
        "'set map' expects three parameters: map identifier, key and value.\n\n"
    )
    assert ids(world.text(f"show map {hosts}")) == (
        "0x_ example.com be_a\n0x_ foo.org be_x\n0x_ 10.0.0.0/8 net\n0x_ new.net be_c\n\n"
    )
    first = world.text(f"show map {hosts}").split()[0]
    assert world.text(f"set map {hosts} #{first[2:]} be_id") == "entry not found.\n\n"
    assert world.text(f"set map {hosts} #{first} be_id") == "\n"
    assert routed("example.com") == "be_id/net16"
    assert world.text("add map /m/ips.map notanip x") == (
        "'notanip' is not a valid IPv4 or IPv6 address.\n\n"
    )
    assert world.text("add map /m/ips.map 10.1.2.0/24 net24") == "\n"
    assert routed("foo.org") == "be_x/net24"
    assert world.text("clear map") == "Missing map identifier.\n\n"
    assert world.text("clear map #0") == "Unknown map identifier. Please use #<id> or <file>.\n\n"
    assert world.text(f"clear map {hosts}") == "\n"
    assert routed("foo.org") == "none/net24"
    assert world.text(f"show map {hosts}") == "\n"


def test_a_payload_adds_every_line_or_none(world: World) -> None:
    load()
    session = Session(Level.ADMIN)
    answer = execute(Command("add map #2", "k1 v1\nk2 v2 with spaces"), session, world.view())
    assert answer.text == "\n"
    answer = execute(Command("add map #2", "k3 v3\nonlykey"), session, world.view())
    assert answer.text == "Missing value for key 'onlykey'.\n\n"
    entries = [(e.key, e.value) for e in patterns.REFERENCES["/m/hosts.map"].entries]
    assert entries[-2:] == [("k1", "v1"), ("k2", "v2 with spaces")]


def test_acl_changes_are_seen_by_the_next_request(world: World) -> None:
    program = load()

    def api(path: str) -> bool:
        req = Request("GET", path, "1.1", Headers([("Host", "x")]))
        rules.request_rules(program, req)
        return "x-api" in req.headers.index()

    assert api("/api/users") and not api("/admin")
    assert world.text("add acl /m/paths.acl /admin") == "\n"
    assert api("/admin/x")
    assert world.text("add acl /m/hosts.map x") == (
        "This ACL is shared with a map containing samples. You must use the command 'add "
        "map' to add values.\n\n"
    )
    assert world.text("add acl #0") == (
        "'add acl' expects two parameters: ACL identifier and pattern.\n\n"
    )
    assert world.text("del acl #0 /api") == "\n"
    assert world.text("del acl #0 /api") == "Key not found.\n\n"
    assert not api("/api/users")
    assert world.text("clear acl #0") == "\n"
    assert not api("/admin/x")
    assert world.text("show acl #0") == "\n"


def test_changes_need_the_operator_level(world: World) -> None:
    load()
    assert world.text("add map #2 a b", Level.USER) == "Permission denied\n\n"
    assert world.text("show map #2", Level.USER).startswith("0x")
