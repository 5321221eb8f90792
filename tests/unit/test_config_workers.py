"""`nbthread`, `cpu-map` and what several workers cannot share yet (config/cpumap.py,
config/workers.py, and load.py's CPU checks), parsed from real configuration text."""

from __future__ import annotations

import pytest

from poise.config.cpumap import cpus_for, parse_cpu_map
from poise.config.haproxy import parse
from poise.config.model import Config
from poise.config.workers import FEATURES
from poise.system.load import cpu_diagnostics, cpu_list

BASE = """\
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend f
    bind 127.0.0.1:8080
    default_backend b
backend b
"""


def load(text: str) -> tuple[Config | None, list[str]]:
    config, diagnostics = parse([("w.cfg", text)], {})
    return config, [str(d) for d in diagnostics]


def test_nbthread_and_cpu_maps_resolve_per_worker() -> None:
    config, problems = load(
        "global\n    nbthread 4\n    cpu-map 1 0-3\n    cpu-map auto:1/1-2 2-3\n"
        "    cpu-map 1/4 7\n    cpu-map 2/3 1\n" + BASE + "    server s 127.0.0.1:1\n"
    )
    assert config is not None, problems
    assert problems == [
        "w.cfg:6: warning: 'cpu-map': names no thread of process 1, poise's only process"
    ]
    maps = config.global_.cpu_maps
    assert config.global_.nbthread == 4
    assert [cpus_for(t, maps) for t in (1, 2, 3, 4)] == [
        frozenset({2}),
        frozenset({3}),
        frozenset({0, 1, 2, 3}),  # only the process line
        frozenset({7}),  # no CPU in common with the process line: the thread's own
    ]
    assert cpus_for(1, ()) is None


@pytest.mark.parametrize(
    ("words", "threads"),
    [
        (["1/all", "0-1"], 64),
        (["1/odd", "0"], 32),
        (["1/4-1", "0"], 4),  # a reversed range, as HAProxy takes it
        (["auto:1/1-2", "0", "1"], 2),
    ],
)
def test_cpu_map_sets(words: list[str], threads: int) -> None:
    line = parse_cpu_map(words)
    assert line.threads is not None and len(line.threads) == threads


def test_the_gate_names_every_use_of_what_is_not_shared_and_nothing_with_one_worker() -> None:
    text = (
        "global\n    nbthread 2\n    stats socket /tmp/poise-w.sock\n" + BASE
        + "    balance leastconn\n    stick-table type ip size 1k\n"
        "    server s 127.0.0.1:1 check maxconn 5\n"
        "listen st\n    bind 127.0.0.1:8081\n    stats enable\n    stats admin if TRUE\n"
        "    http-request use-service prometheus-exporter\n"
    )  # fmt: skip
    config, problems = load(text)
    assert config is None
    errors = sorted(p for p in problems if "not shared between workers yet" in p)
    assert [e.split(": error: ")[0] for e in errors] == [
        "w.cfg:12", "w.cfg:14", "w.cfg:15", "w.cfg:18", "w.cfg:3",
    ]  # fmt: skip
    assert all(e.endswith("(nbthread > 1): 'nbthread 2' is at w.cfg:2") for e in errors)
    assert len(FEATURES) == 7
    config, problems = load(text.replace("nbthread 2", "nbthread 1"))
    assert config is not None, problems
    peers = "global\n    nbthread 2\n    localpeer me\n" + BASE + "    server s 127.0.0.1:1\n"
    _, problems = load(peers + "peers mine\n    peer me 127.0.0.1:10000\n")
    assert problems == [
        "w.cfg:14: error: a 'peers' section is not shared between workers yet (nbthread > 1): "
        "'nbthread 2' is at w.cfg:2"
    ]


def test_more_workers_than_cpus_and_cpus_that_do_not_exist_are_warnings() -> None:
    config, problems = load("global\n    nbthread 3\n    cpu-map 1/1 0 5-6\n" + BASE)
    assert config is not None, problems
    assert [str(d) for d in cpu_diagnostics(config.global_, {0, 1})] == [
        "w.cfg:2: warning: 'nbthread': nbthread 3 is more than the 2 CPUs poise may run on: "
        "workers will share CPUs",
        "w.cfg:3: warning: 'cpu-map': CPU 5, 6 does not exist or poise may not run on it "
        "(it may run on 0-1): left out",
    ]
    assert cpu_diagnostics(config.global_, {0, 1, 2, 5, 6}) == []
    assert cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
