"""The log analysers HAProxy's users run, over the file rsyslog writes from poise's and from
HAProxy 2.6's datagrams for the same traffic (tests/e2e/test_logs_like_haproxy.py's: errors,
aborts, a `<BADREQ>`, a refused connection, a stats-page and a `/metrics` hit; halog has its
own test there): goaccess with the HAProxy line layout its users configure, and lnav with its
built-in formats, count the same requests, statuses, backends and paths, with no line
they cannot read."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_logs_like_haproxy import EXPECTED, HAPROXY, POISE, logged
from tests.support import run
from tests.webapp import WebApp

pytestmark = pytest.mark.e2e

# goaccess reads HAProxy's `option httplog` lines with a layout of its users' own (it has no
# built-in one): the syslog header, then client, date, frontend, backend, timers, status,
# bytes, cookies, termination state, connection counts, queues and the request line.
GOACCESS = [
    "--log-format",
    '%^ %^ %^ %^ %^: %h:%^ [%d:%t.%^] %^ %v/%^ %^/%^/%^/%^/%L %s %b %^ %^ %^ %^ %^ "%r"',
    "--date-format=%d/%b/%Y",
    "--time-format=%H:%M:%S",
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each balancer's log as rsyslog's file would hold it (the local format's header
    without <PRI>), with Debian's tag: the test's configuration tags its lines gtag/ftag, as
    `log-tag` asks; here they are tagged `haproxy`, the default of both, as lnav's
    haproxy_log format expects."""
    tmp = tmp_path_factory.mktemp("logs")

    async def main() -> dict[str, Path]:
        web = await WebApp("web").start()
        files = {}
        try:
            for name, command in (("poise", POISE), ("haproxy", HAPROXY)):
                (tmp / name).mkdir()
                lines = await logged(command, tmp / name, web.port)
                local = [re.sub(r"^<\d+>", "", line) for line in lines if "]: " in line]
                assert len(local) == EXPECTED, lines
                tagged = [re.sub(r" [gf]tag\[", " haproxy[", line) for line in local]
                files[name] = tmp / f"{name}.log"
                files[name].write_text("".join(f"{line}\n" for line in tagged))
        finally:
            await web.stop()
        return files

    return run("uvloop", main, timeout=60)


def goaccess(log: Path) -> dict[str, object]:
    done = subprocess.run(
        ["goaccess", str(log), *GOACCESS, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    general = report["general"]

    def hits(panel: str) -> dict[str, int]:
        return {item["data"]: item["hits"]["count"] for item in report[panel]["data"]}

    statuses = {
        sub["data"]: sub["hits"]["count"]
        for group in report["status_codes"]["data"]
        for sub in group["items"]
    }
    return {
        "total": general["total_requests"],
        "valid": general["valid_requests"],
        "failed": general["failed_requests"],
        "statuses": statuses,
        "requests": hits("requests"),
        "backends": hits("vhosts"),
        "not_found": hits("not_found"),
    }


def test_goaccess_reads_poises_log_as_haproxys(logs: dict[str, Path]) -> None:
    ours, theirs = goaccess(logs["poise"]), goaccess(logs["haproxy"])
    assert ours["failed"] == theirs["failed"] == 0
    assert ours["total"] == ours["valid"] == EXPECTED
    assert ours == theirs


def lnav(log: Path, sql: str, home: Path) -> list[str]:
    done = subprocess.run(
        ["lnav", "-n", "-c", f";{sql}", str(log)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    )
    assert "error" not in done.stderr.lower(), done.stderr
    return done.stdout.splitlines()[1:]  # without the header row


def test_lnav_reads_poises_log_as_haproxys(logs: dict[str, Path], tmp_path: Path) -> None:
    """lnav takes every line of both files as a haproxy_log message and reads the same
    status, frontend, backend, server and termination state from each. (Its haproxy_log
    pattern wants a two-digit day in the syslog header, which rsyslog pads with a space on
    the 1st to the 9th: the header's day is written as the 18th in both files, so that the
    test reads the same on every day of the month.)"""
    query = (
        "SELECT status_code, frontend_name, backend_name, server_name, termination_state,"
        " count(*) FROM haproxy_log GROUP BY 1, 2, 3, 4, 5"
    )
    found = {}
    for name, log in logs.items():
        two_digits = tmp_path / log.name
        two_digits.write_text(re.sub(r"(?m)^(\w{3}) [ \d]\d ", r"\1 18 ", log.read_text()))
        formats = lnav(two_digits, "SELECT log_format, count(*) FROM all_logs GROUP BY 1", tmp_path)
        assert [row.split() for row in formats] == [["haproxy_log", str(EXPECTED)]], formats
        found[name] = lnav(two_digits, query, tmp_path)
    assert found["poise"] == found["haproxy"]
    assert any("<STATS>" in row for row in found["poise"]), found["poise"]
