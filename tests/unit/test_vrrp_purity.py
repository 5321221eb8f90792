"""The pure half of poise vrrp stays pure: the keepalived.conf parser, the packet codec, the
state machine, tracking and sync groups import no I/O module (DESIGN.md), so that they are
tested exactly and instantly; sockets, netlink and processes stay in the shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_purity import IO_MODULES, SRC, imported

PURE = [
    *sorted((SRC / "config").glob("keepalived*.py")),
    SRC / "vrrp" / "packet.py",
    SRC / "vrrp" / "fsm.py",
    SRC / "vrrp" / "events.py",
    SRC / "vrrp" / "tracking.py",
    SRC / "vrrp" / "sync.py",
    SRC / "vrrp" / "reload.py",
]


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_vrrp_module_imports_no_io(path: Path) -> None:
    assert imported(path).isdisjoint(IO_MODULES | {"pyroute2"}), imported(path)


def test_the_pure_set_is_complete() -> None:
    assert len(PURE) == 19  # the keepalived_lvs*.py modules are 4 of them
