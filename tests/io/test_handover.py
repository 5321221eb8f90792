"""The master's listening sockets (handover.py) and sd_notify (notify.py), with real
sockets: the same socket handed to one worker after another, new addresses bound, unused
ones closed, descriptors passed over the channel (SCM_RIGHTS), a notification received by
a real unix datagram socket (a path, and the abstract namespace)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from poise.config import model
from poise.net.admin_socket import AdminSocket
from poise.net.listener import BindError
from poise.process.handover import (
    Channel,
    Inherited,
    SocketSpec,
    SocketTable,
    bind_spec,
    stats_spec,
)
from poise.system.notify import notify, notify_address
from tests.support import free_port

WHERE = model.Where("t.cfg", 3)


def bind(port: int, **options: object) -> model.Bind:
    return model.Bind(model.Address("ipv4", "127.0.0.1", port), WHERE, **options)  # type: ignore[arg-type]


def spec(port: int, frontend: str = "fe", **options: object) -> SocketSpec:
    return bind_spec(bind(port, **options), frontend, 100)


def accepts(sock: socket.socket) -> bool:
    """Does a connection to this listening socket get queued on it?"""
    client = socket.create_connection(sock.getsockname()[:2], timeout=2)
    sock.settimeout(2)
    try:
        conn, _ = sock.accept()
    finally:
        sock.setblocking(False)
    conn.close()
    client.close()
    return True


def test_the_table_hands_out_the_same_socket_for_the_same_address() -> None:
    table = SocketTable()
    port = free_port()
    try:
        [first] = table.provide([spec(port)])
        [again] = table.provide([spec(port, "other", backlog=10)], holder=1)
        assert again is first  # the name of the frontend and the backlog do not matter
        assert len(table) == 1
        # Two frontends on one port (SO_REUSEPORT) get two sockets; freebind is another.
        socks = table.provide([spec(port), spec(port), spec(port, freebind=True)], holder=2)
        assert socks[0] is first and len({id(s) for s in socks}) == 3
        assert len(table) == 3
    finally:
        table.close()


def test_a_bind_error_closes_what_the_request_bound_and_names_the_address() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    table = SocketTable()
    kept = free_port()
    try:
        table.provide([spec(kept)], holder=1)
        fresh = free_port()
        with pytest.raises(BindError) as info:
            table.provide([spec(kept), spec(fresh), spec(taken)], holder=2)
        assert str(info.value) == (
            f"Starting frontend fe: cannot bind socket (Address already in use) [127.0.0.1:{taken}]"
        )
        assert len(table) == 1  # `fresh` was closed again, `kept` was not
        probe = socket.socket()
        probe.bind(("127.0.0.1", fresh))  # free again
        probe.close()
    finally:
        holder.close()
        table.close()


def test_release_closes_the_sockets_no_remaining_worker_holds() -> None:
    table = SocketTable()
    one, two = free_port(), free_port()
    try:
        table.provide([spec(one), spec(two)], holder=1)
        [kept] = table.provide([spec(one)], holder=2)
        assert table.release([2]) == 1
        assert len(table) == 1
        assert accepts(kept)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", two), timeout=2)
    finally:
        table.close()


def test_sockets_cross_the_channel_and_the_worker_takes_them_by_bind(tmp_path: Path) -> None:
    table = SocketTable()
    master, worker = Channel.pair()
    stats = model.StatsSocket(
        model.Address("unix", str(tmp_path / "admin.sock"), None), WHERE, 0o600, "admin"
    )
    specs = [spec(free_port()), spec(free_port()), stats_spec(stats)]
    try:
        master.send_sockets(table.provide(specs, holder=1))
        answer, _ = worker.receive()
        assert answer == {"op": "sockets", "ok": True, "count": 3}
        fds: list[int] = []
        while len(fds) < 3:
            _, more = worker.receive()
            fds += more
        inherited = Inherited(specs, fds)
        listener = inherited.listener(bind(specs[0].port or 0), "fe", 100)
        assert listener.sock.getsockname() == ("127.0.0.1", specs[0].port)
        assert listener.backlog == 1024
        assert accepts(listener.sock)
        [admin] = inherited.admin_sockets([stats])
        assert isinstance(admin, AdminSocket) and admin.config is stats
        assert admin.getsockname() == str(tmp_path / "admin.sock")
        assert oct(os.stat(tmp_path / "admin.sock").st_mode & 0o777) == "0o600"
        inherited.close_unused()  # the second bind was never taken: closed here
        listener.sock.close()
        admin.close()
        # The master's copies still listen: nothing was closed between two workers.
        assert len(table) == 3
    finally:
        master.close()
        worker.close()
        table.close()


def test_more_descriptors_than_one_message_carries() -> None:
    table = SocketTable()
    master, worker = Channel.pair()
    port = free_port()
    specs = [spec(port) for _ in range(300)]  # 300 sockets on one port (SO_REUSEPORT)
    try:
        worker.sock.setblocking(False)
        master.send_sockets(table.provide(specs, holder=1))
        answer, _ = worker.receive()
        assert answer is not None and answer["count"] == 300
        fds: list[int] = []
        while len(fds) < 300:
            _, more = worker.receive()
            fds += more
        for fd in fds:
            os.close(fd)
    finally:
        master.close()
        worker.close()
        table.close()


def test_a_request_and_a_refusal_over_the_channel() -> None:
    master, worker = Channel.pair()
    try:
        master.send({"op": "sockets", "ok": False, "error": "cannot bind socket"})
        with pytest.raises(BindError, match="cannot bind socket"):
            worker.request_sockets([spec(free_port())])
        request, _ = master.receive()
        assert request is not None and request["op"] == "sockets"
        assert SocketSpec.from_wire(request["want"][0]).kind == "bind"
        with pytest.raises(ValueError, match="bad socket description"):
            SocketSpec.from_wire({"kind": "bind"})
        worker.close()
        assert master.receive() == (None, [])  # the other end is gone
    finally:
        master.close()


# -- sd_notify ---------------------------------------------------------------------------


def receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notify_sends_one_datagram_to_the_path_in_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    sock = receiver(path)
    try:
        assert notify(["READY=1", "STATUS=Ready."], {"NOTIFY_SOCKET": path})
        assert sock.recv(4096) == b"READY=1\nSTATUS=Ready.\n"
        assert notify(["RELOADING=1"], {"NOTIFY_SOCKET": path})
        reloading = sock.recv(4096).decode().splitlines()
        assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
        assert int(reloading[1].split("=")[1]) > 0
    finally:
        sock.close()


def test_notify_speaks_the_abstract_namespace_too() -> None:
    name = f"poise-test-{os.getpid()}"
    sock = receiver("\0" + name)
    try:
        assert notify_address({"NOTIFY_SOCKET": "@" + name}) == "\0" + name
        assert notify(["STOPPING=1"], {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1\n"
    finally:
        sock.close()


def test_notify_without_a_service_manager_sends_nothing_and_never_fails(tmp_path: Path) -> None:
    assert not notify(["READY=1"], {})
    assert not notify(["READY=1"], {"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notify(["READY=1"], {"NOTIFY_SOCKET": str(tmp_path / "nobody-here")})
