"""TLS contexts from the configuration: the listening side (`bind ... ssl crt ...`: one
context per certificate, picked by SNI) and the server side (`server ... ssl`: one client
context per server, the name it sends and verifies).

Everything is read before poise binds (so before it detaches, chroots or drops root) and
at once: a certificate that cannot be loaded stops the start with its file named, and
`reload()` builds every context anew before any replaces the one in use, so a broken new
certificate never replaces a working one.

Listening side. The context given to the listening socket carries the bind's settings
(versions, ciphers, client certificate verification) and an `sni_callback` that switches
each handshake to the context of the chosen certificate: the exact name first, then a
wildcard (`*.example.org` for one label), else the first certificate, or, with
`strict-sni`, an `unrecognized_name` alert (as HAProxy 2.6 answers). OpenSSL keeps the
original context's versions, ciphers and verification mode when the context switches, so
every certificate's context is built with the same settings.

A client's handshake is run by `TlsAccept` (loop.start_tls on the accepted connection)
rather than by the server's `ssl=` argument, so that a failed one can be logged: HAProxy's
line for it (`127.0.0.1:40000 [date] fe/1: SSL handshake failure`, configuration.txt
8.2.5) and poise's failure line with OpenSSL's reason (core/explain.py). The session's
protocol is made once the handshake is done and gets the TLS transport as it would from
the server.

The contexts themselves are built in tls_context.py; the server side (`server ... ssl`:
ServerTls, its failures in words, a check's handshake) is tls_server.py. TlsSet, at the
end, holds every context of a configuration and reloads them together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from poise.certs import names
from poise.certs.check import (
    CertUse,
    bind_certificates,
    bundle_problems,
)
from poise.certs.inspect import key_algorithm, signature_name
from poise.certs.inspect import names as certificate_names
from poise.config import model
from poise.core import explain
from poise.core.proxyproto import ProxyHeader
from poise.core.sockstats import SocketCounters
from poise.core.tlsalert import alert_record
from poise.core.txn import Conn
from poise.net.listener import Listener
from poise.net.tls_context import raise_errors, server_side_context
from poise.net.tls_server import ServerTls

if TYPE_CHECKING:
    from poise.core.frontend import Frontend
    from poise.net.context import BackendIo, Context

# --- the listening side --------------------------------------------------------------------


@dataclass(slots=True)
class CertStore:
    """The certificates of one bind by the names they answer for: exact names, and
    wildcards by the part after `*.`; each name keeps the certificates in load order with
    the names each one excludes (`!name` filters of a crt-list)."""

    default: ssl.SSLContext
    exact: dict[str, list[tuple[ssl.SSLContext, frozenset[str]]]]
    wildcard: dict[str, list[tuple[ssl.SSLContext, frozenset[str]]]]
    strict: bool

    def pick(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context for a ClientHello's SNI (None: refuse the handshake)."""
        if server_name:
            name = names.normalize(server_name)
            for context, excluded in self.exact.get(name, ()):
                if name not in excluded:
                    return context
            _, dot, parent = name.partition(".")
            if dot:
                for context, excluded in self.wildcard.get(parent, ()):
                    if name not in excluded:
                        return context
        return None if self.strict else self.default


def build_store(tls: model.TlsBind, cache_size: int | None = None, http: bool = False) -> CertStore:
    """The contexts of a bind's certificates. `http`: an HTTP frontend, where a crt-list
    line's `alpn` loses `h2` as the bind's own does (poise speaks HTTP/1.1)."""
    uses, problems = bind_certificates(tls)
    if http:
        uses = [
            replace(use, alpn=tuple(p for p in use.alpn if p != "h2")) if use.alpn else use
            for use in uses
        ]
    now = dt.datetime.now(dt.UTC)
    for use in uses:
        problems += bundle_problems(use, now, "server", ())
    raise_errors(problems)
    exact: dict[str, list[tuple[ssl.SSLContext, frozenset[str]]]] = {}
    wildcard: dict[str, list[tuple[ssl.SSLContext, frozenset[str]]]] = {}
    contexts = []
    for use in uses:
        context = server_side_context(tls, use, cache_size)
        # What `proxy-v2-options cert-sig,cert-key` send about it (net/proxied.py).
        leaf = use.bundle.leaf
        context.poise_cert = (signature_name(leaf), key_algorithm(leaf))  # type: ignore[attr-defined]
        contexts.append(context)
        filters = use.filters or tuple(names_of(use))
        excluded = frozenset(names.normalize(f[1:]) for f in filters if f.startswith("!"))
        for pattern in (names.normalize(f) for f in filters if not f.startswith("!")):
            if names.wildcard_ok(pattern):
                wildcard.setdefault(pattern[2:], []).append((context, excluded))
            elif "*" not in pattern:
                exact.setdefault(pattern, []).append((context, excluded))
    return CertStore(contexts[0], exact, wildcard, tls.strict_sni)


def names_of(use: CertUse) -> list[str]:
    return certificate_names(use.bundle.leaf)


class ListenerTls:
    """The TLS side of one `bind` line: the context its sockets use, and its certificates."""

    __slots__ = ("cache_size", "context", "http", "settings", "store")

    def __init__(
        self, settings: model.TlsBind, cache_size: int | None = None, http: bool = False
    ) -> None:
        self.settings = settings
        self.cache_size = cache_size
        self.http = http
        self.store = build_store(settings, cache_size, http)
        self.context = self.store.default
        self.context.sni_callback = self.select

    def select(self, sslobj: Any, server_name: str | None, context: ssl.SSLContext) -> int | None:
        sslobj.poise_sni = server_name  # ssl_fc_sni (server_hostname is None server-side)
        chosen = self.store.pick(server_name)
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME  # strict-sni (HAProxy: alert 112)
        if chosen is not context:
            sslobj.context = chosen
        return None

    def rebuilt(self) -> CertStore:
        """The certificates read again (raises TlsError; the current ones stay)."""
        return build_store(self.settings, self.cache_size, self.http)


def client_sni(ssl_object: Any) -> str | None:
    """The SNI a client sent, as ListenerTls.select kept it on the connection."""
    name: str | None = getattr(ssl_object, "poise_sni", None)
    return name


# --- accepting clients ----------------------------------------------------------------------


class Accepting:
    """What the handshakes of one TLS listener share."""

    __slots__ = ("bind", "context", "ctx", "factory", "frontend", "sock", "timeout")

    def __init__(
        self,
        ctx: Context,
        frontend: Frontend,
        listener: Listener,
        factory: Callable[[], asyncio.Protocol],
    ) -> None:
        assert listener.tls is not None
        self.ctx = ctx
        self.frontend = frontend
        self.context = listener.tls
        self.factory = factory
        self.sock: SocketCounters | None = None  # `option socket-stats`: the listener's
        # HAProxy bounds a client's handshake by `timeout client`.
        self.timeout = frontend.client_timeout or 60.0
        self.bind = listener.bind.name or str(bind_number(frontend.proxy.binds, listener.bind))

    def __call__(self) -> asyncio.Protocol:
        return TlsAccept(self)

    def failed(self, client: tuple[str, int], accepted: float, exc: BaseException) -> None:
        """Log a failed handshake: HAProxy's line, then why."""
        sink = self.frontend.log
        if sink is None:
            return
        handshake = client_handshake_failure(exc, self.timeout)
        if handshake.empty and self.frontend.dontlognull:
            return  # a probe, as HAProxy's `option dontlognull` has it
        ip, port = client
        name = self.frontend.name
        line = explain.handshake_line(
            ip, port, accepted, name, bind=self.bind, message=handshake.message
        )
        sink.send(self.frontend.error_level, line)  # an error (HAProxy's sess_log)
        where = explain.client_address(ip, port)
        sink.explain(explain.handshake_failure_line(name, self.bind, where, handshake))


def bind_number(binds: Sequence[model.Bind], bind: model.Bind) -> int:
    """A bind's number in its frontend, from 1 (HAProxy's name for an unnamed listener)."""
    for number, candidate in enumerate(binds, 1):
        if candidate is bind:
            return number
    return 1


class TlsAccept(asyncio.Protocol):
    """A client connection on a TLS address until its handshake is done.

    Reading is paused and the handshake started (loop.start_tls). uvloop starts reading
    right after connection_made whatever the protocol asked, so the first bytes of the
    ClientHello may reach this object before TLS takes over: they are kept and given to
    TLS first (feed()). This object is then the protocol of the TLS transport until the
    session takes over: what arrives in between (data sent right after the handshake, an
    EOF, the end of the connection) is kept and handed to the session after its
    connection_made. While it lasts, the handshake counts among the context's sessions, so
    that a stop waits for it (or cuts it)."""

    __slots__ = (
        "accepted",
        "client",
        "early",
        "events",
        "killed",
        "proxied",
        "setup",
        "task",
        "transport",
    )

    def __init__(self, setup: Accepting) -> None:
        self.setup = setup
        self.early: list[bytes] | None = []  # None once TLS owns the connection
        self.events: list[tuple[str, bytes | Exception | None]] = []
        self.killed = False
        self.client = ("", 0)
        self.accepted = 0.0
        self.task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.proxied: ProxyHeader | None = None  # `accept-proxy`'s header (net/proxied.py)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = self.transport = cast(asyncio.Transport, transport)
        raw.pause_reading()  # asyncio keeps it paused; uvloop does not (see above)
        self.accepted = time.time()
        peer = raw.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client = (str(peer[0]), int(peer[1]))
        if self.proxied is not None and self.proxied.src is not None:
            self.client = self.proxied.src  # a failed handshake is logged with it
        ctx = self.setup.ctx
        ctx.sessions.add(self)
        self.task = ctx.loop.create_task(self.handshake(raw))

    async def handshake(self, raw: asyncio.Transport) -> None:
        setup = self.setup
        ctx = setup.ctx
        loop = ctx.loop
        raw.pause_reading()  # from here on nothing more is read before TLS takes over
        early, self.early = self.early, None
        if self.killed or raw.is_closing():
            self.gone()
            return
        spare = _spare_fd(raw)  # outlives the transport a failed handshake closes
        starting = loop.create_task(
            loop.start_tls(
                raw, self, setup.context, server_side=True, ssl_handshake_timeout=setup.timeout
            )
        )
        if early:
            # start_tls schedules TLS's connection_made then resume_reading; this runs
            # just after both, before the loop reads anything (callbacks run in order).
            loop.call_soon(loop.call_soon, feed, raw, b"".join(early))
        try:
            secure = await starting
        except Exception as exc:  # every way a handshake fails is logged, none is raised
            _send_alert(spare, exc)  # OpenSSL's alert, which the loop's TLS layer drops
            raw.abort()
            self.gone()
            if not self.killed:
                setup.failed(self.client, self.accepted, exc)
            return
        _send_alert(spare, None)
        if secure is None or self.killed:
            self.gone()
            return
        session = setup.factory()
        if self.proxied is not None:
            conn = getattr(session, "conn", None)
            if isinstance(conn, Conn):
                conn.proxied = self.proxied
        secure.set_protocol(session)
        session.connection_made(secure)
        ctx.forget(self)
        for kind, value in self.events:
            if kind == "data":
                assert isinstance(value, bytes)
                session.data_received(value)
            elif kind == "eof":
                if not session.eof_received():
                    secure.close()
            else:
                assert not isinstance(value, bytes)
                session.connection_lost(value)
        self.events = []

    def gone(self) -> None:
        """No session came of it: the connection (counted in when it was accepted,
        net/accept.py) is counted out."""
        ctx = self.setup.ctx
        ctx.forget(self)
        ctx.release(self.setup.frontend, self.setup.sock)

    def kill(self, code: str) -> None:
        """Stop at once (the process stops): the handshake is abandoned, not logged."""
        self.killed = True
        if self.transport is not None:
            self.transport.abort()  # start_tls ends at once

    def data_received(self, data: bytes) -> None:
        if self.early is not None:  # the clear connection, before TLS
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.events.append(("data", data))

    # The TLS transport's protocol until the session takes over.

    def eof_received(self) -> bool:
        self.events.append(("eof", None))
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))


def _spare_fd(raw: asyncio.Transport) -> int:
    """A duplicate of the connection's socket (-1 if there is none): asyncio and uvloop
    close the socket of a failed handshake before the task that started it resumes."""
    sock = raw.get_extra_info("socket")
    try:
        return os.dup(sock.fileno()) if sock is not None else -1
    except OSError:
        return -1


def _send_alert(spare: int, exc: BaseException | None) -> None:
    """Send the alert OpenSSL ended a failed handshake with (core/tlsalert.py), as
    HAProxy does, on the spare socket, then close that."""
    if spare < 0:
        return
    try:
        if isinstance(exc, ssl.SSLError) and (record := alert_record(exc.reason)):
            os.write(spare, record)
    except OSError:
        pass  # the client is gone
    finally:
        os.close(spare)


def feed(raw: asyncio.Transport, data: bytes) -> None:
    """Give TLS (the transport's protocol now, a BufferedProtocol in both loops) the bytes
    read before it took over."""
    if raw.is_closing():
        return
    tls = cast(asyncio.BufferedProtocol, raw.get_protocol())
    view = memoryview(data)
    while view:
        buffer = memoryview(tls.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        tls.buffer_updated(size)
        view = view[size:]


_OPENSSL_TEXT = re.compile(r"^\[[A-Z0-9_]+: [A-Z0-9_]+\] (.*?)(?: \(_ssl\.c:\d+\))?$")


def openssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason in its own words: `no shared cipher`, `http request`."""
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    match = _OPENSSL_TEXT.match(text)
    if match:
        return match.group(1)
    if exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return text


def client_handshake_failure(exc: BaseException, timeout: float) -> explain.Handshake:
    """HAProxy's message for a client's failed handshake (fc_err_str), and the reason."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        # HAProxy says "CA chain cannot be verified" for a fault above the client's own
        # certificate; Python does not give the depth, and the usual case is depth 0.
        return explain.Handshake(
            explain.HS_CRT_FAIL, f"certificate verify failed: {exc.verify_message}"
        )
    if isinstance(exc, ssl.SSLError):
        return explain.Handshake(explain.HS_FAILURE, openssl_reason(exc))
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc)
    ):
        wait = explain.duration(int(timeout * 1000))
        return explain.Handshake(
            explain.HS_TIMEOUT, f"the client did not complete it within {wait} (timeout client)"
        )
    if isinstance(exc, OSError) and exc.errno:
        # A reset: HAProxy 2.6 reports it as a handshake failure.
        return explain.Handshake(explain.HS_FAILURE, os.strerror(exc.errno).lower())
    if isinstance(exc, ConnectionError):
        return explain.Handshake(explain.HS_CLOSED, "the client closed the connection")
    return explain.Handshake(explain.HS_FAILURE, str(exc) or type(exc).__name__)


# --- all of a configuration ----------------------------------------------------------------


ServerMap = dict[tuple[str, int], ServerTls]
CheckMap = dict[tuple[str, int], tuple[ServerTls, str | None]]


class TlsSet:
    """Every TLS context of a configuration, loaded before poise binds."""

    def __init__(self, config: model.Config) -> None:
        self.config = config
        # One per `bind` line (its TlsBind, shared by the line's addresses), found by
        # identity: equal settings on two lines still get a context each, as in HAProxy.
        self.listeners: list[ListenerTls] = []
        self.servers: ServerMap = {}  # by (backend, server id)
        self.checks: CheckMap = {}
        self.attached: list[tuple[str, BackendIo]] = []
        for proxy in config.frontends:
            if proxy.disabled:
                continue
            for bind in proxy.binds:
                if bind.tls is not None and self.find(bind.tls) is None:
                    cache = config.global_.tls.cache_size
                    http = proxy.mode is model.Mode.HTTP
                    self.listeners.append(ListenerTls(bind.tls, cache, http))
        self.servers, self.checks = self.load_servers()

    def load_servers(self) -> tuple[ServerMap, CheckMap]:
        servers: ServerMap = {}
        checks: CheckMap = {}
        for proxy in self.config.backends:
            for server in proxy.servers:
                if server.tls is None:
                    continue
                key = (proxy.name, server.id)
                traffic = ServerTls(server.tls)
                if server.ssl:
                    servers[key] = traffic
                if server.check_ssl:
                    # The check's name: `check-sni`, else (unlike HAProxy 2.6, which sends
                    # none) the server's constant `sni`, so that a certificate for the
                    # wrong name takes the server down instead of failing every request.
                    checks[key] = (traffic, server.check_sni or traffic.name)
        return servers, checks

    def listener(self, bind: model.Bind) -> ssl.SSLContext | None:
        if bind.tls is None:
            return None
        found = self.find(bind.tls)
        if found is None:
            raise KeyError(bind.tls)
        return found.context

    def find(self, settings: model.TlsBind) -> ListenerTls | None:
        """The listener TLS built from this very TlsBind (at start-up, not per connection)."""
        return next((lst for lst in self.listeners if lst.settings is settings), None)

    def attach(self, name: str, io: BackendIo) -> None:
        """Give backend `name`'s I/O (net/context.py) its servers' TLS, now and on reloads."""
        self.fill(name, io)
        self.attached.append((name, io))

    def fill(self, name: str, io: BackendIo) -> None:
        io.server_tls = {sid: tls for (b, sid), tls in self.servers.items() if b == name}
        io.check_tls = {sid: tls for (b, sid), tls in self.checks.items() if b == name}

    def reload(self) -> None:
        """Read every certificate again. All of them are loaded before any replaces the
        one in use: on the first failure (TlsError, with the file named) nothing changes."""
        stores = [listener.rebuilt() for listener in self.listeners]
        servers, checks = self.load_servers()
        for listener, store in zip(self.listeners, stores, strict=True):
            listener.store = store
        self.servers, self.checks = servers, checks
        for name, io in self.attached:
            self.fill(name, io)
