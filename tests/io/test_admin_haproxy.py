"""The runtime API's newer commands sent to a real HAProxy 2.6 and to poise, in the same
order (many change state), over unix sockets in a temporary directory: the answers must be
the same bytes. poise's model is built with HAProxy's proxy ids and the servers' places in
HAProxy's file, so that the messages naming them match too.

Left out on purpose, where poise answers differently by design (each is tested on its own
in tests/unit/test_admin_*.py): numbers HAProxy reads as 0 (`weight abc`, `set maxconn
frontend F abc`), `set server addr` with a bad port (HAProxy changes the address anyway),
`show sess` (pointers and file descriptors differ), and `srv_f_forced_id`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from poise.admin.stats_json import NATURES, ORIGINS, SCOPES
from poise.config import model
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.server import ServerState
from poise.net.admin_socket import admin_info, open_admin_sockets, serve_admin
from poise.net.context import Context
from tests.io.test_admin import WAIT, blocking, exchange, masked, sockdir, unix
from tests.support import free_port, run

__all__ = ["sockdir"]  # the fixture, shared with test_admin.py

HAPROXY_CFG = """\
global
    stats socket {dir}/hap-admin.sock level admin
    stats socket {dir}/hap-user.sock level user
    stats socket {dir}/hap-operator.sock level operator
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:27181 weight 10
    server s2 127.0.0.1:27182 weight 20 backup
    server s3 127.0.0.1:27183 disabled
backend st
    balance static-rr
    server x 127.0.0.1:27184 weight 10
backend hs
    balance source
    server h 127.0.0.1:27185
"""
# (name, proxy id as HAProxy 2.6 numbers them, capability, algorithm, servers)
PROXIES = [
    ("fe", 2, model.Capability.FRONTEND, model.Algorithm.ROUNDROBIN, ()),
    ("be", 3, model.Capability.BACKEND, model.Algorithm.ROUNDROBIN,
     (("s1", 27181, {"weight": 10}), ("s2", 27182, {"weight": 20, "backup": True}),
      ("s3", 27183, {"disabled": True}))),
    ("st", 4, model.Capability.BACKEND, model.Algorithm.STATIC_RR,
     (("x", 27184, {"weight": 10}),)),
    ("hs", 5, model.Capability.BACKEND, model.Algorithm.SOURCE, (("h", 27185, {}),)),
]  # fmt: skip

# In order; `user:` and `operator:` send to the sockets of those levels; `columns:`
# compares the `show stat` columns poise fills for a frontend (the name, the limit, the
# status) rather than every column.
SAME_AS_HAPROXY = [
    # The typed and JSON forms: poise's fields where HAProxy has them, with its tags.
    "fields:show stat typed", "fields:show stat json", "fields:show stat 3 4 -1 typed",
    "fields:show stat domain proxy be 2 -1 json up", "fields:show info typed",
    "fields:show info json", "fields:show info float typed", "fields:show info json float",
    "show stat domain", "show stat domain dns typed",
    # Sessions (none but the CLI's own), levels.
    "show sess 0x1234", "shutdown session", "shutdown session 0x1234", "shutdown session foo",
    "shutdown sessions", "shutdown sessions server", "shutdown sessions server be",
    "shutdown sessions server nope/s1", "shutdown sessions server be/nope",
    "shutdown sessions server be/s3", "shutdown sessions foo", "user:show sess",
    "user:shutdown session 0x1", "user:shutdown sessions server be/s1",
    "operator:shutdown session 0x1",
    # maxconn.
    "set maxconn", "set maxconn foo", "set maxconn frontend", "set maxconn frontend nope",
    "set maxconn frontend fe", "set maxconn frontend fe -1", "set maxconn frontend be 10",
    "set maxconn frontend #2 100", "set maxconn frontend #99 100",
    "set maxconn frontend fe 5000", "columns:show stat -1 1 -1", "set maxconn global",
    "set maxconn global 100000", "set maxconn server be/s1 5", "set maxconn server be/s1",
    "set maxconn server be/s1 abc", "set maxconn server be/nope 3", "set maxconn server",
    "set maxconn server be/s1 0", "user:set maxconn frontend fe 10",
    "operator:set maxconn frontend fe 10", "user:set maxconn global 10",
    # Frontends.
    "disable frontend", "disable frontend nope", "disable frontend be", "disable frontend fe",
    "disable frontend fe", "columns:show stat 2 1 -1", "enable frontend #2", "enable frontend fe",
    "enable frontend nope", "enable frontend", "user:disable frontend fe",
    "operator:enable frontend fe",
    # Counters, the CLI's timeout.
    "user:clear counters", "operator:clear counters", "operator:clear counters all",
    "clear counters", "clear counters all", "clear counters foo", "clear counters all extra",
    "user:set timeout cli 5", "set timeout", "set timeout cli", "set timeout cli abc",
    "set timeout foo 5", "set timeout cli 0", "set timeout cli 5x", "set timeout cli 2s",
    "prompt\nset timeout cli 1m\nshow cli level\nquit",
    # add server: refusals.
    "user:add server be/z 127.0.0.1:1", "operator:add server be/z 127.0.0.1:1",
    "add server", "add server be", "add server be/", "add server /n6 127.0.0.1:1",
    "add server nope/n1 127.0.0.1:1", "add server fe/n1 127.0.0.1:1",
    "add server st/n1 127.0.0.1:1", "add server hs/n1 127.0.0.1:1", "add server be/n1",
    "add server be/s1", "add server be/s1 127.0.0.1:1", "add server be/s1 127.0.0.1:1 foo",
    "add server be/n1 127.0.0.1:1 id 1", "add server be/n1 127.0.0.1:1 id 3",
    "add server be/n1 127.0.0.1:1 weight 300 foo", "add server be/n1 127.0.0.1:1 foo weight 300",
    "add server be/n1 127.0.0.1:1 cookie c1", "add server be/n1 127.0.0.1:1 weight 300",
    "add server be/n1 127.0.0.1:1 weight -1", "add server be/n1 127.0.0.1:1 weght 5",
    "add server be/n1 127.0.0.1:1 chek", "add server be/n1 127.0.0.1:1 backu",
    "add server be/n1 127.0.0.1:1 xyzzyxyzzy", "add server be/n1 127.0.0.1:1 inter",
    "add server be/n1 127.0.0.1:1 inter 0", "add server be/n1 127.0.0.1:1 rise",
    "add server be/n1 127.0.0.1:1 rise 0", "add server be/n1 127.0.0.1:1 rise abc",
    "add server be/n1 127.0.0.1:1 fall 0", "add server be/n1 127.0.0.1:1 fall",
    "add server be/n1 127.0.0.1:1 id", "add server be/n1 127.0.0.1:1 id 0",
    "add server be/n1 127.0.0.1:1 id abc", "add server be/n1 127.0.0.1:1 port",
    "add server be/n1 127.0.0.1:1 addr", "add server be/n1 127.0.0.1:1 addr foo",
    "add server be/n1 127.0.0.1:1 fastinter", "add server be/n1 127.0.0.1:1 downinter 0",
    "add server be/n1 127.0.0.1:1 init-addr none", "add server be/n1 127.0.0.1:1 resolvers r",
    "add server be/n1 127.0.0.1:1 no-check", "add server be/n1 127.0.0.1:1 stick",
    "add server be/n1 127.0.0.1:1 namespace x",
    # add server: accepted, then their state.
    "add server be/n1 127.0.0.1:27186", "add server be/n2 127.0.0.1:27187 weight 5 enabled",
    "add server be/n10 127.0.0.1:27187 disabled", "add server be/f3 127.0.0.1:1 check",
    "add server be/f4 127.0.0.1:1 check enabled", "add server be/f6 127.0.0.1:1 weight 0 enabled",
    "add server be/f7 127.0.0.1:1 backup enabled",
    "add server be/f8 127.0.0.1:1 maxconn 3 maxqueue 4 enabled",
    "add server be/f9 127.0.0.1:1 addr 127.0.0.3 port 9 check inter 3s rise 4 fall 5",
    "add server be/n12 [::1]:80", "add server be/e7 /tmp/sock",
    "add server be/n1b 127.0.0.1:1 weight 256 weight 3 enabled",
    "add server be/n2b 127.0.0.1:1 enabled disabled",
    "add server be/n3b 127.0.0.1:1 disabled enabled",
    "add server be/n4b 127.0.0.1:1 backup no-backup enabled",
    "show servers state be", "show backend", "get weight be/n2", "set server be/n2 weight 50%",
    "get weight be/n2",
    # del server.
    "user:del server be/n1", "del server", "del server be", "del server nope/x",
    "del server be/nope", "del server be/s1", "del server be/n2",
    "set server be/n2 state maint", "del server be/n2", "del server be/n1", "del server be/n1",
    "del server be/s3", "del server be/n3 extra", "show servers state be",
    "add server be/s3 127.0.0.1:27183", "add server be/n22 127.0.0.1:27183",
    "show servers state be",
    # set server addr.
    "set server be/s2 addr", "set server be/s2 addr foo", "set server be/s2 addr 127.0.0.5",
    "set server be/s2 addr 127.0.0.6 port 27199", "set server be/s2 addr 127.0.0.6 port 0",
    "set server be/s2 addr 127.0.0.6 foo 5", "set server be/s2 addr ::1 port 27182",
    "set server be/s2 addr 127.0.0.1 port 27182", "set server be/s2 addr 127.0.0.1 port 27182",
    "set server be/s2 addr 127.0.0.1", "operator:set server be/s1 addr 127.0.0.1",
    "show servers state be",
]  # fmt: skip


def columns(answer: bytes) -> list[list[bytes]]:
    """pxname, svname, slim and status of each `show stat` line."""
    rows = [line.split(b",") for line in answer.splitlines()[1:]]
    return [[fields[i] for i in (0, 1, 6, 17)] for fields in rows if len(fields) > 17]


# Values that differ by design: the product, the process, its clock, its limits (HAProxy
# runs two threads and counts its own tasks), and when each server last changed.
OWN_VALUES = {
    "Name", "Version", "Release_date", "Nbthread", "Pid", "Uptime", "Uptime_sec",
    "Ulimit-n", "Maxsock", "Maxconn", "Hard_maxconn", "CumConns", "Tasks", "node",
    "Listeners", "TotalBytesOut", "Start_time_sec", "lastchg", "slim",
}  # fmt: skip


def typed(answer: bytes) -> dict[str, tuple[str, str, str]]:
    """`show stat|info typed` lines, or the same fields from the JSON forms, by key
    (`F.2.0.0.pxname.1`, `0.Name.1`): (tags, type, value)."""
    text = answer.decode()
    if not text.startswith("["):
        found = {}
        for line in text.splitlines():
            if line:
                key, tags, kind, value = line.split(":", 3)
                found[key] = (tags, kind, value)
        return found
    items = json.loads(text)
    objects = [o for row in items for o in row] if items and isinstance(items[0], list) else items
    found = {}
    for o in objects:
        field = o["field"]
        key = f"{field['pos']}.{field['name']}.1"
        if "objType" in o:
            key = f"{o['objType'][0]}.{o['proxyId']}.{o['id']}.{key}"
        tags = "".join(
            letter
            for table, word in ((ORIGINS, "origin"), (NATURES, "nature"), (SCOPES, "scope"))
            for letter, name in table.items()
            if name == o["tags"][word]
        )
        value = o["value"]["value"]
        found[key] = (tags, o["value"]["type"], value if isinstance(value, str) else str(value))
    return found


def same_fields(
    ours: dict[str, tuple[str, str, str]], theirs: dict[str, tuple[str, str, str]], line: str
) -> None:
    """Each field poise writes is HAProxy's: same place, tags and type, and the same value
    unless it is the process's own; HAProxy's fields poise has no counterpart for (memory,
    SSL, the per-module columns) are left out, as the README says."""
    assert ours, line
    for key, (tags, kind, value) in ours.items():
        if key.split(".")[-2] == "FailedAccepts":  # poise's own
            continue
        assert key in theirs, (line, key)
        assert (tags, kind) == theirs[key][:2], (line, key)
        if key.split(".")[-2] not in OWN_VALUES:
            assert value == theirs[key][2], (line, key, value, theirs[key][2])


def server_lines(text: str) -> dict[str, int]:
    """Where each `server NAME` line is in the configuration text (1-based)."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if words[:1] == ["server"]:
            found[words[1]] = number
    return found


def build_context(loop: asyncio.AbstractEventLoop, cfg: Path, text: str) -> Context:
    lines = server_lines(text)
    ctx = Context(loop, 4096)
    for name, pid, capability, algorithm, servers in PROXIES:
        configs = tuple(
            model.Server(
                sname, model.Address("ipv4", "127.0.0.1", port),
                model.Where(str(cfg), lines[sname]), sid, **options,
            )
            for sid, (sname, port, options) in enumerate(servers, 1)
        )  # fmt: skip
        proxy = model.Proxy(
            name, capability, model.Where(str(cfg), 1), id=pid, default_backend="be",
            balance=model.Balance(algorithm), servers=configs,
        )  # fmt: skip
        if proxy.is_backend:
            states = [ServerState(s, name) for s in configs]
            backend = Backend(
                proxy,
                states,
                lambda st, p=proxy: make_balancer(p.balance, st, False),  # type: ignore[misc]
            )
            ctx.add_backend(backend)
    fe = next(p for p in PROXIES if p[0] == "fe")
    proxy = model.Proxy("fe", fe[2], model.Where(str(cfg), 1), id=fe[1], default_backend="be")
    ctx.frontends["fe"] = Frontend(proxy, ctx.backends["be"], None, 4096)
    return ctx


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_new_commands_answer_as_haproxy_byte_for_byte(sockdir: Path, loop_kind: str) -> None:
    cfg = sockdir / "haproxy.cfg"
    text = HAPROXY_CFG.format(dir=sockdir, port=free_port())
    cfg.write_text(text)
    haproxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + WAIT
        while not (sockdir / "hap-operator.sock").exists():
            assert haproxy.poll() is None, haproxy.stderr.read() if haproxy.stderr else ""
            assert time.monotonic() < deadline, "haproxy did not create its stats socket"
            time.sleep(0.01)
        compare(sockdir, cfg, text, loop_kind)
    finally:
        haproxy.terminate()
        haproxy.wait(WAIT)


def compare(sockdir: Path, cfg: Path, text: str, loop_kind: str) -> None:
    levels = ("admin", "user", "operator")
    ours = {level: sockdir / f"{level}.sock" for level in levels}
    theirs = {level: sockdir / f"hap-{level}.sock" for level in levels}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ctx = build_context(loop, cfg, text)
        socks = open_admin_sockets([unix(ours[level], level) for level in levels])
        info = admin_info(model.Global(node="node1"), loop)
        servers = serve_admin(ctx, socks, info, 10.0)
        try:
            for line in SAME_AS_HAPROXY:
                level, _, command = line.partition(":")
                if not command or level not in (*levels, "columns", "fields"):
                    level, command = "admin", line
                look = columns if level == "columns" else masked
                judge = level
                level = "admin" if level in ("columns", "fields") else level
                data = command.encode() + b"\n"
                want = await blocking(exchange, theirs[level], data)
                got = await blocking(exchange, ours[level], data)
                if judge == "fields":
                    same_fields(typed(got), typed(want), line)
                else:
                    assert look(got) == look(want), line
        finally:
            for server in servers:
                server.close()

    run(loop_kind, main)
