"""`poise vrrp`: the daemon that runs the state machines of keepalived.conf's instances on
real sockets. Everything that decides lives in fsm.py, tracking.py and sync.py; this shell
turns the world into their events (adverts, timers, script results, link changes,
SIGTERM) and their actions into the world (adverts sent, addresses added and removed,
gratuitous ARP, notify scripts, timers).

Events go through one queue, handled one at a time, so that the actions of one event
(add the address, then announce it) are done before the next event is looked at.

The process around it (start-up order, signals, pidfile) is service.py. SIGTERM or SIGINT
stop it: a master sends priority 0 (its backup takes over after the skew time, not the
master-down interval) and removes its addresses; the stop notify scripts run; the static
addresses, routes and rules go. SIGHUP reloads (reload.py decides what changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from poise.config.keepalived_model import KeepalivedConfig, VirtualAddress, VrrpInstance
from poise.system.notify import notify
from poise.vrrp import fsm, reload, sync
from poise.vrrp.firewall import Firewall, FirewallError, needed
from poise.vrrp.io import Announcer, LinkState, Netlink, Receiver, Sockets, Used
from poise.vrrp.log import Logger
from poise.vrrp.packet import (
    AUTH_NONE,
    AUTH_PASS,
    PROTOCOL,
    Advert,
    IPAddress,
    IPHeader,
    PacketError,
    decode,
    encode,
    parse_ipv4,
)
from poise.vrrp.router import LoopClock, Router, StartError, advert_source, make_router
from poise.vrrp.routing import Routing
from poise.vrrp.scripts import Notifier, run_as, run_check
from poise.vrrp.system import links, load
from poise.vrrp.tracking import ScriptState, Verdict, evaluate
from poise.vrrp.vmac import VmacError, Vmacs

STOP_NOTIFY_WAIT = 5.0  # seconds the stop notify scripts get at shutdown


class Daemon:
    def __init__(self, config: KeepalivedConfig, log: Logger, path: str = "") -> None:
        self.config = config
        self.path = path  # re-read on reload
        self.log = log
        self.links = links()
        self.sockets = Sockets()
        self.vmacs = Vmacs()
        self.firewall = Firewall()  # no_accept
        self.listening: set[str] = set()  # receivers watched by the loop
        self.routers: dict[str, Router] = {}
        self.scripts = {name: ScriptState.for_script(s) for name, s in config.scripts.items()}
        self.links_up = {name: link.up for name, link in self.links.items()}
        self.group_states: dict[str, fsm.State] = {}
        self.group_notifiers: dict[str, Notifier] = {}
        self.queue: asyncio.Queue[tuple[Router, fsm.Event] | str | None] | None = None
        self.netlink: Netlink | None = None
        self.routing: Routing | None = None
        self.warned: set[tuple[str, int]] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.script_tasks: dict[str, asyncio.Task[None]] = {}
        self.clock: LoopClock | None = None
        self.reloaded: list[Callable[[KeepalivedConfig], None]] = []  # vrrp/tuning.py

    # -- start-up (before detaching: every failure here is the user's) -----------------------

    def open(self) -> None:
        """Open every socket; raises StartError or OSError (closing what was opened)."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        if needed(self.config):
            try:
                self.firewall.check()
            except FirewallError as exc:
                raise StartError(str(exc)) from None
        self._vmacs(self.config.instances)
        self.links = links()
        for instance in self.config.instances:
            self.routers[instance.name] = self._open_instance(instance)

    def _vmacs(self, instances: Iterable[VrrpInstance]) -> None:
        """Create the VMAC interfaces of `instances` (synchronous: before the loop runs, or
        in a thread)."""
        for instance in instances:
            if instance.use_vmac is not None:
                try:
                    self.vmacs.ensure(instance)
                except VmacError as exc:
                    raise StartError(f"({instance.name}) {exc}") from None

    def _open_instance(self, instance: VrrpInstance) -> Router:
        """The router of one instance, with the sockets it needs (shared when open)."""
        vips = {v.ip for i in self.config.instances for v in _all_vips(i)}
        assert instance.interface is not None
        link = self.links[instance.interface]
        # With a VMAC, adverts come in on it (macvlan hands the frames sent from the shared
        # MAC to the local VMAC interface only) and leave from it, unless vmac_xmit_base.
        vmac = instance.use_vmac is not None and not instance.vmac_xmit_base
        port = self.links[instance.address_interface] if vmac else link
        receiver = self.sockets.receiver(port.name, port.index, instance.family)
        if not instance.unicast:
            receiver.join(self.config.global_defs.mcast_group(instance.family))
        sender = self.sockets.sender(port.name, port.index, advert_source(instance, link, vips))
        for vip in _all_vips(instance):
            target = self.links[vip.dev or instance.address_interface]
            self.sockets.announcer(target.name, target.mac, vip.version, target.index)
        key = port.name if instance.family == 4 else f"{port.name}/6"  # as Sockets keys them
        return make_router(self.config, instance, link, sender, say=self.log.info, port=key)

    # -- running -----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.clock = LoopClock(loop)
        for router in self.routers.values():
            router.machine.clock = self.clock
        self.queue = asyncio.Queue()
        self.netlink = Netlink()
        self._netlink_buffers()
        self.routing = Routing(self.netlink, self._ifindex, self.log)
        self._group_notifiers()
        for name in self.sockets.receivers:
            self._listen(name)
        await self.routing.statics(self.config, add=True)
        await self._firewall(self.config)
        worker = loop.create_task(self._work())
        self.tasks.append(loop.create_task(self._guarded(self._watch_links(), "link watcher")))
        delay = self.config.global_defs.vrrp_startup_delay
        if delay:
            self.log.info(f"Delaying startup for {delay:g} seconds")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        for router in self.routers.values():
            self._start(router)
        self._scripts()
        notify(("READY=1", f"MAINPID={os.getpid()}", "STATUS=Running."))
        await stop.wait()
        self.log.info("Stopping")
        notify(("STOPPING=1",))
        for task in self.tasks + list(self.script_tasks.values()):
            task.cancel()
        for router in self.routers.values():
            self._push(router, fsm.Stopped())
        self.queue.put_nowait(None)
        await worker
        await self.routing.statics(self.config, add=False)
        await self._guard(self.firewall.stop())
        notifiers = [r.notifier for r in self.routers.values()]
        notifiers += list(self.group_notifiers.values())
        await asyncio.gather(*(n.drain(STOP_NOTIFY_WAIT) for n in notifiers))
        for receiver in self.sockets.receivers.values():
            loop.remove_reader(receiver.sock.fileno())
        self.netlink.close()  # inside the loop: pyroute2's transports close through it
        self.netlink = None

    def _ifindex(self, name: str) -> int | None:
        link = self.links.get(name)
        return None if link is None else link.index

    def _listen(self, name: str) -> None:
        receiver = self.sockets.receivers[name]
        self.listening.add(name)
        asyncio.get_running_loop().add_reader(
            receiver.sock.fileno(), receiver.read, lambda data: self._datagram(name, data)
        )

    def _unlisten(self, receiver: Receiver) -> None:
        if receiver.ifname in self.listening:
            self.listening.discard(receiver.ifname)
            asyncio.get_running_loop().remove_reader(receiver.sock.fileno())

    def _group_notifiers(self) -> None:
        """A notifier per sync group; on a reload a group that stays keeps its own."""
        old = self.group_notifiers
        self.group_notifiers = {}
        for group in self.config.sync_groups:
            notifier = old.get(group.name)
            if notifier is None:
                notifier = Notifier(self.config, "GROUP", group.name, group.notify, self.log.info)
            notifier.config, notifier.notify = self.config, group.notify
            self.group_notifiers[group.name] = notifier

    def _start(self, router: Router) -> None:
        verdict = self._verdict(router)
        router.verdict = verdict
        self._push(router, fsm.Started(verdict.priority, verdict.fault))

    def _scripts(self) -> None:
        """A task per tracked vrrp_script that has none yet."""
        loop = asyncio.get_running_loop()
        used = {t.name for i in self.config.instances for t in i.track_script}
        for name in sorted(used - set(self.script_tasks)):
            self.scripts.setdefault(name, ScriptState.for_script(self.config.scripts[name]))
            self.script_tasks[name] = loop.create_task(
                self._guarded(self._run_script(name), f"VRRP_Script({name})")
            )

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
            if isinstance(item, str):
                try:
                    await self._reload()
                except Exception as exc:  # a bug must not stop the daemon
                    self.log.error(f"reload failed: {exc!r}")
                continue
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
        """The virtual addresses, routes and rules (a stale removal at start: only the
        addresses found there are removed, and said so)."""
        assert self.netlink is not None and self.routing is not None
        instance = router.config
        assert instance.interface is not None
        if add and instance.virtual_ipaddress:
            self.log.info(f"({instance.name}) Setting VIPs.", detail=True)
        found: dict[str, set[IPAddress]] = {}
        if stale:
            for vip in _all_vips(instance):
                dev = vip.dev or instance.address_interface
                index = self._ifindex(dev)
                if dev not in found and index is not None:
                    found[dev] = await self.netlink.addresses(index)
        if not instance.accept and not instance.owner and add:
            self.log.info(f"({instance.name}) setting firewall drop rule")
            await self._guard(self.firewall.drop(self._dropped(instance), on=True))
        await self.routing.virtual(
            instance.name,
            instance.address_interface,
            _all_vips(instance),
            instance.virtual_routes,
            instance.virtual_rules,
            add=add,
            present=(lambda dev, ip: ip in found.get(dev, set())) if stale else None,
        )
        if not instance.accept and not instance.owner and not add and self.firewall.present:
            self.log.info(f"({instance.name}) removing firewall drop rule")
            await self._guard(self.firewall.drop(self._dropped(instance), on=False))

    def _dropped(self, instance: VrrpInstance) -> list[tuple[IPAddress, str]]:
        return [(v.ip, v.dev or instance.address_interface) for v in _all_vips(instance)]

    async def _firewall(self, config: KeepalivedConfig) -> None:
        if needed(config) and not self.firewall.made:
            await self._guard(self.firewall.start())

    async def _guard(self, change: Coroutine[Any, Any, None]) -> None:
        try:
            await change
        except FirewallError as exc:
            self.log.error(f"no_accept: {exc}")

    def _garp(self, router: Router, repeat: int) -> None:
        instance = router.config
        garp_interval = self.config.global_defs.vrrp_garp_interval  # not for NA (gna)
        loop = asyncio.get_running_loop()
        for vip in _all_vips(instance):
            target = vip.dev or instance.address_interface
            what = "Unsolicited Neighbour Adverts" if vip.version == 6 else "gratuitous ARPs"
            self.log.info(
                f"({instance.name}) Sending/queueing {what} on {target} for {vip.ip}", detail=True
            )
            announcer = self.sockets.announcers[(target, vip.version)]
            interval = garp_interval if vip.version == 4 else 0.0
            for count in range(repeat):
                if interval and count:
                    loop.call_later(interval * count, self._announce, announcer, vip.ip, target)
                else:
                    self._announce(announcer, vip.ip, target)

    def _announce(self, announcer: Announcer, address: IPAddress, interface: str) -> None:
        failure = announcer.announce(address)
        if failure is not None:
            what = "unsolicited neighbour advert" if address.version == 6 else "gratuitous ARP"
            self._warn_once(
                interface,
                -1,
                f"cannot send {what} on {interface} for {address}: {failure.strerror or failure}",
            )

    # -- reload (SIGHUP) ---------------------------------------------------------------------

    def reload(self) -> None:
        """Queue a reload: it runs between two events, as one (vrrp/reload.py decides)."""
        if self.queue is not None:
            self.queue.put_nowait("reload")

    async def _reload(self) -> None:
        notify(("RELOADING=1", "STATUS=Reloading the configuration."))
        self.log.info(f"Reloading configuration file {self.path}")
        # In a thread: pyroute2's synchronous API runs a loop of its own.
        config, diagnostics = await asyncio.to_thread(load, self.path)
        for diagnostic in diagnostics:
            self.log.info(str(diagnostic))
        if config is None:
            self.log.error("Fatal errors found in configuration: the running one is kept")
        else:
            await self._switch(config)
        notify(("READY=1", "STATUS=Running."))

    async def _switch(self, new: KeepalivedConfig) -> None:
        assert self.routing is not None and self.clock is not None
        step = reload.plan(self.config, new)
        old, old_routers = self.config, self.routers
        opened = self.sockets.mark()
        instances = {i.name: i for i in new.instances}
        started: dict[str, Router] = {}
        try:
            await asyncio.to_thread(self._vmacs, [instances[n] for n in step.started])
            self.config, self.links = new, await asyncio.to_thread(links)
            for name in step.started:
                started[name] = self._open_instance(instances[name])
        except (StartError, OSError) as exc:
            self.config = old
            self.sockets.prune(self._used(), keep=opened)
            await asyncio.to_thread(self._release_vmacs)
            self.log.error(f"cannot reload: {exc}: the running configuration is kept")
            return
        for name in step.stopped:  # as at exit (no sync group to follow: it changes too)
            router = old_routers[name]
            for action in router.machine.handle(fsm.Stopped()):
                await self._apply(router, action)
            for handle in router.timers.values():
                handle.cancel()
        for name in step.kept:  # new notify scripts, same queue (their order is kept)
            router = old_routers[name]
            router.config = instances[name]
            router.notifier.config, router.notifier.notify = new, instances[name].notify
        self.routers = {
            name: started[name] if name in started else old_routers[name] for name in instances
        }
        self.sockets.prune(self._used(), closing=self._unlisten)
        await asyncio.to_thread(self._release_vmacs)
        for name in set(self.sockets.receivers) - self.listening:
            self._listen(name)
        self._group_notifiers()
        await self.routing.static_difference(old, new)
        self._netlink_buffers()
        await self._firewall(new)
        for name in reload.changed_scripts(old, new):
            task = self.script_tasks.pop(name, None)
            if task is not None:
                task.cancel()
            self.scripts.pop(name, None)
        self._scripts()
        for router in started.values():
            router.machine.clock = self.clock
            self._start(router)
        self._retrack(set(step.kept))
        for hook in self.reloaded:
            hook(new)
        self.log.info(
            f"Reloaded: {len(step.kept)} instance(s) kept, {len(step.stopped)} stopped, "
            f"{len(step.started)} started"
        )

    def _netlink_buffers(self) -> None:
        assert self.netlink is not None
        for problem in self.netlink.receive_buffers(self.config.global_defs):
            self.log.info(problem, level="warning")

    def _release_vmacs(self) -> None:
        """Delete the VMAC interfaces no running instance uses."""
        used = {r.config.use_vmac for r in self.routers.values() if r.config.use_vmac}
        for problem in self.vmacs.release(used):
            self.log.error(problem)

    def _used(self) -> Used:
        routers = self.routers.values()
        return (
            {r.port for r in routers},
            {(r.sender.ifname, r.sender.source) for r in routers},
            {
                (v.dev or r.config.address_interface, v.version)
                for r in routers
                for v in _all_vips(r.config)
            },
        )

    # -- the world's events ------------------------------------------------------------------

    def _datagram(self, interface: str, data: bytes | IPHeader) -> None:
        try:
            header = parse_ipv4(data) if isinstance(data, bytes) else data
            if header.protocol != PROTOCOL:
                return
            advert = decode(header.payload, header.source, header.destination)
        except PacketError as exc:
            self._warn_once(interface, 0, f"dropped a malformed VRRP packet on {interface}: {exc}")
            return
        matched = False
        for router in self.routers.values():
            if router.port == interface and router.config.virtual_router_id == advert.vrid:
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
            for receiver in self.sockets.receivers.values():  # IPv4's and IPv6's
                if state.up and receiver.ifname == name:
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
                self._retrack(
                    {
                        i.name
                        for i in self.config.instances
                        if any(t.name == name for t in i.track_script)
                    }
                )
            await asyncio.sleep(max(0.0, started + script.interval - loop.time()))

    def close(self) -> None:
        self.sockets.close()
        if self.netlink is not None:
            self.netlink.close()
        for problem in self.vmacs.release():
            self.log.error(problem)


def _all_vips(instance: VrrpInstance) -> tuple[VirtualAddress, ...]:
    """The addresses that follow the state: the advertised ones, then the excluded ones."""
    return instance.virtual_ipaddress + instance.virtual_ipaddress_excluded
