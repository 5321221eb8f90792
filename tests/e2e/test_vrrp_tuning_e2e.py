"""`poise vrrp` as a process with global_defs' process tuning: the nice value
(`vrrp_priority`), the CPUs (`vrrp_cpu_affinity`), the memory locked (`vrrp_no_swap`) and
real-time scheduling (`vrrp_rt_priority`, and `max_auto_priority` taking it step by step when
the process is held up past `min_auto_priority_delay`), read back from /proc and the kernel as
`ps`/`taskset`/`chrt` would show them, and the warnings of the settings one poise process
cannot mean in its log; the netlink sockets' receive buffers read back with ss."""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
POISE = str(Path(sys.executable).parent / "poise")

CONF = """
global_defs {{
    vrrp_priority 7
    vrrp_cpu_affinity {cpu}
    vrrp_no_swap
    checker_priority -5
    vrrp_rt_priority 50
}}
"""
# A virtual server with a failing check: the loop runs, and logs each check.
SERVICE = """
virtual_server 127.0.0.1 {port} {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 0.1
    warmup 0
    real_server 127.0.0.1 {real} {{
        TCP_CHECK {{
            connect_timeout 0.5
            retry 0
        }}
    }}
}}
"""


def wait(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def nice(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19, after the name


def locked_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def vrrp(tmp_path: Path, text: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`poise vrrp` on `text`, its log, stopped by SIGTERM (a clean exit: the loop ran)."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    log = tmp_path / "vrrp.log"
    with log.open("wb") as stream:
        proc = subprocess.Popen(
            [POISE, "vrrp", "-f", str(conf), "-db"], stdout=stream, stderr=stream
        )
    try:
        # a check result: the loop runs, so SIGTERM is handled (not the default death)
        wait(lambda: "TCP_CHECK on service" in log.read_text(), "the first check")
        yield proc, log
    finally:
        proc.send_signal(signal.SIGCONT)  # if a test left it stopped
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()


def test_the_vrrp_process_takes_its_priority_cpu_and_locked_memory(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))  # one CPU this test may use, not always the first
    text = (CONF + SERVICE).format(cpu=cpu, port=free_port(), real=free_port())
    with vrrp(tmp_path, text) as (proc, log):
        wait(lambda: nice(proc.pid) == 7, "the nice value 7")
        assert os.sched_getaffinity(proc.pid) == {cpu}
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if os.geteuid() == 0 or soft == resource.RLIM_INFINITY:
            assert locked_kb(proc.pid) > 1000  # the whole interpreter, several MB
        else:
            assert "vrrp_no_swap: locked memory is limited" in log.read_text()
        text = log.read_text()
        assert "'checker_priority': poise vrrp has no separate checker process" in text
        # vrrp_rt_priority: the loop's thread (the process's first) under SCHED_RR at 50
        assert os.sched_getscheduler(proc.pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
        assert os.sched_getparam(proc.pid).sched_priority == 50
        rttime = Path(f"/proc/{proc.pid}/limits").read_text()
        assert "Max realtime timeout      5000                 10000" in rttime, rttime
        # threads started later (the checkers' and the probes') inherit the settings
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            assert nice(int(task.name)) == 7


AUTO = """
global_defs {{
    max_auto_priority 2
    min_auto_priority_delay 200000
    vrrp_rlimit_rttime 500000
}}
"""


def noticed(log: Path, count: int) -> bool:
    return log.read_text().count("A thread timer expired") >= count


def running_at(pid: int, priority: int) -> bool:
    policy = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
    return policy == os.SCHED_RR and os.sched_getparam(pid).sched_priority == priority


def test_a_process_held_up_takes_realtime_priority_step_by_step(tmp_path: Path) -> None:
    text = (AUTO + SERVICE).format(port=free_port(), real=free_port())
    with vrrp(tmp_path, text) as (proc, log):
        assert os.sched_getscheduler(proc.pid) == os.SCHED_OTHER  # nothing late yet
        for held, priority in enumerate((1, 2, 2), 1):  # up to max_auto_priority, no more
            # held up well past min_auto_priority_delay (0.2 s), as a busy machine would
            proc.send_signal(signal.SIGSTOP)
            time.sleep(0.5)  # the hold-up itself, not a wait for a condition
            proc.send_signal(signal.SIGCONT)
            wait(functools.partial(noticed, log, held), f"hold-up {held} noticed")
            wait(functools.partial(running_at, proc.pid, priority), f"priority {priority}")
        text = log.read_text()
        assert text.count("Set realtime priority 1") == 1, text
        assert text.count("Set realtime priority 2") == 1, text
        assert (
            "Max realtime timeout      250000               500000"
            in Path(f"/proc/{proc.pid}/limits").read_text()
        )


def all_threads(pid: int, check: Callable[[int], bool]) -> bool:
    return all(check(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir())


def test_a_reload_applies_the_new_tuning_as_keepalived_does(tmp_path: Path) -> None:
    # Keepalived 2.2.7's VRRP child re-reads global_defs on SIGHUP and sets its priorities
    # and CPUs again from the new file (vrrp_daemon.c: reload_vrrp_thread, start_vrrp).
    cpus = sorted(os.sched_getaffinity(0))
    first, second = cpus[-1], cpus[0]
    service = SERVICE.format(port=free_port(), real=free_port())
    before = f"global_defs {{\n    vrrp_priority 7\n    vrrp_cpu_affinity {first}\n}}\n"
    with vrrp(tmp_path, before + service) as (proc, log):
        wait(lambda: nice(proc.pid) == 7, "the nice value 7")
        conf = tmp_path / "keepalived.conf"
        conf.write_text(
            f"global_defs {{\n    vrrp_priority 12\n    vrrp_cpu_affinity {second}\n"
            f"    vrrp_rt_priority 20\n}}\n" + service
        )
        proc.send_signal(signal.SIGHUP)
        wait(lambda: all_threads(proc.pid, lambda t: nice(t) == 12), "nice 12 on every thread")
        assert all_threads(proc.pid, lambda t: os.sched_getaffinity(t) == {second})
        wait(functools.partial(running_at, proc.pid, 20), "real-time priority 20")
        # settings taken away: back to what the process had at start
        conf.write_text(service)
        proc.send_signal(signal.SIGHUP)
        wait(lambda: log.read_text().count("Reloaded:") == 2, "the second reload")
        start_nice = os.getpriority(os.PRIO_PROCESS, 0)
        assert all_threads(proc.pid, lambda t: nice(t) == start_nice)
        assert all_threads(proc.pid, lambda t: os.sched_getaffinity(t) == set(cpus))
        assert os.sched_getscheduler(proc.pid) == os.SCHED_OTHER


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().rstrip("\n")


def test_the_process_takes_its_name_and_a_reload_renames_it(tmp_path: Path) -> None:
    # Keepalived 2.2.7 names its VRRP child vrrp_process_name at start, and again when a
    # reload changes it (vrrp_daemon.c start_vrrp); poise's one process is that child.
    service = SERVICE.format(port=free_port(), real=free_port())
    with vrrp(tmp_path, "global_defs {\n    process_name lb\n}\n" + service) as (proc, log):
        wait(lambda: comm(proc.pid) == "lb", "the name lb")
        conf = tmp_path / "keepalived.conf"
        conf.write_text("global_defs {\n    process_names\n}\n" + service)
        proc.send_signal(signal.SIGHUP)
        wait(lambda: comm(proc.pid) == "keepalived_vrrp", "the name keepalived_vrrp")
        assert "Failed to set process name" not in log.read_text()
        conf.write_text(service)  # no name: back to the one it started with
        proc.send_signal(signal.SIGHUP)
        wait(lambda: comm(proc.pid) == "poise", "the name poise")


def netlink_buffers(pid: int) -> list[int]:
    """The receive buffers of the process's rtnetlink sockets, as `ss -f netlink -m` shows
    them (rb: the size the kernel keeps, twice the size asked for), found by their port ids
    (/proc/net/netlink maps the inodes of the process's sockets to them)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for row in Path("/proc/net/netlink").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[1] == "0" and fields[-1] in inodes:  # NETLINK_ROUTE
            ports.add(fields[2])
    out = subprocess.run(
        ["ss", "-f", "netlink", "-m"], capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    found = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        local = [f for f in line.split() if f.startswith("rtnl:")]
        if local and local[0].rsplit("/", 1)[-1].removeprefix("rtnl:") in ports:
            memory = line + after  # skmem may be on the line or the next one
            found.append(int(memory.split("rb", 1)[1].split(",", 1)[0]))
    return sorted(found)


def test_netlink_buffers_are_sized_at_start_and_at_each_reload(tmp_path: Path) -> None:
    service = SERVICE.format(port=free_port(), real=free_port())
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    before = (
        "global_defs {\n    vrrp_netlink_cmd_rcv_bufs 150000\n"
        "    vrrp_netlink_monitor_rcv_bufs 180000\n}\n"
    )
    with vrrp(tmp_path, before + service) as (proc, log):
        wait(lambda: {300000, 360000} <= set(netlink_buffers(proc.pid)), "150000 and 180000")
        forced = rmem_max + 65536
        conf = tmp_path / "keepalived.conf"
        conf.write_text(
            f"global_defs {{\n    vrrp_netlink_cmd_rcv_bufs {forced}\n"
            "    vrrp_netlink_cmd_rcv_bufs_force\n    vrrp_netlink_monitor_rcv_bufs 120000\n}\n"
            + service
        )
        proc.send_signal(signal.SIGHUP)
        wait(lambda: "Reloaded:" in log.read_text(), "the reload")
        sizes = set(netlink_buffers(proc.pid))
        assert 240000 in sizes and 360000 not in sizes and 300000 not in sizes, sizes
        if os.geteuid() == 0:
            assert 2 * forced in sizes, sizes
        else:
            assert "cannot set SO_RCVBUFFORCE" in log.read_text()
        text = log.read_text()
        assert "Traceback" not in text and "not implemented" not in text
