"""Servers named by DNS, against a real DNS server (tests/dnsserver.py) and real backends on
127.0.0.x addresses (all of 127/8 is loopback): the record moves and the traffic follows,
NXDOMAIN takes a server into maintenance and back, a `server-template` grows and shrinks
with its A or SRV records, and `init-addr` decides how poise starts.

Timers are short (`hold valid 100ms`, `timeout resolve 100ms`); tests wait for conditions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from poise.core.server import ServerState
from poise.system.load import resolve_servers
from tests.dnsserver import DnsServer
from tests.io.harness import Poise, Stage
from tests.support import Backend, ask_name, eventually, run

WAIT = 5.0
CONFIG = """
resolvers dns
    nameserver ns1 {dns}
    hold valid 100ms
    hold nx 200ms
    timeout resolve 100ms
    timeout retry 200ms
defaults
    mode tcp
    log 127.0.0.1:{{log}} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
{servers}
"""


@asynccontextmanager
async def balancer(stage: Stage, dns: DnsServer, servers: str) -> AsyncIterator[Poise]:
    """poise with these server lines, its names resolved at start as `poise run` does."""
    text = CONFIG.format(dns=dns.address, servers=servers).replace("{log}", str(stage.logs.port))
    poise = Poise(text)
    addrs, problems = resolve_servers(poise.config)
    assert not [p for p in problems if p.severity.value == "error"], problems
    poise.runtime.addrs = addrs
    await poise.__aenter__()
    stage.balancers.append(poise)
    yield poise


async def backends(stage: Stage, *hosts: str) -> tuple[int, list[Backend]]:
    """A backend on each loopback address, all on one port (named after the address)."""
    first = await stage.backend(hosts[0], host=hosts[0])
    rest = [await stage.backend(h, host=h, port=first.port) for h in hosts[1:]]
    return first.port, [first, *rest]


def server(poise: Poise, name: str) -> ServerState:
    found: ServerState = next(s for s in poise.ctx.backends["be"].servers if s.name == name)
    return found


def states(poise: Poise) -> dict[str, tuple[str, str]]:
    return {s.name: (s.addr, s.status) for s in poise.ctx.backends["be"].servers}


def test_a_server_follows_its_record(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            dns.set("gw.test.", ["127.0.0.2"])
            async with Stage() as stage:
                port, _ = await backends(stage, "127.0.0.2", "127.0.0.3")
                line = (
                    f"    server gw gw.test:{port} resolvers dns resolve-prefer ipv4 init-addr none"
                )
                async with balancer(stage, dns, line) as poise:
                    front = poise.port("fe")
                    await eventually(lambda: server(poise, "gw").usable, WAIT, "first answer")
                    assert await ask_name(front) == "127.0.0.2"
                    dns.set("gw.test.", ["127.0.0.3"])
                    await stage.logs.wait_for(
                        r"be/gw changed its IP from 127\.0\.0\.2 to 127\.0\.0\.3 by dns/ns1\."
                    )
                    assert await ask_name(front) == "127.0.0.3"
                    show = poise.ctx.backends["be"].servers[0]
                    assert show.addr == "127.0.0.3"

    run(loop_kind, main)


def test_nxdomain_puts_the_server_in_maintenance_until_it_resolves_again(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            dns.set("gw.test.", ["127.0.0.2"])
            async with Stage() as stage:
                port, _ = await backends(stage, "127.0.0.2", "127.0.0.4")
                lines = (
                    f"    server gw gw.test:{port} resolvers dns resolve-prefer ipv4 "
                    "init-addr 127.0.0.2\n"
                    f"    server spare 127.0.0.4:{port} backup"
                )
                async with balancer(stage, dns, lines) as poise:
                    front = poise.port("fe")
                    dns.nxdomain("gw.test.")
                    await stage.logs.wait_for(
                        r"Server be/gw is going DOWN for maintenance \(DNS NX status\)\. "
                        r"0 active and 1 backup servers left\."
                    )
                    gw = server(poise, "gw")
                    assert (gw.addr, gw.status) == ("", "MAINT")
                    assert await ask_name(front) == "127.0.0.4"
                    dns.set("gw.test.", ["127.0.0.2"])
                    await stage.logs.wait_for(
                        r"be/gw changed its IP from \(none\) to 127\.0\.0\.2 by dns/ns1\."
                    )
                    await stage.logs.wait_for(r"Server be/gw \('gw\.test'\) is UP/READY")
                    await stage.logs.wait_for(
                        r"Server be/gw administratively READY thanks to valid DNS answer\."
                    )
                    assert await ask_name(front) == "127.0.0.2"

    run(loop_kind, main)


def test_a_short_failure_within_hold_nx_changes_nothing(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            dns.set("gw.test.", ["127.0.0.2"])
            async with Stage() as stage:
                port, _ = await backends(stage, "127.0.0.2")
                line = f"    server gw gw.test:{port} resolvers dns init-addr 127.0.0.2"
                text = CONFIG.replace("hold nx 200ms", "hold nx 10s")
                stage_text = text.format(dns=dns.address, servers=line)
                poise = Poise(stage_text.replace("{log}", str(stage.logs.port)))
                poise.runtime.addrs = resolve_servers(poise.config)[0]
                await poise.__aenter__()
                stage.balancers.append(poise)
                dns.nxdomain("gw.test.")
                before = dns.count("gw.test.")
                await eventually(lambda: dns.count("gw.test.") >= before + 3, WAIT, "queries")
                assert states(poise)["gw"] == ("127.0.0.2", "UP")

    run(loop_kind, main)


def test_server_template_follows_a_records(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            dns.set("web.test.", ["127.0.0.2", "127.0.0.3"])
            async with Stage() as stage:
                port, _ = await backends(stage, "127.0.0.2", "127.0.0.3", "127.0.0.5")
                line = (
                    f"    server-template web 3 web.test:{port} resolvers dns "
                    "resolve-prefer ipv4 init-addr none"
                )
                async with balancer(stage, dns, line) as poise:
                    front = poise.port("fe")

                    def filled() -> dict[str, str]:
                        return {n: a for n, (a, st) in states(poise).items() if st != "MAINT"}

                    await eventually(lambda: len(filled()) == 2, WAIT, "two servers filled")
                    assert sorted(filled().values()) == ["127.0.0.2", "127.0.0.3"]
                    assert states(poise)["web3"] == ("", "MAINT")
                    seen = {await ask_name(front) for _ in range(4)}
                    assert seen == {"127.0.0.2", "127.0.0.3"}
                    dns.set("web.test.", ["127.0.0.2", "127.0.0.3", "127.0.0.5"])
                    await eventually(lambda: len(filled()) == 3, WAIT, "grown to three")
                    dns.set("web.test.", ["127.0.0.5"])
                    await eventually(lambda: list(filled().values()) == ["127.0.0.5"], WAIT, "one")
                    await stage.logs.wait_for(
                        r"is going DOWN for maintenance \(No IP for server \)"
                    )
                    assert {await ask_name(front) for _ in range(3)} == {"127.0.0.5"}

    run(loop_kind, main)


def test_server_template_follows_srv_records(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            async with Stage() as stage:
                a = await stage.backend("a", host="127.0.0.2")
                b = await stage.backend("b", host="127.0.0.3")
                dns.set("a.gw.test.", ["127.0.0.2"])
                dns.set("b.gw.test.", ["127.0.0.3"])
                dns.set_srv("_gw._tcp.gw.test.", [(0, 512, a.port, "a.gw.test.")])
                line = "    server-template gw 2 _gw._tcp.gw.test resolvers dns resolve-prefer ipv4"
                async with balancer(stage, dns, line) as poise:
                    front = poise.port("fe")
                    await eventually(
                        lambda: (
                            states(poise)["gw1"] == ("127.0.0.2", "no check")
                            or server(poise, "gw1").usable
                        ),
                        WAIT,
                        "gw1 from SRV",
                    )
                    gw1 = server(poise, "gw1")
                    assert (gw1.addr, gw1.port, gw1.weight) == ("127.0.0.2", a.port, 2)
                    assert states(poise)["gw2"] == ("", "MAINT")
                    assert await ask_name(front) == "a"
                    dns.set_srv(
                        "_gw._tcp.gw.test.",
                        [(0, 10, a.port, "a.gw.test."), (0, 10, b.port, "b.gw.test.")],
                    )
                    await eventually(lambda: server(poise, "gw2").usable, WAIT, "gw2 from SRV")
                    assert (server(poise, "gw2").addr, server(poise, "gw2").port) == (
                        "127.0.0.3",
                        b.port,
                    )
                    assert {await ask_name(front) for _ in range(4)} == {"a", "b"}
                    dns.set_srv("_gw._tcp.gw.test.", [(0, 10, b.port, "b.gw.test.")])
                    await stage.logs.wait_for(
                        r"Server be/gw1 is going DOWN for maintenance "
                        r"\(entry removed from SRV record\)"
                    )
                    assert {await ask_name(front) for _ in range(3)} == {"b"}

    run(loop_kind, main)


def test_init_addr_methods_at_start(loop_kind: str) -> None:
    async def main() -> None:
        with DnsServer() as dns:
            async with Stage() as stage:
                port, _ = await backends(stage, "127.0.0.2", "127.0.0.6")
                lines = (
                    f"    server none gone.invalid:{port} init-addr none\n"
                    f"    server ip gone.invalid:{port} init-addr libc,127.0.0.6\n"
                    f"    server libc localhost:{port} init-addr libc,none resolve-prefer ipv4\n"
                    f"    server late gw.test:{port} init-addr none resolvers dns "
                    "resolve-prefer ipv4"
                )
                async with balancer(stage, dns, lines) as poise:
                    got = states(poise)
                    assert got["none"] == ("", "MAINT")
                    assert got["ip"] == ("127.0.0.6", "UP")
                    assert got["libc"] == ("127.0.0.1", "UP")
                    assert got["late"] == ("", "MAINT")
                    dns.set("gw.test.", ["127.0.0.2"])
                    await eventually(lambda: server(poise, "late").usable, WAIT, "late resolves")
                    assert server(poise, "late").addr == "127.0.0.2"

    run(loop_kind, main)


def test_dns_server_answers_over_udp_and_tcp() -> None:
    import dns.asyncquery
    import dns.message
    import dns.rcode

    async def main() -> None:
        with DnsServer() as server_:
            server_.set("gw.test", ["127.0.0.2", "::1"])
            query = dns.message.make_query("gw.test.", "AAAA")
            over_tcp = await dns.asyncquery.tcp(query, "127.0.0.1", 2, server_.port)
            assert [r.address for r in over_tcp.answer[0]] == ["::1"]
            server_.rcode("gw.test.", DnsServer.REFUSED)
            refused = await dns.asyncquery.udp(query, "127.0.0.1", 2, server_.port)
            assert refused.rcode() == dns.rcode.REFUSED

    asyncio.run(main())
