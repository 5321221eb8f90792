"""The script runner of poise vrrp, with real processes: exit status, timeout (the whole
process group is killed), the user a script runs as, and notify scripts in order with
Keepalived's arguments. Running as another user needs root."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from poise.config.keepalived import parse
from poise.config.keepalived_model import Command, GlobalDefs, KeepalivedConfig, Notify
from poise.vrrp.fsm import State
from poise.vrrp.scripts import Notifier, RunAs, run_as, run_check
from tests.unit.keepalived_support import FakeSource

ME = RunAs(None, None)


def test_exit_status_and_timeout() -> None:
    assert asyncio.run(run_check(("true",), ME, 5)) == (True, "exited with status 0")
    assert asyncio.run(run_check(("sh", "-c", "exit 3"), ME, 5)) == (False, "exited with status 3")
    assert asyncio.run(run_check(("/nonexistent",), ME, 5))[0] is False
    start = time.monotonic()
    # The child's own child must die too (its process group is killed).
    ok, what = asyncio.run(run_check(("sh", "-c", "sleep 30 & sleep 30"), ME, 0.3))
    assert (ok, what) == (False, "timed out after 0.3s")
    assert time.monotonic() - start < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="running a script as another user needs root")
def test_a_script_runs_as_its_user() -> None:
    nobody = RunAs("nobody", None)
    assert asyncio.run(run_check(("sh", "-c", 'test "$(id -u)" = 65534'), nobody, 5))[0]
    text = 'vrrp_script c {\n script "/bin/true"\n user nobody\n}\n'
    config, _ = parse("/k", FakeSource({"/k": text}))
    assert config is not None
    assert run_as(config, config.scripts["c"].command) == RunAs("nobody", None)


def test_notify_scripts_run_in_order_with_keepalived_s_arguments(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    master = Command(f"{script} master", (str(script), "master"))
    every = Command(str(script), (str(script),))
    config = KeepalivedConfig(GlobalDefs(), {}, ())

    async def go() -> None:
        notifier = Notifier(config, "INSTANCE", "VI_1", Notify(master=master, any=every), print)
        notifier.push(State.BACKUP, 100)
        notifier.push(State.MASTER, 102)
        await notifier.drain(5)

    asyncio.run(go())
    assert out.read_text().splitlines() == [
        "INSTANCE VI_1 BACKUP 100",
        "master",
        "INSTANCE VI_1 MASTER 102",
    ]
