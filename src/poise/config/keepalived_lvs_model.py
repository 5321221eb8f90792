"""keepalived.conf's LVS half as `poise vrrp` serves it: `virtual_server`,
`virtual_server_group`, their `real_server`s and the checkers on them. Pure, immutable data
with Keepalived's defaults applied (keepalived.conf(5), "LVS CONFIGURATION"); durations are
floats of seconds.

A setting given on a virtual server is the default of its real servers, and a real server's
is the default of its checkers (keepalived.conf(5)): what is stored here is the value each
one uses, already inherited.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from poise.config.keepalived_model import Command
from poise.config.model import NOWHERE, Where

IPAddress = IPv4Address | IPv6Address

DEFAULT_DELAY_LOOP = 60.0  # "delay timer for checker polling (60 seconds if not specified)"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_PERSISTENCE_TIMEOUT = 360  # "persistence_timeout [<INTEGER>]": "default 6 minutes"
DEFAULT_STATUS_CODES = ((200, 299),)


class CheckerKind(Enum):
    TCP_CHECK = "TCP_CHECK"
    HTTP_GET = "HTTP_GET"
    SSL_GET = "SSL_GET"
    MISC_CHECK = "MISC_CHECK"
    DNS_CHECK = "DNS_CHECK"
    SMTP_CHECK = "SMTP_CHECK"

    @property
    def default_retry(self) -> int:
        """keepalived.conf(5): 1 unless the checker says otherwise (DNS 3, MISC 0)."""
        return {CheckerKind.DNS_CHECK: 3, CheckerKind.MISC_CHECK: 0}.get(self, 1)


class Scheduler(Enum):
    """`lb_algo` / `lvs_sched`: IPVS's schedulers that poise maps onto its balancers."""

    RR = "rr"  # round robin, weights ignored (a weight 0 takes no new connection)
    WRR = "wrr"  # weighted round robin
    LC = "lc"  # least connections
    WLC = "wlc"  # weighted least connections (Keepalived's default)
    SED = "sed"  # shortest expected delay: (connections + 1) / weight
    NQ = "nq"  # never queue: an idle server first, then as sed
    SH = "sh"  # source hashing
    MH = "mh"  # Maglev hashing of the source
    TWOS = "twos"  # weighted random, best of two
    DH = "dh"  # destination hashing (core/balancer/ipvs.py)
    FO = "fo"  # weighted failover: the highest weight takes everything
    OVF = "ovf"  # overflow: the highest weight up to its weight in connections, then the next

    @property
    def weighted(self) -> bool:
        return self not in (Scheduler.RR, Scheduler.LC, Scheduler.DH)

    @property
    def raw_weights(self) -> bool:
        """Compares the weights as written (fo, ovf), so they are not scaled to 0-256."""
        return self in (Scheduler.FO, Scheduler.OVF)


@dataclass(frozen=True, slots=True)
class Url:
    """An `url { }` of HTTP_GET / SSL_GET: what a good answer to GET `path` is."""

    path: str
    digest: str | None = None  # MD5 of the body in lower-case hex, as genhash prints it
    status_codes: tuple[tuple[int, int], ...] = DEFAULT_STATUS_CODES
    virtualhost: str | None = None
    where: Where = NOWHERE

    def status_ok(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.status_codes)


@dataclass(frozen=True, slots=True)
class Checker:
    """One checker block on a real server, its options inherited and defaulted."""

    kind: CheckerKind
    connect_ip: IPAddress
    connect_port: int
    bindto: IPAddress | None = None
    bind_port: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry: int = 1
    delay_before_retry: float = 1.0
    delay_loop: float = DEFAULT_DELAY_LOOP
    warmup: float | None = None  # None: up to delay_loop, as Keepalived
    alpha: bool = False
    log_all_failures: bool = False
    # HTTP_GET, SSL_GET
    urls: tuple[Url, ...] = ()
    http_protocol: str = "1.0"  # 1.0, 1.0C (with Connection: close) or 1.1
    virtualhost: str | None = None
    fast_recovery: bool = False
    enable_sni: bool = False
    # SMTP_CHECK
    helo_name: str | None = None
    # DNS_CHECK
    dns_type: str = "SOA"
    dns_name: str = "."
    # MISC_CHECK
    misc_path: Command | None = None
    misc_timeout: float | None = None  # None: delay_loop
    misc_dynamic: bool = False
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class RealServer:
    address: IPAddress
    port: int
    weight: int = 1
    inhibit_on_failure: bool = False
    alpha: bool = False
    notify_up: Command | None = None
    notify_down: Command | None = None
    checkers: tuple[Checker, ...] = ()
    proxy_protocol: str | None = None  # poise's send_proxy (v1) / send_proxy_v2 (v2)
    where: Where = NOWHERE

    @property
    def label(self) -> str:
        """Keepalived's FMT_RS: `[ADDRESS]:tcp:PORT`."""
        return f"[{self.address}]:tcp:{self.port}"


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """One line of a `virtual_server_group`: addresses (a range expanded) and a port."""

    addresses: tuple[IPAddress, ...]
    port: int | None  # None: no port given (a persistent service's every port)
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class VirtualServerGroup:
    name: str
    entries: tuple[GroupEntry, ...] = ()
    fwmarks: tuple[int, ...] = ()
    where: Where = NOWHERE


@dataclass(frozen=True, slots=True)
class VirtualServer:
    """`virtual_server IP PORT` or `virtual_server group NAME`, as poise serves it."""

    endpoints: tuple[tuple[IPAddress, int], ...]  # where it listens: (address, port)
    name: str  # Keepalived's FMT_VS: `[10.0.0.1]:tcp:80`, or `[GROUP]:tcp:0`
    protocol: str = "TCP"  # TCP or UDP
    scheduler: Scheduler = Scheduler.WLC
    persistence_timeout: int | None = None  # seconds; None: not persistent
    persistence_granularity: int | None = None  # prefix length of the netmask
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Command | None = None
    quorum_down: Command | None = None
    alpha: bool = False
    omega: bool = False
    ha_suspend: bool = False
    sorry_server: tuple[IPAddress, int] | None = None
    sorry_server_inhibit: bool = False
    real_servers: tuple[RealServer, ...] = ()
    group: str | None = None
    proxy_protocol: str | None = None  # the sorry server's (the virtual server's own setting)
    where: Where = NOWHERE
