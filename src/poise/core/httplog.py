"""The `option httplog` line, as HAProxy 2.6 writes it:
`%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc
%sq/%bq %hr %hs %{+Q}r` (configuration.txt 8.2.3). Captures are empty for now, and an
empty capture block is left out, as HAProxy does.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.core.logline import NOSRV, format_date


@dataclass(slots=True)
class HttpLogRecord:
    client_ip: str
    client_port: int
    request_date: float  # epoch seconds: when the request began (%tr)
    frontend_name: str
    backend_name: str
    server_name: str = NOSRV
    tr: int = -1  # time to receive the full request head
    tw: int = -1
    tc: int = -1
    tr_server: int = -1  # server response time (%Tr)
    ta: int = 0  # active time of the request, to the end of the response
    status: int = 0
    bytes_read: int = 0
    captured_request_cookie: str = "-"
    captured_response_cookie: str = "-"
    termination_state: str = "----"  # %tsc: the two-letter state and two cookie flags
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False
    srv_queue: int = 0
    backend_queue: int = 0
    request_line: str = "<BADREQ>"
    frontend_tls: bool = False


def format_httplog(r: HttpLogRecord) -> str:
    return (
        f"{r.client_ip}:{r.client_port} [{format_date(r.request_date)}] "
        f"{r.frontend_name}{'~' if r.frontend_tls else ''} {r.backend_name}/{r.server_name} "
        f"{r.tr}/{r.tw}/{r.tc}/{r.tr_server}/{r.ta} {r.status} {r.bytes_read} "
        f"{r.captured_request_cookie} {r.captured_response_cookie} {r.termination_state} "
        f"{r.actconn}/{r.feconn}/{r.beconn}/{r.srv_conn}/"
        f"{'+' if r.redispatched else ''}{r.retries} {r.srv_queue}/{r.backend_queue} "
        f'"{r.request_line}"'
    )
