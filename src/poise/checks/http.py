"""The HTTP health-check probe (`option httpchk`): connect, send the request, read the
response until the expectation can decide, then close. What to send and how to judge the
answer are decided in core/httpcheck.py; this module only moves the bytes and keeps time.

Time is HAProxy's, as HAProxy 2.6 behaves (measured against it on 127.0.0.1):
- The connection may take min(`timeout connect`, `inter`) when `timeout check` is set
  (and `timeout connect` too), else `inter`. Past that, it is "Layer4 timeout".
- Without `timeout check`, the whole check ends `inter` after it started.
- With it, the reading may go on until `timeout check` after the connection was made;
  but it is never cut before the connect allowance above has run out: HAProxy sets the
  later expiry without requeueing its check task, which wakes at the first one. So with
  `timeout connect 5s`, `inter 2s` and `timeout check 300ms`, a server that never answers
  is "Layer7 timeout" after 2s, and one that answers in 400ms passes, in HAProxy as here.

The response is parsed by httptools (llhttp), strict as HAProxy's H1 parser is, except
that a bare LF ends a line (HAProxy accepts it in responses). At most the check buffer
(CHECK_BUFFER_BYTES) is read. The connection is closed with a reset (SO_LINGER 0), as the
TCP probe does, so that checks leave no TIME_WAIT sockets behind on the balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import replace

import httptools

from poise.checks.probe import LINGER_RESET, send
from poise.config import model
from poise.core import health, httpcheck
from poise.net.proxied import check_header
from poise.net.source import check_connection
from poise.net.tls_server import ServerTls, check_handshake


class HttpProbe:
    """One backend's HTTP check, prepared once: the request bytes and the expectation."""

    __slots__ = ("expectation", "request")

    def __init__(self, check: model.HttpCheck) -> None:
        self.request = httpcheck.build_request(check)
        self.expectation = httpcheck.Expectation.from_config(check.expect)

    async def run(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        check_timeout: float | None,
        tls: tuple[ServerTls, str | None] | None = None,
        *,
        proxy: frozenset[str] = frozenset(),
        source: model.Source | None = None,
        unix: bool = False,
        socks4: tuple[str, int] | None = None,
    ) -> health.CheckResult:
        """One check of host:port. Timeouts in seconds; `check_timeout` is `timeout
        check` (None when unset). With `tls` (check-ssl), over TLS: a handshake that
        fails is a Layer6 failure with its reason."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader = _ResponseReader(self.expectation, loop, started)
        try:
            transport, _ = await asyncio.wait_for(
                check_connection(lambda: reader, (host, port), source, unix, socks4),
                connect_timeout,
            )
        except TimeoutError:
            return health.l4_timeout(reader.elapsed())
        except OSError as exc:
            return health.l4_failed(_strerror(exc), reader.elapsed())
        if proxy:  # the PROXY header, before TLS (net/proxied.py)
            send(transport, check_header(proxy, transport))
        if tls is not None:
            left = started + connect_timeout - loop.time()
            secure, failure, _ = await check_handshake(transport, reader, *tls, left)
            if secure is None:
                assert failure is not None
                return replace(failure, duration_ms=reader.elapsed())
            transport = secure
        deadline = started + connect_timeout
        if check_timeout:
            deadline = max(deadline, loop.time() + check_timeout)
        try:
            send(transport, self.request)
            return await asyncio.wait_for(reader.verdict, deadline - loop.time())
        except TimeoutError:
            return httpcheck.timeout(reader.elapsed())
        finally:
            _close(transport)


class _ResponseReader(asyncio.Protocol):
    """Feeds the response to httptools and asks the expectation after every read."""

    __slots__ = ("expectation", "loop", "parser", "received", "response", "started", "verdict")

    def __init__(
        self, expectation: httpcheck.Expectation, loop: asyncio.AbstractEventLoop, started: float
    ) -> None:
        self.expectation = expectation
        self.loop = loop
        self.started = started
        self.response = httpcheck.Response()
        self.received = 0
        self.verdict: asyncio.Future[health.CheckResult] = loop.create_future()
        self.parser = httptools.HttpResponseParser(self)
        self.parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)

    def elapsed(self) -> int:
        return int((self.loop.time() - self.started) * 1000)

    def decide(self, result: health.CheckResult | None) -> None:
        if result is not None and not self.verdict.done():
            self.verdict.set_result(result)

    # -- asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.verdict.done():
            return
        response = self.response
        room = httpcheck.CHECK_BUFFER_BYTES - self.received
        if len(data) >= room:
            data = data[:room]
            response.over = True  # the check buffer is full: judge what is there
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # a 101 answer: its head is all there is to judge
        except httptools.HttpParserError:
            response.invalid = True
        self.decide(self.expectation.evaluate(response, self.elapsed()))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost() judges what was read

    def connection_lost(self, exc: Exception | None) -> None:
        if self.verdict.done():
            return
        if isinstance(exc, OSError) and self.received == 0:
            # A reset before any answer (HAProxy reports the system's error as such).
            self.decide(health.socket_error(_strerror(exc), self.elapsed()))
            return
        # An error after some data counts as the end of it, as in HAProxy, which
        # reports network errors only when it got nothing else.
        self.response.over = True
        result = self.expectation.evaluate(self.response, self.elapsed())
        self.decide(result or httpcheck.invalid_response(self.elapsed()))

    # -- httptools callbacks ------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        if self.response.code is None:
            self.response.reason += reason

    def on_headers_complete(self) -> None:
        if self.response.code is None:
            self.response.code = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.expectation.reads_body:
            self.response.body += body

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() >= 200:  # not an interim (1xx) answer
            self.response.over = True


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _close(transport: asyncio.Transport) -> None:
    if transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()
