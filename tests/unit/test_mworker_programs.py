"""The master's decisions about `program` sections (core/mworker.py), without a process,
as HAProxy 2.6's master takes them (seen with haproxy -W -db): started before the first
worker, again at each reload when start-on-reload, the ones from before a reload told
SIGUSR1 once its worker serves (with or without start-on-reload), exit-on-failure for a
current program, and a master that leaves only once its programs are gone too."""

from __future__ import annotations

from poise.core.mworker import Command, Exit, Launch, Log, Master, Phase, Started, Stop


def logs(commands: list[Command]) -> list[str]:
    return [c.text for c in commands if isinstance(c, Log)]


def started(master: Master) -> Master:
    """A master running worker 100 and programs 'p1' (10) and 'p2' (11)."""
    assert master.start()[0] == Launch(reload=False)
    assert logs(master.program_forked(10, "p1")) == ["New program 'p1' (10) forked"]
    master.program_forked(11, "p2")
    master.spawned(100)
    master.ready(100)
    return master


def test_programs_start_with_the_first_worker_and_are_not_signalled_when_it_serves() -> None:
    master = started(Master())
    assert master.phase is Phase.RUNNING
    assert not any(isinstance(c, Stop) for c in master.ready(100))


def test_a_reload_starts_programs_then_signals_every_earlier_one_when_the_new_worker_serves() -> (
    None
):
    master = started(Master())
    assert Launch(reload=True) in master.reload()
    master.program_forked(12, "p1")  # p2 has `no option start-on-reload`: none started
    master.spawned(101)
    commands = master.ready(101)
    assert Stop(10, soft=True) in commands and Stop(11, soft=True) in commands
    assert Stop(12, soft=True) not in commands
    assert logs(master.program_exited(11, 0, "Exit")) == [
        "Former program 'p2' (11) exited with code 0 (Exit)"
    ]
    # The next reload signals the new one, and the earlier one still running again.
    master.reload()
    master.spawned(102)
    commands = master.ready(102)
    assert Stop(12, soft=True) in commands and Stop(10, soft=True) in commands


def test_a_stop_signals_the_programs_and_the_master_leaves_after_the_last_one() -> None:
    master = started(Master())
    commands = master.stop(soft=False)
    assert {Stop(10, soft=False), Stop(11, soft=False), Stop(100, soft=False)} <= set(commands)
    assert master.exited(100, 143, "Terminated")[-1:] != [Exit(0)]
    assert logs(master.program_exited(10, 0, "Exit")) == [
        "Current program 'p1' (10) exited with code 0 (Exit)"
    ]
    assert master.program_exited(11, 143, "Terminated")[-1] == Exit(0)


def test_a_current_program_that_fails_takes_everything_down() -> None:
    master = started(Master())
    commands = master.program_exited(11, 3, "Exit")
    assert logs(commands) == [
        "Current program 'p2' (11) exited with code 3 (Exit)",
        "exit-on-failure: killing every processes with SIGTERM",
    ]
    assert Stop(100, soft=False) in commands and Stop(10, soft=False) in commands
    master.exited(100, 143, "Terminated")
    assert master.program_exited(10, 143, "Terminated")[-1] == Exit(3)


def test_without_exit_on_failure_a_failed_program_leaves_the_rest_running() -> None:
    master = started(Master(exit_on_failure=False))
    commands = master.program_exited(11, 3, "Exit")
    assert not any(isinstance(c, Stop) for c in commands)
    assert master.phase is Phase.RUNNING


def test_a_program_that_cannot_start_at_start_up_fails_the_start() -> None:
    master = Master()
    master.start()
    commands = master.program_not_started(
        "p3", "Cannot execute /nowhere: No such file or directory"
    )
    assert logs(commands)[0] == "Cannot execute /nowhere: No such file or directory (program 'p3')"
    assert any(isinstance(c, Started) and not c.ok for c in commands)
    assert commands[-1] == Exit(1)  # no worker yet: the master leaves at once
