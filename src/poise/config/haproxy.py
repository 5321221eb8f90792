"""The haproxy.cfg dialect: reads files' text into a linked Config, collecting every problem.

`parse` is pure (the files' text comes in, nothing is read here) and is the entry point the
rest of poise calls; load.py is the shell that reads files. Its steps:
1. lexer.py cuts each file into lines of words;
2. this module follows the sections (`global`, `defaults [NAME] [from NAME]`, `frontend`,
   `backend`, `listen NAME [from NAME]`) and hands each line to its section's parser
   (haproxy_global.py, haproxy_proxy.py, haproxy_server.py);
3. link.py applies defaults, resolves names and checks the whole.
A problem is reported at FILE:LINE and parsing goes on, so one run shows them all.

Sections follow HAProxy's configuration.txt 2.1 and 4: a proxy starts from the last
`defaults` section before it, or from the one `from` names (which must come before it, be
unambiguous, and not also be used implicitly); each file starts a new section.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from poise.config import default_path, keywords, patterns, workers
from poise.config.acl_parse import ReadFile
from poise.config.conditions import DIRECTIVES, Conditions, Facts
from poise.config.diagnostics import Diagnostic, error, has_errors, warning
from poise.config.haproxy_cache import CacheParser, check_rules
from poise.config.haproxy_draft import ParsedConfig, Problem, SectionDraft, one_arg
from poise.config.haproxy_global import GlobalParser
from poise.config.haproxy_http_actions import EXPERIMENTAL
from poise.config.haproxy_http_errors import HttpErrorsParser, section_name
from poise.config.haproxy_peers import PeersParser
from poise.config.haproxy_peers import section_name as peers_name
from poise.config.haproxy_program import ProgramParser
from poise.config.haproxy_proxy import ProxyParser, check_name
from poise.config.haproxy_resolvers import ResolversParser, implicit_default
from poise.config.haproxy_resolvers import check_name as check_resolvers_name
from poise.config.haproxy_userlist import UserlistParser
from poise.config.lexer import Line, lex
from poise.config.link import link
from poise.config.link_stick import missing_tables
from poise.config.model import Config, Where


class _Reader:
    """Follows the sections of all the files and feeds each line to its section's parser."""

    def __init__(
        self, read_file: ReadFile | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.read_file = read_file
        self.env = env or {}
        self.parsed = ParsedConfig()
        self.diagnostics: list[Diagnostic] = []
        self.global_parser = GlobalParser(self.parsed.global_, self.diagnostics, self.env)
        self.proxy_parser: ProxyParser | None = None
        self.resolvers_parser: ResolversParser | None = None
        self.userlist_parser: UserlistParser | None = None
        self.http_errors_parser: HttpErrorsParser | None = None
        self.cache_parser: CacheParser | None = None
        self.peers_parser: PeersParser | None = None
        self.program_parser: ProgramParser | None = None
        self.http_errors_where: dict[str, Where] = {}
        self.section: str | None = None  # None: before any section in this file

    def start_file(self, filename: str) -> None:
        self.finish_resolvers()
        self.parsed.files.append(filename)
        self.section = None
        self.proxy_parser = None

    def start_resolvers(self, line: Line) -> None:
        """`resolvers NAME`: its lines go to a ResolversParser until the next section."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = one_arg(line.words[1:], "a name")
            check_resolvers_name(name)
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.section = keywords.RESOLVERS_SECTION
        self.resolvers_parser = ResolversParser(
            name, line.where, self.diagnostics, self.read_file, self.env
        )

    def finish_resolvers(self) -> None:
        """The end of a `resolvers` or `userlist` section."""
        if self.resolvers_parser is not None:
            self.parsed.resolvers.append(self.resolvers_parser.value)
            self.resolvers_parser = None
        if self.userlist_parser is not None:
            self.parsed.userlists.append(self.userlist_parser.value())
            self.userlist_parser = None
        self.http_errors_parser = None
        if self.cache_parser is not None:
            self.parsed.caches.append(self.cache_parser.finish())
            self.cache_parser = None
        if self.peers_parser is not None:
            self.parsed.peers.append(self.peers_parser.value)
            self.peers_parser = None
        if self.program_parser is not None:
            self.parsed.programs.append(self.program_parser.finish())
            self.program_parser = None

    def start_peers(self, line: Line) -> None:
        """`peers NAME`: its lines go to a PeersParser until the next section."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = peers_name(line.words[1:], line.where, self.parsed.peers)
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.section = keywords.PEERS_SECTION
        self.peers_parser = PeersParser(name, line.where, self.diagnostics)

    def start_http_errors(self, line: Line) -> None:
        """`http-errors NAME`: its `errorfile` lines go to an HttpErrorsParser."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = section_name(line.words[1:], self.http_errors_where, line.where)
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.http_errors_where[name] = line.where
        files = self.parsed.http_errors[name] = {}
        self.section = keywords.HTTP_ERRORS_SECTION
        self.http_errors_parser = HttpErrorsParser(files, self.diagnostics, self.read_file)

    def start_cache(self, line: Line) -> None:
        """`cache NAME`: its lines go to a CacheParser until the next section."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = one_arg(line.words[1:], "a <name>")
            if any(c.name == name for c in self.parsed.caches):
                raise Problem(f"Duplicate cache name '{name}'.")
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.section = keywords.CACHE_SECTION
        self.cache_parser = CacheParser(name, line.where, self.diagnostics)

    def start_program(self, line: Line) -> None:
        """`program NAME`: its lines go to a ProgramParser until the next section."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = one_arg(line.words[1:], "an <id>")
            if any(p.name == name for p in self.parsed.programs):
                raise Problem(f"'{name}' program section already exists in the configuration.")
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.section = keywords.PROGRAM_SECTION
        self.program_parser = ProgramParser(name, line.where, self.diagnostics)

    def start_userlist(self, line: Line) -> None:
        """`userlist NAME`: its lines go to a UserlistParser until the next section."""
        self.finish_resolvers()
        self.section, self.proxy_parser = "skip", None
        try:
            name = one_arg(line.words[1:], "a name")
            if any(u.name == name for u in self.parsed.userlists):
                raise Problem(f"duplicate userlist '{name}'")
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), line.words[0]))
            return
        self.section = "userlist"
        self.userlist_parser = UserlistParser(name, line.where, self.diagnostics)

    def feed(self, line: Line) -> None:
        words = self.truncate(line)
        if not words:
            return
        line = Line(line.where, words)
        keyword = words[0]
        if keyword in keywords.SECTIONS:
            try:
                self.start_section(line)
            except Problem as exc:
                self.diagnostics.append(error(line.where, str(exc), keyword))
                self.section, self.proxy_parser = "skip", None
        elif keyword == keywords.RESOLVERS_SECTION:
            self.start_resolvers(line)
        elif keyword == keywords.USERLIST_SECTION:
            self.start_userlist(line)
        elif keyword == keywords.HTTP_ERRORS_SECTION:
            self.start_http_errors(line)
        elif keyword == keywords.CACHE_SECTION:
            self.start_cache(line)
        elif keyword == keywords.PEERS_SECTION:
            self.start_peers(line)
        elif keyword == keywords.PROGRAM_SECTION:
            self.start_program(line)
        elif keyword in keywords.UNIMPLEMENTED_SECTIONS:
            self.finish_resolvers()
            self.diagnostics.append(
                error(line.where, "this HAProxy section is not implemented yet in poise", keyword)
            )
            self.section, self.proxy_parser = "skip", None
        elif keyword.startswith("."):
            self.diagnostics.append(
                error(
                    line.where,
                    "conditional blocks and '.' directives are not implemented yet in poise",
                    keyword,
                )
            )
        elif self.section == "global":
            self.global_parser.feed(line)
        elif self.proxy_parser is not None:
            self.proxy_parser.feed(line)
        elif self.resolvers_parser is not None:
            self.resolvers_parser.feed(line)
        elif self.userlist_parser is not None:
            self.userlist_parser.feed(line.where, line.words)
        elif self.http_errors_parser is not None:
            self.http_errors_parser.feed(line.where, line.words)
        elif self.cache_parser is not None:
            self.cache_parser.feed(line.where, line.words)
        elif self.peers_parser is not None:
            self.peers_parser.feed(line.where, line.words)
        elif self.program_parser is not None:
            self.program_parser.feed(line.where, line.words)
        elif self.section is None:
            self.diagnostics.append(
                error(
                    line.where,
                    "outside of any section: each file starts with a section keyword "
                    "(global, defaults, frontend, backend or listen)",
                    keyword,
                )
            )
        # Otherwise the line belongs to a section already reported as unusable.

    def truncate(self, line: Line) -> tuple[str, ...]:
        """An empty word ends the line's arguments, as in HAProxy (its words are C strings
        and an empty one marks the end); words after it are reported and dropped."""
        words = line.words
        if "" not in words:
            return words
        cut = words.index("")
        if any(words[cut:]):
            self.diagnostics.append(
                warning(
                    line.where,
                    f"argument {cut + 1} is empty, which ends the line as in HAProxy: "
                    "the words after it are ignored",
                    words[0] or None,
                )
            )
        return words[:cut]

    def start_section(self, line: Line) -> None:
        self.finish_resolvers()
        kind, args = line.words[0], list(line.words[1:])
        self.section, self.proxy_parser = kind, None
        patterns.in_section(None)
        if kind == "global":
            if args:
                raise Problem(f"unexpected argument '{args[0]}'")
            if self.parsed.global_.where.line == 0:
                self.parsed.global_.where = line.where
            return
        from_name: str | None = None
        if "from" in args:
            at = args.index("from")
            if at + 1 >= len(args):
                raise Problem("'from' expects the name of a defaults section")
            from_name = args[at + 1]
            if at + 2 < len(args):
                raise Problem(f"unexpected argument '{args[at + 2]}'")
            args = args[:at]
        if len(args) > 1:
            raise Problem(f"unexpected argument '{args[1]}'")
        name = args[0] if args else ""
        if kind != "defaults" or name:
            check_name(name, kind)
        section = SectionDraft(kind, name, line.where)
        patterns.in_section(name if kind != "defaults" else None)
        if kind == "defaults":
            self.parsed.defaults.append(section)
        else:
            self.parsed.proxies.append(section)
        self.proxy_parser = ProxyParser(
            section, self.diagnostics, self.read_file, self.env, self.parsed.http_errors
        )
        # A bad `from` is reported, and the section is still read (from no defaults).
        try:
            section.parent = self.parent(section, from_name, line.where)
        except Problem as exc:
            self.diagnostics.append(error(line.where, str(exc), kind))

    def parent(
        self, section: SectionDraft, from_name: str | None, where: Where
    ) -> SectionDraft | None:
        """The defaults section this one starts from."""
        earlier = [d for d in self.parsed.defaults if d is not section]
        label = f"{section.kind} '{section.name}'" if section.name else section.kind
        if from_name is None:
            if section.kind == "defaults" or not earlier:
                return None  # a defaults section without `from` starts from scratch
            parent = earlier[-1]
            if parent.explicit_users:
                self.mixed_use(parent, where, section.kind)
            parent.implicit_users.append(where)
            return parent
        named = [d for d in earlier if d.name == from_name]
        if not named:
            raise Problem(f"defaults section '{from_name}' not found for {label}")
        if len(named) > 1:
            places = " and ".join(str(d.where) for d in named)
            raise Problem(f"ambiguous defaults section name '{from_name}' (at {places})")
        parent = named[0]
        if parent.implicit_users:
            self.mixed_use(parent, where, "from")
        parent.explicit_users.append(where)
        return parent

    def mixed_use(self, defaults: SectionDraft, where: Where, keyword: str) -> None:
        self.diagnostics.append(
            error(
                where,
                f"defaults section '{defaults.name}' (at {defaults.where}) is used both "
                "explicitly (with 'from') and implicitly (as the last defaults section): "
                "add a last defaults section for implicit use, or always name it with 'from'",
                keyword,
            )
        )


def _read_from_default_path(read_file: ReadFile, path: str) -> bytes:
    return read_file(default_path.resolve(path))


def parse(
    sources: Sequence[tuple[str, str]],
    env: Mapping[str, str],
    read_file: ReadFile | None = None,
    facts: Facts | None = None,
) -> tuple[Config | None, list[Diagnostic]]:
    """Parse and link haproxy.cfg files given as (filename, text), in order. `env` is the
    environment for `"${VAR}"` expansion; `read_file` reads the files the configuration
    names (`errorfile`, ACL patterns with `-f`): given by load.py, it raises OSError for a
    file that cannot be read (without it, naming a file is an error). The Config is None
    when there is any error. `facts` answer the `.if` predicates about the running program
    (config/conditions.py)."""
    if read_file is not None:  # relative names start where `default-path` says
        read_file = functools.partial(_read_from_default_path, read_file)
    reader = _Reader(read_file, env)
    with default_path.tracking(), patterns.loading(read_file) as loaded:
        for filename, text in sources:
            reader.start_file(filename)
            lines, problems = lex(filename, text, env, keywords.ALL_SECTIONS)
            reader.diagnostics.extend(problems)
            conditions = Conditions(env, facts or Facts(), reader.diagnostics)
            for line in lines:
                patterns.at_line(line.where)
                default_path.at_line(line.where)
                if line.words and line.words[0] in DIRECTIVES:
                    conditions.feed(line.where, line.words)
                elif conditions.active:
                    reader.feed(line)
            conditions.finish(lines[-1].where if lines else Where(filename, 0))
        reader.finish_resolvers()
        default = implicit_default(reader.parsed.resolvers, read_file)
        if default is not None:
            reader.parsed.resolvers.append(default)
        experimental_rules(reader.parsed, reader.diagnostics)
        # Each file's lexing problems come first from lex(): put every parse problem in
        # file and line order, then the link pass's, which are about the whole.
        order = {name: index for index, name in enumerate(reader.parsed.files)}
        reader.diagnostics.sort(key=lambda d: (order.get(d.where.file, len(order)), d.where.line))
        config, problems = link(reader.parsed)
        problems += check_rules(config, tuple(reader.parsed.caches))
        problems += workers.gate(config)  # nbthread > 1 with what is not shared yet
    diagnostics = reader.diagnostics + problems
    zero_warning = reader.parsed.global_.zero_warning
    if zero_warning is not None and any(d.severity.value == "warning" for d in diagnostics):
        message = "Some warnings were found and 'zero-warning' is set. Aborting."
        diagnostics.append(error(zero_warning, message, "zero-warning"))
    backends = {p.name: [s.name for s in p.servers] for p in config.backends}
    for where, message in patterns.missing_backends(loaded, backends.get):
        diagnostics.append(error(where, message))
    userlists = {u.name: list(u.groups) for u in config.userlists}
    for where, message in patterns.missing_userlists(loaded, userlists.get):
        diagnostics.append(error(where, message))
    diagnostics.extend(missing_tables(loaded.tables, config))
    if has_errors(diagnostics):
        return None, diagnostics
    patterns.publish(loaded.refs, config.userlists)
    return config, diagnostics


def experimental_rules(parsed: ParsedConfig, diagnostics: list[Diagnostic]) -> None:
    """HAProxy 2.6 refuses its experimental actions (`normalize-uri`) unless `global`
    said `expose-experimental-directives` (it must come first there: here, anywhere)."""
    if parsed.global_.experimental:
        return
    for section in [*parsed.defaults, *parsed.proxies]:
        for rule in section.http_request_rules:
            if rule.action == "normalize-uri":
                diagnostics.append(error(rule.where, EXPERIMENTAL, "http-request"))
