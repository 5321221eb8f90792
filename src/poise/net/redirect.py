"""An HTTP frontend whose every request is answered by a `redirect` rule (the seed's
`unsecured` frontend: port 80 sends everyone to https://view.domain.local).

Requests are parsed with httptools; each complete request gets its redirect in order
(pipelining), the connection stays open when the client asked for keep-alive, a malformed
request gets HAProxy's 400 and a request head that is not complete within
`timeout http-request` gets its 408 (the slowloris defence). Full HTTP proxying comes with
HTTP mode.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

from poise.core import redirect
from poise.core.errors import ERROR_PAGES
from poise.core.httplog import HttpLogRecord
from poise.net.context import Context, FrontendRuntime, seconds
from poise.net.sessionlog import log_http, wall_clock


class RedirectSession(asyncio.Protocol):
    __slots__ = (
        "client_ip",
        "client_port",
        "ctx",
        "frontend",
        "gone",
        "headers_done",
        "host",
        "loop",
        "parser",
        "received",
        "request_start",
        "served",
        "timer",
        "transport",
        "url",
    )

    def __init__(self, ctx: Context, frontend: FrontendRuntime) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.frontend = frontend
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.host: bytes | None = None
        self.headers_done = False
        self.timer: asyncio.TimerHandle | None = None
        self.gone = False
        self.request_start = 0.0
        self.received = False  # bytes of the current request have arrived
        self.served = 0  # requests answered on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, hence a cast.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client_ip, self.client_port = peer[:2] if isinstance(peer, tuple) else ("unix", 0)
        if not self.ctx.admit(self.frontend):
            self.transport.abort()
            self.gone = True
            return
        self.ctx.sessions.add(self)
        self.wait_request(first=True)

    def wait_request(self, first: bool) -> None:
        timeouts = self.frontend.proxy.timeouts
        self.request_start = self.loop.time()
        wait = timeouts.http_request
        if not first and timeouts.http_keep_alive is not None:
            wait = timeouts.http_keep_alive
        delay = seconds(wait) or self.frontend.client_timeout
        self.cancel_timer()
        if delay is not None:
            self.timer = self.loop.call_later(delay, self.timed_out)

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.host = None
        self.headers_done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"host":
            self.host = value

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.cancel_timer()

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        version = self.parser.get_http_version()
        method = self.parser.get_method().decode("latin-1")
        uri = self.url.decode("latin-1")
        rule = self.frontend.proxy.redirects[0]
        host = self.host.decode("latin-1") if self.host is not None else None
        answer = redirect.response(rule, redirect.location(rule, uri, host), not keep_alive)
        self.transport.write(answer)
        self.log(rule.code, len(answer), "LR--", f"{method} {uri} HTTP/{version}", 0)
        self.served += 1
        self.received = False
        if keep_alive:
            self.wait_request(first=False)
        else:
            self.close()

    # -- the connection -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.on_message_complete()
        except httptools.HttpParserError:
            self.error(400, "PR--", -1 if not self.headers_done else 0)

    def timed_out(self) -> None:
        self.timer = None
        if self.received or not self.served:
            self.error(408, "cR--", -1)
        else:
            self.close()  # idle keep-alive connection: closed silently, as HAProxy does

    def error(self, code: int, state: str, tr: int) -> None:
        page = ERROR_PAGES[code]
        self.transport.write(page)
        self.log(code, 0, state, "<BADREQ>", tr)
        self.close()

    def log(self, status: int, size: int, state: str, request: str, tr: int) -> None:
        frontend = self.frontend
        if not frontend.tcplog:
            return
        now = self.loop.time()
        log_http(
            frontend,
            HttpLogRecord(
                client_ip=self.client_ip,
                client_port=self.client_port,
                request_date=wall_clock(self.request_start, now),
                frontend_name=frontend.name,
                backend_name=frontend.name,
                tr=tr,
                ta=int((now - self.request_start) * 1000),
                status=status,
                bytes_read=size,
                termination_state=state,
                actconn=self.ctx.actconn,
                feconn=frontend.cur_conn,
                request_line=request,
            ),
        )

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        self.cancel_timer()
        if not self.gone:
            self.transport.close()

    def kill(self, code: str) -> None:
        self.cancel_timer()
        if not self.gone:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gone:
            return
        self.gone = True
        self.cancel_timer()
        self.ctx.forget(self)
        self.ctx.release(self.frontend)
