"""The HTTP rule language against HAProxy 2.6: the same configuration (variables,
converters, a map, ACLs on them) run by `poise run` and by `haproxy`, the same few hundred
requests sent to each, and every header the rules add must reach the backend with the
same value, every routing and every status must be the same."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import WebApp, request

pytestmark = pytest.mark.e2e
REQUESTS = 240
EXPRESSIONS = [
    "req.hdr(host),lower",
    "path,field(2,/)",
    "path,word(-1,/)",
    "path,regsub(/+,/,g)",
    "query,url_dec",
    "url_param(id),add(3),mul(2)",
    "url_param(id),mod(3)",
    "url_param(id),div(0)",
    "url_param(id),odd",
    "url_param(id),bool",
    "req.hdr(x-a),upper,length",
    "req.hdr(x-a),base64",
    "req.hdr(x-a),hex",
    "req.hdr(x-a),json",
    "req.hdr(x-a),sdbm",
    "req.hdr(x-a),djb2(1)",
    "req.hdr(x-a),crc32",
    "req.hdr(x-a),wt6",
    "req.hdr(x-a),xxh3",
    "req.hdr(x-a),bytes(1,3)",
    "req.hdr(x-a),concat(<,txn.host,>)",
    "req.hdr(x-a),strcmp(txn.host)",
    "src,ipmask(16)",
    "var(txn.host)",
    "var(txn.tier,none)",
    "var(txn.count)",
    "base32",
]
CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-var(txn.host) req.hdr(host),lower,field(1,:)
    http-request set-var(txn.tier) var(txn.host),map_beg({dir}/tiers.map)
    http-request set-var(txn.count) url_param(id),add(1) if {{ url_param(id) -m found }}
    http-request set-var(txn.count,ifgt) int(5)
    http-request deny deny_status 403 if {{ var(txn.tier) -m str blocked }}
{headers}
    use_backend gold if {{ var(txn.tier) -m str gold }}
    default_backend plain
backend gold
    server g 127.0.0.1:{gold}
backend plain
    server p 127.0.0.1:{plain}
"""
TIERS = "a. gold\nb.ex blocked\nc gold\n"


def requests() -> list[bytes]:
    pick = random.Random(1405)
    hosts = ["a.example", "B.EXample", "c.example:8080", "d.example", "bb.example", "x"]
    words = ["", "a", "Hello", "x/y", "é", "a,b", "%41", '"q"', "0", "12345"]
    found = []
    for _ in range(REQUESTS):
        path = "/" + "/".join(pick.choice(["", "p", "q", "rr", "%2F", "a b"]) for _ in range(3))
        path = path.replace(" ", "%20")
        query = pick.choice(
            ["", "?id=7", "?id=-4&x=1", "?id=abc", "?a%3Db", "?id=9223372036854775807"]
        )
        head = f"GET {path}{query} HTTP/1.1\r\nHost: {pick.choice(hosts)}\r\n"
        if pick.random() < 0.8:
            head += f"X-A: {pick.choice(words)}\r\n"
        found.append((head + "Connection: close\r\n\r\n").encode("latin-1", "replace"))
    return found


async def exchange(command: list[str], tmp: Path, apps: dict[str, WebApp]) -> list[str]:
    port = free_port()
    headers = "".join(
        f"    http-request set-header X-E{i} %[{e}]\n" for i, e in enumerate(EXPRESSIONS)
    )
    (tmp / "tiers.map").write_text(TIERS)
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(
        CONFIG.format(
            port=port, dir=tmp, headers=headers, gold=apps["g"].port, plain=apps["p"].port
        )
    )
    for app in apps.values():
        app.seen.clear()
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(port)
        for raw in requests():
            got = await request(port, raw, until_close=True)
            status = got.split(b" ", 2)[1].decode()
            line = f"{raw.split(b' ', 2)[1].decode()} -> {status}"
            for name, app in apps.items():
                if app.seen:
                    record = app.seen.pop()
                    values = {
                        k.lower(): v for k, v in record.headers if k.lower().startswith("x-e")
                    }
                    line += f" {name} " + " ".join(
                        f"{k}={values.get(k.lower())!r}" for k in sorted(values)
                    )
            seen.append(line)
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_the_same_rules_give_the_same_headers_routes_and_statuses(loop_kind: str) -> None:
    async def main() -> None:
        apps = {"g": await WebApp("g").start(), "p": await WebApp("p").start()}
        try:
            ours, theirs = await both(exchange, apps)
        finally:
            for app in apps.values():
                await app.stop()
        assert len(ours) == REQUESTS
        assert sum(" g " in line for line in ours) > 20 and sum("403" in line for line in ours)
        for mine, reference in zip(ours, theirs, strict=True):
            assert mine == reference

    run(loop_kind, main, timeout=120)
