"""A small LAN in network namespaces, for VRRP between real processes (DESIGN.md, "Network
namespaces"): a switch namespace holding a bridge, and one namespace per host (two balancer
nodes, a client, a backend), each with a veth named eth0 plugged into the bridge.

The rules it keeps:
- addresses only in 198.51.100.0/24 (TEST-NET-2), never 192.0.2.0/24 (this machine's uplink);
- nothing is added to the root namespace: every address, route and command that sends
  traffic lives in a namespace of this lab, and `guard()` checks that before anything runs;
- namespaces carry a per-run prefix and are always deleted (also when a test fails, and at
  exit), and only the processes the lab started are stopped, by their pid.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "198.51.100."
PREFIX_LEN = 24
ADDRESSES = {"lb1": 11, "lb2": 12, "cl": 20, "be": 30}
VIP = "198.51.100.170"
BACKEND_PORT = 8080
SERVICE_PORT = 80
MAX_PROCESSES = 32  # a bound on what one lab may start


class LabUnavailable(Exception):
    """This machine cannot create network namespaces (no root, no CAP_NET_ADMIN)."""


def ip_of(node: str) -> str:
    return f"{SUBNET}{ADDRESSES[node]}"


def _run(argv: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Proc:
    """A process the lab started (in one of its namespaces)."""

    name: str
    node: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra_pids: Callable[[], list[int]] = lambda: []

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Lab:
    workdir: Path
    nodes: tuple[str, ...] = ("lb1", "lb2", "cl", "be")
    prefix: str = field(default_factory=lambda: f"pz{os.getpid() % 100000}{secrets.token_hex(2)}")
    created: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    # -- building and tearing down -----------------------------------------------------------

    def up(self) -> Lab:
        atexit.register(self.down)
        switch = self.ns("sw")
        self._add_ns(switch)
        self._ip(switch, "link", "add", "br0", "type", "bridge")
        self._ip(switch, "link", "set", "br0", "up")
        for node in self.nodes:
            name = self.ns(node)
            self._add_ns(name)
            port = self.port(node)
            self._ip(
                switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name
            )
            self._ip(switch, "link", "set", port, "master", "br0", "up")
            self._ip(name, "link", "set", "lo", "up")
            self._ip(name, "link", "set", "eth0", "up")
            self._ip(name, "addr", "add", f"{ip_of(node)}/{PREFIX_LEN}", "dev", "eth0")
        return self

    def port(self, node: str) -> str:
        return f"p-{node}"

    def _add_ns(self, name: str) -> None:
        result = _run(["ip", "netns", "add", name])
        if result.returncode != 0:
            raise LabUnavailable(f"cannot create a network namespace: {result.stderr.strip()}")
        self.created.append(name)

    def _ip(self, ns: str, *args: str) -> None:
        self.guard(ns)
        result = _run(["ip", "-n", ns, *args])
        if result.returncode != 0:
            raise RuntimeError(f"ip -n {ns} {' '.join(args)}: {result.stderr.strip()}")

    def down(self) -> None:
        """Stop what the lab started (by pid), delete its namespaces. Safe to call twice."""
        for proc in reversed(self.procs):
            for pid in proc.extra_pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        self.procs.clear()
        for name in reversed(self.created):
            _run(["ip", "netns", "del", name])
        self.created.clear()

    # -- the guard: nothing runs outside this lab's namespaces --------------------------------

    def guard(self, ns: str) -> None:
        """Refuse to touch a namespace this lab did not create, or the root namespace."""
        if ns not in self.created:
            raise AssertionError(f"namespace {ns!r} is not one of this lab's")
        mine = os.stat(f"/run/netns/{ns}")
        root = os.stat("/proc/self/ns/net")  # the tests run in the root namespace
        if (mine.st_dev, mine.st_ino) == (root.st_dev, root.st_ino):
            raise AssertionError(f"namespace {ns!r} is the root namespace")

    # -- running things in the hosts ---------------------------------------------------------

    def run(
        self, node: str, argv: Sequence[str], timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        ns = self.ns(node)
        self.guard(ns)
        return _run(["ip", "netns", "exec", ns, *argv], timeout)

    def spawn(
        self,
        node: str,
        name: str,
        argv: Sequence[str],
        extra_pids: Callable[[], list[int]] | None = None,
    ) -> Proc:
        if len(self.procs) >= MAX_PROCESSES:
            raise AssertionError("the lab started too many processes")
        ns = self.ns(node)
        self.guard(ns)
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        proc = Proc(name, node, popen, log, extra_pids or (lambda: []))
        self.procs.append(proc)
        return proc

    def signal(self, proc: Proc, signum: int) -> None:
        if proc.alive():
            os.kill(proc.pid, signum)

    def stop(self, proc: Proc, timeout: float = 10) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not end in time."""
        self.signal(proc, signal.SIGTERM)
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.popen.wait(5)

    # -- the network -------------------------------------------------------------------------

    def addresses(self, node: str) -> set[str]:
        result = self.run(node, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
        return {line.split()[3].split("/")[0] for line in result.stdout.splitlines()}

    def has_vip(self, node: str) -> bool:
        return VIP in self.addresses(node)

    def cable(self, node: str, plugged: bool) -> None:
        """Pull or plug the node's cable: its switch port goes down or up (the node sees
        its eth0 lose or regain carrier)."""
        self._ip(self.ns("sw"), "link", "set", self.port(node), "up" if plugged else "down")

    def isolate(self, node: str, isolated: bool) -> None:
        """Isolated bridge ports do not talk to each other (but still to the others): two
        isolated balancers are partitioned from each other while clients reach both."""
        ns = self.ns("sw")
        self.guard(ns)
        state = "on" if isolated else "off"
        result = _run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "bridge",
                "link",
                "set",
                "dev",
                self.port(node),
                "isolated",
                state,
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"bridge link set {self.port(node)} isolated {state}: {result.stderr}"
            )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Wait until `condition()` holds; return the seconds it took (AssertionError on timeout)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def tools_missing() -> list[str]:
    return [tool for tool in ("ip", "bridge", "keepalived", "nft") if shutil.which(tool) is None]
