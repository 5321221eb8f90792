"""The syslog datagrams of the same traffic through `poise run` and through HAProxy 2.6,
on the same configuration: `log-tag` (global, and a frontend's own), `log-send-hostname`,
the local and RFC 5424 formats, `option dontlog-normal`, `option log-separate-errors` (a
failed request at level err), and `option dontlognull`.

Each balancer runs as a process, as a user runs it; a tests/webapp.py backend answers both
and a UDP receiver of the test (tests/io/harness.py) takes the datagrams. What differs by
nature is masked before comparing: dates, the pid, the client port, the timers and %B (the
response head poise forwards is not the one HAProxy re-encodes). The lines are compared as
a sorted list: two frontends log at the same time.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.io.harness import LogReceiver
from tests.support import accepting, eventually, free_port, run
from tests.webapp import WebApp, request

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
]

CONFIG = """\
global
    nbthread 1
    log 127.0.0.1:{log} local0
    log 127.0.0.1:{log} format rfc5424 local1
    log-send-hostname lb1.example
    log-tag gtag
defaults
    log global
    mode http
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 0
frontend ready
    bind 127.0.0.1:{ready}
    option dontlognull
    default_backend web
frontend plain
    bind 127.0.0.1:{plain}
    log-tag ftag
    use_backend dead if {{ path_beg /dead }}
    default_backend web
frontend quiet
    bind 127.0.0.1:{quiet}
    option dontlog-normal
    option log-separate-errors
    use_backend dead if {{ path_beg /dead }}
    default_backend web
frontend tcpquiet
    mode tcp
    option tcplog
    option dontlog-normal
    bind 127.0.0.1:{tcpquiet}
    default_backend tcpweb
backend web
    server s1 127.0.0.1:{web}
backend dead
    server s2 127.0.0.1:{dead}
backend tcpweb
    mode tcp
    server s1 127.0.0.1:{web}
"""

GET = b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
# (frontend, bytes sent, whether the client then waits for the answer)
TRAFFIC: list[tuple[str, bytes, bool]] = [
    ("ready", b"", False),  # dontlognull: nothing
    ("plain", GET % b"/", True),
    ("plain", GET % b"/status/404", True),
    ("plain", GET % b"/dead", True),
    ("quiet", GET % b"/", True),  # dontlog-normal: nothing
    ("quiet", GET % b"/status/404", True),  # nor for a 404
    ("quiet", GET % b"/status/500", True),  # a 5xx is logged, at err
    ("quiet", GET % b"/dead", True),  # so is a refused connection
    ("tcpquiet", GET % b"/", True),  # nothing
    ("plain", GET % b"/last", True),  # logged after all the others
]
EXPECTED = 6  # lines per syslog target

_MASKS = [
    # the local format's header, and RFC 5424's
    (re.compile(r"^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d "), r"\1DATE "),
    (re.compile(r"^(<\d+>1) \S+ "), r"\1 DATE "),
    (re.compile(r"\[\d+\]: "), "[PID]: "),
    (re.compile(r"^(<\d+>1 DATE \S+ \S+) \d+ - - "), r"\1 PID - - "),
    (re.compile(r"127\.0\.0\.1:\d+ \[[^]]+\]"), "127.0.0.1:PORT [DATE]"),
    # httplog: timers, status, %B
    (re.compile(r" (-?\d+/){4}-?\d+ (\d+) \d+ "), r" TIMERS \2 B "),
]


def masked(line: str) -> str:
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


async def logged(command: list[str], tmp: Path, web: int) -> list[str]:
    receiver = await LogReceiver().start()
    ports = {name: free_port() for name in ("ready", "plain", "quiet", "tcpquiet")}
    cfg = tmp / "lb.cfg"
    cfg.write_text(CONFIG.format(log=receiver.port, web=web, dead=free_port(), **ports))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    try:
        await accepting(ports["ready"])
        for frontend, data, answered in TRAFFIC:
            if answered:
                await request(ports[frontend], data, until_close=True)
                continue
            _, writer = await asyncio.open_connection("127.0.0.1", ports[frontend])
            writer.write(data)
            writer.close()
            await writer.wait_closed()
        # The last request's lines come after those of the others (one at a time, one
        # thread).
        await receiver.wait_for(r'"GET /last HTTP/1.1"', 2, timeout=10)
        await eventually(lambda: len(receiver.lines) >= 2 * EXPECTED, 5, "the log lines")
    finally:
        proc.terminate()
        proc.wait(10)
        receiver.close()
    return sorted(masked(line) for line in receiver.lines)


def test_the_same_traffic_sends_the_same_datagrams(loop_kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        web = await WebApp("web").start()
        try:
            (tmp_path / "poise").mkdir()
            (tmp_path / "haproxy").mkdir()
            poise = [sys.executable, "-m", "poise.cli", "run", "-db", "-f"]
            ours = await logged(poise, tmp_path / "poise", web.port)
            theirs = await logged(["haproxy", "-db", "-f"], tmp_path / "haproxy", web.port)
        finally:
            await web.stop()
        assert ours == theirs
        # What the lines say, beyond being HAProxy's: the tags and the host name, the
        # level err (local0: 131) of the failed requests of `quiet` only.
        assert all(" lb1.example " in line for line in theirs), theirs
        assert len(theirs) == 2 * EXPECTED
        assert sum("ftag" in line for line in theirs) == 2 * 4
        quiet = [line for line in theirs if " quiet " in line]
        assert len(quiet) == 2 * 2
        assert all(line.startswith(("<131>", "<139>1 ")) for line in quiet), quiet

    run(loop_kind, main, timeout=60)
