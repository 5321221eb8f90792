"""What runs on the lab's hosts: the VRRP daemons (poise vrrp or Keepalived), `poise run` as
the balancer on each node (a tiny TCP-mode configuration that binds the virtual address
with `freebind`), the backend that says which node a request came through, and the client
that keeps requesting the virtual address and measures a failover.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.netns.lab import (
    ADDRESSES,
    BACKEND_PORT,
    SERVICE_PORT,
    SUBNET,
    VIP,
    Lab,
    Proc,
    ip_of,
    wait_for,
)

HERE = Path(__file__).resolve().parent
POISE = str(Path(sys.executable).parent / "poise")
NODE_OF = {ip_of(node): node for node in ADDRESSES}
PROBE_TIMEOUT = 1.0  # prober.py's TIMEOUT, for connecting and again for the answer


def vrrp_conf(
    *,
    priority: int,
    version: int = 3,
    advert: float = 0.1,
    state: str = "BACKUP",
    extra: str = "",
    globals_: str = "",
    before: str = "",
    auth: str | None = None,
) -> str:
    """One vrrp_instance VI_1 on eth0 with the lab's virtual address, as both daemons read it."""
    auth_block = (
        f"    authentication {{\n        auth_type PASS\n        auth_pass {auth}\n    }}\n"
        if auth
        else ""
    )
    return f"""global_defs {{
    router_id lab
    vrrp_version {version}
{globals_}}}
{before}
vrrp_instance VI_1 {{
    interface eth0
    state {state}
    virtual_router_id 51
    priority {priority}
    advert_int {advert}
{auth_block}    virtual_ipaddress {{
        {VIP}/24
    }}
{extra}}}
"""


@dataclass
class Vrrp:
    """A VRRP daemon on a node: poise vrrp or Keepalived."""

    lab: Lab
    node: str
    kind: str  # "poise" or "keepalived"
    proc: Proc
    vrrp_pidfile: Path

    def child_pid(self) -> int | None:
        """Keepalived's VRRP child (the process that speaks VRRP)."""
        try:
            return int(self.vrrp_pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def graceful_stop(self) -> None:
        self.lab.stop(self.proc)

    def crash(self) -> None:
        """SIGKILL, as a crash: Keepalived's VRRP child first, then its parent."""
        if self.kind == "keepalived":
            child = self.child_pid()
            if child is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        self.lab.signal(self.proc, signal.SIGKILL)
        self.proc.popen.wait(5)

    def log(self) -> str:
        return self.proc.text()

    def wait_backup(self, advert: float = 0.1) -> None:
        """Wait until this daemon runs as a backup and has heard a few adverts (Python
        starts slower than Keepalived: a failover measured before would time start-up)."""
        wait_for(
            lambda: "Entering BACKUP STATE" in self.log(),
            10,
            f"{self.kind} on {self.node} to run as a backup",
        )
        time.sleep(3 * advert)


def start_vrrp(lab: Lab, node: str, kind: str, conf: str, tag: str = "") -> Vrrp:
    name = f"{kind}-{node}{tag}"
    path = lab.workdir / f"{name}.conf"
    path.write_text(conf)
    pidfile = lab.workdir / f"{name}.pid"
    vrrp_pidfile = lab.workdir / f"{name}.vrrp.pid"
    if kind == "poise":
        argv = [POISE, "vrrp", "-f", str(path), "-db", "--log-detail", "-p", str(pidfile)]
        proc = lab.spawn(node, name, argv)
        return Vrrp(lab, node, kind, proc, pidfile)
    argv = [
        "keepalived",
        "-f",
        str(path),
        "--vrrp",
        "-n",
        "-l",
        "-D",
        "-G",
        "-R",
        "-p",
        str(pidfile),
        "-r",
        str(vrrp_pidfile),
    ]
    holder: list[Vrrp] = []

    def extra() -> list[int]:
        child = holder[0].child_pid() if holder else None
        return [child] if child else []

    proc = lab.spawn(node, name, argv, extra_pids=extra)
    vrrp = Vrrp(lab, node, kind, proc, vrrp_pidfile)
    holder.append(vrrp)
    return vrrp


BALANCER_CONF = """global
    stats socket {socket} level admin
    stats timeout 5s
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend vip
    bind {vip}:{port} freebind
    default_backend web
backend web
    server be {backend}:{backend_port}
"""


def start_balancer(lab: Lab, node: str) -> tuple[Proc, Path]:
    """`poise run` on a node, bound to the virtual address before it holds it (freebind)."""
    socket_path = lab.workdir / f"{node}.sock"
    conf = lab.workdir / f"balancer-{node}.cfg"
    conf.write_text(
        BALANCER_CONF.format(
            socket=socket_path,
            vip=VIP,
            port=SERVICE_PORT,
            backend=ip_of("be"),
            backend_port=BACKEND_PORT,
        )
    )
    proc = lab.spawn(node, f"balancer-{node}", [POISE, "run", "-f", str(conf), "-db"])
    wait_for(socket_path.exists, 10, f"poise run's stats socket on {node}")
    return proc, socket_path


def start_service(lab: Lab, node: str, duration: float = 600) -> Proc:
    """A stand-in for the balancer on a node: it binds the virtual address with freebind
    and answers with the node's address (what the backend would say through poise run)."""
    argv = [
        sys.executable,
        str(HERE / "responder.py"),
        VIP,
        str(SERVICE_PORT),
        str(duration),
        "--answer",
        ip_of(node),
    ]
    proc = lab.spawn(node, f"service-{node}", argv)
    wait_for(
        lambda: "LISTEN" in lab.run(node, ["ss", "-ltn", f"sport = :{SERVICE_PORT}"]).stdout,
        10,
        f"the service on {node} to listen",
    )
    return proc


def start_backend(lab: Lab, duration: float = 600) -> Proc:
    argv = [
        sys.executable,
        str(HERE / "responder.py"),
        ip_of("be"),
        str(BACKEND_PORT),
        str(duration),
    ]
    proc = lab.spawn("be", "backend", argv)
    wait_for(
        lambda: bool(
            lab.run("be", ["ss", "-ltn", f"sport = :{BACKEND_PORT}"]).stdout.count("LISTEN")
        ),
        10,
        "the backend to listen",
    )
    return proc


def start_prober(lab: Lab, duration: float, interval: float = 0.01, tag: str = "") -> Proc:
    argv = [
        sys.executable,
        str(HERE / "prober.py"),
        VIP,
        str(SERVICE_PORT),
        str(interval),
        str(duration),
    ]
    return lab.spawn("cl", f"prober{tag}", argv)


@dataclass(frozen=True)
class Probe:
    start: float
    end: float
    ok: bool
    node: str | None


def probes(proc: Proc) -> list[Probe]:
    out = []
    for line in proc.text().splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        ok = parts[2] == "ok"
        out.append(
            Probe(float(parts[0]), float(parts[1]), ok, NODE_OF.get(parts[3]) if ok else None)
        )
    return sorted(out, key=lambda p: p.start)


def served_by(proc: Proc, node: str, since: float = 0.0) -> bool:
    return any(p.ok and p.node == node and p.start >= since for p in probes(proc))


@dataclass(frozen=True)
class Failover:
    seconds: float  # from the disruption to the first request the new master served
    lost: int  # requests started in that time that failed
    sent: int


def failover(proc: Proc, since: float, new_master: str) -> Failover:
    after = [p for p in probes(proc) if p.start >= since]
    first = next(p for p in after if p.ok and p.node == new_master)
    window = [p for p in after if p.start < first.start]
    return Failover(first.start - since, sum(not p.ok for p in window), len(window))


def start_advert_watch(lab: Lab, duration: float) -> Proc:
    argv = [sys.executable, str(HERE / "advert_watch.py"), str(duration)]
    return lab.spawn("cl", "adverts", argv)


def last_advert(watch: Proc, node: str, after: float) -> float | None:
    times = [
        float(line.split()[0])
        for line in watch.text().splitlines()
        if line.split()[1:2] == [ip_of(node)] and float(line.split()[0]) > after
    ]
    return times[-1] if times else None


def measure(
    prober: Proc,
    old: str,
    new: str,
    disrupt: Callable[[], object],
    timeout: float,
    *,
    adverts: Proc | None = None,
    phase: float = 0.0,
) -> Failover:
    """Wait until the client is served by `old`, disrupt, wait until `new` serves it.
    With `adverts` (an advert watcher), the disruption comes `phase` seconds after one of
    `old`'s adverts, so that every implementation is measured at the same point of its
    advert cycle (a crash just after an advert is the slowest case, just before the
    fastest)."""
    wait_for(lambda: served_by(prober, old), 15, f"the client to be served by {old}")
    if adverts is not None:
        start = time.monotonic()
        seen: list[float] = []

        def advert_seen() -> bool:
            at = last_advert(adverts, old, start)
            if at is not None:
                seen.append(at)
            return at is not None

        wait_for(advert_seen, 15, f"an advert from {old}", step=0.002)
        time.sleep(max(0.0, seen[-1] + phase - time.monotonic()))
    since = time.monotonic()
    disrupt()
    wait_for(lambda: served_by(prober, new, since), timeout, f"the client to be served by {new}")
    # Requests started meanwhile may still wait for their timeout: count them once they end.
    time.sleep(2 * PROBE_TIMEOUT + 0.2)
    return failover(prober, since, new)


__all__ = [
    "SUBNET",
    "Failover",
    "Vrrp",
    "measure",
    "start_backend",
    "start_balancer",
    "start_prober",
    "start_vrrp",
    "vrrp_conf",
]
