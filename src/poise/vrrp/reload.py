"""What a reload (SIGHUP) changes: which instances keep running as they are, which stop and
which start. Pure.

An instance keeps its state, its timers and its addresses (no failover) when nothing that
decides its role changed: everything in its vrrp_instance block except its notify scripts,
its tracking (scripts and interfaces are re-evaluated, so a new weight moves the priority
as a tracked script would) and its sync group; and the multicast group. Any other change
stops the old instance (a master sends priority 0 and removes its addresses, as at exit)
and starts the new one, as at start-up. Keepalived 2.2.7 keeps the state of every instance
whose name survives (vrrp.c restore_vrrp_state) and then may fail over by the new
settings; poise restarts a changed instance instead, so that a change of VRID, interface or
addresses never leaves a half-old machine running.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from poise.config.keepalived_model import KeepalivedConfig, Notify, VrrpInstance
from poise.config.model import NOWHERE


def _plain(value: Any) -> Any:
    """`value` without the places it was written at (FILE:LINE is not a setting)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "__dataclass_fields__") and any(f.name == "where" for f in fields(value)):
        return replace(value, where=NOWHERE)
    return value


def role(instance: VrrpInstance) -> VrrpInstance:
    """The settings of an instance that decide its role and what it holds."""
    plain = {f.name: _plain(getattr(instance, f.name)) for f in fields(instance)}
    plain.update(
        notify=Notify(), track_script=(), track_interface=(), sync_group=None, where=NOWHERE
    )
    return VrrpInstance(**plain)


@dataclass(frozen=True, slots=True)
class Plan:
    kept: tuple[str, ...]  # in both files, same role: keeps running
    stopped: tuple[str, ...]  # gone, or changed: stopped as at exit
    started: tuple[str, ...]  # new, or changed: started as at start-up


def plan(old: KeepalivedConfig, new: KeepalivedConfig) -> Plan:
    same_group = old.global_defs.vrrp_mcast_group4 == new.global_defs.vrrp_mcast_group4
    before = {i.name: i for i in old.instances}
    kept: list[str] = []
    started: list[str] = []
    for instance in new.instances:
        previous = before.get(instance.name)
        if same_group and previous is not None and role(previous) == role(instance):
            kept.append(instance.name)
        else:
            started.append(instance.name)
    stopped = tuple(name for name in before if name not in kept)
    return Plan(tuple(kept), stopped, tuple(started))


def changed_scripts(old: KeepalivedConfig, new: KeepalivedConfig) -> set[str]:
    """The vrrp_scripts whose definition differs (or that are gone or new)."""
    names = set(old.scripts) | set(new.scripts)
    return {
        name
        for name in names
        if name not in old.scripts
        or name not in new.scripts
        or _script(old, name) != _script(new, name)
    }


def _script(config: KeepalivedConfig, name: str) -> Any:
    script = config.scripts[name]
    return replace(script, where=NOWHERE, command=_plain(script.command))
