"""Loading a configuration from disk: the only shell module of poise.config.

It reads files and directories (`-f FILE|DIR`, as HAProxy: a directory contributes its
`*.cfg` files in name order), hands their text to the pure parser, and does the lookups the
parser cannot do without the system: reading the files the configuration names
(`errorfile`, ACL patterns with `-f`; a missing one is an error at the line naming it;
the certificates and CA files of TLS binds and servers, judged by certs/check.py),
`user`/`group` names to ids (an unknown name is an error at its line, as HAProxy reports
it) and server DNS names to addresses.
"""

from __future__ import annotations

import datetime as dt
import grp
import ipaddress
import os
import pwd
import socket
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from poise.config.conditions import Facts
from poise.config.diagnostics import Diagnostic, error, has_errors, warning
from poise.config.haproxy import parse
from poise.config.model import Address, Config, Global, LogTarget, Server, Where


def _sources(paths: Sequence[str], diagnostics: list[Diagnostic]) -> list[tuple[str, str]]:
    sources: list[tuple[str, str]] = []
    for path in paths:
        files = [Path(path)]
        if files[0].is_dir():
            files = sorted(p for p in files[0].glob("*.cfg") if p.is_file())
        for file in files:
            try:
                text = file.read_bytes().decode("utf-8", errors="replace")
            except OSError as exc:
                reason = exc.strerror or str(exc)
                diagnostics.append(error(Where(str(file), 0), f"cannot read '{file}': {reason}"))
                continue
            sources.append((str(file), text))
    return sources


def _read_file(path: str) -> bytes:
    """A file the configuration names (`errorfile`, `acl ... -f`), read when it loads:
    relative paths are from the current directory, as in HAProxy without `default-path`."""
    return Path(path).read_bytes()


def _resolve_ids(global_: Global, diagnostics: list[Diagnostic]) -> Global:
    """`user` and `group` names to uid and gid (HAProxy looks them up while parsing)."""
    if global_.user is not None:
        try:
            global_ = replace(global_, uid=pwd.getpwnam(global_.user).pw_uid)
        except KeyError:
            where = global_.user_where or global_.where
            diagnostics.append(error(where, f"unknown user '{global_.user}'", "user"))
    if global_.group is not None:
        try:
            global_ = replace(global_, gid=grp.getgrnam(global_.group).gr_gid)
        except KeyError:
            where = global_.group_where or global_.where
            diagnostics.append(error(where, f"unknown group '{global_.group}'", "group"))
    return global_


def _check_program_owners(config: Config, diagnostics: list[Diagnostic]) -> None:
    """A `program` section's `user` and `group` must name a user and a group of this
    system, as HAProxy checks them while parsing (the program starts with their ids)."""
    for program in config.programs:
        if program.user is not None:
            try:
                pwd.getpwnam(program.user)
            except KeyError:
                message = f"cannot find user id for '{program.user}'"
                diagnostics.append(error(program.user_where or program.where, message, "user"))
        if program.group is not None:
            try:
                grp.getgrnam(program.group)
            except KeyError:
                message = f"cannot find group id for '{program.group}'"
                where = program.group_where or program.where
                diagnostics.append(error(where, message, "group"))


def _resolve_host(host: str, where: Where, keyword: str, diagnostics: list[Diagnostic]) -> str:
    """A `log` target's or a nameserver's host name to its first address, once, at
    startup (HAProxy resolves them while parsing); an IP address stays as it is."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        diagnostics.append(error(where, f"could not resolve address '{host}'", keyword))
        return host
    return str(infos[0][4][0])


def _resolve_names(config: Config, diagnostics: list[Diagnostic]) -> Config:
    """The host names of `log` targets and nameservers, resolved."""
    found: dict[str, str] = {}

    def logs(targets: tuple[LogTarget, ...]) -> tuple[LogTarget, ...]:
        out = []
        for target in targets:
            if target.kind == "udp":
                if target.address not in found:
                    found[target.address] = _resolve_host(
                        target.address, target.where, "log", diagnostics
                    )
                out.append(replace(target, address=found[target.address]))
            else:
                out.append(target)
        return tuple(out)

    resolvers = tuple(
        replace(
            section,
            nameservers=tuple(
                replace(ns, host=_resolve_host(ns.host, ns.where, "nameserver", diagnostics))
                for ns in section.nameservers
            ),
        )
        for section in config.resolvers
    )
    return replace(
        config,
        global_=replace(config.global_, logs=logs(config.global_.logs)),
        proxies=tuple(replace(proxy, logs=logs(proxy.logs)) for proxy in config.proxies),
        resolvers=resolvers,
    )


def load_config(
    paths: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[Config | None, list[Diagnostic]]:
    """Read, parse and link configuration files and directories (in the given order).
    `env` (default: the process environment) serves `"${VAR}"` expansion. The Config is
    None when there is any error; the diagnostics say what and where."""
    diagnostics: list[Diagnostic] = []
    sources = _sources(paths, diagnostics)
    facts = Facts(openssl=tuple(ssl.OPENSSL_VERSION_INFO[:3]))
    config, more = parse(sources, os.environ if env is None else env, _read_file, facts)
    diagnostics.extend(more)
    if config is None or has_errors(diagnostics):
        return None, diagnostics
    config = replace(config, global_=_resolve_ids(config.global_, diagnostics))
    _check_program_owners(config, diagnostics)
    config = _resolve_names(config, diagnostics)
    # Every certificate, key and CA file, read and judged (certs/check.py). Imported only
    # for a configuration with TLS: cryptography is most of `poise check`'s start-up
    # otherwise (issue 16, point 4).
    if _uses_tls(config):
        from poise.certs.check import config_diagnostics

        diagnostics.extend(config_diagnostics(config, dt.datetime.now(dt.UTC)))
    diagnostics.extend(cpu_diagnostics(config.global_))
    return (None if has_errors(diagnostics) else config), diagnostics


def cpu_diagnostics(global_: Global, allowed: set[int] | None = None) -> list[Diagnostic]:
    """`nbthread` above the CPUs poise may run on (allowed, workers share CPUs) and the
    `cpu-map` CPUs it may not run on (left out; a worker with none left is not pinned)."""
    if allowed is None:
        allowed = os.sched_getaffinity(0)
    found: list[Diagnostic] = []
    if global_.nbthread > len(allowed):
        found.append(
            warning(
                global_.nbthread_where,
                f"nbthread {global_.nbthread} is more than the {len(allowed)} CPUs poise may "
                "run on: workers will share CPUs",
                "nbthread",
            )
        )
    for line in global_.cpu_maps:
        missing = sorted(line.cpus - allowed)
        if missing:
            names = ", ".join(str(cpu) for cpu in missing)
            found.append(
                warning(
                    line.where,
                    f"CPU {names} does not exist or poise may not run on it (it may run on "
                    f"{cpu_list(allowed)}): left out",
                    "cpu-map",
                )
            )
    return found


def cpu_list(cpus: set[int] | frozenset[int]) -> str:
    """CPUs as the kernel lists them (Cpus_allowed_list): `0-3,6`."""
    ranges: list[str] = []
    for cpu in sorted(cpus):
        if ranges and int(ranges[-1].split("-")[-1]) == cpu - 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{cpu}"
        else:
            ranges.append(str(cpu))
    return ",".join(ranges)


def _uses_tls(config: Config) -> bool:
    """Whether a bind or a server of `config` has TLS settings (certs/check.py judges
    nothing else)."""
    return any(
        any(bind.tls is not None for bind in proxy.binds)
        or any(server.tls is not None for server in proxy.servers)
        for proxy in config.proxies
    )


def _lookup(address: Address, prefer: str | None = None) -> list[str]:
    """The IP addresses of a DNS name, in the order used: IPv4 first (or the family
    `resolve-prefer` names first), each once."""
    family = socket.AF_INET6 if address.family == "ipv6" else socket.AF_UNSPEC
    try:
        infos = socket.getaddrinfo(address.host, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    wanted = 6 if prefer == "ipv6" else 4
    return sorted(found, key=lambda ip: ipaddress.ip_address(ip).version != wanted)


class _Starter:
    """`init-addr` (configuration.txt 5.2): the methods of a server tried in order. `last`
    needs a server-state file, which poise does not read: it is skipped. `libc` asks the
    system (getaddrinfo; each server of a `server-template` takes the next address of
    the answer); `none` starts the server without an address, in maintenance until a
    `resolvers` section finds one (""); an IP address is taken as it is."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str, str | None], list[str]] = {}
        self.taken: dict[tuple[str, str], int] = {}  # (backend, template) -> addresses used
        self.diagnostics: list[Diagnostic] = []

    def address(self, backend: str, server: Server) -> str | None:
        """The first address a method gives ("" for `none`), None when none worked. A
        server named by an SRV record starts without one: only its resolvers fill it."""
        if server.address.host.startswith("_") and server.resolvers is not None:
            return ""
        failed = False
        for method in server.init_addr:
            if method == "libc":
                found = self.libc(backend, server)
                if found is not None:
                    return found
                failed = not server.address.host.startswith("_")
            elif method == "none":
                if failed:
                    self.diagnostics.append(
                        warning(
                            server.where,
                            f"could not resolve address '{server.address.host}' for server "
                            f"'{backend}/{server.name}': it starts in maintenance (init-addr none)",
                            "server",
                        )
                    )
                return ""
            elif method != "last":
                return method
        return None

    def libc(self, backend: str, server: Server) -> str | None:
        address = server.address
        if address.host.startswith("_"):
            return None  # an SRV record: only a `resolvers` section reads those
        key = (address.family, address.host, server.resolve_prefer)
        if key not in self.cache:
            self.cache[key] = _lookup(address, server.resolve_prefer)
        found = self.cache[key]
        if server.template is None:
            return found[0] if found else None
        used = self.taken.get((backend, server.template), 0)
        if used >= len(found):
            return "" if found else None  # the name resolves: later slots wait for more
        self.taken[backend, server.template] = used + 1
        return found[used]


def resolve_servers(config: Config) -> tuple[dict[tuple[str, str], str], list[Diagnostic]]:
    """The IP address of every server that has one, by (backend, server): IP literals as
    written, DNS names resolved once (as HAProxy does at startup) by the server's
    `init-addr` methods; "" for a server that starts without an address (`init-addr
    none`). Unix-socket servers have none and are left out. A name no method resolves is
    an error at its server line."""
    addresses: dict[tuple[str, str], str] = {}
    diagnostics: list[Diagnostic] = []
    starter = _Starter()
    for backend in config.backends:
        for server in backend.servers:
            address = server.address
            if address.family in ("unix", "sockpair"):
                continue
            try:
                addresses[backend.name, server.name] = str(ipaddress.ip_address(address.host))
                continue
            except ValueError:
                pass
            resolved = starter.address(backend.name, server)
            if resolved is None:
                diagnostics.append(
                    error(
                        server.where,
                        f"could not resolve address '{address.host}' "
                        f"for server '{backend.name}/{server.name}'",
                        "server",
                    )
                )
            else:
                addresses[backend.name, server.name] = resolved
    return addresses, [*starter.diagnostics, *diagnostics]


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)


def load(files: Sequence[str]) -> tuple[Config | None, dict[tuple[str, str], str]]:
    """Load, link and resolve; print every diagnostic. None when anything is wrong."""
    config, diagnostics = load_config(files, os.environ)
    addrs: dict[tuple[str, str], str] = {}
    if config is not None:
        addrs, more = resolve_servers(config)
        diagnostics = [*diagnostics, *more]
    print_diagnostics(diagnostics)
    if config is None or has_errors(diagnostics):
        return None, {}
    return config, addrs
