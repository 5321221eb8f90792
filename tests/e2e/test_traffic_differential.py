"""The traffic columns of `show stat` against HAProxy 2.6, the same configuration and
traffic under `poise run` and `haproxy -db`: which columns each row fills (HTTP and TCP
proxies), and the same lbtot, connect, reuse, econ (a request that finds no server counts
as a failed connection on its backend), chkdown, qmax, status words ("DOWN", "no check",
"UP") and session counts on every row; the times (qtime..ttime and their maxima),
downtime, lastsess and the rates are filled and sane where HAProxy fills them (their values
depend on timing). The same columns then reach the Prometheus exporter under HAProxy's
names (haproxy_server_loadbalanced_total, haproxy_backend_check_up_down_total,
haproxy_server_response_time_average_seconds...)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both, running, send
from tests.e2e.test_denied_differential import cli
from tests.support import eventually, free_port, run, until
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    retries 0
frontend fe
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if { path /metrics }
    use_backend nobody if { path_beg /nobody }
    default_backend app
backend app
    balance roundrobin
    server a 127.0.0.1:{app}
    server b 127.0.0.1:{app} check inter 100ms
    server dead 127.0.0.1:{dead} check inter 100ms fall 1
backend nobody
    server gone 127.0.0.1:{dead} check inter 100ms fall 1
frontend tcpfe
    mode tcp
    bind 127.0.0.1:{tcp}
    default_backend tcpapp
backend tcpapp
    mode tcp
    server t 127.0.0.1:{app}
"""
# Equal under both: counted, not timed.
SAME = ("stot", "lbtot", "connect", "reuse", "econ", "chkdown", "qmax", "status", "req_tot")
# Filled by both, with values that depend on timing.
TIMED = (
    "qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max", "ttime_max",
    "rate", "rate_max", "lastsess", "downtime", "lastchg", "req_rate", "req_rate_max",
    "conn_rate", "conn_rate_max",
)  # fmt: skip
# Filled by HAProxy, not by poise (yet): compression, idle pools, per-protocol modules.
NOT_YET = {
    "comp_in", "comp_out", "comp_byp", "comp_rsp", "srv_icur", "idle_conn_cur",
    "safe_conn_cur", "used_conn_cur", "need_conn_est", "agg_server_status",
    "agg_server_check_status", "agg_check_status",
}  # fmt: skip

# The columns of stats modules (`stats show-modules`): HTTP/1, HTTP/2, TLS counters.
MODULES = ("h1_", "h2_", "ssl_")


def table(csv: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = csv.splitlines()
    names = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(names, line.split(","), strict=False)) for line in lines[1:] if line]
    return {(r["pxname"], r["svname"]): r for r in rows}


Seen = dict[str, list[str] | dict[str, str]]


async def exchange(command: list[str], tmp: Path, app: WebApp) -> Seen:
    sock = tmp / f"{command[0].rsplit('/', 1)[-1]}.sock"
    tcp, dead = free_port(), free_port()
    config = CONFIG.replace("{app}", str(app.port)).replace("{sock}", str(sock))
    config = config.replace("{tcp}", str(tcp)).replace("{dead}", str(dead))
    async with running(command, tmp, config) as proxy:
        stats: dict[tuple[str, str], dict[str, str]] = {}

        async def read() -> dict[tuple[str, str], dict[str, str]]:
            return table(await cli(sock, "show stat"))

        # The stats socket may come up a moment after the frontend's (bounded: 5 s).
        await eventually(sock.exists, timeout=5, what="the stats socket")

        async def dead_are_down() -> bool:
            rows = await read()
            return rows["app", "dead"]["status"] == rows["nobody", "gone"]["status"] == "DOWN"

        await until(dead_are_down, timeout=3, what="the checks taking both servers down")
        # Six requests on one connection (the second and later may reuse the server
        # connection of the one before), then three that find no server.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        for _ in range(6):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
        for _ in range(3):
            await send(
                proxy.port, [b"GET /nobody HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"]
            )
        for _ in range(2):
            await send(tcp, [b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"])

        async def settle() -> bool:
            nonlocal stats
            stats = await read()
            return (
                stats["fe", "FRONTEND"]["scur"] == "0" and stats["tcpfe", "FRONTEND"]["scur"] == "0"
            )

        await until(settle, timeout=3, what="every connection counted out")
        scrape = b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        metrics = (await send(proxy.port, [scrape])).decode()
    seen: Seen = {}
    for name, row in stats.items():
        key = ":".join(name)
        seen[key + " filled"] = sorted(
            c for c, v in row.items() if v and c not in NOT_YET and not c.startswith(MODULES)
        )
        seen[key] = {c: row[c] for c in SAME if c in row}
        seen[key + " timed"] = {c: row[c] for c in TIMED if row.get(c)}
    seen["metrics"] = sorted(
        line.split(" ")[0]
        for line in metrics.splitlines()
        if line.startswith("haproxy_")
        and any(
            m in line
            for m in ("loadbalanced", "check_up_down", "time_average", "connection_attempts",
                      "connection_reuses", "last_session", "downtime", "max_queue")
        )
    )  # fmt: skip
    return seen


def test_traffic_columns_are_filled_and_counted_as_haproxy_does(loop_kind: str) -> None:
    async def main() -> None:
        app = await WebApp("app").start()
        try:
            ours, theirs = await both(exchange, app)
        finally:
            await app.stop()
        assert sorted(ours) == sorted(theirs)
        for key in sorted(theirs):
            if key.endswith(" timed"):  # the same columns filled; values are timing's
                assert sorted(ours[key]) == sorted(theirs[key]), key
            else:
                assert ours[key] == theirs[key], key
        counted = ours["app:BACKEND"]
        assert isinstance(counted, dict)
        assert (counted["lbtot"], counted["connect"], counted["reuse"]) == ("6", "2", "4")
        nobody = ours["nobody:BACKEND"]
        assert isinstance(nobody, dict)
        assert (nobody["econ"], nobody["lbtot"], nobody["status"]) == ("3", "0", "DOWN")
        timed = ours["app:a timed"]
        assert isinstance(timed, dict)
        assert int(timed["lastsess"]) <= 2 and int(timed["rate_max"]) >= 1

    run(loop_kind, main, timeout=60)
