"""`cpu-map [auto:]PROCESS[/THREAD] CPU...` in `global` (configuration.txt 3.1): which CPUs
each worker may run on. poise's workers are HAProxy's threads (`nbthread N`: worker k is
thread k+1), and, as in HAProxy 2.6, there is one process, process 1.

HAProxy 2.6's rules, checked against /usr/sbin/haproxy -c: a process or thread set is
`all`, `odd`, `even`, a number from 1 to 64 or a range (`4-1` is `1-4`); CPUs are numbers
or ranges from 0 to 1023, in one or more words; `auto:` binds the threads (or processes)
of a range one to one to the CPUs listed, so both must have the same size. A later line
for the same thread replaces an earlier one. A line without a thread set binds the whole
process; with both, a thread runs on the CPUs the two have in common.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from poise.config.where import NOWHERE, Where

MAX_IDS = 64  # HAProxy's LONGBITS: processes and threads are numbered 1..64
MAX_CPUS = 1024  # CPU numbers 0..1023

USAGE = (
    "expects a process number  ('all', 'odd', 'even', a number from 1 to 64 or a "
    "range),  followed by a list of CPU ranges with numbers from 0 to 63."
)


class CpuMapError(ValueError):
    """A `cpu-map` line HAProxy refuses, with HAProxy's message."""


@dataclass(frozen=True, slots=True)
class CpuMap:
    """One `cpu-map` line, resolved: `threads` None binds the process as a whole; else
    each thread (1-based) of the map gets its CPUs."""

    processes: frozenset[int]
    threads: tuple[tuple[int, frozenset[int]], ...] | None
    cpus: frozenset[int]  # every CPU the line names
    where: Where = NOWHERE


def _ids(word: str) -> list[int]:
    """A process or thread set, in order."""
    if word == "all":
        return list(range(1, MAX_IDS + 1))
    if word in ("odd", "even"):
        return list(range(1 if word == "odd" else 2, MAX_IDS + 1, 2))
    low, dash, high = word.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise CpuMapError(f"'{word}' is not a valid number/range.") from None
    first, last = min(first, last), max(first, last)
    if first < 1 or last > MAX_IDS:
        raise CpuMapError(
            f"'{word}' is not a valid number/range. It supports numbers from 1 to {MAX_IDS}."
        )
    return list(range(first, last + 1))


def _cpus(words: Sequence[str]) -> list[int]:
    found: set[int] = set()
    for word in words:
        low, dash, high = word.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise CpuMapError(f"'{word}' is not a CPU range.") from None
        first, last = min(first, last), max(first, last)
        if first < 0 or last >= MAX_CPUS:
            raise CpuMapError(f"supports CPU numbers from 0 to {MAX_CPUS - 1}.")
        found.update(range(first, last + 1))
    return sorted(found)


def parse_cpu_map(args: Sequence[str]) -> CpuMap:
    """The words after `cpu-map`; raises CpuMapError."""
    if len(args) < 2:
        raise CpuMapError(USAGE)
    spec = args[0]
    auto = spec.startswith("auto:")
    if auto:
        spec = spec[len("auto:") :]
    proc_word, slash, thread_word = spec.partition("/")
    processes = _ids(proc_word)
    threads = _ids(thread_word) if slash else None
    cpus = _cpus(args[1:])
    if not auto:
        every = frozenset(cpus)
        per_thread = None if threads is None else tuple((t, every) for t in threads)
        return CpuMap(frozenset(processes), per_thread, every)
    ranged = threads if threads is not None and len(threads) > 1 else processes
    if (threads is not None and len(threads) > 1 and len(processes) > 1) or len(ranged) != len(
        cpus
    ):
        raise CpuMapError(
            "PROC/THREAD range and CPU sets must have the same size to be automatically bound"
        )
    if threads is None:  # one CPU per process: only process 1 exists
        return CpuMap(frozenset({processes[0]}), None, frozenset({cpus[0]}))
    if ranged is processes:  # one thread set, several processes: process 1's CPU
        return CpuMap(
            frozenset(processes),
            tuple((t, frozenset({cpus[0]})) for t in threads),
            frozenset({cpus[0]}),
        )
    pairs = tuple((t, frozenset({cpu})) for t, cpu in zip(threads, cpus, strict=True))
    return CpuMap(frozenset(processes), pairs, frozenset(cpus))


def cpus_for(thread: int, maps: Sequence[CpuMap]) -> frozenset[int] | None:
    """The CPUs thread `thread` (1-based) of process 1 may run on; None: no `cpu-map`
    names it (it runs where the system lets it)."""
    process: frozenset[int] | None = None
    own: frozenset[int] | None = None
    for line in maps:
        if 1 not in line.processes:
            continue
        if line.threads is None:
            process = line.cpus
            continue
        for number, cpus in line.threads:
            if number == thread:
                own = cpus
    if own is not None and process is not None:
        return (own & process) or own
    return own if own is not None else process
