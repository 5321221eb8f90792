"""The stats page and the Prometheus exporter with `nbthread 2` and 3, poise run as a user
runs it (issue 17): whichever worker answers, the figures are the whole balancer's, the
requests every worker served added up (admin/stats_merge.py, net/services.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.e2e.test_workers import POISE, children
from tests.support import eventually, free_port, run
from tests.webapp import Client

pytestmark = pytest.mark.e2e

CONFIG = """\
global
    nbthread {count}
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{port}
    log stdout format raw local0
    log-format "served %pid %HP"
    http-request return status 200 content-type text/plain string ok if {{ path_beg /r/ }}
    default_backend be

backend be
    server none 127.0.0.1:9

listen stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


async def get(port: int, path: str) -> bytes:
    client = await Client.connect(port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        client.writer.write(request.encode())
        status, _headers, body = await asyncio.wait_for(client.response(), 20)
        assert status == 200, (status, body)
        return body
    finally:
        client.close()


def csv_field(text: str, pxname: str, svname: str, column: str) -> int:
    lines = text.splitlines()
    columns = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        fields = line.split(",")
        if fields[:2] == [pxname, svname]:
            return int(fields[columns.index(column)] or 0)
    raise AssertionError(f"no row {pxname}/{svname}")


@pytest.mark.parametrize("count", [2, 3])
def test_the_page_and_the_exporter_add_up_every_worker(tmp_path: Path, count: int) -> None:
    async def main() -> None:
        port, stats = free_port(), free_port()
        cfg = tmp_path / "poise.cfg"
        cfg.write_text(CONFIG.format(count=count, port=port, stats=stats))
        log = tmp_path / "poise.log"
        out = log.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *POISE, "run", "-db", "-f", str(cfg), stdout=out, stderr=out
        )

        def output() -> str:
            return log.read_text(errors="replace")

        try:
            await eventually(
                lambda: len(children(proc.pid)) == count and "Loading success." in output(),
                15 * count,
                "every worker serving",
            )
            sent = 90
            for n in range(sent):
                await get(port, f"/r/{n}")
            await eventually(lambda: len(re.findall(r"^served \d+ /r/", output(), re.M)) == sent)
            served = re.findall(r"^served (\d+) /r/", output(), re.M)
            assert len(set(served)) == count, "every worker served some"

            totals: list[tuple[int, int]] = []

            async def page_and_metrics_say_sent() -> bool:
                text = (await get(stats, "/;csv")).decode()
                metrics = (await get(stats, "/metrics")).decode()
                found = re.search(
                    r'^haproxy_frontend_http_requests_total\{proxy="fe"\} (\d+)$', metrics, re.M
                )
                assert found is not None, metrics
                totals.append((csv_field(text, "fe", "FRONTEND", "req_tot"), int(found[1])))
                return totals[-1] == (sent, sent)

            deadline = asyncio.get_running_loop().time() + 20
            while not await page_and_metrics_say_sent():
                assert asyncio.get_running_loop().time() < deadline, totals[-5:]
                await asyncio.sleep(0.2)  # the others send their figures once a second
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
            out.close()

    run("uvloop", main, timeout=150)
