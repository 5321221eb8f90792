"""keepalived.conf's `virtual_server`, `virtual_server_group`, `real_server` and checkers
(config/keepalived_lvs*.py): what each setting becomes, what inherits from where, what
poise refuses and why, and where Keepalived 2.2.7 corrects a value and goes on."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import given
from hypothesis import strategies as st

from poise.config import keepalived_lvs_keywords as lvs
from poise.config.diagnostics import Diagnostic
from poise.config.keepalived import parse
from poise.config.keepalived_lvs_model import CheckerKind, Scheduler, VirtualServer
from poise.config.keepalived_model import KeepalivedConfig
from tests.unit.fuzzing import fuzz_settings
from tests.unit.keepalived_support import FakeSource, errors, warnings

PATH = "/etc/keepalived/keepalived.conf"


def load(text: str) -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    return parse(PATH, FakeSource({PATH: text}))


def one(text: str) -> tuple[VirtualServer, list[Diagnostic]]:
    config, diagnostics = load(text)
    assert config is not None, [str(d) for d in diagnostics]
    (vs,) = config.virtual_servers
    return vs, diagnostics


def test_a_virtual_server_with_its_checkers_and_inherited_settings() -> None:
    vs, diagnostics = one(
        """
virtual_server 198.51.100.10 80 {
    delay_loop 2
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    connect_timeout 4
    quorum 2
    hysteresis 1
    quorum_up "/bin/echo up"
    quorum_down /bin/true
    sorry_server 198.51.100.99 8080
    real_server 198.51.100.21 8080 {
        weight 3
        inhibit_on_failure
        notify_up "/bin/echo rs up"
        HTTP_GET {
            url {
              path /health
              digest 640205B7B0FC66C1EA91C463FAC6334D
              status_code 200-299 404
            }
            connect_port 8081
            retry 3
        }
        TCP_CHECK {
            connect_timeout 1.5
        }
    }
    real_server 198.51.100.22 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check 198.51.100.22"
            misc_timeout 5
            misc_dynamic
            user nobody
        }
        DNS_CHECK {
            type a
            name example.com
        }
    }
}
"""
    )
    assert errors(diagnostics) == []
    assert vs.endpoints == ((IPv4Address("198.51.100.10"), 80),)
    assert vs.name == "[198.51.100.10]:tcp:80"
    assert (vs.scheduler, vs.protocol) == (Scheduler.WRR, "TCP")
    assert (vs.persistence_timeout, vs.persistence_granularity) == (50, 24)
    assert (vs.quorum, vs.hysteresis) == (2, 1)
    assert vs.quorum_up is not None and vs.quorum_up.argv == ("/bin/echo", "up")
    assert vs.sorry_server == (IPv4Address("198.51.100.99"), 8080)
    first, second = vs.real_servers
    assert (first.port, first.weight, first.inhibit_on_failure) == (8080, 3, True)
    assert first.notify_up is not None and first.notify_up.argv == ("/bin/echo", "rs", "up")
    http, tcp = first.checkers
    assert http.kind is CheckerKind.HTTP_GET
    assert (http.connect_ip, http.connect_port) == (IPv4Address("198.51.100.21"), 8081)
    # From the virtual server: delay_loop, connect_timeout; HTTP's own retry delay, 3 s.
    assert (http.delay_loop, http.connect_timeout, http.retry, http.delay_before_retry) == (
        2.0,
        4.0,
        3,
        3.0,
    )
    (url,) = http.urls
    assert url.digest == "640205b7b0fc66c1ea91c463fac6334d"
    assert url.status_codes == ((200, 299), (404, 404))
    assert url.status_ok(404) and url.status_ok(204) and not url.status_ok(500)
    assert (tcp.connect_port, tcp.connect_timeout, tcp.retry, tcp.delay_before_retry) == (
        8080,
        1.5,
        1,
        1.0,
    )
    # No port: the virtual server's (IPVS NAT keeps the destination port).
    assert (second.port, second.weight) == (80, 1)
    misc, dns = second.checkers
    assert misc.misc_path is not None and misc.misc_path.user == "nobody"
    assert (misc.misc_timeout, misc.misc_dynamic, misc.retry) == (5.0, True, 0)
    assert (dns.dns_type, dns.dns_name, dns.retry, dns.delay_before_retry) == (
        "A",
        "example.com",
        3,
        2.0,
    )


def test_keepalived_defaults() -> None:
    vs, diagnostics = one(
        "virtual_server 198.51.100.10 443 {\n protocol TCP\n persistence_timeout\n"
        " real_server 198.51.100.21 443 {\n  SSL_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n"
    )
    assert errors(diagnostics) == []
    assert vs.scheduler is Scheduler.WLC  # Keepalived's default scheduler
    assert vs.persistence_timeout == 360  # "default 6 minutes"
    (checker,) = vs.real_servers[0].checkers
    assert (checker.delay_loop, checker.connect_timeout) == (60.0, 5.0)
    assert checker.urls[0].status_codes == ((200, 299),)


def test_a_group_of_addresses_and_ranges() -> None:
    vs, diagnostics = one(
        """
virtual_server_group web {
    198.51.100.1-3 80
    198.51.100.250-198.51.101.1 80
    198.51.102.8/31 80
}
virtual_server group web {
    protocol TCP
    real_server 198.51.100.21 8080 {
    }
}
"""
    )
    assert errors(diagnostics) == []
    assert [str(ip) for ip, _ in vs.endpoints] == [
        "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.250", "198.51.100.251",
        "198.51.100.252", "198.51.100.253", "198.51.100.254", "198.51.100.255", "198.51.101.0",
        "198.51.101.1", "198.51.102.8", "198.51.102.9",
    ]  # fmt: skip
    assert {p for _, p in vs.endpoints} == {80}
    assert (vs.group, vs.name) == ("web", "[web]:tcp:80")


def test_ipv6_services_and_ranges_in_hex() -> None:
    config, diagnostics = load(
        "virtual_server_group v6 {\n 2001:db8::2-b 80\n}\n"
        "virtual_server group v6 {\n protocol TCP\n real_server 2001:db8::10 80 {\n }\n}\n"
        "virtual_server 2001:db8::1 80 {\n protocol TCP\n"
        " real_server 198.51.100.1 80 {\n }\n}\n"
    )
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.where.line == 11 and "differ in address family" in problem.message
    config, diagnostics = load(
        "virtual_server_group v6 {\n 2001:db8::2-b 80\n}\n"
        "virtual_server group v6 {\n protocol TCP\n real_server 2001:db8::10 80 {\n }\n}\n"
    )
    assert config is not None
    (vs,) = config.virtual_servers
    assert vs.endpoints[0] == (IPv6Address("2001:db8::2"), 80)
    assert vs.endpoints[-1] == (IPv6Address("2001:db8::b"), 80) and len(vs.endpoints) == 10


def test_what_poise_cannot_serve_is_refused_with_the_reason() -> None:
    config, diagnostics = load(
        """
virtual_server 198.51.100.10 80 {
    lb_kind DR
    protocol TCP
}
virtual_server fwmark 7 {
    protocol TCP
}
virtual_server 198.51.100.11 {
    persistence_timeout 60
    protocol TCP
}
virtual_server 198.51.100.12 80 {
    lb_algo lblc
    protocol SCTP
}
virtual_server_group g {
    198.51.100.13 80
    fwmark 3
}
virtual_server group g {
    protocol TCP
}
"""
    )
    assert config is None
    found = {(d.where.line, d.keyword) for d in errors(diagnostics)}
    assert found == {
        (3, "lb_kind"),
        (6, "virtual_server"),
        (9, "virtual_server"),
        (14, "lb_algo"),
        (15, "protocol"),
        (21, "virtual_server"),
    }
    messages = {d.where.line: d.message for d in errors(diagnostics)}
    assert "user-space balancer cannot do" in messages[3] and "lb_kind NAT" in messages[3]
    assert "firewall mark" in messages[6] and "firewall mark" in messages[21]
    assert "give the port" in messages[9]
    assert "use sh, mh or dh" in messages[14]


def test_ipvs_dh_fo_and_ovf_are_read_and_an_unknown_scheduler_is_wlc() -> None:
    for name, scheduler in (("dh", Scheduler.DH), ("fo", Scheduler.FO), ("ovf", Scheduler.OVF)):
        vs, diagnostics = one(
            f"virtual_server 198.51.100.10 80 {{\n lb_algo {name}\n protocol TCP\n}}\n"
        )
        assert vs.scheduler is scheduler and not diagnostics
    # keepalived -t: "Invalid lvs_scheduler 'xyz' - ignoring", then "no scheduler set,
    # setting default 'wlc'"
    vs, diagnostics = one("virtual_server 198.51.100.10 80 {\n lvs_sched xyz\n protocol TCP\n}\n")
    assert vs.scheduler is Scheduler.WLC
    (warning,) = warnings(diagnostics)
    assert warning.where.line == 2 and warning.keyword == "lvs_sched"
    assert warning.message.startswith("Invalid lvs_scheduler 'xyz' - ignoring")


def test_unknown_and_old_keywords_name_their_line() -> None:
    config, diagnostics = load(
        """
virtual_server 198.51.100.10 80 {
    protocol TCP
    delay_lop 3
    real_server 198.51.100.21 80 {
        wieght 2
        TCP_CHECK {
            nb_get_retry 3
        }
        UDP_CHECK {
        }
    }
}
"""
    )
    assert config is None
    texts = [str(d) for d in errors(diagnostics)]
    assert texts == [
        f"{PATH}:4: error: 'delay_lop': unknown keyword in virtual_server; did you mean "
        "'delay_loop'?",
        f"{PATH}:6: error: 'wieght': unknown keyword in real_server; did you mean 'weight'?",
        f"{PATH}:8: error: 'nb_get_retry': Keepalived 1.x's name of 'retry', which "
        "Keepalived 2.2 no longer knows: write 'retry'",
        f"{PATH}:10: error: 'UDP_CHECK': this Keepalived checker is not implemented yet in poise",
    ]


def test_keepalived_corrections_are_warnings_in_its_words() -> None:
    vs, diagnostics = one(
        """
virtual_server 198.51.100.10 80 {
    quorum 0
    hysteresis 2
    real_server 198.51.100.21 80 {
    }
    real_server 198.51.100.21 80 {
    }
}
"""
    )
    assert [d.message for d in warnings(diagnostics)] == [
        "Quorum 0 must be in [1, 4294967295]. Setting to 1.",
        "Virtual server [198.51.100.10]: no protocol set - defaulting to UDP (as Keepalived "
        "2.2.7 and the kernel do)",
        "Virtual server [198.51.100.10]:udp:80: hysteresis 2 >= quorum 1; setting hysteresis to 0",
        "VS [198.51.100.10]:udp:80: real server [198.51.100.21]:tcp:80 is duplicated - "
        "removing second rs",
    ]
    assert (vs.quorum, vs.hysteresis, vs.protocol) == (1, 0, "UDP")
    assert len(vs.real_servers) == 1


def test_the_same_service_twice_is_an_error() -> None:
    config, diagnostics = load(
        "virtual_server 198.51.100.10 80 {\n protocol TCP\n}\n"
        "virtual_server 198.51.100.10 80 {\n protocol TCP\n}\n"
    )
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.where.line == 4 and f"{PATH}:1" in problem.message


def test_lvs_sync_daemon_interface_is_a_warning_saying_why() -> None:
    config, diagnostics = load(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
        " lvs_sync_daemon_interface eth1\n virtual_ipaddress {\n  198.51.100.10\n }\n}\n"
    )
    assert config is not None
    (note,) = warnings(diagnostics)
    assert note.keyword == "lvs_sync_daemon_interface" and "connections open at a failover" in (
        note.message
    )


def test_a_file_with_only_virtual_servers_has_something_to_do() -> None:
    _, diagnostics = one("virtual_server 198.51.100.10 80 {\n protocol TCP\n}\n")
    assert diagnostics == []


_LVS_KEYWORDS = (
    lvs.VIRTUAL_SERVER
    | lvs.REAL_SERVER
    | lvs.CHECKER_COMMON
    | lvs.URL
    | lvs.CHECKERS
    | frozenset().union(*lvs.CHECKER_OWN.values())
)
_VALUES = ["198.51.100.1", "2001:db8::1-ff", "80", "0", "-1", "x", "{", "}", '"', "1e999", "200-1"]
_WORDS = st.sampled_from([*sorted(_LVS_KEYWORDS), *_VALUES])


@fuzz_settings(60)
@given(st.lists(st.lists(_WORDS, min_size=1, max_size=4), max_size=12), st.integers(0, 3))
def test_no_virtual_server_input_ends_in_a_traceback(lines: list[list[str]], depth: int) -> None:
    inner = "\n".join(" ".join(line) for line in lines)
    nest = ["real_server 198.51.100.2 80 {", "HTTP_GET {", "url {"][:depth]
    text = (
        "virtual_server 198.51.100.1 80 {\n"
        + "\n".join(nest)
        + "\n"
        + inner
        + "\n"
        + "}\n" * (depth + 1)
    )
    config, diagnostics = load(text)
    assert config is not None or errors(diagnostics)
    for vs in config.virtual_servers if config else ():
        assert all(ip_address(str(ip)) == ip for ip, _ in vs.endpoints)


def test_poise_s_own_send_proxy_is_inherited_and_v2_wins_as_haproxy_s_flags() -> None:
    vs, diagnostics = one(
        "virtual_server 198.51.100.10 80 {\n protocol TCP\n send_proxy\n"
        " sorry_server 198.51.100.99 80\n"
        " real_server 198.51.100.21 80 {\n }\n"
        " real_server 198.51.100.22 80 {\n  send_proxy_v2\n }\n"
        " real_server 198.51.100.23 80 {\n  send_proxy off\n }\n}\n"
    )
    assert not diagnostics
    assert [rs.proxy_protocol for rs in vs.real_servers] == ["v1", "v2", None]
    assert vs.proxy_protocol == "v1"  # the sorry server's


def test_send_proxy_on_a_udp_virtual_server_is_an_error_that_says_why() -> None:
    config, diagnostics = load(
        "virtual_server 198.51.100.10 53 {\n protocol UDP\n"
        " real_server 198.51.100.21 53 {\n  send_proxy\n }\n}\n"
    )
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.where.line == 1 and "a UDP virtual server relays datagrams" in problem.message
