"""`vrrp_sync_group`: instances that change state together (keepalived.conf(5), "VRRP
synchronization group(s)"; Keepalived's vrrp_sync.c). Pure.

When one member changes state the others follow: a member that becomes master takes the
backups of its group along, one that goes back to backup takes the masters back, and one
in FAULT holds the whole group in FAULT until it recovers. The group's own notify scripts
run when the group's state changes: FAULT if a member is in fault, else MASTER if a member
is master, else BACKUP.
"""

from __future__ import annotations

from collections.abc import Mapping

from poise.vrrp.fsm import State


def followers(
    members: tuple[str, ...],
    changed: str,
    new: State,
    states: Mapping[str, State],
    own_fault: Mapping[str, bool],
) -> list[tuple[str, State]]:
    """The state each other member is pushed to after `changed` entered `new`."""
    out: list[tuple[str, State]] = []
    others = [m for m in members if m != changed]
    if new is State.FAULT:
        out.extend((m, State.FAULT) for m in others if states[m] is not State.FAULT)
    elif new in (State.BACKUP, State.MASTER):
        if any(own_fault.get(m, False) for m in others):
            return [(changed, State.FAULT)]  # another member still holds the group in FAULT
        for member in others:
            current = states[member]
            if current is State.FAULT and not own_fault.get(member, False):
                out.append((member, State.BACKUP))
            elif new is State.MASTER and current is State.BACKUP:
                out.append((member, State.MASTER))
            elif new is State.BACKUP and current is State.MASTER:
                out.append((member, State.BACKUP))
    return out


def group_state(members: tuple[str, ...], states: Mapping[str, State]) -> State:
    current = [states[m] for m in members]
    if any(s is State.STOP for s in current):
        return State.STOP
    if any(s is State.FAULT for s in current):
        return State.FAULT
    if any(s is State.MASTER for s in current):
        return State.MASTER
    if any(s is State.BACKUP for s in current):
        return State.BACKUP
    return State.INIT
