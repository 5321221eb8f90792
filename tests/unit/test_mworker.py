"""The master's decisions (core/mworker.py) without a process: start, reloads that succeed,
fail or come during another one, workers that exit on purpose or not, stops; and, with
Hypothesis, that no order of events leaves two current workers, a worker nobody stops, or
a master that exits with a worker left."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.config.haproxy import parse
from poise.core.mworker import (
    READY,
    Command,
    Exit,
    Launch,
    Log,
    Master,
    Notify,
    Phase,
    Release,
    Role,
    Spawn,
    Started,
    Stop,
)


def logs(commands: list[Command]) -> list[str]:
    return [c.text for c in commands if isinstance(c, Log)]


def running(master: Master, pid: int = 100) -> Master:
    assert master.start() == [Launch(reload=False), Spawn()]
    master.spawned(pid)
    master.loaded(pid, ["a warning the master showed already"])
    master.ready(pid)
    return master


def test_start_spawns_then_the_ready_worker_becomes_current() -> None:
    master = Master()
    assert master.start() == [Launch(reload=False), Spawn()]
    assert master.spawned(100) == [Log("notice", "New worker (100) forked")]
    assert master.loaded(100, ["w"]) == []  # shown by the master when it read the files
    commands = master.ready(100)
    assert commands == [Log("notice", "Loading success."), Release((100,)), READY, Started(True)]
    assert master.phase is Phase.RUNNING
    assert master.current is not None and master.current.pid == 100


def test_a_reload_starts_a_worker_and_the_old_one_finishes_softly_once_the_new_serves() -> None:
    master = running(Master())
    assert master.reload() == [
        Log("notice", "Reloading poise"),
        Notify(("RELOADING=1", "STATUS=Reloading configuration.")),
        Launch(reload=True),
        Spawn(),
    ]
    master.spawned(101)
    assert master.loaded(101, ["f.cfg:3: warning: x"]) == [Log("warning", "f.cfg:3: warning: x")]
    # Until the new worker serves, the old one is left alone.
    first = master.workers[100]
    assert first.role.value == "current"
    assert master.ready(101) == [
        Stop(100, soft=True),
        Log("notice", "Loading success."),
        Release((101,)),
        READY,
    ]
    assert first.role is Role.OLD and first.reloads == 1
    assert master.exited(100, 0, "Exit") == [
        Log("warning", "Former worker (100) exited with code 0 (Exit)")
    ]
    assert list(master.workers) == [101]


def test_a_failed_reload_leaves_the_old_worker_serving_and_says_why() -> None:
    master = running(Master())
    master.reload()
    master.spawned(101)
    why = ["f.cfg:7: error: 'bogus': unknown keyword", "Fatal errors found in configuration."]
    assert master.failed(101, why) == [Log("alert", line) for line in why]
    commands = master.exited(101, 1, "Exit")
    assert commands[0] == Log("alert", "New worker (101) exited with code 1 (Exit)")
    assert Log("warning", "Loading failure!") in commands
    assert Release((100,)) in commands  # the sockets bound for it alone are closed
    notify = [c for c in commands if isinstance(c, Notify)]
    assert notify[0].fields[0] == "READY=1" and "'bogus': unknown keyword" in notify[0].fields[1]
    assert not any(isinstance(c, Stop) for c in commands)
    assert master.current is not None and master.current.pid == 100
    assert master.failed_reloads == 1


def test_a_new_worker_that_dies_without_a_word_is_a_failed_reload_too() -> None:
    master = running(Master())
    master.reload()
    master.spawned(101)
    commands = master.exited(101, 139, "Segmentation fault")
    assert "Loading failure!" in logs(commands)
    assert master.failure == [
        "the new worker (101) exited with code 139 (Segmentation fault) before it served"
    ]
    assert master.phase is Phase.RUNNING


def test_a_reload_during_a_reload_follows_it() -> None:
    master = running(Master())
    master.reload()
    master.spawned(101)
    assert not any(isinstance(c, Spawn) for c in master.reload())
    assert master.pending
    commands = master.ready(101)
    assert commands[-1] == Spawn() and Stop(100, soft=True) in commands
    assert not master.pending
    # ...also when the first one failed.
    master.spawned(102)
    master.reload()
    assert master.exited(102, 1, "Exit")[-1] == Spawn()


def test_the_first_worker_failing_fails_the_start() -> None:
    master = Master()
    master.start()
    master.spawned(100)
    master.failed(100, ["cannot bind"])
    commands = master.exited(100, 1, "Exit")
    assert Started(False, ("cannot bind",)) in commands
    assert commands[-1] == Exit(1)
    assert master.phase is Phase.DONE


def test_a_worker_that_cannot_be_started_at_all() -> None:
    master = Master()
    master.start()
    commands = master.spawn_failed("Cannot allocate memory")
    assert Started(False, ("Cannot allocate memory",)) in commands and commands[-1] == Exit(1)
    master = running(Master())
    master.reload()
    commands = master.spawn_failed("Cannot allocate memory")
    assert "Loading failure!" in logs(commands) and not any(isinstance(c, Exit) for c in commands)


def test_sigterm_stops_every_worker_and_the_master_leaves_after_them() -> None:
    master = running(Master())
    master.reload()
    master.spawned(101)
    master.ready(101)
    commands = master.stop(soft=False)
    assert commands[:2] == [Log("warning", "Exiting Master process..."), Notify(("STOPPING=1",))]
    assert {c for c in commands if isinstance(c, Stop)} == {Stop(100, False), Stop(101, False)}
    assert master.exited(100, 143, "Terminated") == [
        Log("warning", "Former worker (100) exited with code 143 (Terminated)")
    ]
    commands = master.exited(101, 143, "Terminated")
    assert commands == [
        Log("alert", "Current worker (101) exited with code 143 (Terminated)"),
        Log("warning", "All workers exited. Exiting... (0)"),
        Exit(0),
    ]


def test_sigusr1_stops_every_worker_softly() -> None:
    master = running(Master())
    assert Stop(100, soft=True) in master.stop(soft=True)
    assert master.stop(soft=False)[-1] == Stop(100, soft=False)  # asked again, harder


def test_a_current_worker_that_fails_takes_every_worker_down() -> None:
    master = running(Master())
    master.reload()
    master.spawned(101)
    master.ready(101)  # 100 is an old worker now
    commands = master.exited(101, 137, "Killed")
    assert "exit-on-failure: killing every processes with SIGTERM" in logs(commands)
    assert Stop(100, soft=False) in commands
    assert master.exited(100, 143, "Terminated")[-1] == Exit(137)


def test_no_exit_on_failure_keeps_the_others() -> None:
    master = running(Master(exit_on_failure=False))
    master.reload()
    master.spawned(101)
    master.ready(101)
    commands = master.exited(101, 137, "Killed")
    assert not any(isinstance(c, Stop) for c in commands)
    # ...but with no worker left at all, the master leaves, as HAProxy's does.
    assert master.exited(100, 0, "Exit")[-1] == Exit(137)


def test_a_current_worker_that_leaves_normally_ends_the_master_normally() -> None:
    master = running(Master())
    assert master.exited(100, 0, "Exit")[-1] == Exit(0)


def test_mworker_max_reloads_terminates_a_worker_that_outlives_them() -> None:
    master = running(Master(max_reloads=1))
    master.reload()
    master.spawned(101)
    master.ready(101)  # 100 has outlived one reload: fine
    master.reload()
    master.spawned(102)
    commands = master.ready(102)  # 100 has outlived two
    assert Stop(100, soft=False) in commands and Stop(101, soft=True) in commands


def test_a_stop_during_start_fails_the_start() -> None:
    master = Master()
    master.start()
    master.spawned(100)
    commands = master.stop(soft=False)
    assert Started(False, ("poise: interrupted during start-up",)) in commands
    assert master.exited(100, 143, "Terminated")[-1] == Exit(1)


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["reload", "ready", "failed", "exit", "crash", "term", "usr1"]),
        st.integers(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_no_order_of_events_breaks_the_rules(events: list[tuple[str, int]]) -> None:
    master = Master()
    alive: set[int] = set()  # processes that exist
    stopped: set[int] = set()  # processes told to stop
    next_pid = 100
    exited = False

    def apply(commands: list[Command]) -> None:
        nonlocal next_pid, exited
        for command in commands:
            if isinstance(command, Spawn):
                alive.add(next_pid)
                apply(master.spawned(next_pid))
                next_pid += 1
            elif isinstance(command, Stop):
                assert command.pid in alive
                stopped.add(command.pid)
            elif isinstance(command, Exit):
                assert not alive, "the master left with workers running"
                exited = True

    apply(master.start())
    for name, index in events:
        if exited:
            break
        pids = sorted(alive)
        pid = pids[index % len(pids)] if pids else None
        if name == "reload":
            apply(master.reload())
        elif name == "ready" and pid is not None:
            apply(master.ready(pid))
        elif name == "failed" and pid is not None:
            apply(master.failed(pid, ["why"]))
        elif name in ("exit", "crash") and pid is not None:
            alive.discard(pid)
            apply(master.exited(pid, 0 if name == "exit" else 139, "x"))
        elif name == "term":
            apply(master.stop(soft=False))
        elif name == "usr1":
            apply(master.stop(soft=True))
        currents = [w for w in master.workers.values() if w.role is Role.CURRENT]
        assert len(currents) <= 1
        assert len([w for w in master.workers.values() if w.role is Role.NEW]) <= 1
        # Every old worker was told to leave.
        assert all(w.pid in stopped for w in master.workers.values() if w.role is Role.OLD)
        assert set(master.workers) == alive


# -- the keywords (configuration.txt 3.1) -------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "master_worker", "exit_on_failure", "max_reloads"),
    [
        ("", False, True, None),
        ("    master-worker\n", True, True, None),
        ("    master-worker no-exit-on-failure\n", True, False, None),
        ("    master-worker\n    mworker-max-reloads 3\n", True, True, 3),
    ],
)
def test_master_worker_keywords(
    lines: str, master_worker: bool, exit_on_failure: bool, max_reloads: int | None
) -> None:
    config, diagnostics = parse([("m.cfg", "global\n" + lines)], {})
    assert config is not None and not diagnostics
    assert config.global_.master_worker is master_worker
    assert config.global_.exit_on_failure is exit_on_failure
    assert config.global_.mworker_max_reloads == max_reloads


def test_master_worker_with_a_wrong_argument_says_which() -> None:
    _, diagnostics = parse([("m.cfg", "global\n    master-worker no-exit\n")], {})
    assert [str(d) for d in diagnostics] == [
        "m.cfg:2: error: 'master-worker': unexpected argument 'no-exit' (only 'no-exit-on-failure')"
    ]


def test_a_reload_waiting_for_a_failed_one_is_not_mistaken_for_the_end() -> None:
    """Found by Hypothesis: the current worker left on its own, then the new worker
    failed while another reload waited; the master must start that reload, not exit."""
    master = Master()
    master.start()
    master.spawned(100)
    master.reload()  # waits: the first worker is not serving yet
    assert Spawn() in master.ready(100)  # the waiting reload starts
    master.spawned(101)
    master.exited(100, 0, "Exit")
    master.reload()  # waits for 101
    commands = master.exited(101, 1, "Exit")
    assert Spawn() in commands and not any(isinstance(c, Exit) for c in commands)


# -- nbthread N: generations of N workers ------------------------------------------------


def generation(master: Master, first_pid: int, count: int) -> list[int]:
    pids = list(range(first_pid, first_pid + count))
    for slot, pid in enumerate(pids):
        master.spawned(pid, Spawn(slot, count))
    return pids


def test_a_generation_serves_once_every_worker_of_it_is_ready() -> None:
    master = Master()
    assert master.start(3) == [Launch(reload=False), Spawn(0, 3), Spawn(1, 3), Spawn(2, 3)]
    pids = generation(master, 100, 3)
    assert master.ready(100) == [] and master.ready(101) == []
    commands = master.ready(102)
    assert Started(True) in commands and Release((100, 101, 102)) in commands
    assert {w.role for w in master.workers.values()} == {Role.CURRENT}
    # A reload: three new ones; the three before leave once all three new ones serve.
    assert master.reload()[-3:] == [Spawn(0, 3), Spawn(1, 3), Spawn(2, 3)]
    new = generation(master, 200, 3)
    # Only the first of a generation says its warnings (the same files for all).
    assert master.loaded(200, ["w"]) == [Log("warning", "w")] and master.loaded(201, ["w"]) == []
    master.ready(200)
    master.ready(201)
    commands = master.ready(202)
    assert [c for c in commands if isinstance(c, Stop)] == [Stop(p, soft=True) for p in pids]
    assert Release(tuple(new)) in commands
    assert master.generation == 2


def test_a_new_generation_that_fails_is_stopped_whole_and_the_old_one_serves() -> None:
    master = Master()
    master.start(2)
    generation(master, 100, 2)
    master.ready(100)
    master.ready(101)
    master.reload()
    generation(master, 200, 2)
    master.ready(200)
    master.failed(201, ["g.cfg:9: error: no"])
    commands = master.exited(201, 1, "Exit")
    assert Stop(200, soft=False) in commands and "Loading failure!" in logs(commands)
    assert not any(isinstance(c, Stop) and c.pid in (100, 101) for c in commands)
    assert master.exited(200, 143, "Terminated") == [
        Log("warning", "Former worker (200) exited with code 143 (Terminated)")
    ]
    assert {p for p, w in master.workers.items() if w.role is Role.CURRENT} == {100, 101}


def test_a_dead_worker_is_replaced_in_its_slot_with_back_off_and_keeps_its_sockets() -> None:
    master = Master()
    master.start(2)
    generation(master, 100, 2)
    master.ready(100)
    master.ready(101)
    commands = master.exited(101, 137, "Killed", now=10.0)
    assert commands == [
        Log("alert", "Current worker (101) exited with code 137 (Killed)"),
        Spawn(1, 2, replacing=True),  # at once the first time
    ]
    assert master._keep() == (100, 101)  # the dead one's shard stays open
    master.spawned(102, Spawn(1, 2, replacing=True))
    assert master.ready(102) == [Log("notice", "Worker (102) serves in place of worker #1")]


def test_replacements_back_off_while_the_slot_keeps_dying() -> None:
    master = Master()
    master.start(2)
    generation(master, 100, 2)
    master.ready(100)
    master.ready(101)
    delays = []
    pid, now = 101, 0.0
    for _ in range(8):
        spawn = master.exited(pid, 139, "Segmentation fault", now=now)[-1]
        assert isinstance(spawn, Spawn) and spawn.replacing
        delays.append(spawn.delay)
        if spawn.delay:
            assert master.due(1) == [Spawn(1, 2, replacing=True)]
        pid += 1000
        master.spawned(pid, Spawn(1, 2, replacing=True))
        master.ready(pid)
        now += 1.0
    assert delays == [0.0, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0]
    # Calm for a while: the next death is replaced at once again.
    assert master.exited(pid, 139, "Segmentation fault", now=now + 60)[-1] == Spawn(
        1, 2, replacing=True
    )


def test_a_stop_during_a_back_off_starts_no_replacement() -> None:
    master = Master()
    master.start(2)
    generation(master, 100, 2)
    master.ready(100)
    master.ready(101)
    master.exited(101, 137, "Killed", now=0.0)
    master.spawned(102, Spawn(1, 2, replacing=True))
    assert master.exited(102, 1, "Exit", now=0.1)[-1] == Spawn(1, 2, replacing=True, delay=0.2)
    commands = master.stop(soft=False)
    assert Stop(100, soft=False) in commands
    assert master.due(1) == []
    assert master.exited(100, 143, "Terminated")[-1] == Exit(0)


def test_a_reload_replaces_a_replacement_that_was_not_serving_yet() -> None:
    master = Master()
    master.start(2)
    generation(master, 100, 2)
    master.ready(100)
    master.ready(101)
    master.exited(101, 137, "Killed")
    master.spawned(102, Spawn(1, 2, replacing=True))
    master.reload(3)  # nbthread 3 now
    generation(master, 200, 3)
    master.ready(200)
    master.ready(201)
    commands = master.ready(202)
    assert Stop(100, soft=True) in commands and Stop(102, soft=False) in commands
    assert master.count == 3 and master.vacant == {}
