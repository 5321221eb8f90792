"""`poise vrrp` serving keepalived.conf's `virtual_server`s (lb_kind NAT) with poise's own
TCP proxy (and, for `protocol UDP`, the datagram relay of lvs_udp.py), where Keepalived
would program the kernel's IPVS.

Each virtual server is a frontend listening on its addresses and a backend of its real
servers (and its sorry server), balanced by the scheduler's counterpart (rr and lc ignore
the weights; wrr, wlc, sed and nq weigh them; sh hashes the client's address over a map, mh
over a Maglev table; twos is the best of two random draws; dh, fo and ovf are IPVS's own,
core/balancer/ipvs.py) and, with `persistence_timeout`, first by the client's recent server
(core/balancer/persistence.py). dh chooses by the address the client connected to: a
virtual server with several addresses gets one frontend and backend per address, each
with that address's choice.

The listeners are bound with IP_FREEBIND when `poise vrrp` starts, before this node holds
the virtual address: they then take connections exactly while the address is here (the
kernel delivers nothing for an address the node does not hold), so the service follows the
address through a failover with no start or stop to order against the VRRP state, and a
backup is ready the moment it becomes master.

The checkers run on every node, master or backup, as Keepalived's do (`ha_suspend`: only
while an address of the virtual server is on this node); their results go through
core/lvs.py, whose decisions become the servers' state here, and its words become the log.

SIGHUP reloads them too (`reload`): unchanged ones keep running, changed ones keep their
sockets. The real servers see connections from the client's address, as IPVS NAT keeps it,
where the node is set up for a transparent source (net/source.py), else from this node's;
with poise's own `send_proxy` / `send_proxy_v2` a real server is told the client's address
in a PROXY protocol header instead (net/proxied.py builds it), from this node's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import ip_address

from poise.config import model
from poise.config.keepalived_lvs_model import IPAddress, Scheduler, VirtualServer
from poise.config.keepalived_model import Command, KeepalivedConfig
from poise.config.tune import SERVER_WEIGHT_MAX
from poise.core import lvs
from poise.core.backend import Backend, start
from poise.core.balancer import Balancer
from poise.core.balancer.factory import make_balancer
from poise.core.balancer.ipvs import DestinationHash, Overflow, WeightedFailover
from poise.core.balancer.persistence import Persistent
from poise.core.frontend import Frontend
from poise.core.limits import Limits
from poise.core.server import ServerState
from poise.core.termination import Failure
from poise.net.accept import Acceptor, frontend_acceptor
from poise.net.context import Context
from poise.net.limits import apply_limits
from poise.net.listener import BindError, Listener, open_listener
from poise.net.source import transparent_refused
from poise.net.tcp import TcpSession
from poise.vrrp.log import Logger
from poise.vrrp.lvs_probes import probe
from poise.vrrp.lvs_udp import UdpRelay, open_udp
from poise.vrrp.router import StartError
from poise.vrrp.scripts import RunAs, run_as, spawn
from poise.vrrp.system import load, transparent_route

DEFAULT_MAXCONN = 1_000  # until open() works maxconn out from the descriptor limit
# IPVS's timeouts for TCP: 15 minutes established (ipvsadm --set), 2 minutes in FIN_WAIT.
IDLE_MS = 900_000
FIN_MS = 120_000
CONNECT_MS = 5_000
OMEGA_WAIT = 5.0  # seconds each `omega` down script gets at shutdown

_BALANCE = {
    Scheduler.RR: model.Balance(model.Algorithm.ROUNDROBIN),
    Scheduler.WRR: model.Balance(model.Algorithm.ROUNDROBIN),
    Scheduler.LC: model.Balance(model.Algorithm.LEASTCONN),
    Scheduler.WLC: model.Balance(model.Algorithm.LEASTCONN),
    Scheduler.SED: model.Balance(model.Algorithm.LEASTCONN),
    Scheduler.NQ: model.Balance(model.Algorithm.LEASTCONN),
    Scheduler.SH: model.Balance(model.Algorithm.SOURCE),
    Scheduler.MH: model.Balance(model.Algorithm.SOURCE, hash_type=model.HashType.MAGLEV),
    Scheduler.TWOS: model.Balance(model.Algorithm.RANDOM, draws=2),
    # IPVS's own (core/balancer/ipvs.py): the proxy's `balance` is only what passes the key
    Scheduler.DH: model.Balance(model.Algorithm.ROUNDROBIN),
    Scheduler.FO: model.Balance(model.Algorithm.ROUNDROBIN),
    Scheduler.OVF: model.Balance(model.Algorithm.ROUNDROBIN),
}


def _address(ip: IPAddress, port: int) -> model.Address:
    return model.Address("ipv6" if ip.version == 6 else "ipv4", str(ip), port)


def proxy_of(
    vs: VirtualServer, transparent: bool = False, destination: IPAddress | None = None
) -> model.Proxy:
    """The `listen` section a virtual server stands for; `transparent`: the real servers
    see the client's address (LVS NAT's), as `source 0.0.0.0 usesrc clientip` does, and
    the node's own where the host refuses it (net/source.py); `destination`: only its
    addresses on that IP (dh's frontends, one per address)."""
    balance = _BALANCE[vs.scheduler]
    if vs.persistence_timeout is not None:
        # The balancer gets the client's address (`balance source`'s key) to remember it.
        balance = model.Balance(
            model.Algorithm.SOURCE, balance.draws, balance.hash_type, options=balance.options
        )
    servers = [
        model.Server(
            f"{rs.address}:{rs.port}",
            _address(rs.address, rs.port),
            rs.where,
            i + 1,
            proxy_protocol=_proxy(rs.proxy_protocol),
        )
        for i, rs in enumerate(vs.real_servers)
    ]
    if vs.sorry_server is not None:
        ip, port = vs.sorry_server
        servers.append(
            model.Server(
                f"sorry {ip}:{port}",
                _address(ip, port),
                vs.where,
                len(servers) + 1,
                proxy_protocol=_proxy(vs.proxy_protocol),
            )
        )
    if transparent:  # not for those told the client's address by a PROXY header
        servers = [
            s
            if s.proxy_protocol
            else replace(
                s,
                source=model.Source(
                    "::" if s.address.family == "ipv6" else "0.0.0.0",
                    usesrc="clientip",
                    fallback=True,
                ),
            )
            for s in servers
        ]
    binds = tuple(
        model.Bind(_address(ip, port), vs.where, freebind=True, reuseport=False)
        for ip, port in vs.endpoints
        if destination is None or ip == destination
    )
    several = len({ip for ip, _ in vs.endpoints}) > 1
    return model.Proxy(
        f"{vs.name} to [{destination}]" if destination is not None and several else vs.name,
        model.Capability.LISTEN,
        vs.where,
        mode=model.Mode.TCP,
        binds=binds,
        servers=tuple(servers),
        balance=balance,
        retries=1,
        redispatch=1,  # a real server that refuses: the connection goes to another one
        timeouts=model.Timeouts(
            connect=CONNECT_MS,
            client=IDLE_MS,
            server=IDLE_MS,
            client_fin=FIN_MS,
            server_fin=FIN_MS,
        ),
    )


def _proxy(version: str | None) -> frozenset[str]:
    """poise's send_proxy / send_proxy_v2 as a server's PROXY flags (net/proxied.py)."""
    return frozenset() if version is None else frozenset({version})


def told_by_proxy(vs: VirtualServer) -> bool:
    """Does every server of `vs` learn the client's address from a PROXY header?"""
    versions = [rs.proxy_protocol for rs in vs.real_servers]
    if vs.sorry_server is not None:
        versions.append(vs.proxy_protocol)
    return bool(versions) and all(versions)


def balancer_factory(
    vs: VirtualServer, clock: Callable[[], float], destination: IPAddress | None = None
) -> Callable[[Sequence[ServerState]], Balancer]:
    inner_balance = _BALANCE[vs.scheduler]

    def scheduler(servers: Sequence[ServerState]) -> Balancer:
        if vs.scheduler is Scheduler.DH:
            assert destination is not None
            return DestinationHash(servers, str(destination))
        if vs.scheduler is Scheduler.FO:
            return WeightedFailover(servers)
        if vs.scheduler is Scheduler.OVF:
            return Overflow(servers)
        return make_balancer(inner_balance, servers, allbackups=False)

    def build(servers: Sequence[ServerState]) -> Balancer:
        inner = scheduler(servers)
        if vs.persistence_timeout is None:
            return inner
        return Persistent(inner, vs.persistence_timeout, vs.persistence_granularity, clock)

    return build


class Service:
    """One virtual server: its proxy, its pool's decisions, its checkers."""

    def __init__(
        self, vs: VirtualServer, listeners: list[Listener], udp: list[socket.socket]
    ) -> None:
        self.vs = vs
        self.pool = lvs.Pool(vs)
        self.listeners = listeners  # TCP
        self.udp = udp  # UDP: the sockets, and their relays once started
        self.relays: list[UdpRelay] = []
        self.backends: list[Backend] = []  # one; dh: one per destination address
        self.acceptors: list[Acceptor] = []
        self.checkers: list[asyncio.Task[None]] = []
        configured = [rs.weight for rs in vs.real_servers] or [1]
        self.scale = max(1.0, max(configured) / SERVER_WEIGHT_MAX)

    def destinations(self) -> list[IPAddress | None]:
        """What each backend is for: dh's destination addresses, else one for all."""
        if self.vs.scheduler is not Scheduler.DH:
            return [None]
        return list(dict.fromkeys(ip for ip, _ in self.vs.endpoints))

    def weight(self, weight: int) -> int:
        """The balancer weight for a Keepalived weight: 1 or 0 for rr and lc, scaled into
        HAProxy's 0-256 when a real server's weight is above it (fo and ovf compare
        Keepalived's weights as they are)."""
        if weight <= 0:
            return 0
        if not self.vs.scheduler.weighted:
            return 1
        if self.vs.scheduler.raw_weights:
            return weight
        return min(SERVER_WEIGHT_MAX, max(1, round(weight / self.scale)))

    def apply(self) -> None:
        """Make the servers what the pool says: in it with a weight (0: inhibited), or out."""
        weights = self.pool.weights()
        if self.vs.sorry_server is not None:
            weights.append(self.pool.sorry_weight())
        for backend in self.backends:
            for server, weight in zip(backend.servers, weights, strict=True):
                server.up = weight is not None
                server.weight = self.weight(weight or 0)
            start(backend.changed())


def transparent_host() -> str | None:
    """Why this node cannot connect from the clients' addresses (None: it can). Netlink
    (pyroute2's synchronous IPRoute): before the loop runs, or in a thread."""
    try:
        return transparent_refused() or transparent_route()
    except OSError as exc:
        return f"cannot read the policy routes: {exc.strerror or exc}"


class Lvs:
    def __init__(self, config: KeepalivedConfig, log: Logger) -> None:
        self.config = config
        self.log = log
        self.services: list[Service] = []
        self.scripts: set[asyncio.Task[None]] = set()  # notify scripts running
        self.ctx: Context | None = None
        self.limits = Limits(DEFAULT_MAXCONN, 2 * DEFAULT_MAXCONN, derived=True)
        self.rng = random.Random()
        # Why the real servers cannot see the clients' addresses here (None: they can).
        self.refused: str | None = None

    def open(self) -> None:
        """Raise the descriptor limit as `poise run` does (maxconn follows from it, as in
        HAProxy), then bind every virtual server's addresses (IP_FREEBIND); raises
        StartError."""
        virtual_servers = self.config.virtual_servers
        if not virtual_servers:
            return
        self.refused = transparent_host()
        try:
            proxies = tuple(proxy_of(vs) for vs in virtual_servers)
            self.limits = apply_limits(model.Config(model.Global(), proxies))
            for vs in virtual_servers:
                self.services.append(Service(vs, *_listen(vs, self.limits.maxconn)))
        except BindError as exc:
            self.close()
            raise StartError(str(exc)) from None

    def start(self) -> None:
        """In the loop: accept, balance, and run the checkers."""
        limits = self.limits
        self.ctx = Context(asyncio.get_running_loop(), limits.maxconn, limits.maxsock)
        for service in self.services:
            self._start(service)

    def _start(self, service: Service) -> None:
        ctx = self.ctx
        assert ctx is not None
        loop = ctx.loop
        vs = service.vs
        refused = self.refused
        if refused is not None and not told_by_proxy(vs):
            self.log.info(
                f"VS {vs.name}: the real servers see this node's address, not the client's "
                f"as LVS NAT's: {refused}",
                level="warning",
            )
        service.backends.clear()
        for destination in service.destinations():
            proxy = proxy_of(vs, refused is None, destination)
            servers = [ServerState(s, proxy.name) for s in proxy.servers]
            backend = Backend(
                proxy, servers, balancer_factory(vs, loop.time, destination), clock=loop.time
            )
            service.backends.append(backend)
            ctx.add_backend(backend)
            frontend = Frontend(proxy, backend, None, self.limits.maxconn)
            ctx.frontends[proxy.name] = frontend
            for listener in service.listeners:
                if _for(listener.sock, destination):
                    service.acceptors.append(
                        frontend_acceptor(ctx, frontend, listener, _sessions(ctx, frontend))
                    )
            for sock in service.udp:
                if _for(sock, destination):
                    relay = UdpRelay(loop, sock, backend, refused is None, self.log.info)
                    service.relays.append(relay)
                    service.relays[-1].start()
        self._act(service, service.pool.start())
        service.apply()
        for i, rs in enumerate(vs.real_servers):
            for j in range(len(rs.checkers)):
                self.log.info(f"Activating healthchecker for service {rs.label} for VS {vs.name}")
                service.checkers.append(loop.create_task(self._checker(service, i, j)))

    async def reload(self, path: str) -> None:
        """SIGHUP: a virtual server that did not change keeps running as it is; one whose
        addresses stay but whose settings changed restarts its checkers and balancing on
        the same listening sockets (its real servers keep their state, as Keepalived keeps
        them); one that went away stops (its connections go on), a new one starts. A file
        with errors changes nothing (the VRRP daemon logs them)."""
        config, _ = await asyncio.to_thread(load, path)
        if config is None:
            return
        self.refused = await asyncio.to_thread(transparent_host)
        if not config.virtual_servers and not self.services:
            self.config = config
            return
        old = {_key(s.vs): s for s in self.services}
        kept = changed = started = 0
        services: list[Service] = []
        for vs in config.virtual_servers:
            previous = old.pop(_key(vs), None)
            if previous is not None and previous.vs == vs:
                services.append(previous)
                kept += 1
                continue
            if previous is not None:
                await self._retire(previous, close=False)
                service = Service(vs, previous.listeners, previous.udp)
                service.pool.carry(previous.pool)
                changed += 1
            else:
                try:
                    service = Service(vs, *_listen(vs, self.limits.maxconn))
                except BindError as exc:
                    self.log.error(f"cannot start VS {vs.name}: {exc}")
                    continue
                started += 1
            services.append(service)
            self._start(service)
        for service in old.values():
            self.log.info(f"Removing Virtual Server {service.vs.name}")
            await self._retire(service, close=True)
        self.config, self.services = config, services
        self.log.info(
            f"Reloaded virtual servers: {kept} kept, {changed} changed, {len(old)} stopped, "
            f"{started} started"
        )

    async def _retire(self, service: Service, *, close: bool) -> None:
        """Stop a service's checkers and acceptors; its sockets too with `close`."""
        for task in service.checkers:
            task.cancel()
        for task in service.checkers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        service.checkers.clear()
        for acceptor in service.acceptors:
            acceptor.close()
        service.acceptors.clear()
        for relay in service.relays:
            relay.close(sockets=False)
        service.relays.clear()
        if close:
            _close_sockets(service)

    async def _checker(self, service: Service, rs_index: int, ck_index: int) -> None:
        checker = service.vs.real_servers[rs_index].checkers[ck_index]
        who = self._who(checker.misc_path) if checker.misc_path else RunAs(None, None)
        warmup = checker.delay_loop if checker.warmup is None else checker.warmup
        await asyncio.sleep(self.rng.uniform(0, warmup))
        while True:
            if service.vs.ha_suspend and not any(is_local(ip) for ip, _ in service.vs.endpoints):
                await asyncio.sleep(checker.delay_loop)
                continue
            try:
                result = (
                    lvs.Result(False, "no such user") if who is None else await probe(checker, who)
                )
            except Exception as exc:  # a probe's bug must not stop the checker
                result = lvs.Result(False, f"{type(exc).__name__}: {exc}")
            delay, actions = service.pool.result(rs_index, ck_index, result)
            self._act(service, actions)
            await asyncio.sleep(delay)

    def _act(self, service: Service, actions: list[lvs.Action]) -> None:
        changed = False
        for action in actions:
            if isinstance(action, lvs.Log):
                self.log.info(action.text)
                changed = True
            else:
                task = asyncio.get_running_loop().create_task(self._run(action.command))
                self.scripts.add(task)
                task.add_done_callback(self.scripts.discard)
        if changed:
            service.apply()

    def _who(self, command: Command) -> RunAs | None:
        """Whom a script runs as; None (and an error) when that user does not exist: the
        script is not run (a failed check), never as poise's own user instead."""
        try:
            return run_as(self.config, command)
        except KeyError:
            self.log.error(f"[{command.text}]: no user '{command.user}': not run")
            return None

    async def _run(self, command: Command) -> None:
        who = self._who(command)
        if who is None:
            return
        try:
            process = await spawn(command.argv, who)
            await process.wait()
        except OSError as exc:
            self.log.error(f"cannot run [{command.text}]: {exc.strerror or exc}")

    async def stop(self) -> None:
        """Stop the checkers and listeners; with `omega`, the down scripts first."""
        for service in self.services:
            await self._retire(service, close=False)
            for action in service.pool.stop():
                if isinstance(action, lvs.Log):
                    self.log.info(action.text)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._run(action.command), OMEGA_WAIT)
        if self.ctx is not None:
            for session in list(self.ctx.sessions):
                session.kill(Failure.KILLED_DATA.code)
        self.close()

    def close(self) -> None:
        for service in self.services:
            for acceptor in service.acceptors:
                acceptor.close()
            service.acceptors.clear()
            for relay in service.relays:
                relay.close(sockets=False)
            service.relays.clear()
            _close_sockets(service)


def _sessions(ctx: Context, frontend: Frontend) -> Callable[[], asyncio.Protocol]:
    def factory() -> asyncio.Protocol:
        return TcpSession(ctx, frontend)

    return factory


def _for(sock: socket.socket, destination: IPAddress | None) -> bool:
    """Is this listening socket one of `destination`'s (None: of every one)?"""
    if destination is None:
        return True
    return ip_address(sock.getsockname()[0].split("%")[0]) == destination


def _key(vs: VirtualServer) -> tuple[frozenset[tuple[IPAddress, int]], str]:
    return frozenset(vs.endpoints), vs.protocol


def _listen(vs: VirtualServer, maxconn: int) -> tuple[list[Listener], list[socket.socket]]:
    """The listening sockets of a virtual server, TCP or UDP; raises BindError."""
    listeners: list[Listener] = []
    udp: list[socket.socket] = []
    try:
        for bind in proxy_of(vs).binds:
            if vs.protocol == "TCP":
                listeners.append(open_listener(bind, vs.name, maxconn))
                continue
            try:
                udp.append(open_udp(bind))
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise BindError(
                    f"Starting VS {vs.name}: cannot bind UDP socket ({reason}) [{bind.address}]"
                ) from None
    except BindError:
        for listener in listeners:
            listener.sock.close()
        for sock in udp:
            sock.close()
        raise
    return listeners, udp


def _close_sockets(service: Service) -> None:
    for listener in service.listeners:
        listener.sock.close()
    service.listeners.clear()
    for sock in service.udp:
        sock.close()
    service.udp.clear()


def is_local(ip: IPAddress) -> bool:
    """Is `ip` an address of this node now? (bind without IP_FREEBIND fails otherwise)"""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((str(ip), 0))
        except OSError:
            return False
    return True
