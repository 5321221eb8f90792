"""The syslog datagrams of the same traffic through `poise run` and through HAProxy 2.6,
on the same configuration: `log-tag` (global, and a frontend's own), `log-send-hostname`,
the local and RFC 5424 formats (with `log-format-sd`), `option httpslog` (with TLS and a
resumed session, and without TLS), `option dontlog-normal`, `option log-separate-errors`
(a failed request at level err), `option dontlognull` (a client's close, and the 408 of
`timeout http-request`, when it sent nothing), a client that closes before its
request is whole (`CR-- 400 "<BADREQ>"`), and the stats page's and the Prometheus
exporter's answers (`<STATS>`, `<PROMEX>` in place of a server).

Each balancer runs as a process, as a user runs it; a tests/webapp.py backend answers both
and a UDP receiver of the test (tests/io/harness.py) takes the datagrams. What differs by
nature is masked before comparing: dates, the pid, the client port, the timers, %B (the
response head poise forwards is not the one HAProxy re-encodes) and %ac (the process's
connections: the one before may still be closing). The lines are compared as a sorted
list: two frontends log at the same time.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.io.harness import LogReceiver
from tests.support import accepting, eventually, free_port, run
from tests.tlskit import Pki, unverified
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
    timeout http-request 200ms
    default_backend web
frontend plain
    bind 127.0.0.1:{plain}
    log-tag ftag
    log-format-sd "[exampleSDID@1234 status=\\"%ST\\" fe=\\"%f\\" ts=\\"%tsc\\"]"
    stats enable
    stats uri /stats
    http-request use-service prometheus-exporter if {{ path /metrics }}
    use_backend dead if {{ path_beg /dead }}
    default_backend web
frontend quiet
    bind 127.0.0.1:{quiet}
    option dontlog-normal
    option log-separate-errors
    use_backend dead if {{ path_beg /dead }}
    default_backend web
frontend secure
    bind 127.0.0.1:{secure} ssl crt {crt}
    option httpslog
    default_backend web
frontend clear
    bind 127.0.0.1:{clear}
    option httpslog
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
# (frontend, bytes sent, whether the client then waits for the answer, lines logged per
# syslog target: the next connection waits for them, so that %ac and %fc are the same)
TRAFFIC: list[tuple[str, bytes, bool, int]] = [
    ("ready", b"", False, 0),  # dontlognull
    ("ready", b"", True, 0),  # nor the 408 of a connection that sent nothing
    ("ready", b"GET / HTTP/1.1\r\n", True, 1),  # but that of a head cut short: cR-- 408
    ("plain", GET % b"/", True, 1),
    ("plain", GET % b"/status/404", True, 1),
    ("plain", GET % b"/dead", True, 1),
    ("plain", GET % b"/stats", True, 1),  # plain/<STATS>
    ("plain", GET % b"/metrics", True, 1),  # plain/<PROMEX>
    ("quiet", GET % b"/", True, 0),  # dontlog-normal
    ("quiet", GET % b"/status/404", True, 0),  # not for a 404 either
    ("quiet", GET % b"/status/500", True, 1),  # a 5xx is logged, at err
    ("quiet", GET % b"/dead", True, 1),  # so is a refused connection
    ("tcpquiet", GET % b"/", True, 0),
    ("plain", b"", False, 1),  # CR-- 400 "<BADREQ>"
    ("plain", b"GET / HTTP/1.1\r\nHost: t\r\n", False, 1),  # the same: the head is not whole
    ("secure", GET % b"/", True, 2),  # twice: the second connection resumes the session
    ("clear", GET % b"/", True, 1),  # httpslog without TLS
    ("plain", GET % b"/last", True, 1),
]
EXPECTED = sum(item[3] for item in TRAFFIC)  # lines per syslog target

_MASKS = [
    # the local format's header, and RFC 5424's
    (re.compile(r"^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d "), r"\1DATE "),
    (re.compile(r"^(<\d+>1) \S+ "), r"\1 DATE "),
    (re.compile(r"\[\d+\]: "), "[PID]: "),
    (re.compile(r"^(<\d+>1 DATE \S+ \S+) \d+ - "), r"\1 PID - "),
    (re.compile(r"127\.0\.0\.1:\d+ \[[^]]+\]"), "127.0.0.1:PORT [DATE]"),
    # httplog: timers, status, %B
    (re.compile(r" (-?\d+/){4}-?\d+ (\d+) \d+ "), r" TIMERS \2 B "),
    # %ac: the process's connections, which counts the previous one while it closes
    (re.compile(r" \d+/(\d+/\d+/\d+/\+?\d+ \d+/\d+ )"), r" AC/\1"),
]


def masked(line: str) -> str:
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


def resumed_twice(port: int, data: bytes) -> bool:
    """Two TLS requests, the second resuming the first one's session: whether it did."""
    context = unverified()
    session = None
    reused: bool | None = None
    for _ in range(2):
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="lb.test", session=session) as tls,
        ):
            tls.sendall(data)
            while tls.recv(65536):
                pass
            session = tls.session
            reused = tls.session_reused
    return bool(reused)


async def logged(command: list[str], tmp: Path, web: int) -> list[str]:
    receiver = await LogReceiver().start()
    names = ("ready", "plain", "quiet", "secure", "clear", "tcpquiet")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names) + 1:  # the same port twice is not rare
        ports = {name: free_port() for name in (*names, "dead")}
    crt = Pki(tmp).issue("lb.pem", ["lb.test"])
    cfg = tmp / "lb.cfg"
    cfg.write_text(CONFIG.format(log=receiver.port, web=web, crt=crt, **ports))
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    try:
        await accepting(ports["ready"])
        expected = 0
        for frontend, data, answered, lines in TRAFFIC:
            if frontend == "secure":
                assert await asyncio.to_thread(resumed_twice, ports[frontend], data)
            elif answered:
                await request(ports[frontend], data, until_close=True)
            else:
                _, writer = await asyncio.open_connection("127.0.0.1", ports[frontend])
                writer.write(data)
                writer.close()
                await writer.wait_closed()
            expected += 2 * lines
            await eventually(lambda: len(receiver.lines) >= expected, 10, f"{expected} lines")  # noqa: B023
        # A line that should not have come would have come before the last request's.
        assert len(receiver.lines) == 2 * EXPECTED, receiver.lines
    finally:
        proc.terminate()
        proc.wait(10)
        receiver.close()
    return receiver.lines


POISE = [sys.executable, "-m", "poise.cli", "run", "-db", "-f"]
HAPROXY = ["haproxy", "-db", "-f"]


def test_the_same_traffic_sends_the_same_datagrams(loop_kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        web = await WebApp("web").start()
        try:
            (tmp_path / "poise").mkdir()
            (tmp_path / "haproxy").mkdir()
            ours = sorted(map(masked, await logged(POISE, tmp_path / "poise", web.port)))
            theirs = sorted(map(masked, await logged(HAPROXY, tmp_path / "haproxy", web.port)))
        finally:
            await web.stop()
        assert ours == theirs
        # What the lines say, beyond being HAProxy's: the tags and the host name, the
        # level err (local0: 131) of the failed requests of `quiet` only.
        assert all(" lb1.example " in line for line in theirs), theirs
        assert len(theirs) == 2 * EXPECTED
        assert sum("ftag" in line for line in theirs) == 2 * 8
        quiet = [line for line in theirs if " quiet " in line]
        assert len(quiet) == 2 * 2
        assert all(line.startswith(("<131>", "<139>1 ")) for line in quiet), quiet
        # option httpslog: 0 for the connection's and TLS errors, then whether the session
        # was resumed, the SNI, version and cipher; without TLS, "-" for the TLS fields.
        secure = sorted(line.split('"')[-1] for line in theirs if " secure~ " in line)
        assert secure[0].startswith(" 0/0000000000000000/0/0/0 lb.test/TLSv1.3/"), secure
        assert secure[-1].startswith(" 0/0000000000000000/0/0/1 lb.test/TLSv1.3/"), secure
        assert all(line.endswith('" 0/-/-/-/0 -/-/-') for line in theirs if " clear " in line)
        # log-format-sd: the structured data of plain's RFC 5424 messages only.
        sd = [line for line in theirs if " [exampleSDID@1234 " in line]
        assert len(sd) == 8 and all(line.startswith("<14") for line in sd), sd
        assert any('status="503" fe="plain" ts="SC--"] ' in line for line in sd), sd
        assert sum(" plain/<STATS> " in line or " plain/<PROMEX> " in line for line in theirs) == 4
        badreq = [line for line in theirs if '"<BADREQ>"' in line and " plain " in line]
        assert len(badreq) == 2 * 2 and all(" 400 B - - CR-- " in line for line in badreq)
        ready = [line for line in theirs if " ready " in line]
        assert len(ready) == 2 and all(" 408 B - - cR-- " in line for line in ready), ready

    run(loop_kind, main, timeout=60)


def halog(log: Path, *args: str) -> tuple[str, int]:
    """halog's report on a log file, and the parse errors it counted."""
    done = subprocess.run(
        ["halog", *args], stdin=log.open("rb"), capture_output=True, text=True, check=True
    )
    errors = re.search(r"(\d+) parsing errors", done.stderr)
    assert errors, done.stderr
    return done.stdout, int(errors[1])


@pytest.mark.skipif(shutil.which("halog") is None, reason="halog is not installed")
def test_halog_reads_poises_log_as_haproxys(tmp_path: Path) -> None:
    """HAProxy's own log analyser over the file rsyslog would write from each balancer's
    local-format datagrams (the header without its <PRI>): no parse error, and the same
    counts per status, per termination state and in total."""

    async def main() -> dict[str, Path]:
        web = await WebApp("web").start()
        files = {}
        try:
            for name, command in (("poise", POISE), ("haproxy", HAPROXY)):
                (tmp_path / name).mkdir()
                lines = await logged(command, tmp_path / name, web.port)
                local = [re.sub(r"^<\d+>", "", line) for line in lines if "]: " in line]
                assert len(local) == EXPECTED, lines
                files[name] = tmp_path / f"{name}.log"
                files[name].write_text("".join(f"{line}\n" for line in local))
        finally:
            await web.stop()
        return files

    files = run("uvloop", main, timeout=60)
    for report in (["-st"], ["-tc"], ["-cc"], ["-e", "-st"], ["-H", "-tc"]):
        ours, our_errors = halog(files["poise"], *report)
        theirs, their_errors = halog(files["haproxy"], *report)
        assert our_errors == their_errors == 0, report
        assert ours == theirs, report
