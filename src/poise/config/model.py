"""The configuration as poise runs it: what haproxy.cfg says, after `defaults` are applied
and names are resolved by the link pass. Pure, immutable data.

Units are normalised here: every duration is an int of milliseconds, every size an int of
bytes, so no consumer parses a unit again. `None` means "not set" where HAProxy makes a
difference between unset and zero (a missing `timeout server` is not an infinite one in
spirit: `poise check` warns about it, as HAProxy does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, Flag, auto
from typing import Literal

from poise.config.model_checks import TcpCheck
from poise.config.model_global import Cache, CpuMap, Program, StatsSocket
from poise.config.model_http import (
    Acl,
    AclPattern,
    AclTerm,
    AclTest,
    Capture,
    Compression,
    Condition,
    ErrorFile,
    FormatVar,
    HeaderMatch,
    HttpAction,
    HttpReply,
    HttpReuse,
    HttpRule,
    LogFormat,
    MatchMethod,
    Monitor,
    OriginalTo,
    PersistRule,
    Redirect,
    RedirectKind,
    Sample,
    StatsPage,
    UseBackend,
    Userlist,
    UserlistUser,
    UseServer,
)
from poise.config.model_log import DEFAULT_TAG, LogFormatName, LogKind, LogTarget, ProxyLog
from poise.config.model_peers import Peers
from poise.config.model_resolvers import Hold, Nameserver, Resolvers
from poise.config.model_stick import StickRule, StickTable
from poise.config.model_tcp import TcpRule, TcpRules
from poise.config.model_tls import (
    TLS_VERSIONS,
    CrtSource,
    GlobalTls,
    TlsBind,
    TlsDefaults,
    TlsServer,
    TlsVersion,
    TlsVersions,
)
from poise.config.where import NOWHERE, Where

# The parts kept in their own modules, re-exported: the model is read as one.
__all__ = [
    "DEFAULT_TAG",
    "NOWHERE",
    "TLS_VERSIONS",
    "Acl",
    "AclPattern",
    "AclTerm",
    "AclTest",
    "Cache",
    "Capture",
    "Compression",
    "Condition",
    "CrtSource",
    "ErrorFile",
    "FormatVar",
    "GlobalTls",
    "HeaderMatch",
    "Hold",
    "HttpAction",
    "HttpReply",
    "HttpReuse",
    "HttpRule",
    "LogFormat",
    "LogFormatName",
    "LogKind",
    "LogTarget",
    "MatchMethod",
    "Monitor",
    "Nameserver",
    "OriginalTo",
    "ProxyLog",
    "Redirect",
    "RedirectKind",
    "Resolvers",
    "Sample",
    "StatsPage",
    "StatsSocket",
    "TcpRule",
    "TcpRules",
    "TlsBind",
    "TlsDefaults",
    "TlsServer",
    "TlsVersion",
    "TlsVersions",
    "UseBackend",
    "UseServer",
    "Userlist",
    "UserlistUser",
    "Where",
]


class Mode(Enum):
    TCP = "tcp"
    HTTP = "http"


# "fd": a socket inherited from the parent process (`fd@N`, N in `host`); "sockpair": one end
# of a unix socketpair over which connections arrive (or leave) as descriptors (`sockpair@N`).
AddressFamily = Literal["ipv4", "ipv6", "unix", "fd", "sockpair"]
INHERITED_FAMILIES = ("fd", "sockpair")
# A server at one of these is transparent (see Address.transparent).
ANY_ADDRESSES = frozenset(("0.0.0.0", "::"))


@dataclass(frozen=True, slots=True)
class Address:
    """One endpoint. `host` is "" for "every address" (`:80`), an IP literal, a DNS name
    (servers only; resolved when poise starts), or a path for `unix`. `port` is None for
    unix sockets and for a server written without a port (it then uses the port the
    client connected to, as HAProxy does)."""

    family: AddressFamily
    host: str
    port: int | None
    # A server's `+N`/`-N` port: the port the client connected to, plus N (port is None).
    port_offset: int = 0

    def __str__(self) -> str:
        if self.family in ("unix", "fd", "sockpair"):  # `abns@NAME`: host is NUL + NAME
            return f"{self.family}@{self.host}".replace("unix@\0", "abns@", 1)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port_offset:
            return f"{host}:{self.port_offset:+d}"
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def transparent(self) -> bool:
        """A server at 0.0.0.0 or :: (`*`, or no host): connections go to the address the
        client connected to (HAProxy's transparent server)."""
        return self.host in ANY_ADDRESSES

    @property
    def inherited_fd(self) -> int | None:
        """The descriptor number of an `fd@N` or `sockpair@N` address, else None."""
        return int(self.host) if self.family in INHERITED_FAMILIES else None


@dataclass(frozen=True, slots=True)
class Bind:
    """One listening address of a frontend (a `bind` line with a port range or several
    addresses gives several Binds)."""

    address: Address
    where: Where
    name: str | None = None
    # IP_FREEBIND: bind an address this node does not own yet (the VRRP backup's VIP).
    freebind: bool = False
    # SO_REUSEPORT is on by default as in HAProxy; `noreuseport` turns it off.
    reuseport: bool = True
    backlog: int | None = None
    v6only: bool = False
    tls: TlsBind | None = None  # `ssl`: TLS is terminated on this address
    accept_proxy: bool = False  # a PROXY protocol header comes first (net/proxied.py)
    tfo: bool = False  # TCP Fast Open


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The `timeout` keywords, in milliseconds (None = not set)."""

    connect: int | None = None
    client: int | None = None
    client_fin: int | None = None
    server: int | None = None
    server_fin: int | None = None
    queue: int | None = None
    tunnel: int | None = None
    check: int | None = None
    http_request: int | None = None
    http_keep_alive: int | None = None
    tarpit: int | None = None
    # `tcp-request inspect-delay`, `tcp-response inspect-delay`
    inspect: int | None = None
    response_inspect: int | None = None


class Algorithm(Enum):
    ROUNDROBIN = "roundrobin"
    STATIC_RR = "static-rr"
    LEASTCONN = "leastconn"
    FIRST = "first"
    SOURCE = "source"
    RANDOM = "random"
    URI = "uri"
    URL_PARAM = "url_param"
    HDR = "hdr"
    RDP_COOKIE = "rdp-cookie"


class HashType(Enum):
    MAP_BASED = "map-based"
    CONSISTENT = "consistent"
    # poise's own (not HAProxy's): a weighted Maglev table over a BLAKE2b key hash.
    MAGLEV = "maglev"


class HashFunction(Enum):
    """`hash-type METHOD FUNCTION`: HAProxy 2.6's hash functions."""

    SDBM = "sdbm"
    DJB2 = "djb2"
    WT6 = "wt6"
    CRC32 = "crc32"


@dataclass(frozen=True, slots=True)
class BalanceOptions:
    """The options of `balance uri` and `balance hdr(NAME)`."""

    whole: bool = False  # uri: hash the query string too
    path_only: bool = False  # uri: drop an absolute URI's scheme and authority
    length: int = 0  # uri len N: hash at most N characters (0: no limit)
    depth: int = 0  # uri depth N: hash at most N directories (0: no limit)
    use_domain_only: bool = False  # hdr(): hash the main domain name only


@dataclass(frozen=True, slots=True)
class Balance:
    """`balance ALGO[(ARG)] [OPTIONS]` and `hash-type METHOD [FUNCTION [avalanche]]`."""

    algorithm: Algorithm = Algorithm.ROUNDROBIN
    # random(N): the number of draws (power of N choices); 2 when written `random`.
    draws: int = 2
    hash_type: HashType = HashType.MAP_BASED
    # url_param NAME / hdr(NAME) / rdp-cookie(NAME): what is hashed.
    argument: str | None = None
    # HAProxy's defaults: sdbm; `avalanche` only with a bare `hash-type consistent`.
    hash_function: HashFunction = HashFunction.SDBM
    avalanche: bool = False
    options: BalanceOptions = BalanceOptions()


@dataclass(frozen=True, slots=True)
class Source:
    """`source ADDR[:PORT] [usesrc {ADDR2[:PORT2] | client | clientip}] [interface NAME]`
    (a backend's, or a server's own): the address a server connection is bound to before
    it connects. `usesrc` makes it transparent (IP_TRANSPARENT): `client` binds the
    client's address and port, `clientip` its address (any port), "address" `usesrc_addr`.
    Health checks use `addr`, never the transparent address (as HAProxy's)."""

    addr: str
    port: int = 0
    usesrc: Literal["", "client", "clientip", "address"] = ""
    usesrc_addr: str = ""
    usesrc_port: int = 0
    interface: str | None = None
    # poise's own, for a Keepalived virtual server (LVS NAT keeps the client's address):
    # where the host cannot bind the client's address, connect from the node's own.
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class Server:
    """A `server` line (with `default-server` applied)."""

    name: str
    address: Address
    where: Where
    id: int  # 1-based declaration order within the backend (HAProxy's puid)
    weight: int = 1  # 0..256
    backup: bool = False
    disabled: bool = False  # starts in maintenance
    maxconn: int = 0  # 0 = no limit
    maxqueue: int = 0  # 0 = no limit
    # Health checks (`check` and friends). Durations in ms.
    check: bool = False
    check_port: int | None = None
    check_addr: str | None = None
    inter: int = 2000
    fastinter: int | None = None  # None: same as inter
    downinter: int | None = None  # None: same as inter
    rise: int = 2
    fall: int = 3
    # `cookie VALUE`: the value of the backend's persistence cookie naming this server.
    # None (HAProxy accepts it silently): with `cookie ... insert`, HAProxy 2.6 answers for
    # such a server with `set-cookie: NAME=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/`.
    cookie: str | None = None
    # TLS: `ssl` (traffic), `check-ssl` (checks; also implied by `ssl` without `port` or
    # `addr`), `check-sni`; `tls` holds the settings when either is on.
    ssl: bool = False
    check_ssl: bool = False
    check_sni: str | None = None
    tls: TlsServer | None = None
    use_ssl: int = 0  # `show servers state`'s srv_use_ssl: 1 `ssl`, -1 `no-ssl`, 0 neither
    forced_id: bool = False  # `id` was written (srv_f_forced_id)
    # DNS (configuration.txt 5.2 and 5.3): `init-addr` methods tried in order at start-up
    # ("last", "libc", "none" or an IP address); `resolvers NAME` re-resolves the name at
    # run time, with `resolve-prefer` (None: HAProxy's default, ipv6), `resolve-net` and
    # `resolve-opts`. `template` is the prefix of the `server-template` line that made it.
    init_addr: tuple[str, ...] = ("last", "libc")
    resolvers: str | None = None
    resolve_prefer: Literal["ipv4", "ipv6"] | None = None
    resolve_net: tuple[str, ...] = ()
    resolve_opts: frozenset[str] = frozenset()
    template: str | None = None
    source: Source | None = None  # the server's `source`, else its backend's
    # PROXY header sent first (haproxy_server.py PROXY_FLAGS: v1, v2, options); empty: none.
    proxy_protocol: frozenset[str] = frozenset()
    check_send_proxy: bool = False  # health checks send it too, whatever `port`/`addr`
    minconn: int = 0  # with `maxconn` and the backend's `fullconn`: a dynamic limit
    slowstart: int = 0  # ms: weight and maxconn ramp up after going UP (core/slowstart.py)
    socks4: tuple[str, int] | None = None  # connect through this SOCKS4 proxy (net/socks4.py)
    check_via_socks4: bool = False  # the health checks too
    shutdown_on_down: bool = False  # `on-marked-down shutdown-sessions`
    shutdown_backups_on_up: bool = False  # `on-marked-up shutdown-backup-sessions`


@dataclass(frozen=True, slots=True)
class Cookie:
    """`cookie NAME [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve]
    [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [attr A]* [dynamic]`
    (durations in seconds, as HAProxy stores them)."""

    name: str
    where: Where
    mode: Literal["rewrite", "insert", "prefix"] = "rewrite"
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domains: tuple[str, ...] = ()
    maxidle: int | None = None
    maxlife: int | None = None
    attrs: tuple[str, ...] = ()
    # `dynamic`: servers without `cookie VALUE` get one from `dynamic-cookie-key` (the key,
    # None when the backend has none: then they get none, as in HAProxy).
    dynamic: bool = False
    dynamic_key: str | None = None


@dataclass(frozen=True, slots=True)
class HttpExpect:
    """`http-check expect [!] status|rstatus|string|rstring PATTERN`."""

    kind: Literal["status", "rstatus", "string", "rstring"]
    pattern: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """`option httpchk [METHOD] [URI] [VERSION]`, `http-check send|expect` (none: 2xx, 3xx pass)."""

    where: Where
    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    expect: HttpExpect | None = None
    disable_on_404: bool = False  # `http-check disable-on-404`: a 404 means NOLB


class Capability(Flag):
    FRONTEND = auto()
    BACKEND = auto()
    LISTEN = FRONTEND | BACKEND


class Option(Enum):
    """`option X` flags that poise implements (the name is HAProxy's)."""

    TCPLOG = "tcplog"
    HTTPLOG = "httplog"
    DONTLOGNULL = "dontlognull"
    REDISPATCH = "redispatch"
    ALLBACKUPS = "allbackups"
    LOGASAP = "logasap"
    HTTP_SERVER_CLOSE = "http-server-close"
    HTTP_KEEP_ALIVE = "http-keep-alive"
    HTTPCLOSE = "httpclose"
    FORWARDFOR = "forwardfor"
    ORIGINALTO = "originalto"
    PERSIST = "persist"
    LOG_HEALTH_CHECKS = "log-health-checks"
    TCPKA = "tcpka"  # TCP keep-alives on both sides (net/keepalive.py)
    CLITCPKA = "clitcpka"
    SRVTCPKA = "srvtcpka"
    PREFER_LAST_SERVER = "prefer-last-server"
    HTTP_IGNORE_PROBES = "http-ignore-probes"  # an empty connection closes unseen
    HTTP_PRETEND_KEEPALIVE = "http-pretend-keepalive"  # the server is not told of a close
    HTTP_BUFFER_REQUEST = "http-buffer-request"  # core/http/body_wait.py
    DONTLOG_NORMAL = "dontlog-normal"  # log only the sessions that failed (8.2.3)
    LOG_SEPARATE_ERRORS = "log-separate-errors"  # ... at level err
    HTTPSLOG = "httpslog"  # `option httplog` with the TLS fields (config/logformat.py)
    ABORTONCLOSE = "abortonclose"  # core/connect.py abort_on_close
    SOCKET_STATS = "socket-stats"  # a stats row per listener (core/sockstats.py)
    NOLINGER = "nolinger"  # closes end in a reset (net/keepalive.py)


@dataclass(frozen=True, slots=True)
class Proxy:
    """A `frontend`, `backend` or `listen` section (one kind of proxy with capabilities,
    as in HAProxy), with its `defaults` applied."""

    name: str
    capabilities: Capability
    where: Where
    mode: Mode = Mode.TCP
    id: int = 0  # 1-based declaration order among proxies (HAProxy's iid)
    forced_id: bool = False  # `id` was written (bk_f_forced_id)
    order: int = 0  # its place among the proxies of the configuration (0-based)
    disabled: bool = False
    # Frontend side.
    binds: tuple[Bind, ...] = ()
    default_backend: str | None = None
    use_backends: tuple[UseBackend, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    maxconn: int | None = None  # None: inherits the global maxconn
    # Backend side.
    servers: tuple[Server, ...] = ()
    use_servers: tuple[UseServer, ...] = ()
    persist_rules: tuple[PersistRule, ...] = ()  # `force-persist`, `ignore-persist`
    stick_rules: tuple[StickRule, ...] = ()  # `stick on|match|store-*` (model_stick.py)
    balance: Balance = field(default_factory=Balance)
    retries: int = 3
    fullconn: int | None = None  # None: a tenth of its frontends' maxconn (admin/stats.py)
    # The server-state file its servers' states are loaded from at start-up
    # (`load-server-state-from-file global|local`, resolved); None: none.
    server_state_file: str | None = None
    # `option redispatch [interval]`: None = off; -1 = on the last retry (the default when
    # written without interval); P > 0 = every P-th retry; N < 0 = N-th retry before the last.
    redispatch: int | None = None
    # Shared.
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: frozenset[Option] = frozenset()
    # `clitcpka-cnt|idle|intvl` and `srvtcpka-*` as written (idle, intvl in seconds).
    tcpka: tuple[tuple[str, int], ...] = ()
    logs: tuple[LogTarget, ...] = ()  # `log global` is expanded by the link pass
    log: ProxyLog = field(default_factory=ProxyLog)
    # `option forwardfor` details: the network excepted (`except`), None when unset.
    forwardfor_except: str | None = None
    # HTTP mode.
    cookie: Cookie | None = None
    http_check: HttpCheck | None = None
    tcp_check: TcpCheck | None = None  # a protocol check (model_checks.py)
    # `option forwardfor header NAME` and `if-none` (add the header only when absent).
    forwardfor_header: str = "X-Forwarded-For"
    forwardfor_if_none: bool = False
    originalto: OriginalTo | None = None  # `option originalto` (None: off)
    description: str | None = None
    # HTTP rules, in the order HAProxy evaluates them: the `http-request` rules (those of
    # the named `defaults` section first), then `redirect`, then `use_backend`.
    acls: tuple[Acl, ...] = ()  # the named ACLs of this section, for introspection
    http_request_rules: tuple[HttpRule, ...] = ()
    http_response_rules: tuple[HttpRule, ...] = ()
    http_after_response_rules: tuple[HttpRule, ...] = ()  # on every response, poise's too
    errorfiles: tuple[ErrorFile, ...] = ()  # one per status, the proxy's over its defaults'
    capture_request_headers: tuple[Capture, ...] = ()
    capture_response_headers: tuple[Capture, ...] = ()
    log_format: str | None = None  # `log-format`, as written
    http_reuse: HttpReuse = "safe"
    compression: Compression | None = None  # `compression` (None: none here)
    stats: StatsPage | None = None  # the statistics page (HTTP mode only)
    monitor: Monitor | None = None  # `monitor-uri` (HTTP frontends only)
    # `tcp-request` and `tcp-response` rules (model_tcp.py).
    tcp_rules: TcpRules = field(default_factory=TcpRules)

    def errorfile(self, status: int) -> bytes | None:
        """The `errorfile` bytes for a status, or None."""
        for entry in self.errorfiles:
            if entry.status == status:
                return entry.content
        return None

    @property
    def is_frontend(self) -> bool:
        return bool(self.capabilities & Capability.FRONTEND)

    @property
    def is_backend(self) -> bool:
        return bool(self.capabilities & Capability.BACKEND)


@dataclass(frozen=True, slots=True)
class Global:
    """The `global` section."""

    maxconn: int = 0  # 0: worked out from the file descriptor limit (core/limits.py)
    localpeer: str | None = None  # `localpeer NAME` (model_peers.py)
    daemon: bool = False
    pidfile: str | None = None
    user: str | None = None
    group: str | None = None
    uid: int | None = None
    gid: int | None = None
    chroot: str | None = None
    hard_stop_after: int | None = None  # ms
    # `master-worker [no-exit-on-failure]` (or -W): a master owns the listening sockets
    # and runs a worker (`nbthread N`: N, pinned by `cpu-map`), replaced on reload.
    master_worker: bool = False
    maxaccept: int | None = None  # `tune.maxaccept N`: accepted in one go (-1: no limit)
    exit_on_failure: bool = True
    mworker_max_reloads: int | None = None
    nbthread: int = 1
    nbthread_where: Where = NOWHERE
    cpu_maps: tuple[CpuMap, ...] = ()
    logs: tuple[LogTarget, ...] = ()
    log_tag: str = DEFAULT_TAG  # `log-tag`
    log_send_hostname: str | None = None  # `log-send-hostname [NAME]` ("": the host's name)
    stats_sockets: tuple[StatsSocket, ...] = ()
    stats_timeout: int = 10_000  # ms
    spread_checks: int = 0  # percent
    node: str | None = None  # `node` name, shown by `show info`
    where: Where = NOWHERE
    description: str | None = None  # `description`, shown by `show info`
    # Where `user` and `group` were written, so that load.py reports an unknown name there.
    user_where: Where | None = None
    group_where: Where | None = None
    tls: GlobalTls = field(default_factory=GlobalTls)
    server_state_file: str | None = None  # `server-state-file`, as written
    server_state_base: str | None = None  # `server-state-base`


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, linked configuration: what `poise run` serves."""

    global_: Global
    proxies: tuple[Proxy, ...]
    files: tuple[str, ...] = ()
    resolvers: tuple[Resolvers, ...] = ()
    userlists: tuple[Userlist, ...] = ()
    tables: tuple[StickTable, ...] = ()  # the proxies' `stick-table`s (model_stick.py)
    caches: tuple[Cache, ...] = ()  # `cache` sections (core/http/cache.py)
    peers: tuple[Peers, ...] = ()  # `peers` sections (model_peers.py)
    programs: tuple[Program, ...] = ()  # `program` sections (process/programs.py)

    def proxy(self, name: str) -> Proxy | None:
        return next((p for p in self.proxies if p.name == name), None)

    def resolvers_section(self, name: str) -> Resolvers | None:
        return next((r for r in self.resolvers if r.name == name), None)

    @property
    def frontends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)
