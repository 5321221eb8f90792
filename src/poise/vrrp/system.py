"""Loading keepalived.conf from disk and checking it against the running system: the shell
around the pure parser (poise.config.keepalived), used by `poise check -k` and by
`poise vrrp` at start, so that both report the same problems.

What only the system can tell (each is an error at the line that names it):
- an instance's `interface`, a `track_interface`, the `dev` of a virtual or static address
  or of a route that does not exist (in this network namespace; a rule's `iif`/`oif` may
  name an interface yet to come, as with `ip rule`);
- a `unicast_src_ip` that is not an address of the instance's interface;
- a global `script_user` that does not exist.

What Keepalived accepts with a warning, or silently, is a warning here, and poise then does
what Keepalived does: a script (tracked or notify) that does not exist, is not executable,
runs as an unknown user or group, or, with `enable_script_security`, runs as root and could
be changed by someone else is disabled; a virtual address outside its interface's subnets
is added there as ADDR/32 (a hint when another interface's subnet holds it).
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import shutil
import socket
import stat
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface

from poise.config.diagnostics import Diagnostic, error, has_errors, warning
from poise.config.keepalived import parse
from poise.config.keepalived_model import Command, KeepalivedConfig
from poise.config.model import Where

IFF_LOOPBACK = 0x8  # linux/if.h
DEFAULT_SCRIPT_USER = "keepalived_script"  # Keepalived runs scripts as this user if it exists


class DiskSource:
    """The files of keepalived.conf, read from disk (`include` globs sorted by name)."""

    def read(self, path: str) -> str:
        with open(path, "rb") as file:
            return file.read().decode("utf-8", errors="replace")

    def glob(self, pattern: str) -> list[str]:
        return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


@dataclass(slots=True)
class Link:
    """A network interface as netlink reports it."""

    name: str
    index: int
    up: bool
    mac: bytes
    addresses: list[IPv4Interface | IPv6Interface] = field(default_factory=list)
    loopback: bool = False  # IFF_LOOPBACK: Keepalived will not run VRRP on it


def links() -> dict[str, Link]:
    """The interfaces of this network namespace, with their addresses (IPv4 first, then
    IPv6, each in the kernel's order)."""
    from pyroute2 import IPRoute

    found: dict[str, Link] = {}
    with IPRoute() as ipr:
        by_index: dict[int, Link] = {}
        for msg in ipr.get_links():
            name = msg.get_attr("IFLA_IFNAME")
            mac_text = msg.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00"
            mac = bytes(int(part, 16) for part in mac_text.split(":"))
            up = bool(msg["flags"] & 1) and msg.get_attr("IFLA_OPERSTATE") != "DOWN"
            link = Link(name, msg["index"], up, mac, loopback=bool(msg["flags"] & IFF_LOOPBACK))
            found[name] = link
            by_index[link.index] = link
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in ipr.get_addr(family=family):
                owner = by_index.get(msg["index"])
                if owner is not None:
                    address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                    owner.addresses.append(ip_interface(f"{address}/{msg['prefixlen']}"))
    return found


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def script_user(config: KeepalivedConfig, command: Command) -> tuple[str, str | None]:
    """The user (and group) a command runs as: its own, the global `script_user`, else
    keepalived_script when that user exists, else the user poise runs as."""
    if command.user is not None:
        return command.user, command.group
    defaults = config.global_defs
    if defaults.script_user is not None:
        return defaults.script_user, defaults.script_group
    if _user_exists(DEFAULT_SCRIPT_USER):
        return DEFAULT_SCRIPT_USER, None
    return pwd.getpwuid(os.geteuid()).pw_name, None


def resolve_program(argv0: str) -> str | None:
    if "/" in argv0:
        return argv0 if os.path.isfile(argv0) else None
    return shutil.which(argv0)


def insecure_reason(path: str) -> str | None:
    """Why a script run as root could be changed by someone else, or None: the file and
    every directory above it must be owned by root and not writable by group or others
    (Keepalived's check_script_secure)."""
    current = os.path.realpath(path)
    while True:
        try:
            info = os.stat(current)
        except OSError as exc:
            return f"cannot stat '{current}': {exc.strerror}"
        if info.st_uid != 0:
            return f"'{current}' is owned by uid {info.st_uid}, not root"
        writable = stat.S_IWGRP | stat.S_IWOTH
        if info.st_mode & writable and not (
            stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        ):
            return f"'{current}' is writable by group or others"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _command_problem(config: KeepalivedConfig, command: Command) -> str | None:
    """Why a script cannot be run (Keepalived's check_script_secure), or None."""
    defaults = config.global_defs
    if (
        defaults.enable_script_security
        and command.user is None
        and defaults.script_user is None
        and not _user_exists(DEFAULT_SCRIPT_USER)
    ):
        # notify.c get_default_script_user: no falling back to root under script security
        return f"Unable to set default user {DEFAULT_SCRIPT_USER} for script"
    user, group = script_user(config, command)
    if not _user_exists(user):
        return f"unknown user '{user}'"
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            return f"unknown group '{group}'"
    program = resolve_program(command.argv[0])
    if program is None:
        return f"'{command.argv[0]}' does not exist (in PATH)"
    if not os.access(program, os.X_OK):
        return f"'{program}' is not executable"
    if config.global_defs.enable_script_security and pwd.getpwnam(user).pw_uid == 0:
        reason = insecure_reason(program)
        if reason is not None:
            return f"insecure script run as root: {reason} (enable_script_security)"
    return None


def check_commands(config: KeepalivedConfig) -> tuple[KeepalivedConfig, list[Diagnostic]]:
    """The scripts that cannot run are disabled with a warning, as Keepalived 2.2.7 does
    (vrrp.c check_vrrp_script_security): a tracked one is removed from every instance that
    tracks it ("Disabling track script NAME since not found/accessible", or "due to
    insecure"), a notify script is not run. Only an unknown global `script_user` is an
    error (Keepalived refuses it too)."""
    diagnostics: list[Diagnostic] = []
    defaults = config.global_defs
    if defaults.script_user is not None and not _user_exists(defaults.script_user):
        diagnostics.append(
            error(defaults.where, f"unknown user '{defaults.script_user}'", "script_user")
        )
        return config, diagnostics
    used = {t.name for i in config.instances for t in i.track_script}
    disabled: set[str] = set()
    for name, script in config.scripts.items():
        if name not in used:
            continue
        problem = _command_problem(config, script.command)
        if problem is not None:
            why = (
                "due to insecure"
                if problem.startswith("insecure")
                else "as no user may run it"
                if problem.startswith("Unable to set default user")
                else ("since not found/accessible")
            )
            diagnostics.append(
                warning(
                    script.command.where,
                    f"Disabling track script {name} {why}: {problem}",
                    "script",
                )
            )
            disabled.add(name)
    dropped: set[Command] = set()
    for command in config.notify_commands():
        problem = _command_problem(config, command)
        if problem is not None and command not in dropped:
            diagnostics.append(
                warning(command.where, f"Disabling notify script: {problem}", "notify")
            )
            dropped.add(command)
    return config.without(disabled, dropped), diagnostics


def check_network(config: KeepalivedConfig, found: dict[str, Link]) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []

    def missing(name: str, where: Where, keyword: str) -> bool:
        if name in found:
            return False
        diagnostics.append(
            error(where, f"no interface named '{name}' (in this network namespace)", keyword)
        )
        return True

    for address in config.static_ipaddress:
        assert address.dev is not None
        missing(address.dev, address.where, "static_ipaddress")
    for keyword, routes in [("static_routes", config.static_routes)] + [
        ("virtual_routes", i.virtual_routes) for i in config.instances
    ]:
        for route in routes:
            for dev in [route.dev, *(hop.dev for hop in route.nexthops)]:
                if dev is not None:
                    missing(dev, route.where, keyword)
    for instance in config.instances:
        assert instance.interface is not None
        if missing(instance.interface, instance.where, "interface"):
            continue
        link = found[instance.interface]
        if link.loopback:
            # keepalived -t 2.2.7: "(VI_1) cannot use a loopback interface (lo) for vrrp -
            # ignoring", then "(VI_1) Unknown interface!" and exit status 5.
            diagnostics.append(
                error(
                    instance.where,
                    f"({instance.name}) cannot use a loopback interface ({link.name}) for vrrp",
                    "interface",
                )
            )
            continue
        for tracked in instance.track_interface:
            missing(tracked.name, tracked.where, "track_interface")
        src = instance.unicast_src_ip
        if src is not None and all(a.ip != src for a in link.addresses):
            diagnostics.append(
                error(
                    instance.where,
                    f"unicast_src_ip {src} is not an address of {instance.interface}",
                    "unicast_src_ip",
                )
            )
        for vip in instance.virtual_ipaddress:
            target = vip.dev or instance.interface
            if vip.dev is not None and missing(vip.dev, vip.where, "dev"):
                continue
            if vip.dev is not None or vip.prefix_given:
                continue
            if _in_subnet(vip.ip, found[target]):
                continue
            # Keepalived adds it to the instance's interface as ADDR/32 all the same, and
            # says nothing; a hint when another interface's subnet holds it.
            others = [n for n, other in found.items() if n != target and _in_subnet(vip.ip, other)]
            if others:
                diagnostics.append(
                    warning(
                        vip.where,
                        f"virtual address {vip.ip} is in the subnet of {others[0]} but goes "
                        f"on {target} as {vip.interface}, as Keepalived does: add "
                        f"'dev {others[0]}' to put it there",
                        str(vip.interface),
                    )
                )
    return diagnostics


def _in_subnet(ip: IPv4Address | IPv6Address, link: Link) -> bool:
    return any(
        a.version == ip.version and ip in a.network and a.network.prefixlen < a.max_prefixlen
        for a in link.addresses
    )


def load(path: str) -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    """Parse keepalived.conf and check it against this system. None on any error."""
    config, diagnostics = parse(path, DiskSource())
    if config is None:
        return None, diagnostics
    diagnostics = diagnostics + check_network(config, links())
    config, script_diagnostics = check_commands(config)
    diagnostics += script_diagnostics
    return (None if has_errors(diagnostics) else config), diagnostics


RTN_LOCAL = 2  # linux/rtnetlink.h
TRANSPARENT_SETUP = (
    "ip rule add fwmark 1 lookup 100; ip route add local 0.0.0.0/0 dev lo table 100; "
    "nft: socket transparent 1 meta mark set 1 (README, 'Transparent source')"
)


def transparent_route() -> str | None:
    """Why a transparent socket would get no answers here (None: a rule sends marked
    packets to a table whose default route is local, as the documented set-up does)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for rule in ipr.get_rules(family=socket.AF_INET):
            if rule.get_attr("FRA_FWMARK") is None:
                continue
            table = rule.get_attr("FRA_TABLE") or rule["table"]
            for route in ipr.get_routes(family=socket.AF_INET, table=table):
                if route["type"] == RTN_LOCAL and route["dst_len"] == 0:
                    return None
    return f"no policy route hands the answers to a transparent socket ({TRANSPARENT_SETUP})"
