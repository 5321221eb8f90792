"""Imports go one way: the packages of poise form layers, and a package imports only from
the layers below its own. This is the one place where the order is written down.

From the top: the command line, the process layer, then the shell (I/O: sockets, files,
processes, the event loop), then the pure packages (decisions without I/O, which
test_purity.py keeps pure), then the configuration model at the bottom. Two packages in
the same layer do not import each other. A new package must be given a layer here.
"""

from __future__ import annotations

from collections import defaultdict

from tests.unit.imports import imports, modules, package_of

LAYERS: tuple[tuple[str, ...], ...] = (
    # entry points
    ("__main__",),  # `python -m poise`: the `poise` command
    ("cli",),  # the `poise` command: one parser, one module per subcommand
    # process layer
    ("process",),  # start, master, worker, hand-over, runtime, pidfile/daemon, `poise vrrp`
    # the shell
    ("doctor",),  # `poise doctor`: probes a running service (its judging is pure)
    ("checks", "vrrp"),  # health-check probes; the VRRP daemon (codec and FSM are pure)
    ("net",),  # listeners, sessions, pools, TLS, log sinks, the stats sockets
    ("system",),  # configuration files from disk, users, DNS names; systemd's notify
    ("certs",),  # certificate files and what they say; the small CA
    # pure
    ("admin",),  # runtime commands, the stats model, its pages, Prometheus text
    ("core",),  # the runtime model, balancing, health, HTTP rules, log lines
    ("config",),  # lexers, parsers, the configuration model, diagnostics
    ("poise",),  # poise/__init__.py: the version
)
LAYER = {package: depth for depth, layer in enumerate(LAYERS) for package in layer}


def package_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the module imports that make that edge."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name in modules():
        for imported in imports(name)[0]:
            if package_of(imported) != package_of(name):
                graph[package_of(name)][package_of(imported)].add(f"{name} -> {imported}")
    return graph


def test_every_package_has_a_layer() -> None:
    packages = {package_of(name) for name in modules()}
    assert packages - LAYER.keys() == set(), "give each new package its layer in LAYERS"
    assert LAYER.keys() - packages == set(), "a package in LAYERS no longer exists"


def test_imports_go_down_the_layers_only() -> None:
    wrong = sorted(
        edge
        for package, targets in package_graph().items()
        for target, edges in targets.items()
        if LAYER[target] <= LAYER[package]
        for edge in edges
    )
    assert wrong == [], "an import against the layer order (see LAYERS)"


def test_the_package_graph_has_no_cycle() -> None:
    # Follows from the layers; checked on its own so that a failure names the cycle.
    graph = {package: set(targets) for package, targets in package_graph().items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(package: str) -> None:
        if package in visiting:
            cycle = [*visiting[visiting.index(package) :], package]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if package in done:
            return
        visiting.append(package)
        for target in sorted(graph.get(package, ())):
            visit(target)
        visiting.pop()
        done.add(package)

    for package in sorted(graph):
        visit(package)


def test_the_graph_is_read() -> None:
    # A broken reader would pass the tests above with an empty graph.
    graph = package_graph()
    assert "poise.net.services -> poise.admin.stats" in graph["net"]["admin"]
    assert "poise.process.start -> poise.system.load" in graph["process"]["system"]
