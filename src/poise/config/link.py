"""The link pass: turns what the parser read (haproxy_draft.ParsedConfig) into the Config
poise runs, and checks what only the whole configuration can tell.

- applies `defaults` (a proxy's own settings over its defaults chain) and `default-server`;
- expands `log global`; numbers proxies and servers from 1, around custom `id`s;
- drops what a proxy's mode makes meaningless, with HAProxy's warnings: `option httplog` in
  a TCP frontend falls back to `tcplog`, `option forwardfor` and `redirect` need HTTP mode
  (HAProxy is silent about `option http-server-close` and `timeout http-request` there, and
  so is poise);
- resolves `default_backend` and `use_backend`; refuses duplicate names, an HTTP frontend
  on a TCP backend, and a frontend with no backend;
- resolves the ACLs of conditions and settles the HTTP settings (link_http.py);
- warns, as HAProxy does, about missing timeouts and a frontend without `bind`.
(A TCP frontend may hand its connections to an HTTP backend: HAProxy's implicit upgrade,
net/upgrade.py.) Layer-4 rules are resolved by link_tcp.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import (
    LogClear,
    LogGlobal,
    LogOp,
    ParsedConfig,
    SectionDraft,
    ServerSettings,
)
from poise.config.haproxy_filters import check_compression
from poise.config.haproxy_http_actions import check_capture_ids
from poise.config.haproxy_monitor import link_monitor, no_backend
from poise.config.haproxy_resolvers import check_resolvers, preferred_family
from poise.config.haproxy_server import proxy_flags, server_tuning, state_file
from poise.config.haproxy_stats import link_stats, services_outside_frontends
from poise.config.haproxy_tcpcheck import PROTOCOL_OPTIONS
from poise.config.haproxy_tcpcheck import link as link_tcp_check
from poise.config.haproxy_tls import link_bind, link_server
from poise.config.keywords import did_you_mean
from poise.config.link_http import (
    DefaultsRules,
    Resolver,
    http_check,
    link_errorfiles,
    tcp_mode_warnings,
    use_servers,
)
from poise.config.link_stick import stick_rules, stick_tables
from poise.config.link_tcp import TcpLinker
from poise.config.logformat import link_format_sd, link_log_format
from poise.config.model import (
    Algorithm,
    Balance,
    BalanceOptions,
    Capability,
    Config,
    Global,
    HashFunction,
    HashType,
    LogTarget,
    Mode,
    Option,
    Proxy,
    ProxyLog,
    Server,
    Timeouts,
    UseBackend,
    Where,
)

_FRONTEND_ONLY = frozenset({Option.DONTLOGNULL, Option.LOGASAP, Option.HTTPLOG})
_BACKEND_ONLY = frozenset(
    {Option.REDISPATCH, Option.ALLBACKUPS, Option.PERSIST, Option.LOG_HEALTH_CHECKS}
)
_HTTP_ONLY_SILENT = frozenset({Option.HTTP_SERVER_CLOSE, Option.PREFER_LAST_SERVER})
Target = tuple[str, UseBackend]  # (the keyword that names it, the backend and the line)


def label(proxy: Proxy | SectionDraft) -> str:
    if isinstance(proxy, SectionDraft):
        return f"{proxy.kind} '{proxy.name}'"
    kind = "listen" if proxy.is_frontend and proxy.is_backend else None
    kind = kind or ("frontend" if proxy.is_frontend else "backend")
    return f"{kind} '{proxy.name}'"


def expand_logs(ops: Sequence[LogOp], global_logs: tuple[LogTarget, ...]) -> tuple[LogTarget, ...]:
    logs: list[LogTarget] = []
    for op in ops:
        if isinstance(op, LogClear):
            logs = []
        elif isinstance(op, LogGlobal):
            logs.extend(global_logs)
        else:
            logs.append(op)
    return tuple(logs)


def assign_ids(
    wanted: Sequence[int | None], wheres: Sequence[Where], what: str, diagnostics: list[Diagnostic]
) -> list[int]:
    """Custom ids as written; the others numbered as HAProxy numbers them (cfgparse.c): a
    counter from 1 that moves on after every item, custom or not, and gives an item
    without an id the first number from there that no custom id takes. (With `id 7` on
    the first of five servers and `id 2` on the third: 7, 3, 2, 5, 6.)"""
    taken: dict[int, Where] = {}
    for custom, where in zip(wanted, wheres, strict=True):
        if custom is None:
            continue
        if custom in taken:
            diagnostics.append(
                error(where, f"{what} id {custom} is already used at {taken[custom]}", "id")
            )
        else:
            taken[custom] = where
    ids: list[int] = []
    used = set(taken)
    following = 1
    for custom in wanted:
        if custom is not None:
            ids.append(custom)
        else:
            while following in used:
                following += 1
            used.add(following)
            ids.append(following)
        following += 1
    return ids


class _Linker:
    def __init__(self, parsed: ParsedConfig) -> None:
        self.parsed = parsed
        self.diagnostics: list[Diagnostic] = []
        draft = parsed.global_
        self.global_: Global = replace(draft.values, where=draft.where)
        self.defaults_rules = DefaultsRules(self.diagnostics)
        self.tcp_linker = TcpLinker(self.diagnostics)

    def run(self) -> Config:
        for defaults in self.parsed.defaults:
            self.defaults_rules.of(defaults)
            self.defaults_rules.inherited(defaults)
        sections = self.parsed.proxies
        proxies = [self.build(section) for section in sections]
        found = [(p.where, m) for p in proxies if (m := check_capture_ids(p))]
        self.diagnostics += [error(where, message, "capture") for where, message in found]
        # With a `stats socket`, HAProxy's CLI frontend ("GLOBAL") takes the first free id
        # (measured with HAProxy 2.6.12: the first frontend is then #2, not #1).
        cli = [None] if self.global_.stats_sockets else []
        ids = assign_ids(
            [*cli, *(s.id for s in sections)],
            [*(self.global_.where for _ in cli), *(s.id_where or s.where for s in sections)],
            "proxy",
            self.diagnostics,
        )[len(cli) :]
        proxies = [
            replace(p, id=i, forced_id=s.id is not None, order=n)
            for n, (p, s, i) in enumerate(zip(proxies, sections, ids, strict=True))
        ]
        proxies = dynamic_backends(proxies)
        targets = [self.targets(section) for section in sections]
        self.check_names(proxies)
        self.check_references(proxies, targets)
        for proxy in proxies:
            if not proxy.disabled:
                self.check_proxy(proxy)
        self.diagnostics.extend(check_resolvers(self.parsed.resolvers))
        return Config(
            self.global_,
            tuple(proxies),
            tuple(self.parsed.files),
            resolvers=tuple(self.parsed.resolvers),
            userlists=tuple(self.parsed.userlists),
            tables=stick_tables(self.parsed.proxies, self.parsed.peers, self.diagnostics),
            caches=tuple(self.parsed.caches),
            peers=tuple(self.parsed.peers),
            programs=tuple(self.parsed.programs),
        )

    # --- one proxy -----------------------------------------------------------------------

    def build(self, section: SectionDraft) -> Proxy:
        settings = section.effective()
        caps = section.capabilities
        mode = settings.mode or Mode.TCP
        proxy = Proxy(name=section.name, capabilities=caps, where=section.where, mode=mode)
        options = {option for option, on in settings.options.items() if on}
        if not proxy.is_frontend:
            options -= _FRONTEND_ONLY
        if not proxy.is_backend:
            options -= _BACKEND_ONLY
        self.diagnostics += check_compression(section, bool(settings.compression), label(proxy))
        resolver = Resolver(section, self.diagnostics)
        own = resolver.rules()
        inherited = self.defaults_rules.inherited(section)
        http_request = inherited.http_request + own.http_request
        http_response = inherited.http_response + own.http_response
        after_response = inherited.http_after_response + own.http_after_response
        redirects = own.redirects
        algorithm = settings.algorithm or Algorithm.ROUNDROBIN
        cookie = settings.cookie if proxy.is_backend else None
        if cookie is not None and cookie.dynamic:
            cookie = replace(cookie, dynamic_key=settings.dynamic_cookie_key)
        if mode is Mode.TCP:
            options = self.tcp_mode(proxy, options, settings.option_where)
            if redirects:
                self.diagnostics.append(
                    warning(
                        redirects[0].where,
                        f"ignored for {label(proxy)}: redirects need 'mode http'",
                        "redirect",
                    )
                )
            rules = replace(own, http_request=http_request, http_response=http_response)
            tcp_mode_warnings(label(proxy), rules, settings, proxy.is_backend, self.diagnostics)
            redirects, http_request, http_response, cookie = (), (), (), None
            after_response = ()
            if algorithm in (Algorithm.URI, Algorithm.URL_PARAM, Algorithm.HDR):
                algorithm = Algorithm.ROUNDROBIN
        forwardfor = settings.forwardfor if Option.FORWARDFOR in options else None
        timeouts = Timeouts(**{name: value or None for name, value in settings.timeouts.items()})
        backlog, reuseport = settings.backlog, not self.parsed.global_.noreuseport
        binds = tuple(
            replace(
                bind,
                backlog=bind.backlog if bind.backlog is not None else backlog,
                reuseport=bind.reuseport and reuseport,
                tls=link_bind(bind.tls, self.global_.tls, mode, bind.where, self.diagnostics)
                if bind.tls is not None
                else None,
            )
            for bind in section.binds
        )
        return replace(
            proxy,
            disabled=bool(settings.disabled),
            binds=binds if proxy.is_frontend else (),
            default_backend=(
                settings.default_backend.backend
                if settings.default_backend and proxy.is_frontend
                else None
            ),
            use_backends=own.use_backends,
            tcp_rules=self.tcp_linker.rules(section, resolver, resolver.side, mode),
            redirects=redirects,
            maxconn=settings.maxconn if proxy.is_frontend else None,
            servers=self.servers(section, mode) if proxy.is_backend else (),
            use_servers=use_servers(section, own.use_servers, self.diagnostics)
            if proxy.is_backend
            else (),
            persist_rules=own.persist_rules,
            stick_rules=stick_rules(section, resolver) if proxy.is_backend else (),
            balance=Balance(
                algorithm,
                settings.draws or 2,
                settings.hash_type or HashType.MAP_BASED,
                settings.balance_argument if algorithm is settings.algorithm else None,
                settings.hash_function or HashFunction.SDBM,
                bool(settings.avalanche),
                (settings.balance_options or BalanceOptions())
                if algorithm is settings.algorithm
                else BalanceOptions(),
            ),
            retries=settings.retries if settings.retries is not None else 3,
            fullconn=settings.fullconn if proxy.is_backend else None,
            server_state_file=state_file(proxy, settings, self.global_),
            redispatch=(settings.redispatch_interval or -1)
            if Option.REDISPATCH in options
            else None,
            timeouts=timeouts,
            options=frozenset(options),
            tcpka=tuple(sorted(settings.tcpka.items())),
            logs=expand_logs(settings.log_ops, self.global_.logs),
            log=ProxyLog(
                tag=settings.log_tag,
                format_sd=link_format_sd(settings.log_format_sd, mode, self.diagnostics)
                if proxy.is_frontend
                else None,
            ),
            forwardfor_except=forwardfor.except_net if forwardfor else None,
            forwardfor_header=forwardfor.header if forwardfor else "X-Forwarded-For",
            forwardfor_if_none=forwardfor.if_none if forwardfor else False,
            originalto=settings.originalto if Option.ORIGINALTO in options else None,
            description=section.description,
            cookie=cookie,
            http_check=(
                http_check(settings, label(proxy), self.diagnostics)
                if proxy.is_backend and settings.check_kind not in PROTOCOL_OPTIONS
                else None
            ),
            tcp_check=(
                link_tcp_check(settings, label(proxy), self.diagnostics)
                if proxy.is_backend
                else None
            ),
            acls=own.acls,
            http_request_rules=http_request,
            http_response_rules=http_response,
            http_after_response_rules=after_response,
            errorfiles=link_errorfiles(
                settings.errorfiles, self.parsed.http_errors, label(proxy), self.diagnostics
            ),
            capture_request_headers=tuple(section.capture_request_headers),
            capture_response_headers=tuple(section.capture_response_headers),
            log_format=(
                link_log_format(
                    settings.log_format,
                    mode is Mode.HTTP,
                    settings.log_format_where,
                    self.diagnostics,
                )
                if proxy.is_frontend
                else None
            ),
            http_reuse=settings.http_reuse or "safe",
            compression=settings.compression if mode is Mode.HTTP else None,
            stats=link_stats(
                proxy,
                settings.stats,
                lambda cond: resolver.condition(cond, "stats admin", "req"),
                self.diagnostics,
            ),
            monitor=link_monitor(proxy, section, resolver, self.diagnostics),
        )

    def tcp_mode(
        self, proxy: Proxy, options: set[Option], wheres: dict[Option, Where]
    ) -> set[Option]:
        """HAProxy's handling of HTTP options in a TCP proxy (cfgparse's mode checks)."""
        for log_option in (Option.HTTPLOG, Option.HTTPSLOG):
            if log_option in options:
                options.discard(log_option)
                options.add(Option.TCPLOG)
                self.diagnostics.append(
                    warning(
                        wheres[log_option],
                        f"not usable with {label(proxy)} (needs 'mode http'): "
                        "falling back to 'option tcplog'",
                        f"option {log_option.value}",
                    )
                )
        for http_only in (
            Option.FORWARDFOR,
            Option.HTTP_BUFFER_REQUEST,
            Option.ORIGINALTO,
            Option.HTTP_IGNORE_PROBES,
            Option.HTTP_PRETEND_KEEPALIVE,
        ):
            if http_only in options:
                options.discard(http_only)
                self.diagnostics.append(
                    warning(
                        wheres[http_only],
                        f"ignored for {label(proxy)} as it requires HTTP mode",
                        f"option {http_only.value}",
                    )
                )
        return options - _HTTP_ONLY_SILENT

    def servers(self, section: SectionDraft, mode: Mode) -> tuple[Server, ...]:
        inherited = (
            section.parent.effective().default_server if section.parent else ServerSettings()
        )
        drafts = section.servers
        ids = assign_ids(
            [d.id for d in drafts], [d.where for d in drafts], "server", self.diagnostics
        )
        servers: list[Server] = []
        backend_source = section.effective().source
        for draft, server_id in zip(drafts, ids, strict=True):
            s = draft.own.over(draft.section_defaults.over(inherited))
            server = Server(name=draft.name, address=draft.address, where=draft.where, id=server_id)
            tls = link_server(
                s.tls,
                global_tls=self.global_.tls,
                checks_elsewhere=s.check_port is not None or s.check_addr is not None,
                mode=mode,
                label=f"'server {section.name}/{draft.name}'",
                where=draft.where,
                diagnostics=self.diagnostics,
            )
            servers.append(
                replace(
                    server,
                    weight=s.weight if s.weight is not None else server.weight,
                    backup=bool(s.backup),
                    disabled=bool(s.disabled),
                    maxconn=s.maxconn or 0,
                    maxqueue=s.maxqueue or 0,
                    check=bool(s.check),
                    check_port=s.check_port,
                    check_addr=s.check_addr,
                    inter=s.inter or server.inter,
                    fastinter=s.fastinter,
                    downinter=s.downinter,
                    rise=s.rise or server.rise,
                    fall=s.fall or server.fall,
                    cookie=s.cookie if mode is Mode.HTTP else None,
                    ssl=tls.ssl,
                    use_ssl=tls.use_ssl,
                    forced_id=draft.id is not None,
                    check_ssl=tls.check_ssl,
                    check_sni=tls.check_sni,
                    tls=tls.tls,
                    init_addr=s.init_addr or server.init_addr,
                    resolvers=s.resolvers,
                    resolve_prefer=preferred_family(s.resolve_prefer),
                    resolve_net=s.resolve_net or (),
                    resolve_opts=s.resolve_opts or frozenset(),
                    template=draft.template,
                    source=s.source or backend_source,
                    proxy_protocol=proxy_flags(s.proxy_protocol),
                    check_send_proxy=bool(s.check_send_proxy),
                    **server_tuning(s.tuning),
                )
            )
            self.check_dns(section, servers[-1])
            self.check_sockpair(section, servers[-1])
            if s.cookie is not None and mode is Mode.TCP:
                self.diagnostics.append(
                    warning(
                        draft.where,
                        f"{label(section)}: ignoring cookie for server '{draft.name}' as HTTP "
                        "mode is disabled",
                        "server",
                    )
                )
        return tuple(servers)

    def check_sockpair(self, section: SectionDraft, server: Server) -> None:
        """`server sockpair@N` carries the traffic only: what else it would need is named."""
        if server.address.family != "sockpair":
            return
        who = f"'server {section.name}/{server.name}'"
        if server.check:
            self.diagnostics.append(
                error(server.where, f"{who}: health checks over sockpair@ are not implemented "
                      "yet in poise")
            )  # fmt: skip
        if server.ssl:
            self.diagnostics.append(
                error(server.where, f"{who}: 'ssl' over sockpair@ is not implemented yet in poise")
            )

    def check_dns(self, section: SectionDraft, server: Server) -> None:
        """`resolvers NAME` names a section; an SRV name (`_service._proto.name`) can only
        be resolved by one (configuration.txt 5.3)."""
        where, who = server.where, f"'server {section.name}/{server.name}'"
        names = [r.name for r in self.parsed.resolvers]
        if server.resolvers is not None and server.resolvers not in names:
            hint = did_you_mean(server.resolvers, names)
            self.diagnostics.append(
                error(where, f"{who}: no resolvers section named '{server.resolvers}'{hint}")
            )
        if server.address.host.startswith("_") and server.resolvers is None:
            self.diagnostics.append(
                error(where, f"{who}: the SRV record '{server.address.host}' needs 'resolvers'")
            )

    # --- the whole -----------------------------------------------------------------------

    def check_names(self, proxies: Sequence[Proxy]) -> None:
        """Two proxies that share a capability may not share a name (configuration.txt 4);
        a frontend and a backend may. Two servers of one backend may not."""
        seen: dict[tuple[bool, str], Proxy] = {}
        for proxy in proxies:
            for side, has in ((True, proxy.is_frontend), (False, proxy.is_backend)):
                first = seen.get((side, proxy.name)) if has else None
                if first is not None:
                    self.diagnostics.append(
                        error(
                            proxy.where,
                            f"{label(proxy)} has the same name as {label(first)} "
                            f"declared at {first.where}",
                        )
                    )
                    break
            for side, has in ((True, proxy.is_frontend), (False, proxy.is_backend)):
                if has:
                    seen.setdefault((side, proxy.name), proxy)
            names: dict[str, Server] = {}
            for server in proxy.servers:
                if server.name in names:
                    self.diagnostics.append(
                        error(
                            server.where,
                            f"{label(proxy)}: another server named '{server.name}' "
                            f"was already defined at {names[server.name].where}",
                            "server",
                        )
                    )
                names.setdefault(server.name, server)

    def check_references(self, proxies: Sequence[Proxy], targets: Sequence[list[Target]]) -> None:
        backends = {p.name: p for p in reversed(proxies) if p.is_backend}
        frontends = {p.name for p in proxies if p.is_frontend}
        for proxy, named in zip(proxies, targets, strict=True):
            if not proxy.is_frontend:
                continue
            for keyword, target in named:
                if target.name_format is not None:
                    if proxy.mode is Mode.TCP:
                        self.diagnostics.append(
                            error(
                                target.where,
                                f"{label(proxy)}: dynamic backend names in mode tcp are not "
                                "implemented yet in poise",
                                keyword,
                            )
                        )
                    continue
                backend = backends.get(target.backend)
                if backend is None:
                    if target.backend in frontends:
                        reason = f"'{target.backend}' is a frontend, which has no servers"
                    else:
                        hint = did_you_mean(target.backend, backends)
                        reason = f"no backend named '{target.backend}'{hint}"
                    self.diagnostics.append(
                        error(target.where, f"{label(proxy)}: {reason}", keyword)
                    )
                elif proxy.mode is Mode.HTTP and backend.mode is Mode.TCP:
                    self.diagnostics.append(
                        error(
                            target.where,
                            f"http {label(proxy)} cannot use tcp {label(backend)} "
                            f"(at {backend.where}): their 'mode' must agree",
                            keyword,
                        )
                    )

    @staticmethod
    def targets(section: SectionDraft) -> list[Target]:
        """The backends a frontend names: `use_backend` lines, then `default_backend`
        (with the line that names it, which may be in a defaults section)."""
        if not section.capabilities & Capability.FRONTEND:
            return []
        found = [("use_backend", use) for use in section.use_backends]
        default = section.effective().default_backend
        if default is not None:
            found.append(("default_backend", default))
        return found

    def check_proxy(self, proxy: Proxy) -> None:
        self.diagnostics.extend(services_outside_frontends(proxy))
        t = proxy.timeouts
        if (proxy.is_frontend and not t.client) or (
            proxy.is_backend
            and proxy.servers
            and (not t.connect or (not t.server and (proxy.mode is Mode.HTTP or not t.tunnel)))
        ):
            self.diagnostics.append(
                warning(
                    proxy.where,
                    f"missing timeouts for {label(proxy)}: without 'timeout client', "
                    "'timeout connect' and 'timeout server' (non-zero) a stalled peer "
                    "can hold a connection forever",
                )
            )
        if proxy.is_frontend and not proxy.binds:
            self.diagnostics.append(
                warning(
                    proxy.where,
                    f"{label(proxy)} has no 'bind' line: "
                    "declare it as a backend if that was intended",
                )
            )
        self.diagnostics.extend(no_backend(proxy, label(proxy)))


def dynamic_backends(proxies: list[Proxy]) -> list[Proxy]:
    """A `use_backend` whose name is a log-format string learns which backends exist (an
    HTTP frontend only sends to HTTP backends)."""
    known = frozenset(p.name for p in proxies if p.is_backend and p.mode is Mode.HTTP)
    found = []
    for proxy in proxies:
        if not any(use.name_format is not None for use in proxy.use_backends):
            found.append(proxy)
            continue
        uses = tuple(
            replace(use, known=known) if use.name_format is not None else use
            for use in proxy.use_backends
        )
        found.append(replace(proxy, use_backends=uses))
    return found


def link(parsed: ParsedConfig) -> tuple[Config, list[Diagnostic]]:
    """The linked Config and what the whole configuration says about itself."""
    linker = _Linker(parsed)
    config = linker.run()
    return config, linker.diagnostics
