"""A running poise: builds the run-time objects from a linked Config, serves the listeners,
runs the health checks, and stops (at once, or softly after the open sessions end).

The order matters and is HAProxy's: everything that can fail for a user's reason (config,
name resolution, binding, the user to switch to) fails before anything starts, so a bad
start leaves nothing half-running.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from poise.admin import server_state
from poise.admin.stats import fullconn
from poise.checks.scheduler import HealthChecks
from poise.config import model
from poise.core import proc, slowstart, sticktable
from poise.core.backend import Backend, start
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.http import cache as http_cache
from poise.core.limits import Limits
from poise.core.server import ServerState
from poise.core.sockstats import SocketCounters
from poise.core.stopping import GLOBAL, HTTPCLIENT, stop_order, stopped_message
from poise.core.termination import Failure
from poise.core.traffic import tick
from poise.net.accept import Acceptor, FrontendGate, frontend_acceptor
from poise.net.admin_shared import follow_commands
from poise.net.admin_socket import admin_info, serve_admin
from poise.net.context import Context
from poise.net.http import HttpSession
from poise.net.inherited import SockpairListener, SockpairReceiver, open_bind
from poise.net.keepalive import keepalive_options
from poise.net.limits import apply_limits
from poise.net.listener import Listener
from poise.net.logsink import LogSink, console, log_hostname
from poise.net.peers import PeersSection, local_name, start_peers
from poise.net.resolver import ServerResolvers
from poise.net.services import start_services
from poise.net.siblings import Alone, Siblings
from poise.net.tcp import TcpSession
from poise.net.tls import Accepting, TlsSet

# Turns of the event loop a soft stop waits for the connections accepted last (see
# wait_sessions).
ACCEPT_TURNS = 8


class Runtime:
    def __init__(self, config: model.Config, addrs: dict[tuple[str, str], str]) -> None:
        # What the date() and env() fetches read (core/proc.py).
        proc.clock, proc.environ = time.time, os.environ
        # The stick tables, on a clock in milliseconds (core/sticktable.py).
        self.clock = lambda: int(time.monotonic() * 1000) + sticktable.CLOCK_BASE
        sticktable.install(config.tables, self.clock)
        http_cache.install(config.caches)  # the `cache` sections, empty
        self.config = config
        self.addrs = addrs
        self.listeners: list[Listener] = []
        self.admin_socks: list[socket.socket] = []
        self.servers: list[asyncio.AbstractServer] = []
        self.acceptors: list[Acceptor] = []
        self.receivers: list[SockpairReceiver] = []  # `bind sockpair@N`
        self.sockpairs: dict[int, socket.socket] = {}  # `server sockpair@N`, by N
        self.limits: Limits | None = None  # maxconn and maxsock, set by bind()
        self.stopped: asyncio.Event | None = None
        self.ctx: Context | None = None
        self.checks: HealthChecks | None = None
        self.resolvers: ServerResolvers | None = None
        self.peers: list[PeersSection] = []
        self.sinks: dict[str, LogSink] = {}
        self.rng = random.Random()
        # `load-server-state-from-file`: each file read once, its servers by name.
        self.server_states: dict[str, dict[tuple[str, str], server_state.SavedServer]] = {}
        self.drain_task: asyncio.Task[None] | None = None
        self.purge_handle: asyncio.TimerHandle | None = None
        self.tls: TlsSet | None = None  # the TLS contexts, loaded by bind()
        # A master's worker: HAProxy's workers do not say "Proxy GLOBAL stopped".
        self.in_worker = False
        # The other workers of this balancer (`nbthread`): a worker's bus (bus.py).
        self.siblings: Siblings = Alone()

    # -- before the loop ----------------------------------------------------------------

    def bind(self, opener: Callable[[model.Bind, str, int], Listener] = open_bind) -> None:
        """Work out maxconn from the descriptor limit and raise the limit (LimitError,
        a BindError, when an explicit maxconn cannot be held: HAProxy refuses to start),
        then open every listening socket; raises BindError (and closes what was opened).
        A worker of a master passes an `opener` that takes the master's sockets."""
        self.limits = apply_limits(self.config)
        try:
            # Every certificate and CA file first (TlsError names a file that fails).
            self.tls = TlsSet(self.config)
            for proxy in self.config.frontends:
                if proxy.disabled:
                    continue
                maxconn = proxy.maxconn or self.config.global_.maxconn
                for bind in proxy.binds:
                    self.listeners.append(opener(bind, proxy.name, maxconn))
                    self.listeners[-1].tls = self.tls.listener(bind)
        except BaseException:
            for listener in self.listeners:
                listener.sock.close()
            self.listeners.clear()
            raise

    # -- in the loop --------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        global_ = self.config.global_
        limits = self.limits
        if limits is None:  # bind() was not called: no listener, limits as they are
            limits = self.limits = apply_limits(self.config)
        ctx = self.ctx = Context(loop, limits.maxconn, limits.maxsock)
        ctx.siblings = self.siblings
        if global_.maxaccept is not None:  # -1: as many as are waiting
            ctx.maxaccept = global_.maxaccept if global_.maxaccept > 0 else 1 << 30
        pid = os.getpid()
        host = log_hostname(global_)
        for proxy in self.config.proxies:
            if proxy.logs:
                tag = proxy.log.tag or global_.log_tag
                self.sinks[proxy.name] = LogSink(proxy.logs, tag=tag, pid=pid, hostname=host)
        if global_.logs:  # HAProxy's internal <HTTPCLIENT> proxy logs there
            self.sinks[HTTPCLIENT] = LogSink(
                global_.logs, tag=global_.log_tag, pid=pid, hostname=host
            )
        for proxy in self.config.backends:
            servers = [
                ServerState(s, proxy.name, self.addrs.get((proxy.name, s.name)))
                for s in proxy.servers
            ]
            for state in servers:
                fd = state.config.address.inherited_fd
                if fd is not None and fd in self.sockpairs:
                    state.sockpair_fd = self.sockpairs[fd].fileno()
            if proxy.server_state_file is not None:
                self.load_server_states(proxy, servers, loop.time())
            allbackups = model.Option.ALLBACKUPS in proxy.options
            backend = Backend(
                proxy,
                servers,
                functools.partial(
                    make_balancer, proxy.balance, allbackups=allbackups, rng=self.rng
                ),
                self.sinks.get(proxy.name),
                loop.time,
            )
            io = ctx.add_backend(backend)
            io.keepalive = keepalive_options(proxy, "srv")  # `option srvtcpka`
            if self.tls is not None:
                self.tls.attach(proxy.name, io)  # `server ... ssl` contexts
        for proxy in self.config.frontends:
            target = proxy.default_backend
            if proxy.use_backends:
                target = proxy.use_backends[0].backend
            elif target is None and proxy.is_backend:
                target = proxy.name  # a `listen` section is its own backend
            runtime = Frontend(
                proxy,
                ctx.backends.get(target) if target else None,
                self.sinks.get(proxy.name),
                limits.maxconn,
            )
            ctx.frontends[proxy.name] = runtime
            runtime.original_dst |= any(b.proxy.originalto for b in ctx.backends.values())
        for backend in ctx.backends.values():
            if not backend.fullconn:  # HAProxy's default, from the frontends routing here
                backend.fullconn = fullconn(backend.proxy, ctx.frontends.values())
        for listener in self.listeners:
            frontend = ctx.frontends[listener.frontend]
            sock = socket_counters(frontend, listener)
            factory = self.protocol_factory(ctx, frontend, sock)
            if isinstance(listener, SockpairListener):  # `bind sockpair@N`
                if listener.tls is not None:
                    factory = accepting(ctx, frontend, listener, factory, sock)
                gate = FrontendGate(ctx, frontend, sock)  # counted as accepted connections
                receiver = SockpairReceiver(loop, listener.sock, factory, gate, ctx)
                frontend.listeners.append(receiver)
                if frontend.paused:
                    receiver.reading = True
                else:
                    receiver.start()
                self.receivers.append(receiver)
                continue
            if listener.tls is not None:  # TCP, unix (`/path`, `abns@`) or `fd@N ssl`
                # net/tls.py runs the handshake and logs a failed one as HAProxy does.
                factory = accepting(ctx, frontend, listener, factory, sock)
            self.acceptors.append(frontend_acceptor(ctx, frontend, listener, factory, sock))
        info = admin_info(global_, loop)
        follow_commands(ctx, info)  # nbthread: the commands another worker answered
        if self.admin_socks:
            self.acceptors += serve_admin(
                ctx,
                self.admin_socks,
                info,
                global_.stats_timeout / 1000,
                self.export_listeners,
            )
        self.checks = HealthChecks(ctx, self.sinks, self.rng, global_.spread_checks)
        self.checks.start()
        self.resolvers = ServerResolvers(ctx, self.config)  # `server ... resolvers NAME`
        self.resolvers.start()
        start_services(ctx, global_)  # the stats page's and exporter's process facts, rates
        if self.config.peers:  # `peers` sections: the tables shared with other nodes
            local = local_name(global_.localpeer)
            self.peers = start_peers(self.config.peers, sticktable.TABLES, local, self.clock)
            for section in self.peers:
                await section.start()
        self.purge_pools()
        # No "Proxy X started." line: HAProxy 2.6 logs nothing when it starts.
        if on_ready is not None:
            on_ready()
        await self.stopped.wait()

    def load_server_states(
        self, proxy: model.Proxy, servers: list[ServerState], now: float
    ) -> None:
        """`load-server-state-from-file`: the states a previous process saved with `show
        servers state`, applied before any traffic (admin/server_state.py); a file that
        cannot be read is a warning, as in HAProxy, and the servers start as configured."""
        path = proxy.server_state_file
        assert path is not None
        saved = self.server_states.get(path)
        if saved is None:
            try:
                with open(path, encoding="utf-8", errors="replace") as file:
                    text = file.read()
            except OSError as exc:
                console("WARNING", f"Proxy '{proxy.name}': Can't open server state file "
                        f"'{path}': {exc.strerror}.")  # fmt: skip
                text = ""
            saved, problems = server_state.parse(text) if text else ({}, [])
            for problem in problems:
                console("WARNING", f"Proxy '{proxy.name}': {problem} ('{path}').")
            self.server_states[path] = saved
        for state in servers:
            entry = saved.get((proxy.name, state.name))
            if entry is not None:
                server_state.apply(state, entry, now)

    def protocol_factory(
        self, ctx: Context, frontend: Frontend, sock: SocketCounters | None = None
    ) -> Callable[[], asyncio.Protocol]:
        session = HttpSession if frontend.proxy.mode is model.Mode.HTTP else TcpSession
        if sock is None:
            return lambda: session(ctx, frontend)

        def counted() -> asyncio.Protocol:  # `option socket-stats`: the listener's too
            made = session(ctx, frontend)
            made.conn.sock = sock
            return made

        return counted

    def purge_pools(self) -> None:
        """Close idle server connections kept past the purge delay, and read the rates of
        the stats (core/traffic.py `tick`); again in a second."""
        ctx = self.ctx
        if ctx is None or (self.stopped is not None and self.stopped.is_set()):
            return
        now = ctx.loop.time()
        tick(ctx.frontends.values(), ctx.backends.values(), now)
        for backend in ctx.backends.values():
            for pool in ctx.io[backend].pools.values():
                pool.purge(now)
            # `slowstart`: the weights and limits of servers ramping up, each second (the
            # step HAProxy's own arithmetic takes, core/slowstart.py).
            ramping = [s for s in backend.servers if s.warm_since is not None]
            if ramping and any([slowstart.step(server, now) for server in ramping]):
                start(backend.changed())
        self.purge_handle = ctx.loop.call_later(1.0, self.purge_pools)

    def close_pools(self) -> None:
        if self.purge_handle is not None:
            self.purge_handle.cancel()
            self.purge_handle = None
        if self.ctx is not None:
            for backend in self.ctx.backends.values():
                for pool in self.ctx.io[backend].pools.values():
                    pool.close_all()

    def export_listeners(self) -> list[socket.socket]:
        """`_getsocks` (net/getsocks.py): the listening sockets, from now on shared with
        another process, so that a pause here no longer shuts them down for both
        (HAProxy's FD_CLONED)."""
        socks = []
        for listener in self.listeners:
            if isinstance(listener, SockpairListener) or listener.sock.fileno() < 0:
                continue
            listener.inherited = True
            socks.append(listener.sock)
        for acceptor in self.acceptors:
            if acceptor.sock in socks:
                acceptor.backlog = 0
        return socks

    # -- stopping -----------------------------------------------------------------------

    def close_listeners(self) -> None:
        for acceptor in self.acceptors:
            acceptor.close()
        self.acceptors.clear()
        for server in self.servers:
            server.close()
        self.servers.clear()
        for receiver in self.receivers:
            receiver.close()
        self.receivers.clear()
        for listener in self.listeners:
            listener.sock.close()
        self.listeners.clear()
        for sock in self.admin_socks:
            sock.close()
        self.admin_socks.clear()

    def stop_now(self) -> None:
        """SIGTERM: stop at once; open sessions are cut."""
        self.close_listeners()
        for section in self.peers:
            section.stop()
        if self.checks is not None:
            self.checks.stop()
        if self.resolvers is not None:
            self.resolvers.stop()
        ctx = self.ctx
        if ctx is not None:
            ctx.stopping = True
            for session in list(ctx.sessions):
                session.kill(Failure.KILLED_DATA.code)
        self.close_pools()
        # Nothing is logged: HAProxy 2.6 dies at once on SIGTERM/SIGINT, silently.
        if self.stopped is not None:
            self.stopped.set()

    def stop_soft(self) -> None:
        """SIGUSR1: stop accepting, let the open sessions finish (bounded by
        `hard-stop-after`)."""
        ctx = self.ctx
        if ctx is None or self.stopped is None or ctx.stopping:
            # Already stopping: a second SIGUSR1 (the master passes one on to every worker
            # it still has, an old one finishing its sessions included) changes nothing and
            # says nothing, as in HAProxy, whose proxies are stopped once.
            return
        ctx.stopping = True
        order = self.stop_order()
        self.close_listeners()
        for section in self.peers:
            section.stop()
        if self.checks is not None:
            self.checks.stop()
        if self.resolvers is not None:
            self.resolvers.stop()
        self.report_stopped(ctx, order)
        loop = asyncio.get_running_loop()
        hard = self.config.global_.hard_stop_after
        if hard is not None:
            loop.call_later(hard / 1000.0, self.stop_now)
        self.drain_task = loop.create_task(self.wait_sessions(ctx))

    async def wait_sessions(self, ctx: Context) -> None:
        assert self.stopped is not None
        # A connection accepted just before the listeners closed gets its session a few
        # turns of the loop later (the transport and connection_made are scheduled): let
        # it arrive, or it would be cut when the process leaves (a reload must drop none).
        for _ in range(ACCEPT_TURNS):
            await asyncio.sleep(0)
        if ctx.sessions:
            ctx.drained.clear()
        else:
            ctx.drained.set()
        await ctx.drained.wait()
        self.close_pools()
        if not self.stopped.is_set():
            self.stopped.set()

    def stop_order(self) -> list[str]:
        """The names a soft stop reports, in HAProxy's order (core/stopping.py)."""
        listening = [] if self.in_worker else [(GLOBAL, protocol(s)) for s in self.admin_socks]
        listening += [
            (lst.frontend, "sockpair" if isinstance(lst, SockpairListener) else protocol(lst.sock))
            for lst in self.listeners
        ]
        enabled = [proxy.name for proxy in self.config.proxies if not proxy.disabled]
        return stop_order(listening, enabled)

    def report_stopped(self, ctx: Context, order: list[str]) -> None:
        """HAProxy's "Proxy X stopped" lines, at the moment the listeners close: on the
        terminal, and to each proxy's own log targets (GLOBAL's go to the terminal only)."""
        for name in order:
            fe = ctx.frontends.get(name)
            be = ctx.backends.get(name)
            message = stopped_message(name, fe.cum_conn if fe else 0, be.cum_sess if be else 0)
            console("WARNING", message)
            sink = self.sinks.get(name) if name != GLOBAL else None
            if sink is not None:
                sink.send("warning", message)

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_now)
        loop.add_signal_handler(signal.SIGINT, self.stop_now)
        loop.add_signal_handler(signal.SIGUSR1, self.stop_soft)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        for sock in self.sockpairs.values():
            sock.close()
        self.sockpairs.clear()


def protocol(sock: socket.socket) -> str:
    """The HAProxy protocol a listening socket belongs to (for the stop order)."""
    if sock.family == socket.AF_INET6:
        return "tcp6"
    if sock.family == socket.AF_INET:
        return "tcp4"
    return "unix"


def run_until_stopped(runtime: Runtime, loop: asyncio.AbstractEventLoop, **kw: Any) -> None:
    async def main() -> None:
        runtime.install_signals()
        await runtime.serve(**kw)

    try:
        loop.run_until_complete(main())
    finally:
        runtime.close()
        loop.close()


def socket_counters(frontend: Frontend, listener: Listener) -> SocketCounters | None:
    """`option socket-stats`: the counters of one of the frontend's listeners (its row in
    the stats), numbered by its `bind` as HAProxy numbers its listeners."""
    if model.Option.SOCKET_STATS not in frontend.proxy.options:
        return None
    binds = frontend.proxy.binds
    number = next((n for n, b in enumerate(binds, 1) if b is listener.bind), len(binds))
    sock = SocketCounters(number, listener.bind.name, listener.address)
    frontend.sockets.append(sock)
    frontend.sockets.sort(key=lambda s: s.sid)
    return sock


def accepting(
    ctx: Context,
    frontend: Frontend,
    listener: Listener,
    factory: Callable[[], asyncio.Protocol],
    sock: SocketCounters | None,
) -> Accepting:
    """A TLS listener's handshakes, counted out on its socket's counters if they fail."""
    setup = Accepting(ctx, frontend, listener, factory)
    setup.sock = sock
    return setup
