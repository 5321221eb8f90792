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


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a configuration file, for diagnostics."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NOWHERE = Where("<built-in>", 0)


class Mode(Enum):
    TCP = "tcp"
    HTTP = "http"


# "fd": a socket inherited from the parent process (`fd@N`, N in `host`); "sockpair": one end
# of a unix socketpair over which connections arrive (or leave) as descriptors (`sockpair@N`).
AddressFamily = Literal["ipv4", "ipv6", "unix", "fd", "sockpair"]
INHERITED_FAMILIES = ("fd", "sockpair")


@dataclass(frozen=True, slots=True)
class Address:
    """One endpoint. `host` is "" for "every address" (`:80`), an IP literal, a DNS name
    (servers only; resolved when poise starts), or a path for `unix`. `port` is None for
    unix sockets and for a server written without a port (it then uses the port the
    client connected to, as HAProxy does)."""

    family: AddressFamily
    host: str
    port: int | None

    def __str__(self) -> str:
        if self.family in ("unix", "fd", "sockpair"):
            return f"{self.family}@{self.host}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def inherited_fd(self) -> int | None:
        """The descriptor number of an `fd@N` or `sockpair@N` address, else None."""
        return int(self.host) if self.family in INHERITED_FAMILIES else None


# --- TLS (configuration.txt 5.1 and 5.2 `ssl` options, 3.1 `ssl-default-*`) -----------

TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
TLS_VERSIONS: tuple[TlsVersion, ...] = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True, slots=True)
class TlsVersions:
    """`ssl-min-ver`, `ssl-max-ver`, `no-tlsvXX` and `force-tlsvXX` as written (None: not
    set, poise's default applies: TLSv1.2 to TLSv1.3). config/haproxy_tls.py computes the
    range they leave (and the link pass refuses one with no version or a hole)."""

    min: TlsVersion | None = None
    max: TlsVersion | None = None
    disabled: frozenset[TlsVersion] = frozenset()


@dataclass(frozen=True, slots=True)
class CrtSource:
    """Where a bind's certificates come from: `crt FILE|DIR` or `crt-list FILE`."""

    kind: Literal["crt", "crt-list"]
    path: str
    base: str | None = None  # crt-base, for a crt-list's relative lines (not its own path)


@dataclass(frozen=True, slots=True)
class TlsBind:
    """`bind ... ssl crt ...`: TLS termination. None in a field means "not set on the line":
    the link pass fills it from `ssl-default-bind-*`, and what is still None is poise's
    default profile (net/tls.py). The first certificate is the default one."""

    certificates: tuple[CrtSource, ...]
    strict_sni: bool = False
    alpn: tuple[str, ...] = ()
    versions: TlsVersions = field(default_factory=TlsVersions)
    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None
    ca_file: str | None = None
    verify: Literal["none", "optional", "required"] = "none"
    tickets: bool | None = None
    prefer_client_ciphers: bool | None = None


@dataclass(frozen=True, slots=True)
class TlsServer:
    """The TLS settings of a `server ... ssl` (or `check-ssl`) line, with `default-server`
    and `ssl-default-server-*` applied. `sni` is the expression of `sni`; `verifyhost` the
    name checked when no SNI is sent."""

    verify: Literal["none", "required"] = "required"
    ca_file: str | None = None
    sni: Sample | None = None
    verifyhost: str | None = None
    crt: str | None = None
    alpn: tuple[str, ...] = ()
    versions: TlsVersions = field(default_factory=TlsVersions)
    ciphers: str | None = None
    ciphersuites: str | None = None
    tickets: bool = True


@dataclass(frozen=True, slots=True)
class TlsDefaults:
    """`ssl-default-bind-*` or `ssl-default-server-*` (global)."""

    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None  # `ssl-default-bind-curves`
    versions: TlsVersions = field(default_factory=TlsVersions)
    tickets: bool | None = None
    prefer_client_ciphers: bool | None = None


@dataclass(frozen=True, slots=True)
class GlobalTls:
    """The global section's TLS keywords."""

    bind: TlsDefaults = field(default_factory=TlsDefaults)
    server: TlsDefaults = field(default_factory=TlsDefaults)
    server_verify: Literal["none", "required"] = "required"  # `ssl-server-verify`
    ca_base: str | None = None
    crt_base: str | None = None
    cache_size: int | None = None  # `tune.ssl.cachesize`: sessions kept; 0: none


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


LogFormatName = Literal["rfc3164", "rfc5424", "raw", "short", "timed", "iso", "local", "priority"]
LogKind = Literal["stdout", "stderr", "udp", "unix"]


@dataclass(frozen=True, slots=True)
class LogTarget:
    """A `log` line: where log lines go and in which syslog format.
    `udp`: host/port (default port 514); `unix`: path (e.g. /dev/log)."""

    kind: LogKind
    address: str
    port: int
    facility: str
    where: Where
    level: str | None = None  # max level sent (e.g. "info"); None = all
    minlevel: str | None = None
    format: LogFormatName = "local"  # HAProxy's default (rfc3164 adds a hostname)
    length: int = 1024


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


@dataclass(frozen=True, slots=True)
class Nameserver:
    """`nameserver ID ADDRESS:PORT` in a `resolvers` section (`tcp@` for DNS over TCP)."""

    name: str
    host: str
    port: int
    where: Where
    tcp: bool = False


@dataclass(frozen=True, slots=True)
class Hold:
    """`hold STATUS PERIOD` (ms): how long the last answer of each kind is kept."""

    valid: int = 10_000
    nx: int = 30_000
    timeout: int = 30_000
    refused: int = 30_000
    other: int = 30_000
    obsolete: int = 0


@dataclass(frozen=True, slots=True)
class Resolvers:
    """A `resolvers NAME` section (configuration.txt 5.3.2), with HAProxy's defaults."""

    name: str
    where: Where
    nameservers: tuple[Nameserver, ...] = ()
    resolve_retries: int = 3
    timeout_resolve: int = 1000  # ms between two resolutions
    timeout_retry: int = 1000  # ms before a query is sent again
    hold: Hold = field(default_factory=Hold)
    accepted_payload_size: int = 512


@dataclass(frozen=True, slots=True)
class Cookie:
    """`cookie NAME [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve]
    [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [attr A]*` (durations in
    seconds, as HAProxy stores them)."""

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


@dataclass(frozen=True, slots=True)
class HttpExpect:
    """`http-check expect [!] status|rstatus|string|rstring PATTERN`."""

    kind: Literal["status", "rstatus", "string", "rstring"]
    pattern: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """`option httpchk [METHOD] [URI] [VERSION]` with `http-check send` and
    `http-check expect`. Without `expect`, a 2xx or 3xx status passes (HAProxy)."""

    where: Where
    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    expect: HttpExpect | None = None


# --- ACLs, samples and log-format strings (configuration.txt 7 and 8.2.6) -------------

# How an ACL compares a sample with its patterns (configuration.txt 7.1); "meth" is the
# `method` ACL's own matching (known methods exactly, others as strings).
MatchMethod = Literal[
    "found", "bool", "int", "ip", "str", "beg", "end", "sub", "reg", "dom", "dir", "len", "meth"
]


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample expression: `fetch(args),converter(args),...` (configuration.txt 7.3).
    `fetch` is the canonical name (deprecated aliases are resolved: `hdr_cnt` is
    `req.hdr_cnt`); `text` is the expression as written, for messages."""

    fetch: str
    args: tuple[str, ...] = ()
    converters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class AclPattern:
    """One value an ACL compares its sample with. `operator` is for integer matching:
    eq, ge, gt, le or lt ("" is equality, or a range written `low:high`)."""

    value: str
    ignore_case: bool = False
    operator: str = ""


@dataclass(frozen=True, slots=True)
class AclTest:
    """One `acl` line, or one anonymous `{ ... }` ACL: a sample, how it is matched, and
    its patterns (those of `-f FILE` included, read when the configuration was loaded)."""

    criterion: str  # the criterion as written: `hdr_beg(host)`, `path`
    sample: Sample
    match: MatchMethod
    patterns: tuple[AclPattern, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class Acl:
    """A named ACL (every `acl` line with that name: the tests OR together), an anonymous
    one (`name` is ""), or one of HAProxy's predefined ACLs (TRUE, METH_GET, ...)."""

    name: str
    tests: tuple[AclTest, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class AclTerm:
    """An ACL in a condition, maybe negated with `!`."""

    acl: Acl
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """`if|unless COND`: `suites` OR together, the terms of a suite AND together (the
    disjunctive form of configuration.txt 7.2). A condition with no suite never holds."""

    unless: bool
    suites: tuple[tuple[AclTerm, ...], ...]
    where: Where
    text: str = ""


@dataclass(frozen=True, slots=True)
class FormatVar:
    """A log-format variable such as `%ci`, with the `Q` flag (quote the value)."""

    name: str
    quote: bool = False


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A log-format string (configuration.txt 8.2.6) as header values and `lf-string`
    use it: literal text, `%[sample]` and `%var` parts, in order."""

    text: str
    parts: tuple[str | Sample | FormatVar, ...]


@dataclass(frozen=True, slots=True)
class UseBackend:
    """`use_backend NAME [if|unless COND]`."""

    backend: str
    where: Where
    condition: Condition | None = None


RedirectKind = Literal["location", "prefix", "scheme"]


@dataclass(frozen=True, slots=True)
class Redirect:
    """`redirect location|prefix|scheme TARGET [code N] [drop-query] [append-slash]
    [if|unless COND]`, also as `http-request redirect`, where the target is a log-format
    string (`target_format`, None when it is plain text)."""

    kind: RedirectKind
    target: str
    where: Where
    code: int = 302
    drop_query: bool = False
    append_slash: bool = False
    condition: Condition | None = None
    target_format: LogFormat | None = None


HttpAction = Literal[
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "replace-value",
    "deny",
    "allow",
    "redirect",
    "return",
    "use-service",
]
HeaderMatch = Literal["str", "beg", "end", "sub", "reg"]
HttpReuse = Literal["never", "safe", "aggressive", "always"]


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The response of `http-request deny` and `http-request return`: a status with a
    payload (`string`, `file`, or a log-format `lf-string`/`lf-file`), or a whole
    response from a file (`errorfile FILE`), or the proxy's error page for the status
    (`default-errorfiles`, which a plain `deny [deny_status N]` implies)."""

    status: int
    content_type: str | None = None
    body: bytes = b""
    body_format: LogFormat | None = None
    headers: tuple[tuple[str, LogFormat], ...] = ()
    errorfile: bytes | None = None
    default_errorfiles: bool = False


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One `http-request` or `http-response` rule (configuration.txt 4.2). Which fields
    mean something depends on the action: `name` is the header (and `match` how
    `del-header` compares names) or the service of `use-service`; `value` the value or
    the replacement (log-format); `regex` what `replace-header`/`replace-value` (and
    `del-header -m reg`) match; `reply` for deny and return; `redirect` for redirect."""

    action: HttpAction
    where: Where
    condition: Condition | None = None
    name: str = ""
    value: LogFormat | None = None
    regex: str = ""
    match: HeaderMatch = "str"
    reply: HttpReply | None = None
    redirect: Redirect | None = None


@dataclass(frozen=True, slots=True)
class ErrorFile:
    """`errorfile CODE FILE`: the file's bytes, a whole HTTP response (load.py reads it)."""

    status: int
    content: bytes
    path: str
    where: Where


@dataclass(frozen=True, slots=True)
class Capture:
    """`capture request|response header NAME len N`."""

    name: str
    length: int
    where: Where


@dataclass(frozen=True, slots=True)
class StatsPage:
    """The statistics page of a proxy (configuration.txt 4.2, `stats enable|uri|realm|auth|
    refresh|admin|scope|hide-version|show-legends|show-node|show-desc`): a request whose
    URI starts with `uri` is answered by poise itself (admin/stats_http.py). Any `stats`
    line enables it; a proxy with none of its own uses its `defaults` section's."""

    where: Where
    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    users: tuple[tuple[str, str], ...] = ()  # `stats auth USER:PASSWORD`; () = no auth
    refresh: int = 0  # seconds; 0 = the page does not refresh itself
    admin: tuple[Condition, ...] = ()  # `stats admin if|unless COND`: admin if one holds
    scope: tuple[str, ...] = ()  # the proxies shown ("." is the proxy's own name); () = all
    hide_version: bool = False
    show_legends: bool = False
    show_node: str | None = None  # `stats show-node [NAME]`: "" = the global `node`
    show_desc: str | None = None  # `stats show-desc [TEXT]`: "" = the global `description`


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
    PERSIST = "persist"
    LOG_HEALTH_CHECKS = "log-health-checks"


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
    balance: Balance = field(default_factory=Balance)
    retries: int = 3
    # `option redispatch [interval]`: None = off; -1 = on the last retry (the default when
    # written without interval); P > 0 = every P-th retry; N < 0 = N-th retry before the last.
    redispatch: int | None = None
    # Shared.
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: frozenset[Option] = frozenset()
    logs: tuple[LogTarget, ...] = ()  # `log global` is expanded by the link pass
    # `option forwardfor` details: the network excepted (`except`), None when unset.
    forwardfor_except: str | None = None
    # HTTP mode.
    cookie: Cookie | None = None
    http_check: HttpCheck | None = None
    # `option forwardfor header NAME` and `if-none` (add the header only when absent).
    forwardfor_header: str = "X-Forwarded-For"
    forwardfor_if_none: bool = False
    description: str | None = None
    # HTTP rules, in the order HAProxy evaluates them: the `http-request` rules (those of
    # the named `defaults` section first), then `redirect`, then `use_backend`.
    acls: tuple[Acl, ...] = ()  # the named ACLs of this section, for introspection
    http_request_rules: tuple[HttpRule, ...] = ()
    http_response_rules: tuple[HttpRule, ...] = ()
    errorfiles: tuple[ErrorFile, ...] = ()  # one per status, the proxy's over its defaults'
    capture_request_headers: tuple[Capture, ...] = ()
    capture_response_headers: tuple[Capture, ...] = ()
    log_format: str | None = None  # `log-format`, as written
    http_reuse: HttpReuse = "safe"
    stats: StatsPage | None = None  # the statistics page (HTTP mode only)

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
class StatsSocket:
    """`stats socket ADDR [mode M] [level L]`."""

    address: Address
    where: Where
    mode: int | None = None  # permission bits for a unix socket, e.g. 0o600
    level: Literal["user", "operator", "admin"] = "operator"


@dataclass(frozen=True, slots=True)
class Global:
    """The `global` section."""

    maxconn: int = 0  # 0: worked out from the file descriptor limit (core/limits.py)
    daemon: bool = False
    pidfile: str | None = None
    user: str | None = None
    group: str | None = None
    uid: int | None = None
    gid: int | None = None
    chroot: str | None = None
    hard_stop_after: int | None = None  # ms
    # `master-worker [no-exit-on-failure]` (or -W): a master owns the listening sockets
    # and runs a worker, replaced on reload; `mworker-max-reloads N`.
    master_worker: bool = False
    exit_on_failure: bool = True
    mworker_max_reloads: int | None = None
    logs: tuple[LogTarget, ...] = ()
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


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, linked configuration: what `poise run` serves."""

    global_: Global
    proxies: tuple[Proxy, ...]
    files: tuple[str, ...] = ()
    resolvers: tuple[Resolvers, ...] = ()

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
