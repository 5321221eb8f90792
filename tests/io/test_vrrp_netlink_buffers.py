"""`vrrp_netlink_cmd_rcv_bufs` and `vrrp_netlink_monitor_rcv_bufs` (with their `_force`
flags) size the receive buffers of poise vrrp's two netlink sockets, read back from the
sockets themselves (Linux reports twice the size asked for, its bookkeeping included).
Opening a netlink socket and sizing it changes nothing outside this process, so this runs
in the test's own namespace; SO_RCVBUFFORCE needs CAP_NET_ADMIN, and without it the
refusal is what poise reports."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from poise.config.keepalived_model import GlobalDefs
from poise.vrrp.io import NETLINK_RCVBUF, Netlink

RMEM_MAX = int(Path("/proc/sys/net/core/rmem_max").read_text())


def sizes(defaults: GlobalDefs) -> tuple[list[str], int, int]:
    async def run() -> tuple[list[str], int, int]:
        netlink = Netlink()
        try:
            refused = netlink.receive_buffers(defaults)
            cmd = netlink.ipr.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            monitor = netlink.events.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            return refused, cmd, monitor
        finally:
            netlink.close()

    return asyncio.run(run())


def test_each_socket_takes_its_own_size() -> None:
    small, smaller = min(RMEM_MAX, 200_000), min(RMEM_MAX, 100_000)
    refused, cmd, monitor = sizes(
        GlobalDefs(vrrp_netlink_cmd_rcv_bufs=small, vrrp_netlink_monitor_rcv_bufs=smaller)
    )
    assert refused == []
    assert (cmd, monitor) == (2 * small, 2 * smaller)


def test_unset_is_pyroute2_s_size_capped_by_rmem_max() -> None:
    refused, cmd, monitor = sizes(GlobalDefs())
    assert refused == []
    assert cmd == monitor == 2 * min(NETLINK_RCVBUF, RMEM_MAX)


def test_force_goes_past_rmem_max() -> None:
    big = RMEM_MAX + 65536
    refused, cmd, monitor = sizes(
        GlobalDefs(
            vrrp_netlink_cmd_rcv_bufs=big,
            vrrp_netlink_cmd_rcv_bufs_force=True,
            vrrp_netlink_monitor_rcv_bufs=big,
        )
    )
    assert monitor == 2 * RMEM_MAX  # without _force the kernel caps it
    if os.geteuid() == 0:
        assert refused == [] and cmd == 2 * big
    else:  # no CAP_NET_ADMIN: the kernel refuses SO_RCVBUFFORCE, and poise says so
        assert refused == [
            f"netlink cmd socket: cannot set SO_RCVBUFFORCE to {big}: "
            "[Errno 1] Operation not permitted"
        ]
