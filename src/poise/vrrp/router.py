"""One vrrp_instance at run time (a Router: its state machine, its link, the socket its
adverts leave from, its notify scripts), and how one is made from keepalived.conf: the
machine's parameters, the adverts' source address and destinations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from poise.config.keepalived_model import KeepalivedConfig, VrrpInstance
from poise.vrrp import fsm
from poise.vrrp.io import Sender
from poise.vrrp.packet import IPAddress
from poise.vrrp.scripts import Notifier
from poise.vrrp.system import Link
from poise.vrrp.tracking import Verdict


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
    destinations: tuple[IPAddress, ...]
    notifier: Notifier
    port: str  # the interface adverts come in on (the VMAC's, or `link`)
    verdict: Verdict | None = None
    timers: dict[fsm.Timer, asyncio.TimerHandle] = field(default_factory=dict)
    send_errors: int = 0


def advert_source(instance: VrrpInstance, link: Link, vips: set[IPAddress]) -> IPAddress:
    """`unicast_src_ip`, else the interface's first address of the instance's family
    that is not a virtual one: for IPv6 its link-local address (RFC 5798 5.1.2.1)."""
    if instance.unicast_src_ip is not None:
        return instance.unicast_src_ip
    for address in link.addresses:
        if address.version != instance.family or address.ip in vips:
            continue
        if instance.family == 4 or address.ip.is_link_local:
            return address.ip
    kind = "link-local IPv6" if instance.family == 6 else "IPv4"
    raise StartError(
        f"({instance.name}) interface {link.name} has no {kind} address to send adverts from"
    )


def make_router(
    config: KeepalivedConfig,
    instance: VrrpInstance,
    link: Link,
    sender: Sender,
    *,
    say: Callable[[str], None],
    port: str,
) -> Router:
    """A router for one instance, its machine not started (its clock set when serving)."""
    defaults = config.global_defs
    group = defaults.mcast_group(instance.family)
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
        multicast_group=group,
    )
    destinations = instance.unicast_peer or (group,)
    notifier = Notifier(config, "INSTANCE", instance.name, instance.notify, say)
    machine = fsm.Instance(params, NO_CLOCK)
    return Router(instance, machine, link, sender, destinations, notifier, port)


class _NoClock:
    def now(self) -> float:
        raise RuntimeError("the clock is set when the daemon serves")


NO_CLOCK = _NoClock()
