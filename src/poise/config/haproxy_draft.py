"""The parser's working state: what each section of haproxy.cfg says by itself, before the
link pass (link.py) applies `defaults`, expands `log global` and resolves names.

Every inheritable setting is None (or absent from its dict) when the section does not set
it, so the link pass can lay a proxy's own settings over those of its `defaults` chain
exactly as HAProxy does (a proxy starts from a copy of its defaults section, then its own
lines change that copy). Pure, mutable, private to the parser and the link pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from poise.config.model import (
    NOWHERE,
    AclTest,
    Address,
    Algorithm,
    BalanceOptions,
    Bind,
    Capability,
    Capture,
    Compression,
    Condition,
    Cookie,
    ErrorFile,
    Global,
    HashFunction,
    HashType,
    HttpCheck,
    HttpExpect,
    HttpReuse,
    HttpRule,
    LogTarget,
    Mode,
    Option,
    Redirect,
    Resolvers,
    Source,
    StatsPage,
    TcpRule,
    UseBackend,
    Userlist,
    UseServer,
    Where,
)
from poise.config.model_checks import TcpCheck, TcpCheckRule
from poise.config.model_global import Cache, Program
from poise.config.model_http import ErrorFilesRef, OriginalTo, PersistRule
from poise.config.model_peers import Peers
from poise.config.model_stick import StickRule, StickTable


class Problem(ValueError):
    """A line's error: raised by a keyword's handler, reported at the line (FILE:LINE and
    the keyword) by the section parser, which then goes on with the next line."""


CONDITION = ("if", "unless")


def one_arg(args: Sequence[str], what: str) -> str:
    """The one argument of a keyword (`what` names it in the error)."""
    if not args:
        raise Problem(f"expects {what}")
    if len(args) > 1:
        if args[1] in CONDITION:
            raise Problem(f"unexpected argument '{args[1]}': this keyword takes no condition")
        raise Problem(f"unexpected argument '{args[1]}'")
    return args[0]


def no_args(args: Sequence[str]) -> None:
    if args:
        raise Problem(f"unexpected argument '{args[0]}'")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The options a `server` line shares with `default-server` (None = not set)."""

    check: bool | None = None
    check_port: int | None = None
    check_addr: str | None = None
    inter: int | None = None
    fastinter: int | None = None
    downinter: int | None = None
    rise: int | None = None
    fall: int | None = None
    weight: int | None = None
    backup: bool | None = None
    disabled: bool | None = None
    maxconn: int | None = None
    maxqueue: int | None = None
    cookie: str | None = None
    source: Source | None = None  # `source ADDR [usesrc ...]`
    # DNS: `init-addr`, `resolvers`, `resolve-prefer`, `resolve-net`, `resolve-opts`.
    init_addr: tuple[str, ...] | None = None
    resolvers: str | None = None
    resolve_prefer: str | None = None
    resolve_net: tuple[str, ...] | None = None
    resolve_opts: frozenset[str] | None = None
    # The TLS options (`ssl`, `verify`, `sni`...) as (option, value) words, in the order
    # written; config/haproxy_tls.py reads them. They add up: `default-server`'s first.
    tls: tuple[tuple[str, str], ...] = ()
    # The PROXY protocol flags turned on ("+v2") and off ("-v1") in the order written
    # (`send-proxy*`, `no-send-proxy*`, `proxy-v2-options`); they add up like `tls`.
    proxy_protocol: tuple[str, ...] = ()
    check_send_proxy: bool | None = None
    # `minconn`, `on-marked-down`, `on-marked-up` as (option, value) words in
    # the order written, `default-server`'s first (haproxy_server.server_tuning reads them).
    tuning: tuple[tuple[str, str], ...] = ()

    def over(self, base: ServerSettings) -> ServerSettings:
        """These settings laid over `base` (ours win where set)."""
        changes: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }
        changes["tls"] = base.tls + self.tls
        changes["proxy_protocol"] = base.proxy_protocol + self.proxy_protocol
        changes["tuning"] = base.tuning + self.tuning
        return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class LogGlobal:
    """`log global`: the global section's log targets, expanded by the link pass."""

    where: Where


@dataclass(frozen=True, slots=True)
class LogClear:
    """`no log`: forget the log targets set so far (also the inherited ones)."""

    where: Where


LogOp = LogTarget | LogGlobal | LogClear


@dataclass(frozen=True, slots=True)
class ForwardFor:
    """`option forwardfor [except NET] [header NAME] [if-none]`."""

    where: Where
    except_net: str | None = None
    header: str = "X-Forwarded-For"
    if_none: bool = False


@dataclass(frozen=True, slots=True)
class CheckSend:
    """`http-check send [meth M] [uri U] [ver V] [hdr N V]* [body S]` (None = not given:
    the value of `option httpchk` stays)."""

    where: Where
    method: str | None = None
    uri: str | None = None
    version: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


@dataclass(slots=True)
class Settings:
    """What a `defaults` section passes on, and what a proxy may override."""

    mode: Mode | None = None
    maxconn: int | None = None
    backlog: int | None = None
    retries: int | None = None
    tcpka: dict[str, int] = field(default_factory=dict)  # `clitcpka-idle` ... (seconds)
    source: Source | None = None  # `source ADDR [usesrc ...]`: every server's default
    algorithm: Algorithm | None = None
    draws: int | None = None
    hash_type: HashType | None = None
    hash_function: HashFunction | None = None
    avalanche: bool | None = None
    default_backend: UseBackend | None = None
    disabled: bool | None = None
    redispatch_interval: int | None = None
    forwardfor: ForwardFor | None = None
    originalto: OriginalTo | None = None
    timeouts: dict[str, int] = field(default_factory=dict)  # model.Timeouts field -> ms
    options: dict[Option, bool] = field(default_factory=dict)
    option_where: dict[Option, Where] = field(default_factory=dict)
    log_ops: list[LogOp] = field(default_factory=list)
    default_server: ServerSettings = field(default_factory=ServerSettings)
    # HTTP mode.
    balance_argument: str | None = None
    balance_options: BalanceOptions | None = None
    balance_where: Where | None = None
    cookie: Cookie | None = None
    dynamic_cookie_key: str | None = None
    # `errorfile` and `errorfiles` in order (the last one for a status wins).
    errorfiles: list[ErrorFile | ErrorFilesRef] = field(default_factory=list)
    log_format: str | None = None
    log_format_where: Where | None = None
    log_tag: str | None = None  # `log-tag`
    log_format_sd: tuple[str, Where] | None = None  # `log-format-sd` and its line
    http_reuse: HttpReuse | None = None
    compression: Compression | None = None
    httpchk: HttpCheck | None = None  # `option httpchk`, before `http-check send`
    check_send: CheckSend | None = None
    check_expect: HttpExpect | None = None
    check_rules_where: Where | None = None  # the first `http-check send|expect` line
    disable_on_404: bool | None = None  # `http-check disable-on-404`
    fullconn: int | None = None  # `fullconn N`
    # `load-server-state-from-file global|local|none`, `server-state-file-name [NAME]`
    # ("" = use-backend-name).
    load_server_state: str | None = None
    server_state_file_name: str | None = None
    # The check type (HAProxy's PR_O2_CHK_ANY): "httpchk" or a protocol check's option;
    # the last one written wins.
    check_kind: str | None = None
    tcp_check: TcpCheck | None = None  # the protocol check's option line
    tcp_check_rules: list[TcpCheckRule] | None = None  # `tcp-check` lines (None: none here)
    # `stats ...`: a section with a `stats` line of its own starts afresh (HAProxy detaches
    # it from its defaults' settings); one with none keeps those of its defaults.
    stats: StatsPage | None = None
    # `monitor-uri URI` (the last line wins) and where it was written.
    monitor_uri: tuple[str, Where] | None = None

    def over(self, base: Settings) -> Settings:
        """These settings laid over `base`: a new Settings, neither input changes."""
        merged = Settings(
            timeouts={**base.timeouts, **self.timeouts},
            options={**base.options, **self.options},
            option_where={**base.option_where, **self.option_where},
            log_ops=[*base.log_ops, *self.log_ops],
            default_server=self.default_server.over(base.default_server),
            errorfiles=[*base.errorfiles, *self.errorfiles],
            tcpka={**base.tcpka, **self.tcpka},
            compression=(
                self.compression.over(base.compression)
                if self.compression is not None
                else base.compression
            ),
        )
        if self.algorithm is not None:
            merged.balance_argument = self.balance_argument
            merged.balance_options = self.balance_options
            merged.balance_where = self.balance_where
        else:
            merged.balance_argument = base.balance_argument
            merged.balance_options = base.balance_options
            merged.balance_where = base.balance_where
        for name in (
            "mode",
            "maxconn",
            "backlog",
            "retries",
            "source",
            "algorithm",
            "draws",
            "hash_type",
            "hash_function",
            "avalanche",
            "default_backend",
            "disabled",
            "redispatch_interval",
            "forwardfor",
            "originalto",
            "cookie",
            "dynamic_cookie_key",
            "log_format",
            "log_format_where",
            "log_tag",
            "log_format_sd",
            "http_reuse",
            "httpchk",
            "check_send",
            "check_expect",
            "check_rules_where",
            "disable_on_404",
            "fullconn",
            "load_server_state",
            "server_state_file_name",
            "check_kind",
            "tcp_check",
            "tcp_check_rules",
            "stats",
            "monitor_uri",
        ):
            mine = getattr(self, name)
            setattr(merged, name, mine if mine is not None else getattr(base, name))
        return merged


@dataclass(slots=True)
class ServerDraft:
    """A `server` line: its own options, and the section's `default-server` at that line
    (a later `default-server` does not change an earlier server, as in HAProxy)."""

    name: str
    address: Address
    where: Where
    own: ServerSettings
    section_defaults: ServerSettings
    id: int | None = None
    template: str | None = None  # the prefix of the `server-template` line that made it


KIND_CAPABILITIES = {
    "frontend": Capability.FRONTEND,
    "backend": Capability.BACKEND,
    "listen": Capability.LISTEN,
}


@dataclass(slots=True)
class SectionDraft:
    """One `defaults`, `frontend`, `backend` or `listen` section."""

    kind: str
    name: str
    where: Where
    parent: SectionDraft | None = None  # the defaults section this one starts from
    settings: Settings = field(default_factory=Settings)
    # A defaults section: who uses it, to refuse mixing explicit and implicit use.
    explicit_users: list[Where] = field(default_factory=list)
    implicit_users: list[Where] = field(default_factory=list)
    # Not inherited from defaults.
    id: int | None = None
    id_where: Where | None = None
    description: str | None = None
    binds: list[Bind] = field(default_factory=list)
    use_backends: list[UseBackend] = field(default_factory=list)
    use_servers: list[UseServer] = field(default_factory=list)
    persist_rules: list[PersistRule] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    servers: list[ServerDraft] = field(default_factory=list)
    # ACLs by name: their tests (lines), and where each name was first declared.
    acls: dict[str, list[AclTest]] = field(default_factory=dict)
    acl_where: dict[str, Where] = field(default_factory=dict)
    http_request_rules: list[HttpRule] = field(default_factory=list)
    http_response_rules: list[HttpRule] = field(default_factory=list)
    http_after_response_rules: list[HttpRule] = field(default_factory=list)
    capture_request_headers: list[Capture] = field(default_factory=list)
    capture_response_headers: list[Capture] = field(default_factory=list)
    monitor_fail: list[Condition] = field(default_factory=list)  # `monitor fail` lines
    tcp_rules: list[TcpRule] = field(default_factory=list)  # in the order written
    filters: list[str] = field(default_factory=list)  # `filter NAME`: the names, in order
    stick_table: StickTable | None = None
    stick_rules: list[StickRule] = field(default_factory=list)

    @property
    def capabilities(self) -> Capability:
        return KIND_CAPABILITIES.get(self.kind, Capability(0))

    def effective(self) -> Settings:
        """The settings of the whole `defaults` chain with this section's own on top."""
        chain: list[SectionDraft] = []
        section: SectionDraft | None = self
        while section is not None and section not in chain:
            chain.append(section)
            section = section.parent
        merged = Settings()
        for link in reversed(chain):
            merged = link.settings.over(merged)
        return merged


@dataclass(slots=True)
class GlobalDraft:
    """The `global` section as it is read: values, and where each keyword was first set."""

    values: Global = field(default_factory=Global)
    seen: dict[str, Where] = field(default_factory=dict)
    user_where: Where | None = None
    group_where: Where | None = None
    noreuseport: bool = False
    zero_warning: Where | None = None  # `zero-warning`: any warning fails the load
    where: Where = NOWHERE
    # `expose-experimental-directives` was read: `normalize-uri` may follow.
    experimental: bool = False


@dataclass(slots=True)
class ParsedConfig:
    """Everything the parser read, in order, for the link pass."""

    global_: GlobalDraft = field(default_factory=GlobalDraft)
    defaults: list[SectionDraft] = field(default_factory=list)
    proxies: list[SectionDraft] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    resolvers: list[Resolvers] = field(default_factory=list)  # `resolvers` sections
    userlists: list[Userlist] = field(default_factory=list)  # `userlist` sections
    caches: list[Cache] = field(default_factory=list)  # `cache` sections
    peers: list[Peers] = field(default_factory=list)  # `peers` sections
    programs: list[Program] = field(default_factory=list)  # `program` sections
    # `http-errors` sections: name -> status -> file.
    http_errors: dict[str, dict[int, ErrorFile]] = field(default_factory=dict)
