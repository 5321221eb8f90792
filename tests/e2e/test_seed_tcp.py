"""The seed tutorial's haproxy.cfg, run as a user would: `poise run -f haproxy.cfg` as a
process, with only ports and paths rewritten (DESIGN.md, seeds/README.md).

It must do what HAProxy does with that file: daemonize and write its pidfile, chroot and
switch to the `haproxy` user, redirect port 80 to https://view.domain.local, balance the
`secured` frontend over view01/view02 by source address, take a dead server out after
`fall 5` failed checks (inter 2000) and put it back after `rise 2` good ones, logging each
step to syslog on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.io.harness import LogReceiver
from tests.support import Backend, ask_from, eventually, free_port, run

SEEDS = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the seed config drops root (user haproxy)"),
]


def rewrite(text: str, tmp: Path, ports: dict[str, int], log_port: int) -> str:
    """Ports and paths only, as the seed README allows."""
    text = text.replace("/var/lib/haproxy/stats", str(tmp / "stats"))
    text = text.replace("chroot      /var/lib/haproxy", f"chroot      {tmp / 'chroot'}")
    text = text.replace("/var/run/haproxy.pid", str(tmp / "haproxy.pid"))
    text = text.replace("log         127.0.0.1 local2", f"log         127.0.0.1:{log_port} local2")
    text = text.replace("127.0.0.170:80", f"127.0.0.170:{ports['http']}")
    text = text.replace("127.0.0.170:443", f"127.0.0.170:{ports['https']}")
    text = text.replace("127.0.0.165:443", f"127.0.0.165:{ports['view']}")
    text = text.replace("127.0.0.166:443", f"127.0.0.166:{ports['view']}")
    return text.replace("check port 443", f"check port {ports['view']}")


async def ask(source: str, port: int) -> str:
    # `option dontlognull`: a session that sends nothing is not logged, so say hello.
    return await ask_from(source, port, host="127.0.0.170", send=b"hello\n")


def alive(pid: int) -> bool:
    """Running (a daemon is not our child: once it exits it may linger as a zombie of
    whichever process adopted it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return re.search(r"^State:\s+Z", status, re.M) is None


def test_seed_haproxy_cfg_balances_by_source_and_fails_over(tmp_path: Path) -> None:
    (tmp_path / "chroot").mkdir()
    ports = {"http": free_port("127.0.0.170"), "https": free_port("127.0.0.170")}
    ports["view"] = free_port("127.0.0.165")

    async def main() -> None:
        logs = await LogReceiver().start()
        text = rewrite((SEEDS / "haproxy.cfg").read_text(), tmp_path, ports, logs.port)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(text)
        view01 = await Backend("view01").start("127.0.0.165", ports["view"])
        view02 = await Backend("view02").start("127.0.0.166", ports["view"])

        # Output to a file, not a pipe: the daemon's parent exits once the daemon serves,
        # and the test waits for that exit, as a shell or an init script would.
        stderr = (tmp_path / "stderr").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poise.cli", "run", "-f", str(cfg),
            stdout=stderr, stderr=stderr,
        )  # fmt: skip
        pidfile = tmp_path / "haproxy.pid"
        try:
            assert await asyncio.wait_for(proc.wait(), 20) == 0, (tmp_path / "stderr").read_text()
            # `daemon`: the command returned once the daemon served; the pidfile names it.
            pid = int(pidfile.read_text())
            status = Path(f"/proc/{pid}/status").read_text()
            haproxy_uid = str(__import__("pwd").getpwnam("haproxy").pw_uid)
            assert re.search(rf"^Uid:\s+{haproxy_uid}\s", status, re.M), status
            assert os.readlink(f"/proc/{pid}/root") == str(tmp_path / "chroot")

            # Port 80 answers with the redirect to the secured site.
            reader, writer = await asyncio.open_connection("127.0.0.170", ports["http"])
            writer.write(b"GET /portal HTTP/1.1\r\nHost: view.domain.local\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            assert head.startswith(b"HTTP/1.1 302 Found\r\n")
            assert b"\r\nlocation: https://view.domain.local\r\n" in head

            # Port 443: each source address sticks to one server; sources spread.
            sources = [f"127.0.{i}.{j}" for i in range(1, 4) for j in range(2, 8)]
            first = {src: await ask(src, ports["https"]) for src in sources}
            assert set(first.values()) == {"view01", "view02"}
            assert first == {src: await ask(src, ports["https"]) for src in sources}
            await logs.wait_for(r"secured view/view0[12] ")

            # view01 dies: after `fall 5` failed checks it is DOWN, everyone uses view02.
            await view01.stop()
            down = await logs.wait_for(r"Server view/view01 is DOWN", timeout=30)
            assert "1 active and 0 backup servers left" in down[0]
            assert {await ask(src, ports["https"]) for src in sources} == {"view02"}

            # view01 returns: after `rise 2` good checks it is UP and gets its clients back.
            view01 = await Backend("view01").start("127.0.0.165", ports["view"])
            await logs.wait_for(r"Server view/view01 is UP", timeout=30)
            assert first == {src: await ask(src, ports["https"]) for src in sources}
        finally:
            stderr.close()
            if pidfile.exists():
                pid = int(pidfile.read_text())
                os.kill(pid, signal.SIGTERM)
                await eventually(lambda: not alive(pid), 10, "poise to stop")
            await view01.stop()
            await view02.stop()
            logs.close()

    run("uvloop", main, timeout=120)
