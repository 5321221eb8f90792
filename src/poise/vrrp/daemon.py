"""`poise vrrp`: the daemon that runs the state machines of keepalived.conf's instances on
real sockets. Everything that decides lives in fsm.py, tracking.py and sync.py; this shell
turns the world into their events (adverts, timers, script results, link changes,
SIGTERM) and their actions into the world (adverts sent, addresses added and removed,
gratuitous ARP, notify scripts, timers).

Events go through one queue, handled one at a time, so that the actions of one event
(add the address, then announce it) are done before the next event is looked at.

Start-up order, as `poise run`'s: everything that can fail for a user's reason fails
first, on the terminal, with status 1 (the configuration, interfaces without an address,
sockets), then poise detaches (-D), writes its pidfile and runs. SIGTERM or SIGINT stop
it: a master sends priority 0 (its backup takes over after the skew time, not the
master-down interval) and removes its addresses; the stop notify scripts run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from poise import process
from poise.config.keepalived_model import KeepalivedConfig, VrrpInstance
from poise.vrrp import fsm, sync
from poise.vrrp.io import Announcer, LinkState, Netlink, Receiver, Sender
from poise.vrrp.log import Logger
from poise.vrrp.packet import (
    AUTH_NONE,
    AUTH_PASS,
    PROTOCOL,
    Advert,
    PacketError,
    decode,
    encode,
    parse_ipv4,
)
from poise.vrrp.scripts import Notifier, run_as, run_check
from poise.vrrp.system import Link, links, load
from poise.vrrp.tracking import ScriptState, Verdict, evaluate

STOP_NOTIFY_WAIT = 5.0  # seconds the stop notify scripts get at shutdown


class StartError(Exception):
    """The daemon cannot start; the message names the cause."""


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()


@dataclass(slots=True)
class Router:
    """One vrrp_instance at run time: its machine and the sockets it uses."""

    config: VrrpInstance
    machine: fsm.Instance
    link: Link
    sender: Sender
    destinations: tuple[IPv4Address, ...]
    notifier: Notifier
    verdict: Verdict | None = None
    timers: dict[fsm.Timer, asyncio.TimerHandle] = field(default_factory=dict)
    send_errors: int = 0


def _source(instance: VrrpInstance, link: Link, vips: set[IPv4Address]) -> IPv4Address:
    if instance.unicast_src_ip is not None:
        return instance.unicast_src_ip
    for address in link.addresses:
        if address.ip not in vips:
            return address.ip
    raise StartError(
        f"({instance.name}) interface {link.name} has no IPv4 address to send adverts from"
    )


class Daemon:
    def __init__(self, config: KeepalivedConfig, log: Logger) -> None:
        self.config = config
        self.log = log
        self.links = links()
        self.receivers: dict[str, Receiver] = {}
        self.senders: dict[tuple[str, IPv4Address], Sender] = {}
        self.announcers: dict[str, Announcer] = {}
        self.routers: dict[str, Router] = {}
        self.scripts = {name: ScriptState.for_script(s) for name, s in config.scripts.items()}
        self.links_up = {name: link.up for name, link in self.links.items()}
        self.group_states: dict[str, fsm.State] = {}
        self.group_notifiers: dict[str, Notifier] = {}
        self.queue: asyncio.Queue[tuple[Router, fsm.Event] | None] | None = None
        self.netlink: Netlink | None = None
        self.warned: set[tuple[str, int]] = set()
        self.tasks: list[asyncio.Task[None]] = []

    # -- start-up (before detaching: every failure here is the user's) -----------------------

    def open(self) -> None:
        """Open every socket; raises StartError or OSError (closing what was opened)."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        vips = {v.ip for i in self.config.instances for v in i.virtual_ipaddress}
        for instance in self.config.instances:
            assert instance.interface is not None
            link = self.links[instance.interface]
            if instance.interface not in self.receivers:
                self.receivers[instance.interface] = Receiver(link.name, link.index)
            receiver = self.receivers[instance.interface]
            if not instance.unicast:
                receiver.join(self.config.global_defs.vrrp_mcast_group4)
            source = _source(instance, link, vips)
            key = (link.name, source)
            if key not in self.senders:
                self.senders[key] = Sender(link.name, link.index, source)
            for vip in instance.virtual_ipaddress:
                target = vip.dev or instance.interface
                if target not in self.announcers:
                    self.announcers[target] = Announcer(target, self.links[target].mac)
            self.routers[instance.name] = self._router(instance, link, self.senders[key])

    def _router(self, instance: VrrpInstance, link: Link, sender: Sender) -> Router:
        defaults = self.config.global_defs
        params = fsm.Params(
            name=instance.name,
            vrid=instance.virtual_router_id,
            version=instance.version,
            priority=instance.priority,
            interval=round(instance.advert_int * 100),
            addresses=tuple(v.ip for v in instance.virtual_ipaddress),
            address=sender.source,
            initial_master=instance.initial_master,
            auth_pass=instance.auth_pass,
            nopreempt=instance.nopreempt,
            preempt_delay=instance.preempt_delay,
            garp_master_delay=instance.garp_master_delay,
            garp_master_repeat=instance.garp_master_repeat,
            garp_master_refresh=instance.garp_master_refresh,
            garp_master_refresh_repeat=instance.garp_master_refresh_repeat,
            garp_lower_prio_repeat=instance.garp_lower_prio_repeat,
            garp_lower_prio_delay=instance.garp_lower_prio_delay,
            lower_prio_no_advert=instance.lower_prio_no_advert,
            higher_prio_send_advert=instance.higher_prio_send_advert,
            unicast_peers=instance.unicast_peer,
            check_unicast_src=instance.check_unicast_src,
            skip_check_adv_addr=instance.skip_check_adv_addr,
            multicast_group=defaults.vrrp_mcast_group4,
        )
        destinations = instance.unicast_peer or (defaults.vrrp_mcast_group4,)
        notifier = Notifier(self.config, "INSTANCE", instance.name, instance.notify, self.log.info)
        return Router(
            instance, fsm.Instance(params, _NO_CLOCK), link, sender, destinations, notifier
        )

    # -- running -----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        clock = LoopClock(loop)
        for router in self.routers.values():
            router.machine.clock = clock
        self.queue = asyncio.Queue()
        self.netlink = Netlink()
        for group in self.config.sync_groups:
            self.group_notifiers[group.name] = Notifier(
                self.config, "GROUP", group.name, group.notify, self.log.info
            )
        for name, receiver in self.receivers.items():
            loop.add_reader(
                receiver.sock.fileno(), receiver.read, lambda data, n=name: self._datagram(n, data)
            )
        worker = loop.create_task(self._work())
        self.tasks.append(loop.create_task(self._guarded(self._watch_links(), "link watcher")))
        delay = self.config.global_defs.vrrp_startup_delay
        if delay:
            self.log.info(f"Delaying startup for {delay:g} seconds")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        for router in self.routers.values():
            verdict = self._verdict(router)
            router.verdict = verdict
            self._push(router, fsm.Started(verdict.priority, verdict.fault))
        used = {t.name for i in self.config.instances for t in i.track_script}
        for name in sorted(used):
            self.tasks.append(
                loop.create_task(self._guarded(self._run_script(name), f"VRRP_Script({name})"))
            )
        await stop.wait()
        self.log.info("Stopping")
        for task in self.tasks:
            task.cancel()
        for router in self.routers.values():
            self._push(router, fsm.Stopped())
        self.queue.put_nowait(None)
        await worker
        notifiers = [r.notifier for r in self.routers.values()]
        notifiers += list(self.group_notifiers.values())
        await asyncio.gather(*(n.drain(STOP_NOTIFY_WAIT) for n in notifiers))
        for receiver in self.receivers.values():
            loop.remove_reader(receiver.sock.fileno())
        self.netlink.close()  # inside the loop: pyroute2's transports close through it
        self.netlink = None

    async def _guarded(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run a background task; if it fails, say so (a silent watcher is a blind one)."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error(f"{what} stopped: {exc!r}")

    def _push(self, router: Router, event: fsm.Event) -> None:
        assert self.queue is not None
        self.queue.put_nowait((router, event))

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            item = await self.queue.get()
            if item is None:
                return
            router, event = item
            try:
                await self._handle(router, event)
            except Exception as exc:  # a bug must not leave the addresses unmanaged
                self.log.error(f"({router.config.name}) internal error on {event}: {exc!r}")

    async def _handle(self, router: Router, event: fsm.Event) -> None:
        before = router.machine.state
        for action in router.machine.handle(event):
            await self._apply(router, action)
        after = router.machine.state
        if after is not before and router.config.sync_group is not None:
            await self._follow(router, after)

    async def _follow(self, router: Router, new: fsm.State) -> None:
        group_name = router.config.sync_group
        assert group_name is not None
        group = next(g for g in self.config.sync_groups if g.name == group_name)
        states = {m: self.routers[m].machine.state for m in group.members}
        faults = {m: self.routers[m].machine.fault for m in group.members}
        for member, state in sync.followers(group.members, router.config.name, new, states, faults):
            await self._handle(self.routers[member], fsm.ForcedState(state))
        states = {m: self.routers[m].machine.state for m in group.members}
        group_state = sync.group_state(group.members, states)
        if (
            group_state is not self.group_states.get(group.name)
            and group_state is not fsm.State.INIT
        ):
            self.group_states[group.name] = group_state
            self.log.info(
                f"VRRP_Group({group.name}) Syncing instances to {group_state.value} state"
            )
            self.group_notifiers[group.name].push(group_state, 0)

    async def _apply(self, router: Router, action: fsm.Action) -> None:
        if isinstance(action, fsm.SendAdvert):
            self._send_advert(router, action.priority)
        elif isinstance(action, fsm.AddAddresses):
            await self._addresses(router, add=True, stale=False)
        elif isinstance(action, fsm.RemoveAddresses):
            await self._addresses(router, add=False, stale=action.stale)
        elif isinstance(action, fsm.SendGarp):
            self._garp(router, action.repeat)
        elif isinstance(action, fsm.Notify):
            router.notifier.push(action.state, action.priority)
        elif isinstance(action, fsm.SetTimer):
            old = router.timers.pop(action.timer, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            router.timers[action.timer] = loop.call_at(
                action.at, self._push, router, fsm.TimerFired(action.timer)
            )
        elif isinstance(action, fsm.CancelTimer):
            handle = router.timers.pop(action.timer, None)
            if handle is not None:
                handle.cancel()
        else:
            self.log.info(action.message, detail=action.detail)

    def _send_advert(self, router: Router, priority: int) -> None:
        instance = router.config
        advert = Advert(
            version=instance.version,
            vrid=instance.virtual_router_id,
            priority=priority,
            interval=router.machine.params.interval,
            addresses=router.machine.params.addresses,
            auth_type=AUTH_PASS if instance.auth_pass is not None else AUTH_NONE,
            auth_data=instance.auth_pass or b"",
        )
        for destination in router.destinations:
            payload = encode(advert, router.sender.source, destination)
            failure = router.sender.send(payload, destination)
            if failure is not None:
                router.send_errors += 1
                self.log.info(
                    f"({instance.name}) cannot send advert to {destination}: "
                    f"{failure.strerror or failure}",
                    detail=router.send_errors > 1,
                )

    async def _addresses(self, router: Router, *, add: bool, stale: bool) -> None:
        assert self.netlink is not None
        instance = router.config
        if not instance.virtual_ipaddress:
            return
        if add:
            self.log.info(f"({instance.name}) Setting VIPs.", detail=True)
        present: dict[str, set[IPv4Address]] = {}
        for vip in instance.virtual_ipaddress:
            target = vip.dev or instance.interface
            assert target is not None
            link = self.links.get(target)
            if link is None:
                continue
            if stale:
                if target not in present:
                    present[target] = await self.netlink.addresses(link.index)
                if vip.ip not in present[target]:
                    continue
                self.log.info(
                    f"({instance.name}) removing stale address {vip.interface} from {target}"
                )
            change = self.netlink.add if add else self.netlink.remove
            failure = await change(vip, link.index)
            if failure is not None:
                verb = "add" if add else "remove"
                self.log.error(
                    f"({instance.name}) cannot {verb} {vip.interface} on {target}: {failure}"
                )

    def _garp(self, router: Router, repeat: int) -> None:
        instance = router.config
        interval = self.config.global_defs.vrrp_garp_interval
        loop = asyncio.get_running_loop()
        for vip in instance.virtual_ipaddress:
            target = vip.dev or instance.interface
            assert target is not None
            self.log.info(
                f"({instance.name}) Sending/queueing gratuitous ARPs on {target} for {vip.ip}",
                detail=True,
            )
            announcer = self.announcers[target]
            for count in range(repeat):
                if interval and count:
                    loop.call_later(interval * count, self._announce, announcer, vip.ip, target)
                else:
                    self._announce(announcer, vip.ip, target)

    def _announce(self, announcer: Announcer, address: IPv4Address, interface: str) -> None:
        failure = announcer.announce(address)
        if failure is not None:
            self._warn_once(
                interface,
                -1,
                f"cannot send gratuitous ARP on {interface} for "
                f"{address}: {failure.strerror or failure}",
            )

    # -- the world's events ------------------------------------------------------------------

    def _datagram(self, interface: str, data: bytes) -> None:
        try:
            header = parse_ipv4(data)
            if header.protocol != PROTOCOL:
                return
            advert = decode(header.payload, header.source, header.destination)
        except PacketError as exc:
            self._warn_once(interface, 0, f"dropped a malformed VRRP packet on {interface}: {exc}")
            return
        matched = False
        for router in self.routers.values():
            if (
                router.config.interface == interface
                and router.config.virtual_router_id == advert.vrid
            ):
                if header.source == router.sender.source:
                    continue
                matched = True
                self._push(
                    router,
                    fsm.AdvertReceived(advert, header.source, header.destination, header.ttl),
                )
        if not matched:
            self._warn_once(
                interface,
                advert.vrid,
                f"advert from {header.source} on {interface} for VRID {advert.vrid}, "
                "which no vrrp_instance uses here: dropped",
            )

    def _warn_once(self, interface: str, vrid: int, message: str) -> None:
        key = (interface, vrid)
        self.log.info(message, detail=key in self.warned)
        self.warned.add(key)

    def _verdict(self, router: Router) -> Verdict:
        return evaluate(router.config, self.config, self.scripts, self.links_up)

    def _retrack(self, only: set[str] | None = None) -> None:
        for router in self.routers.values():
            if only is not None and router.config.name not in only:
                continue
            verdict = self._verdict(router)
            if router.verdict is None:
                continue  # not started yet: Started carries the first verdict
            if (verdict.priority, verdict.fault) != (router.verdict.priority, router.verdict.fault):
                for reason in verdict.reasons:
                    if reason not in router.verdict.reasons:
                        self.log.info(f"({router.config.name}) {reason}")
                router.verdict = verdict
                self._push(router, fsm.TrackingChanged(verdict.priority, verdict.fault))

    async def _watch_links(self) -> None:
        assert self.netlink is not None

        def changed(name: str, state: LinkState) -> None:
            if name is None or self.links_up.get(name) == state.up:
                return
            self.links_up[name] = state.up
            self.log.info(f"Kernel is reporting: interface {name} {'UP' if state.up else 'DOWN'}")
            receiver = self.receivers.get(name)
            if state.up and receiver is not None:
                receiver.rejoin()
            self._retrack()

        current = await self.netlink.links()
        for name, state in current.items():
            changed(name, state)
        await self.netlink.watch_links(changed)

    async def _run_script(self, name: str) -> None:
        script = self.config.scripts[name]
        state = self.scripts[name]
        who = run_as(self.config, script.command)
        users = {
            i.name for i in self.config.instances if any(t.name == name for t in i.track_script)
        }
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            success, what = await run_check(script.command.argv, who, script.effective_timeout)
            self.log.info(f"VRRP_Script({name}) {what}", detail=True)
            if state.record(success):
                self.log.info(
                    f"VRRP_Script({name}) {'succeeded' if state.good else 'failed'}"
                    + ("" if state.good else f" ({what})")
                )
                self._retrack(users)
            await asyncio.sleep(max(0.0, started + script.interval - loop.time()))

    def close(self) -> None:
        for receiver in self.receivers.values():
            receiver.close()
        for sender in self.senders.values():
            sender.close()
        for announcer in self.announcers.values():
            announcer.close()
        if self.netlink is not None:
            self.netlink.close()


class _NoClock:
    def now(self) -> float:
        raise RuntimeError("the clock is set when the daemon serves")


_NO_CLOCK = _NoClock()


def run(
    path: str, *, daemon: bool = False, detail: bool = False, pidfile: str | None = None
) -> int:
    """`poise vrrp`: load, open the sockets, detach (-D), write the pidfile, serve until
    SIGTERM. Exit status 1 for anything that stops it from starting."""
    log = Logger(detail=detail)
    config, diagnostics = load(path)
    for diagnostic in diagnostics:
        log.info(str(diagnostic))
    if config is None:
        log.error("Fatal errors found in configuration.")
        return 1
    try:
        vrrp = Daemon(config, log)
        vrrp.open()
    except (StartError, OSError) as exc:
        log.error(f"cannot start: {exc}")
        return 1
    ready: process.Startup | None = None
    try:
        if daemon:
            ready = process.daemonize()
            log.use_syslog()
        if pidfile:
            process.write_pidfile(pidfile, os.getpid())
        log.info(f"Starting VRRP child process, pid={os.getpid()}")
        asyncio.run(_main(vrrp, ready))
    except process.ProcessError as exc:
        log.error(str(exc))
        if ready is not None:
            ready.fail(str(exc))
        return 1
    finally:
        vrrp.close()
        if pidfile:
            with contextlib.suppress(process.ProcessError):
                process.remove_pidfile(pidfile)
        log.close()
    return 0


async def _main(vrrp: Daemon, ready: process.Startup | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP,
        lambda: vrrp.log.info(
            "SIGHUP: reloading the configuration is not implemented yet in poise vrrp; "
            "restart it to apply changes"
        ),
    )
    serving = loop.create_task(vrrp.serve(stop))
    if ready is not None:
        ready.ready()
    await serving
