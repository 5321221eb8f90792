"""The pure side of run-time DNS (core/dns.py): hold periods, HAProxy's address scoring,
the spreading of a `server-template` over an answer, SRV targets, and the commands with
their log lines, on a real Backend model without sockets or clocks."""

from __future__ import annotations

from poise.config import model
from poise.core import dns
from poise.core.dns import Answer, Record, Resolution, Status
from poise.core.server import ServerState
from tests.unit.admin_support import make_backend

WHERE = model.Where("t.cfg", 1)
SECTION = model.Resolvers("dns", WHERE, timeout_resolve=100, hold=model.Hold(valid=1000, nx=500))


def srv(
    name: str, sid: int, host: str = "web.test", port: int | None = 80, **kw: object
) -> model.Server:
    family: model.AddressFamily = "ipv4"
    address = model.Address(family, host, port)
    return model.Server(name, address, WHERE, sid, resolvers="dns", **kw)  # type: ignore[arg-type]


def backend(*servers: model.Server, addrs: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    proxy = model.Proxy("be", model.Capability.BACKEND, WHERE, servers=servers)
    be = make_backend(proxy)
    for state in be.servers:
        state.addr = (addrs or {}).get(state.name, "")
        state.resolution_maint = state.addr == ""
    return be


def valid(*ips: str, by: str = "dns/ns1") -> Answer:
    return Answer(Status.VALID, tuple(Record(ip) for ip in ips), by)


def resolved(answer: Answer, now: float = 1.0, hold: model.Hold = SECTION.hold) -> Resolution:
    resolution = Resolution(hold, last_valid=0.0)
    resolution.record(answer, now)
    return resolution


def texts(outcome: dns.Outcome) -> list[str]:
    return [m.text for m in outcome.messages]


# -- resolution state ---------------------------------------------------------------------


def test_a_failure_waits_for_its_hold_period_from_the_last_valid_answer() -> None:
    resolution = resolved(valid("127.0.0.2"), now=10.0)
    resolution.record(Answer(Status.NX), 10.2)
    assert resolution.failure(10.4) is None
    assert resolution.failure(10.5) == "DNS NX status"
    resolution.record(Answer(Status.TIMEOUT), 10.6)
    assert resolution.failure(50.0) == "DNS timeout status"


def test_the_next_query_comes_after_hold_valid_or_timeout_resolve() -> None:
    resolution = resolved(valid("127.0.0.2"))
    assert resolution.next_delay(SECTION) == 1.0
    resolution.record(Answer(Status.REFUSED), 2.0)
    assert resolution.next_delay(SECTION) == 0.1


def test_hold_obsolete_keeps_records_that_left_the_answer() -> None:
    resolution = resolved(valid("127.0.0.2", "127.0.0.3"), now=1.0, hold=model.Hold(obsolete=500))
    resolution.record(valid("127.0.0.2"), 1.2)
    assert {r.ip for r in resolution.records()} == {"127.0.0.2", "127.0.0.3"}
    resolution.record(valid("127.0.0.2"), 1.6)
    assert {r.ip for r in resolution.records()} == {"127.0.0.2"}


# -- choosing -----------------------------------------------------------------------------


def test_pick_scores_as_haproxy() -> None:
    records = [Record("10.0.0.1"), Record("::1"), Record("192.168.0.1")]
    default = srv("a", 1)
    assert dns.pick(records, default, "", set()) == Record("::1")  # ipv6 preferred
    v4 = srv("a", 1, resolve_prefer="ipv4")
    assert dns.pick(records, v4, "", set()) == Record("10.0.0.1")
    assert dns.pick(records, v4, "192.168.0.1", set()) == Record("192.168.0.1")  # keeps its own
    net = srv("a", 1, resolve_prefer="ipv4", resolve_net=("192.168.0.0/16",))
    assert dns.pick(records, net, "10.0.0.1", set()) == Record("192.168.0.1")
    assert dns.pick(records, v4, "", {"10.0.0.1", "192.168.0.1"}) == Record("::1")
    dup = srv("a", 1, resolve_prefer="ipv4", resolve_opts=frozenset({"allow-dup-ip"}))
    assert dns.pick(records, dup, "", {"10.0.0.1"}) == Record("192.168.0.1")
    assert dns.pick(records, dup, "", {"10.0.0.1", "192.168.0.1"}) == Record("10.0.0.1")


def test_srv_targets_keep_their_servers_and_fill_free_ones() -> None:
    a, b, c = (
        Record(f"127.0.0.{i}", 80, 10, f"{n}.test.") for i, n in ((2, "a"), (3, "b"), (4, "c"))
    )
    assert dns.srv_targets(["", ""], [a, b, c]) == [a, b]
    assert dns.srv_targets(["b.test.:80", ""], [a, b]) == [b, a]
    assert dns.srv_targets(["a.test.:80", "b.test.:80"], [b]) == [None, b]
    assert dns.srv_weight(0) == 0 and dns.srv_weight(1) == 1 and dns.srv_weight(65535) == 256


# -- commands -----------------------------------------------------------------------------


def test_a_moved_record_moves_the_server_with_haproxys_line() -> None:
    be = backend(srv("gw", 1, "gw.test", resolve_prefer="ipv4"), addrs={"gw": "127.0.0.2"})
    commands = dns.plan_addresses(be.servers, resolved(valid("127.0.0.3")), "dns/ns1", 1.0)
    assert commands == [dns.SetAddr("gw", "127.0.0.3", 80, "dns/ns1")]
    outcome = dns.apply(be, commands, 1.0)
    assert texts(outcome) == ["be/gw changed its IP from 127.0.0.2 to 127.0.0.3 by dns/ns1."]
    assert outcome.drop_idle == [1] and be.servers[0].addr == "127.0.0.3"


def test_failure_past_hold_enters_maintenance_and_a_valid_answer_leaves_it() -> None:
    be = backend(srv("gw", 1, "gw.test", resolve_prefer="ipv4"), addrs={"gw": "127.0.0.2"})
    gw = be.servers[0]
    resolution = resolved(valid("127.0.0.2"), now=1.0)
    resolution.record(Answer(Status.NX, by="dns/ns1"), 1.2)
    assert dns.plan_addresses(be.servers, resolution, "dns/ns1", 1.2) == []
    commands = dns.plan_addresses(be.servers, resolution, "dns/ns1", 1.6)
    assert commands == [dns.EnterMaint("gw", "DNS NX status")]
    outcome = dns.apply(be, commands, 1.6)
    assert texts(outcome) == [
        "Server be/gw is going DOWN for maintenance (DNS NX status). 0 active and 0 backup "
        "servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "backend be has no server available!",
    ]
    assert (gw.addr, gw.status, gw.usable) == ("", "MAINT", False)
    resolution.record(valid("127.0.0.2"), 2.0)
    outcome = dns.apply(be, dns.plan_addresses(be.servers, resolution, "dns/ns1", 2.0), 2.0)
    assert texts(outcome) == [
        "be/gw changed its IP from (none) to 127.0.0.2 by dns/ns1.",
        "Server be/gw ('gw.test') is UP/READY (resolves again).",
        "Server be/gw administratively READY thanks to valid DNS answer.",
    ]
    assert gw.usable


def test_a_template_spreads_over_the_answer_one_address_each() -> None:
    be = backend(*(srv(f"web{i}", i, resolve_prefer="ipv4", template="web") for i in (1, 2, 3)))
    answer = resolved(valid("127.0.0.2", "127.0.0.3"))
    dns.apply(be, dns.plan_addresses(be.servers, answer, "dns/ns1", 1.0), 1.0)
    assert [(s.addr, s.status) for s in be.servers] == [
        ("127.0.0.2", "UP"),
        ("127.0.0.3", "UP"),
        ("", "MAINT"),
    ]
    shrunk = resolved(valid("127.0.0.3"))
    outcome = dns.apply(be, dns.plan_addresses(be.servers, shrunk, "dns/ns1", 2.0), 2.0)
    assert [(s.addr, s.status) for s in be.servers] == [
        ("", "MAINT"),
        ("127.0.0.3", "UP"),
        ("", "MAINT"),
    ]
    assert texts(outcome)[0].startswith(
        "Server be/web1 is going DOWN for maintenance (No IP for server ). 1 active"
    )


def test_srv_records_set_address_port_and_weight() -> None:
    name = "_http._tcp.gw.test"
    be = backend(*(srv(f"gw{i}", i, name, None, template="gw") for i in (1, 2)))
    resolution = resolved(
        Answer(Status.VALID, (Record("127.0.0.2", 8080, 1024, "a.test."),), "dns/ns1")
    )
    dns.apply(be, dns.plan_addresses(be.servers, resolution, "dns/ns1", 1.0), 1.0)
    gw1, gw2 = be.servers
    assert (gw1.addr, gw1.port, gw1.weight, gw1.usable) == ("127.0.0.2", 8080, 4, True)
    assert gw2.status == "MAINT"
    resolution.record(Answer(Status.VALID, (), "dns/ns1"), 2.0)
    outcome = dns.apply(be, dns.plan_addresses(be.servers, resolution, "dns/ns1", 2.0), 2.0)
    assert "(entry removed from SRV record)" in texts(outcome)[0]
    assert gw1.status == "MAINT"


def test_ignore_weight_keeps_the_configured_weight() -> None:
    be = backend(
        srv("gw1", 1, "_x._tcp.t", None, weight=7, resolve_opts=frozenset({"ignore-weight"}))
    )
    resolution = resolved(Answer(Status.VALID, (Record("127.0.0.2", 80, 65535, "a."),)))
    dns.apply(be, dns.plan_addresses(be.servers, resolution, "x", 1.0), 1.0)
    assert be.servers[0].weight == 7


def test_a_server_without_address_starts_in_resolution_maintenance() -> None:
    state = ServerState(srv("gw", 1), "be", "")
    assert (state.resolution_maint, state.status, state.usable) == (True, "MAINT", False)
    assert not ServerState(srv("gw", 1), "be", "127.0.0.1").resolution_maint
