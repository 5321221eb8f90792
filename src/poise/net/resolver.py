"""DNS resolution at run time: the servers that name a `resolvers` section are resolved
again and again against its nameservers, and follow their names' answers.

One task per name and backend (the servers of a `server-template`, and `server` lines
that share a name, share it, as HAProxy shares a resolution): it asks the nameservers with
dnspython's asyncio client, hands the answer to the pure core/dns.py, which decides, and
carries out what it decided: connections a change lets go, idle connections to drop (an
address changed), log lines (to the terminal and the backend's log, as HAProxy's
warnings).

Querying follows HAProxy's resolvers: a query is sent to the nameservers in turn, each
attempt waiting `timeout retry`, `resolve_retries` attempts in all before the resolution
is a TIMEOUT; an answer marked truncated is asked again over TCP; the EDNS payload size
announced is `accepted_payload_size`. Addresses are asked for the `resolve-prefer` family
(HAProxy's default: IPv6) first, and for the other one when the name has none. SRV names
(`_service._proto.name`) get their targets' addresses from the additional records, or by
asking for them.
"""

from __future__ import annotations

import asyncio
import contextlib

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from poise.config import model
from poise.core import dns as core
from poise.core.backend import Backend, start
from poise.core.health import Severity
from poise.core.server import ServerState
from poise.net.context import Context
from poise.net.logsink import console

RCODES = {
    dns.rcode.NOERROR: core.Status.VALID,
    dns.rcode.NXDOMAIN: core.Status.NX,
    dns.rcode.REFUSED: core.Status.REFUSED,
}
FAMILY_TYPES = {"ipv4": dns.rdatatype.A, "ipv6": dns.rdatatype.AAAA}


class Group:
    """The servers of one backend named by one DNS name, and that name's resolution."""

    def __init__(
        self, backend: Backend, section: model.Resolvers, first: ServerState, now: float
    ) -> None:
        self.backend = backend
        self.section = section
        self.fqdn = first.config.address.host
        self.prefer = first.config.resolve_prefer or "ipv6"
        self.servers: list[ServerState] = [first]
        self.resolution = core.Resolution(section.hold, last_valid=now)
        self.task: asyncio.Task[None] | None = None

    def alive(self) -> list[ServerState]:
        """Its servers still in the backend (`del server` may have removed some)."""
        present = self.backend.servers
        return [s for s in self.servers if s in present]


class Client:
    """Asks one `resolvers` section's nameservers."""

    def __init__(self, section: model.Resolvers) -> None:
        self.section = section

    async def ask(
        self, name: str, rdtype: dns.rdatatype.RdataType
    ) -> tuple[core.Status, dns.message.Message | None, str]:
        """(status, the response when there is one, "resolvers/nameserver")."""
        section = self.section
        timeout = section.timeout_retry / 1000.0
        status, by = core.Status.TIMEOUT, section.name
        for attempt in range(max(section.resolve_retries, 1)):
            ns = section.nameservers[attempt % len(section.nameservers)]
            by = f"{section.name}/{ns.name}"
            query = dns.message.make_query(
                name, rdtype, use_edns=0, payload=section.accepted_payload_size
            )
            try:
                response = await self.send(query, ns, timeout)
            except dns.exception.Timeout:
                continue
            except (OSError, dns.exception.DNSException):
                status = core.Status.OTHER
                continue
            return RCODES.get(response.rcode(), core.Status.OTHER), response, by
        return status, None, by

    @staticmethod
    async def send(
        query: dns.message.Message, ns: model.Nameserver, timeout: float
    ) -> dns.message.Message:
        if not ns.tcp:
            response = await dns.asyncquery.udp(query, ns.host, timeout, ns.port)
            if not response.flags & dns.flags.TC:
                return response
        return await dns.asyncquery.tcp(query, ns.host, timeout, ns.port)


def addresses(response: dns.message.Message | None, name: str) -> list[str]:
    """The A and AAAA addresses a response gives for `name` (answer, then additional)."""
    if response is None:
        return []
    found: list[str] = []
    wanted = dns.name.from_text(name)
    for rrset in (*response.answer, *response.additional):
        if rrset.name == wanted and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found.extend(rdata.address for rdata in rrset)
    return found


async def resolve_addresses(client: Client, name: str, prefer: str) -> core.Answer:
    """A and AAAA: the preferred family first, the other when the name has none."""
    other = "ipv4" if prefer == "ipv6" else "ipv6"
    status, by = core.Status.VALID, ""
    for family in (prefer, other):
        status, response, by = await client.ask(name, FAMILY_TYPES[family])
        if status is not core.Status.VALID:
            return core.Answer(status, (), by)
        found = addresses(response, name)
        if found:
            return core.Answer(status, tuple(core.Record(ip) for ip in found), by)
    return core.Answer(status, (), by)


async def resolve_srv(client: Client, name: str, prefer: str) -> core.Answer:
    """SRV records, each with its target's address (additional records, or asked)."""
    status, response, by = await client.ask(name, dns.rdatatype.SRV)
    if status is not core.Status.VALID or response is None:
        return core.Answer(status, (), by)
    records: list[core.Record] = []
    for rrset in response.answer:
        if rrset.rdtype != dns.rdatatype.SRV:
            continue
        for rdata in rrset:
            target = rdata.target.to_text()
            found = addresses(response, target)
            if not found:
                answer = await resolve_addresses(client, target, prefer)
                found = [r.ip for r in answer.records]
            preferred = [ip for ip in found if core.family(ip) == prefer] or found
            if preferred:
                records.append(core.Record(preferred[0], rdata.port, rdata.weight, target))
    return core.Answer(status, tuple(records), by)


class ServerResolvers:
    """The resolution tasks of a running poise."""

    def __init__(self, ctx: Context, config: model.Config) -> None:
        self.ctx = ctx
        self.groups: list[Group] = []
        now = ctx.loop.time()
        by_key: dict[tuple[str, str, str], Group] = {}
        for backend in ctx.backends.values():
            for server in backend.servers:
                name = server.config.resolvers
                section = config.resolvers_section(name) if name else None
                if section is None:
                    continue
                key = (backend.proxy.name, server.config.address.host.lower(), section.name)
                group = by_key.get(key)
                if group is None:
                    by_key[key] = Group(backend, section, server, now)
                    self.groups.append(by_key[key])
                else:
                    group.servers.append(server)

    def start(self) -> None:
        for group in self.groups:
            group.task = self.ctx.loop.create_task(self.run(group))

    def stop(self) -> None:
        for group in self.groups:
            if group.task is not None:
                group.task.cancel()

    async def run(self, group: Group) -> None:
        client = Client(group.section)
        srv = group.fqdn.startswith("_")
        fqdn = group.fqdn if group.fqdn.endswith(".") else group.fqdn + "."
        while True:
            try:
                if srv:
                    answer = await resolve_srv(client, fqdn, group.prefer)
                else:
                    answer = await resolve_addresses(client, fqdn, group.prefer)
            except (OSError, dns.exception.DNSException, ValueError):
                answer = core.Answer(core.Status.OTHER)
            self.follow(group, answer)
            await asyncio.sleep(group.resolution.next_delay(group.section))

    def follow(self, group: Group, answer: core.Answer) -> None:
        """Record an answer, decide, and carry the decision out."""
        now = self.ctx.loop.time()
        group.resolution.record(answer, now)
        commands = core.plan_addresses(group.alive(), group.resolution, answer.by, now)
        if not commands:
            return
        backend = group.backend
        outcome = core.apply(backend, commands, now)
        for server_id in outcome.drop_idle:
            pool = self.ctx.io[backend].pools.get(server_id)
            if pool is not None:
                pool.close_all()
        for message in outcome.messages:
            console("ALERT" if message.level is Severity.EMERG else "WARNING", message.console)
            if backend.log is not None:
                with contextlib.suppress(OSError):
                    backend.log.send(message.level.keyword, message.text)
        start(outcome.goes)
