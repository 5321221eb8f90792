"""The statistics page keywords of proxy sections (configuration.txt 4.2): `stats enable`,
`stats uri`, `stats realm`, `stats auth`, `stats refresh`, `stats admin`, `stats scope`,
`stats hide-version`, `stats show-legends`, `stats show-modules`, `stats show-node`,
`stats show-desc`; and the link-pass rules that only the whole proxy can tell.

As in HAProxy, every one of them enables the page, and a section with a `stats` line of
its own starts from the built-in defaults rather than from its `defaults` section's
settings (cfgparse detaches a proxy's `uri_auth` from its defaults' on its first `stats`
line); a section with none keeps its `defaults` section's page. The texts of the errors
follow `haproxy -c` 2.6.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from poise.config.acl_parse import ReadFile, parse_condition
from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem, SectionDraft, no_args
from poise.config.model import Condition, HttpRule, Mode, Proxy, StatsPage, Where
from poise.config.units import parse_time

Handler = Callable[[Sequence[str], Where], None]
# The services `http-request use-service` knows (HAProxy 2.6 also has Lua services).
SERVICES = ("prometheus-exporter",)


class StatsKeywords:
    """The handlers of the `stats` keywords for one section."""

    def __init__(
        self,
        section: SectionDraft,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None = None,
    ) -> None:
        self.section = section
        self.settings = section.settings
        self.diagnostics = diagnostics
        self.read_file = read_file

    def handlers(self) -> dict[str, Handler]:
        return {
            "stats enable": self.enable,
            "stats uri": self.uri,
            "stats realm": self.realm,
            "stats auth": self.auth,
            "stats refresh": self.refresh,
            "stats admin": self.admin,
            "stats scope": self.scope,
            "stats hide-version": self.hide_version,
            "stats show-legends": self.show_legends,
            "stats show-modules": self.show_modules,
            "stats show-node": self.show_node,
            "stats show-desc": self.show_desc,
        }

    def page(self, where: Where) -> StatsPage:
        """This section's own page settings (created on its first `stats` line)."""
        if self.settings.stats is None:
            self.settings.stats = StatsPage(where)
        return self.settings.stats

    # --- keywords --------------------------------------------------------------------

    def enable(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.page(where)

    def uri(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'uri' needs an URI prefix.")
        no_args(args[1:])
        self.settings.stats = replace(self.page(where), uri=args[0])

    def realm(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'realm' needs an realm name.")
        if len(args) > 1:
            # HAProxy 2.6 takes the first word and says nothing of the others (measured:
            # `stats realm Haproxy Statistics` asks for realm "Haproxy").
            self.diagnostics.append(
                warning(
                    where,
                    f"only the first word is the realm, as in HAProxy: '{args[0]}' (escape "
                    "the spaces or quote it to have them all)",
                    "stats realm",
                )
            )
        self.settings.stats = replace(self.page(where), realm=args[0])

    def auth(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'auth' needs a user:password account.")
        no_args(args[1:])
        user, colon, password = args[0].partition(":")
        if not colon:
            # HAProxy takes it as a user with an empty password; say so.
            self.diagnostics.append(
                warning(
                    where,
                    f"no ':' in '{args[0]}': user '{user}' gets an empty password",
                    "stats auth",
                )
            )
        self.settings.stats = replace(
            self.page(where), users=(*self.page(where).users, (user, password))
        )

    def refresh(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("unexpected character '' in argument to stats refresh interval.")
        no_args(args[1:])
        millis = parse_time(args[0], "s")
        self.settings.stats = replace(
            self.page(where), refresh=-(-millis // 1000)
        )  # whole seconds, rounded up

    def admin(self, args: Sequence[str], where: Where) -> None:
        if self.section.kind == "defaults":
            raise Problem("'stats admin' not allowed in 'defaults' section.")
        if not args or args[0] not in ("if", "unless"):
            raise Problem("'stats admin' requires either 'if' or 'unless' followed by a condition.")
        condition = parse_condition(args, where, self.diagnostics, self.read_file, "stats admin")
        self.settings.stats = replace(self.page(where), admin=(*self.page(where).admin, condition))

    def scope(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'scope' needs a proxy name.")
        no_args(args[1:])
        self.settings.stats = replace(self.page(where), scope=(*self.page(where).scope, args[0]))

    def hide_version(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.settings.stats = replace(self.page(where), hide_version=True)

    def show_legends(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.settings.stats = replace(self.page(where), show_legends=True)

    def show_modules(self, args: Sequence[str], where: Where) -> None:
        no_args(args)
        self.settings.stats = replace(self.page(where), show_modules=True)

    def show_node(self, args: Sequence[str], where: Where) -> None:
        no_args(args[1:])
        self.settings.stats = replace(self.page(where), show_node=args[0] if args else "")

    def show_desc(self, args: Sequence[str], where: Where) -> None:
        self.settings.stats = replace(self.page(where), show_desc=" ".join(args))


def check_service(name: str) -> str:
    """The service of `http-request use-service NAME`, or the error HAProxy gives."""
    if name in SERVICES:
        return name
    if name.startswith("lua."):
        raise Problem("Lua services are not implemented in poise")
    raise Problem(f"'{name}' unknown service name.")


# --- the link pass -------------------------------------------------------------------------


def link_stats(
    proxy: Proxy,
    page: StatsPage | None,
    resolve: Callable[[Condition], Condition | None],
    diagnostics: list[Diagnostic],
) -> StatsPage | None:
    """The page a linked proxy serves: none outside HTTP mode (HAProxy's warning), the
    `stats admin` conditions resolved, `stats scope .` named."""
    if page is None:
        return None
    if proxy.mode is not Mode.HTTP:
        diagnostics.append(
            warning(page.where, f"ignored for {_label(proxy)} as it requires HTTP mode", "stats")
        )
        return None
    admin = tuple(c for c in (resolve(cond) for cond in page.admin) if c is not None)
    scope = tuple(proxy.name if name == "." else name for name in page.scope)
    return replace(page, admin=admin, scope=scope)


def services_outside_frontends(proxy: Proxy) -> list[Diagnostic]:
    """`http-request use-service` answers in a frontend or a listen section; in a backend
    (written there or inherited from a defaults section) poise does not run it yet."""
    if proxy.is_frontend:
        return []
    return [
        error(
            rule.where,
            f"{_label(proxy)}: 'use-service' in a backend is not implemented yet in poise "
            "(use it in the frontend or a listen section)",
            "http-request",
        )
        for rule in proxy.http_request_rules
        if _is_service(rule)
    ]


def _is_service(rule: HttpRule) -> bool:
    return rule.action == "use-service"


def _label(proxy: Proxy) -> str:
    kind = "listen" if proxy.is_frontend and proxy.is_backend else None
    kind = kind or ("frontend" if proxy.is_frontend else "backend")
    return f"{kind} '{proxy.name}'"
