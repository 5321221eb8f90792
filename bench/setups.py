"""What the benchmark compares: the modes (rows), the client variants, the balancers.

A row of the results is one (mode, variant) pair: `tcp` x `keep-alive` is one row. Adding a
row is adding a `Mode` to MODES (HTTPS: `scheme="https"` and `bind_options=" ssl crt
$certificate"`, the certificate `poise cert` made for the run) or a `Variant` to VARIANTS;
nothing else changes. Each variant carries the target poise must meet against HAProxy on
that row. Both balancers get the same file rendered from balancer.cfg.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    """poise's figure over HAProxy's, on one metric, must be `op` `ratio`."""

    metric: str  # "rps" or "cpu_us_per_req"
    op: str  # "<=" or ">="
    ratio: float

    def met(self, value: float) -> bool:
        return value <= self.ratio if self.op == "<=" else value >= self.ratio

    def text(self) -> str:
        return f"{self.op} {self.ratio:.2f}"


@dataclass(frozen=True)
class Variant:
    """How wrk's clients use their connections."""

    name: str
    headers: tuple[str, ...]
    target: Target


@dataclass(frozen=True)
class Mode:
    """One way of proxying: HAProxy's `mode`, the URL scheme wrk uses, extra `bind` options."""

    name: str
    proxy_mode: str
    scheme: str = "http"
    bind_options: str = ""
    global_options: str = ""  # lines added to the global section
    frontend_options: str = ""  # lines added to the frontend ($here: this folder)
    headers: tuple[str, ...] = ()  # request headers wrk adds to the variant's
    variants: tuple[str, ...] | None = None  # the variants that make sense (None: all)
    # Targets of this mode that differ from the variant's (variant name -> target).
    targets: tuple[tuple[str, Target], ...] = ()

    def variant(self, variant: Variant) -> Variant:
        """`variant` with this mode's own target, where it has one."""
        for name, target in self.targets:
            if name == variant.name:
                return replace(variant, target=target)
        return variant


@dataclass(frozen=True)
class Balancer:
    name: str
    label: str
    argv: tuple[str, ...]  # the command; the config file's path is appended
    reference: bool = False  # the one poise is compared against


VARIANTS = (
    # Per-request cost: CPU per request on long-lived connections.
    Variant("keep-alive", (), Target("cpu_us_per_req", "<=", 1.3)),
    # Per-connection cost: every request opens a new client and server connection.
    Variant("close", ("Connection: close",), Target("rps", ">=", 0.6)),
)

MODES = (
    Mode("tcp", "tcp"),
    # Issue "HTTP mode": keep-alive at least 0.5x HAProxy's requests/s on one core, and CPU
    # per request at most 2x (the CPU ratio is the steadier one, so it is the one judged).
    Mode("http", "http", targets=(("keep-alive", Target("cpu_us_per_req", "<=", 2.0)),)),
    # TLS terminated by the balancer, same certificate for both (EC P-256, from `poise cert`):
    # keep-alive measures TLS record work per request; `close` a new TLS connection per
    # request, which wrk resumes (TLS 1.3 session tickets) as browsers do.
    Mode("https", "http", scheme="https", bind_options=" ssl crt $certificate"),
    # Every connection a full handshake (certificate, signature, key exchange): no session
    # cache and no tickets on either balancer, so req/s is full handshakes/s.
    Mode(
        "https-full",
        "http",
        scheme="https",
        bind_options=" ssl crt $certificate no-tls-tickets",
        global_options="    tune.ssl.cachesize 0\n",
        variants=("close",),
    ),
    # Rate limiting (issue 18): every request tracked by its client's address in a stick
    # table and its rate compared (never reached, so every request is served).
    Mode(
        "http-track",
        "http",
        frontend_options=(
            "    stick-table type ip size 100k expire 30s store http_req_rate(10s)\n"
            "    http-request track-sc0 src\n"
            "    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }\n"
        ),
        targets=(("keep-alive", Target("cpu_us_per_req", "<=", 2.0)),),
    ),
    # Issue 14, point 4: what one HTTP feature costs per request, each on its own row beside
    # the plain `http` one. A map lookup choosing the backend from the Host header (lowered;
    # wrk sends a mixed-case one that hosts.map lists):
    Mode(
        "http-map",
        "http",
        frontend_options="    use_backend %[req.hdr(host),lower,map($here/hosts.map)]\n",
        headers=("Host: WWW.Example.COM",),
        variants=("keep-alive",),
        targets=(("keep-alive", Target("cpu_us_per_req", "<=", 2.0)),),
    ),
    # A variable set from the path for every request:
    Mode(
        "http-set-var",
        "http",
        frontend_options="    http-request set-var(txn.path) path\n",
        variants=("keep-alive",),
        targets=(("keep-alive", Target("cpu_us_per_req", "<=", 2.0)),),
    ),
    # gzip compression of every response (nginx's 3-byte text/plain body: the cost of
    # compressing a response at all, chunked on the way out), the client asking for it:
    Mode(
        "http-gzip",
        "http",
        frontend_options="    compression algo gzip\n    compression type text/plain\n",
        headers=("Accept-Encoding: gzip",),
        variants=("keep-alive",),
        targets=(("keep-alive", Target("cpu_us_per_req", "<=", 2.0)),),
    ),
)


def haproxy(path: str) -> Balancer:
    return Balancer("haproxy", "HAProxy", (path, "-db", "-f"), reference=True)


def poise(path: str) -> Balancer:
    return Balancer("poise", "poise", (path, "run", "-db", "-f"))


def render_balancer(
    balancer: Balancer,
    mode: Mode,
    port: int,
    backends: list[int],
    certificate: Path | None = None,
) -> str:
    servers = "\n".join(
        f"    server nginx{i} 127.0.0.1:{p}" for i, p in enumerate(backends, start=1)
    )
    bind_options = Template(mode.bind_options).substitute(certificate=certificate or "")
    return Template((HERE / "balancer.cfg").read_text()).substitute(
        balancer=balancer.label,
        mode=mode.proxy_mode,
        port=port,
        bind_options=bind_options,
        global_options=mode.global_options,
        frontend_options=Template(mode.frontend_options).substitute(here=HERE),
        servers=servers,
    )


def render_nginx(prefix: Path, ports: list[int]) -> str:
    servers = "\n".join(
        f'    server {{ listen 127.0.0.1:{p}; location / {{ return 200 "ok\\n"; }} }}'
        for p in ports
    )
    return Template((HERE / "nginx.conf").read_text()).substitute(prefix=prefix, servers=servers)
