"""The keepalived.conf dialect: the seed file as it is, every problem at FILE:LINE with its
keyword, suggestions for unknown words, Keepalived's corrections as warnings."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from poise.config.diagnostics import Diagnostic, Severity
from poise.config.keepalived import parse
from poise.config.keepalived_model import KeepalivedConfig
from tests.unit.keepalived_support import FakeSource, errors, warnings

SEED = Path(__file__).resolve().parents[2] / "examples"


def load(text: str, **files: str) -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    source = FakeSource({"/etc/keepalived/keepalived.conf": text, **files})
    return parse("/etc/keepalived/keepalived.conf", source)


INSTANCE = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    {extra}
    virtual_ipaddress {{
        198.51.100.170/24
    }}
}}
"""


def instance(extra: str = "", before: str = "") -> tuple[KeepalivedConfig | None, list[Diagnostic]]:
    return load(before + INSTANCE.format(extra=extra))


def test_the_seed_file_is_accepted_as_it_is_with_the_mail_warnings() -> None:
    path = SEED / "keepalived.conf"
    source = FakeSource({str(path): path.read_text()})
    config, diagnostics = parse(str(path), source)
    assert config is not None
    assert [d.keyword for d in diagnostics] == [
        "notification_email",
        "notification_email_from",
        "smtp_server",
        "smtp_connect_timeout",
    ]
    assert all(d.severity is Severity.WARNING for d in diagnostics)
    assert str(diagnostics[0]) == (
        f"{path}:6: warning: 'notification_email': poise sends no mail: ignored"
    )
    (vi,) = config.instances
    assert (vi.name, vi.interface, vi.virtual_router_id, vi.priority) == ("VI_1", "eth0", 51, 101)
    assert vi.initial_master and vi.advert_int == 1.0 and vi.version == 2
    assert vi.auth_pass == b"1111\0\0\0\0"
    assert [v.interface for v in vi.virtual_ipaddress] == [IPv4Interface("198.51.100.170/24")]
    assert [t.name for t in vi.track_script] == ["chk_haproxy"]
    script = config.scripts["chk_haproxy"]
    assert script.command.argv == ("killall", "-0", "haproxy")
    assert (script.interval, script.weight, script.rise, script.fall) == (1.0, 2, 1, 1)
    assert script.effective_timeout == 1.0


def test_defaults_are_keepalived_s() -> None:
    config, diagnostics = instance()
    assert config is not None and not diagnostics
    (vi,) = config.instances
    assert vi.priority == 100 and vi.advert_int == 1.0 and vi.version == 2
    assert not vi.initial_master and not vi.nopreempt and vi.auth_pass is None
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (5.0, 5, 0.0)
    assert config.global_defs.vrrp_mcast_group4 == IPv4Address("224.0.0.18")


def test_an_unknown_keyword_is_an_error_with_a_suggestion() -> None:
    config, diagnostics = instance("priorty 100")
    assert config is None
    (problem,) = errors(diagnostics)
    assert str(problem) == (
        "/etc/keepalived/keepalived.conf:5: error: 'priorty': unknown keyword in "
        "vrrp_instance; did you mean 'priority'?"
    )


def test_a_keepalived_keyword_not_implemented_yet_says_so() -> None:
    config, diagnostics = instance("use_vmac_addr")
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.keyword == "use_vmac_addr"
    assert "not implemented yet in poise" in problem.message
    _, diagnostics = load("bfd_instance b1 {\n}\n")
    assert "not implemented yet in poise" in errors(diagnostics)[0].message


def test_every_problem_is_reported_in_one_run() -> None:
    text = """
global_defs {
    router_idd lb1
    vrrp_version 4
}
vrrp_script chk {
    script /bin/true
    weight 300
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 0
    priority 256
    state SLAVE
    advert_int fast
}
"""
    config, diagnostics = load(text)
    assert config is None
    lines = [(d.where.line, d.keyword) for d in errors(diagnostics)]
    assert lines == [
        (3, "router_idd"),
        (4, "vrrp_version"),
        (8, "weight"),
        (12, "virtual_router_id"),
        (13, "priority"),
        (14, "state"),
        (15, "advert_int"),
        (10, "vrrp_instance"),  # without a usable virtual_router_id it cannot run
    ]


def test_blocks_may_open_and_close_anywhere_and_comments_use_hash_or_bang() -> None:
    text = """
global_defs { router_id lb1 }   ! a comment
vrrp_instance VI_1     # another
{
    interface eth0 ; virtual_router_id 51
    authentication { auth_type PASS
        auth_pass "se cret" }
    virtual_ipaddress { 198.51.100.170/24 198.51.100.171 }
}
"""
    config, diagnostics = load(text.replace(" ; ", "\n    ").replace("/24 198", "/24\n198"))
    assert config is not None, diagnostics
    assert config.global_defs.router_id == "lb1"
    (vi,) = config.instances
    assert vi.auth_pass == b"se cret\0"
    assert len(vi.virtual_ipaddress) == 2
    # Two addresses on one line read as one address with an unknown option, as Keepalived.
    _, diagnostics = load(text.replace(" ; ", "\n    "))
    assert errors(diagnostics)[0].message == "unknown option '198.51.100.171' on a virtual address"


def test_lexing_problems_name_their_line() -> None:
    config, diagnostics = load('global_defs {\n  router_id "lb1\n}\n}\nvrrp_instance X {\n')
    assert config is None
    messages = [(d.where.line, d.message) for d in errors(diagnostics)]
    assert (2, "unmatched quote at column 13") in messages
    assert (4, "'}' without a block to close") in messages
    assert (5, "block not closed: '}' missing") in messages


def test_quoted_strings_take_keepalived_escapes_and_scripts_split_on_spaces() -> None:
    text = """
vrrp_script chk {
    script "/bin/sh -c 'exit 1' \\x41\\t"
}
vrrp_script other {
    script /usr/bin/test -e /run/ok
}
"""
    config, _ = load(text)
    assert config is not None
    assert config.scripts["chk"].command.argv == ("/bin/sh", "-c", "exit 1", "A")
    assert config.scripts["other"].command.argv == ("/usr/bin/test", "-e", "/run/ok")


def test_include_reads_globs_and_braces_relative_to_the_including_file() -> None:
    main = "include conf.d/*.conf\ninclude extra/{a,b}.conf\n"
    config, diagnostics = load(
        main,
        **{
            "/etc/keepalived/conf.d/10-global.conf": "global_defs {\n router_id x\n}\n",
            "/etc/keepalived/conf.d/20-vi.conf": INSTANCE.format(extra=""),
            "/etc/keepalived/extra/a.conf": "vrrp_script a {\n script /bin/true\n}\n",
            "/etc/keepalived/extra/b.conf": "vrrp_script b {\n script /bin/true\n}\n",
        },
    )
    assert config is not None, diagnostics
    assert config.global_defs.router_id == "x"
    assert sorted(config.scripts) == ["a", "b"]
    assert config.instances[0].where.file == "/etc/keepalived/conf.d/20-vi.conf"


def test_include_of_a_missing_file_is_an_error_and_an_empty_glob_a_warning() -> None:
    config, diagnostics = load("include missing.conf\ninclude none/*.conf\n")
    assert config is None
    (problem,) = errors(diagnostics)
    assert problem.message.startswith("cannot read '/etc/keepalived/missing.conf'")
    assert warnings(diagnostics)[0].message == "no file matches '/etc/keepalived/none/*.conf'"


def test_include_loops_stop() -> None:
    config, diagnostics = load("include keepalived.conf\n")
    assert config is None
    assert [str(d) for d in errors(diagnostics)] == [
        "/etc/keepalived/keepalived.conf:1: error: 'include': include loop: "
        "'/etc/keepalived/keepalived.conf' is already being read"
    ]


def test_includes_that_multiply_are_bounded() -> None:
    # Found by the fuzzer: two files that include each other twice grew exponentially
    # (poise took minutes and gigabytes); a `{a,b}` pattern repeated did too.
    twice = "include a.conf\ninclude a.conf\n"
    config, diagnostics = load(twice, **{"/etc/keepalived/a.conf": "include keepalived.conf\n" * 2})
    assert config is None
    assert {d.message for d in errors(diagnostics)} == {
        "include loop: '/etc/keepalived/keepalived.conf' is already being read"
    }
    # Without a loop: 40 files, each including the next one twice.
    files = {f"/etc/keepalived/f{n}.conf": f"include f{n + 1}.conf\n" * 2 for n in range(40)}
    config, diagnostics = load("include f0.conf\n", **files)
    assert "more than 1000 files included: the rest are not read" in {
        d.message for d in errors(diagnostics)
    }
    config, diagnostics = load("include " + "{a,b}" * 30 + "\n")
    assert [d.message for d in errors(diagnostics)] == [
        f"'{'{a,b}' * 30}' expands to more than 1000 names"
    ]


def test_two_instances_on_one_vrid_and_interface_are_an_error() -> None:
    text = INSTANCE.format(extra="") + INSTANCE.format(extra="").replace("VI_1", "VI_2")
    config, diagnostics = load(text)
    assert config is None
    (problem,) = errors(diagnostics)
    assert "uses VRID 51 on eth0, as 'VI_1' does" in problem.message
    other_interface = text.replace("eth0", "eth1", 2)[::-1].replace("1hte", "0hte", 1)[::-1]
    assert load(other_interface)[0] is not None


def test_unicast_instances_with_different_peers_may_share_a_vrid() -> None:
    one = INSTANCE.format(extra="unicast_peer {\n 198.51.100.2\n}")
    two = one.replace("VI_1", "VI_2").replace("100.2", "100.3")
    assert load(one + two)[0] is not None


def test_names_must_refer_to_something() -> None:
    text = INSTANCE.format(extra="track_script {\n chk_haproy\n}") + (
        "vrrp_script chk_haproxy {\n script /bin/true\n}\n"
        "vrrp_sync_group G {\n group {\n VI_1\n VI_9\n }\n}\n"
    )
    config, diagnostics = load(text)
    assert config is None
    messages = [d.message for d in errors(diagnostics)]
    assert "no vrrp_instance named 'VI_9' for sync group 'G'; did you mean 'VI_1'?" in messages
    # An unknown tracked script is dropped with Keepalived's warning (keepalived -t: rc 5,
    # "(VI_1) track script nochk not found, ignoring...", and it runs).
    config, diagnostics = load(text.replace(" VI_9\n", ""))
    assert config is not None and config.instances[0].track_script == ()
    assert [str(d) for d in diagnostics] == [
        "/etc/keepalived/keepalived.conf:6: warning: 'track_script': (VI_1) track script "
        "chk_haproy not found, ignoring...; did you mean 'chk_haproxy'?"
    ]


def test_arguments_after_a_switch_are_ignored_with_a_warning_as_keepalived_does() -> None:
    # keepalived -t: `nopreempt 1`, `nopreempt 0`, `enable_script_security 1`: rc 0, silent.
    config, diagnostics = instance(
        "nopreempt 0\n dont_track_primary yes",
        before=("global_defs {\n enable_script_security 1\n vrrp_check_unicast_src x\n}\n"),
    )
    assert config is not None
    assert config.global_defs.enable_script_security and config.global_defs.vrrp_check_unicast_src
    assert config.instances[0].nopreempt and config.instances[0].dont_track_primary
    assert [d.keyword for d in warnings(diagnostics)] == [
        "enable_script_security",
        "vrrp_check_unicast_src",
        "nopreempt",
        "dont_track_primary",
    ]
    assert warnings(diagnostics)[2].message == (
        "takes no argument: '0' is ignored and nopreempt is on, as in Keepalived"
    )


def test_an_address_listed_twice_is_kept_twice_as_keepalived_does() -> None:
    # keepalived -t accepts it silently; its adverts then carry the address twice.
    text = INSTANCE.replace("198.51.100.170/24", "198.51.100.170/24\n 198.51.100.170 label x")
    config, diagnostics = load(text.format(extra=""))
    assert config is not None
    assert [str(v.ip) for v in config.instances[0].virtual_ipaddress] == ["198.51.100.170"] * 2
    assert "listed twice: advertised twice and added once" in warnings(diagnostics)[0].message


def test_advert_intervals_are_rounded_as_each_version_carries_them() -> None:
    config, diagnostics = instance("advert_int 0.5")
    assert config is not None and config.instances[0].advert_int == 1.0
    assert "VRRPv2 advertises whole seconds" in warnings(diagnostics)[0].message
    config, diagnostics = instance("version 3\n advert_int 0.123")
    assert config is not None and config.instances[0].advert_int == 0.12
    config, diagnostics = instance("advert_int 0.1", before="global_defs {\n vrrp_version 3\n}\n")
    assert config is not None and config.instances[0].advert_int == 0.1 and not diagnostics
    config, diagnostics = instance("version 3\n advert_int 41")
    assert config is None and "above 40.95" in errors(diagnostics)[0].message


def test_authentication_as_keepalived_reads_it() -> None:
    config, diagnostics = instance("authentication {\n auth_type PASS\n auth_pass 123456789\n}")
    assert config is not None and config.instances[0].auth_pass == b"12345678"
    assert warnings(diagnostics)[0].message == "only the first 8 characters are used"
    config, diagnostics = instance("version 3\nauthentication {\n auth_type PASS\n auth_pass x\n}")
    assert config is not None and config.instances[0].auth_pass is None
    assert "VRRPv3 has no authentication" in warnings(diagnostics)[0].message
    config, diagnostics = instance("authentication {\n auth_type AH\n auth_pass x\n}")
    assert config is None and "IPSEC-AH" in errors(diagnostics)[0].message


def test_keepalived_s_corrections_are_warnings() -> None:
    config, diagnostics = instance("priority 255\n nopreempt")
    assert config is not None and not config.instances[0].nopreempt
    assert warnings(diagnostics)[0].keyword == "nopreempt"
    config, diagnostics = instance("state MASTER\n preempt_delay 3")
    assert config is not None and config.instances[0].preempt_delay == 0.0
    assert warnings(diagnostics)[0].keyword == "preempt_delay"


def test_virtual_addresses_with_their_options() -> None:
    text = INSTANCE.replace(
        "198.51.100.170/24",
        "198.51.100.170/24 dev eth1 label eth1:vip brd 198.51.100.255 scope link\n"
        "        198.51.100.171",
    ).format(extra="")
    config, diagnostics = load(text)
    assert config is not None, diagnostics
    first, second = config.instances[0].virtual_ipaddress
    assert (first.dev, first.label, first.scope) == ("eth1", "eth1:vip", "link")
    assert first.broadcast == IPv4Address("198.51.100.255") and first.prefix_given
    assert second.interface == IPv4Interface("198.51.100.171/32") and not second.prefix_given


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2001:db8::1 brd 198.51.100.255", "'brd' on an IPv6 address: IPv6 has no broadcast"),
        ("2001:db8::1/129", "bad prefix length in '2001:db8::1/129'"),
        ("2001:db8::zz", "'2001:db8::zz' is not an IPv6 address"),
        (
            "198.51.100.170 devv eth0",
            "unknown option 'devv' on a virtual address; did you mean 'dev'?",
        ),
        (
            "198.51.100.170 use_vmac",
            "'use_vmac' on a virtual address is not implemented yet in poise",
        ),
        ("198.51.100.170/33", "bad prefix length in '198.51.100.170/33'"),
        ("198.51.100.170 dev", "'dev' expects a value"),
    ],
)
def test_bad_virtual_addresses(line: str, message: str) -> None:
    config, diagnostics = load(INSTANCE.replace("198.51.100.170/24", line).format(extra=""))
    assert config is None
    assert errors(diagnostics)[0].message == message


def test_tracking_weights_and_their_ranges() -> None:
    text = (
        INSTANCE.format(
            extra="track_script {\n chk weight -10\n chk2 weight 5 reverse\n}\n"
            "track_interface {\n eth1\n eth2 weight -20\n}"
        )
        + "vrrp_script chk {\n script /bin/true\n}\nvrrp_script chk2 {\n script /bin/true\n}\n"
    )
    config, diagnostics = load(text)
    assert config is not None, diagnostics
    (vi,) = config.instances
    assert [(t.name, t.weight, t.reverse) for t in vi.track_script] == [
        ("chk", -10, None),
        ("chk2", 5, True),
    ]
    assert [(t.name, t.weight) for t in vi.track_interface] == [("eth1", 0), ("eth2", -20)]
    config, diagnostics = load(text.replace("-10", "-254"))
    assert config is None and "out of range [-253, 253]" in errors(diagnostics)[0].message


def test_sync_groups_zero_the_tracking_weights_as_keepalived_does() -> None:
    text = INSTANCE.format(extra="track_script {\n chk weight 10\n}") + (
        "vrrp_script chk {\n script /bin/true\n}\n"
        "vrrp_sync_group G {\n group {\n VI_1\n }\n notify_master /bin/true\n smtp_alert\n}\n"
    )
    config, diagnostics = load(text)
    assert config is not None
    (vi,) = config.instances
    assert vi.sync_group == "G" and vi.track_script[0].weight == 0
    assert [d.keyword for d in warnings(diagnostics)] == ["smtp_alert", "vrrp_instance"]
    assert config.sync_groups[0].notify.master is not None


def test_notify_scripts_take_a_user_and_group() -> None:
    config, _ = instance('notify_master "/usr/local/bin/vip up" nobody nogroup\n notify /bin/n')
    assert config is not None
    notify = config.instances[0].notify
    assert notify.master is not None and notify.any is not None
    assert notify.master.argv == ("/usr/local/bin/vip", "up")
    assert (notify.master.user, notify.master.group) == ("nobody", "nogroup")
    assert notify.any.argv == ("/bin/n",)


def test_global_defs_garp_settings_become_instance_defaults() -> None:
    before = (
        "global_defs {\n vrrp_garp_master_delay 1\n vrrp_garp_master_repeat 2\n"
        " vrrp_garp_master_refresh 30\n vrrp_garp_interval 0.01\n}\n"
    )
    config, diagnostics = instance("garp_master_repeat 3", before=before)
    assert config is not None, diagnostics
    (vi,) = config.instances
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (1.0, 3, 30.0)
    assert config.global_defs.vrrp_garp_interval == 0.01
    config, _ = instance(before="global_defs {\n vrrp_min_garp\n}\n")
    assert config is not None
    assert (config.instances[0].garp_master_repeat, config.instances[0].garp_master_delay) == (
        1,
        0.0,
    )


def test_an_instance_needs_an_interface_and_a_vrid() -> None:
    config, diagnostics = load("vrrp_instance VI_1 {\n priority 100\n}\n")
    assert config is None
    assert [d.message for d in errors(diagnostics)] == ["missing virtual_router_id"]
    config, diagnostics = load("vrrp_instance VI_1 {\n virtual_router_id 3\n}\n")
    assert config is None and errors(diagnostics)[0].message.startswith("missing interface")


LIST_BLOCKS = {
    "virtual_ipaddress": "198.51.100.10/24",
    "unicast_peer": "198.51.100.2",
    "track_interface": "eth1",
    "track_script": "chk",
}


@pytest.mark.parametrize("block", sorted(LIST_BLOCKS))
def test_a_stray_brace_in_a_list_block_is_an_error_at_its_line(block: str) -> None:
    # What an unrendered Jinja `{{ x }}` leaves, or a lone `{` line. keepalived -t 2.2.7
    # refuses `{` there ("VRRP parsed invalid IP {", "malformed unicast peer address[{]",
    # "tracked interface { doesn't exist", "track script { not found") and counts the braces.
    script = 'vrrp_script chk {\n    script "/bin/true"\n}\n'
    item = LIST_BLOCKS[block]
    for body, line in (("    {\n", 6), (f"    {item}\n    {{\n", 7), ("    {{ x }}\n", 6)):
        text = INSTANCE.format(extra=f"{block} {{\n{body}    }}")
        config, diagnostics = load(script + text)
        assert config is None
        places = {(d.where.line, d.severity) for d in diagnostics}
        assert (line + 3, Severity.ERROR) in places, [str(d) for d in diagnostics]
        assert all("{" in str(d) or "'}'" in str(d) for d in errors(diagnostics))


def test_an_auth_pass_that_utf8_cannot_encode_is_no_crash() -> None:
    # Found by the fuzzer (a UnicodeEncodeError): text with lone surrogates, which no file
    # read from disk gives (it is decoded with replacement) but the pure parser may get.
    config, diagnostics = instance("authentication {\n auth_type PASS\n auth_pass \udcff\ud800\n}")
    assert config is not None, [str(d) for d in diagnostics]
    assert len(config.instances[0].auth_pass or b"") == 8
