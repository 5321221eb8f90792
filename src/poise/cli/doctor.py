"""`poise doctor URL`: test a balanced service as a client would, through the balancer, and
print one line per check (PASS, WARN or FAIL, what was seen, what to do). Exit status 0 when
nothing failed (warnings do not fail), 1 when a check failed, 2 for a usage error.

    poise doctor https://view.example/ --ca ca.pem -f /etc/poise/haproxy.cfg --websocket /ws
"""

from __future__ import annotations

import argparse
import sys

from poise.doctor.facts import UsageError
from poise.doctor.report import exit_status, render_json, render_text


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="test a service through the balancer: poise doctor URL",
        description="Test a balanced service as a client would (DNS, TCP, TLS, HTTP, "
        "persistence, WebSocket) and a configuration for the classic mistakes.",
    )
    add = parser.add_argument
    add("url", metavar="URL", help="the service as clients name it: https://NAME[:PORT]/PATH")
    add("--ca", metavar="FILE", help="trust this CA (PEM) instead of the system store")
    add(
        "--resolve",
        action="append",
        default=[],
        metavar="NAME:ADDR",
        help="use ADDR for NAME instead of DNS (curl's NAME:PORT:ADDR too; repeatable)",
    )
    add(
        "--nameserver",
        metavar="IP[:PORT]",
        help="resolve the name by asking this DNS server directly",
    )
    add(
        "-f",
        dest="files",
        action="append",
        default=[],
        metavar="CONFIG",
        help="the balancer's haproxy.cfg: name servers, check binds, add the config checks",
    )
    add(
        "-k",
        dest="keepalived",
        action="append",
        default=[],
        metavar="KEEPALIVED_CONF",
        help="keepalived.conf: its VIPs count as the balancer's addresses (with -f)",
    )
    add("--websocket", metavar="PATH", help="try a WebSocket upgrade on PATH and a message")
    add(
        "--requests",
        type=positive_int,
        default=10,
        metavar="N",
        help="requests for the sticky and spread checks (default 10)",
    )
    add(
        "--idle",
        type=seconds,
        metavar="SECONDS",
        help="keep the WebSocket idle this long, then check it still answers",
    )
    add(
        "--timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="for each connect, handshake and response (default 5)",
    )
    add(
        "--server-header",
        action="append",
        default=[],
        metavar="NAME",
        help="a response header that names the server which answered (repeatable)",
    )
    add("--json", action="store_true", help="print a JSON report instead of lines")


def main(ns: argparse.Namespace) -> int:
    # The probes (asyncio, ssl, DNS) are loaded only when the doctor runs.
    from poise.doctor.run import Options, doctor

    if ns.idle is not None and not ns.websocket:
        print("poise doctor: --idle needs --websocket PATH", file=sys.stderr)
        return 2
    options = Options(
        url=ns.url,
        ca_file=ns.ca,
        resolve=tuple(ns.resolve),
        nameserver=ns.nameserver,
        config_files=tuple(ns.files),
        keepalived=tuple(ns.keepalived),
        websocket=ns.websocket,
        requests=ns.requests,
        idle=ns.idle,
        timeout=ns.timeout,
        server_headers=tuple(ns.server_header),
    )
    try:
        target, checks = doctor(options)
    except UsageError as exc:
        print(f"poise doctor: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(target.url, checks) if ns.json else render_text(checks))
    return exit_status(checks)
